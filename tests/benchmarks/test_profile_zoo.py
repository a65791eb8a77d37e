"""profile_zoo runs a zoo row under pyinstrument and prints the step time and the call tree."""
import importlib.util
import pathlib

import pytest

SPEC = importlib.util.spec_from_file_location(
    "profile_zoo", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "profile_zoo.py")


def test_profiles_a_row_with_and_without_winograd(capsys):
    pytest.importorskip("pyinstrument", reason="profile_zoo samples with pyinstrument")
    profile_zoo = importlib.util.module_from_spec(SPEC)
    SPEC.loader.exec_module(profile_zoo)
    from nnscratch.ops import convolution

    rule = convolution.WINOGRAD_MAX_PIXELS
    try:
        profile_zoo.main(["mlp", "--steps", "1", "--threads", "1", "--im2col-only"])
        assert convolution.WINOGRAD_MAX_PIXELS == 0
    finally:
        convolution.WINOGRAD_MAX_PIXELS = rule
    out = capsys.readouterr().out
    assert out.startswith("mlp: ") and "ms/step" in out and "Model.fit" in out

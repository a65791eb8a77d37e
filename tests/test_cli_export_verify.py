"""`nnscratch export` and `nnscratch verify` as a user runs them: the real command in a subprocess for the
exit statuses and the printed lines, the main function for the error cases."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch import load_model
from nnscratch.cli import main
from nnscratch.io.onnx_export import EXPORTERS, register_exporter
from nnscratch.layers import LAYERS, Conv2D, Dense, Flatten, Layer, Softmax
from nnscratch.models import lenet5
from nnscratch.model import Model

pytest.importorskip("onnx", reason="export needs the onnx package (pip install 'nnscratch[onnx]')")
pytest.importorskip("onnxruntime", reason="--verify and verify run ONNX files with onnxruntime")


def run(*args, cwd=None):
    script = Path(sys.executable).with_name("nnscratch")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def files(tmp_path):
    """A saved LeNet-5 with random weights and a copy with one weight of its second convolution moved."""
    model = lenet5("modern", seed=0)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        for value in layer.params.values():
            value[...] = rng.normal(0, 0.5, value.shape)
    model.save(str(tmp_path / "a.h5"))
    conv = [l for l in model.layers if isinstance(l, Conv2D)][1]
    conv.params["kernel"][0, 0, 0, 0] += 0.5
    model.save(str(tmp_path / "b.h5"))
    return tmp_path, conv.name


def test_export_verify_and_verify_through_the_real_command(files):
    folder, perturbed = files
    done = run("export", "a.h5", "a.onnx", "--verify", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "wrote a.onnx (ONNX opset 17, inputs input (N, 28, 28, 1))" in done.stdout
    assert "largest absolute difference" in done.stdout and "largest relative difference" in done.stdout
    assert "within tolerance 1e-05" in done.stdout
    agree = run("verify", "a.h5", "a.onnx", cwd=folder)
    assert agree.returncode == 0, agree.stdout + agree.stderr
    assert "max abs diff" in agree.stdout and "the models agree" in agree.stdout
    differ = run("verify", "a.onnx", "b.h5", "--samples", "3", cwd=folder)
    assert differ.returncode == 1
    assert differ.stdout.strip().splitlines()[-1].startswith(f"the models differ first at layer {perturbed!r}")


class Halving(Layer, register=False):
    def forward(self, x, training=False):
        return 0.5 * x

    def backward(self, dout):
        return 0.5 * dout


def test_export_verify_catches_a_wrong_exporter(tmp_path, capsys, monkeypatch):
    # registered for this test only (save and load need the name), so the suite's all-layer checks never see it
    monkeypatch.setitem(LAYERS._classes, "Halving", Halving)
    model = Model([Dense(4, input_shape=(3,)), Halving(name="half"), Softmax()], seed=0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.finalize()
    model.save(str(tmp_path / "m.h5"))

    @register_exporter("Halving")
    def _wrong(layer, inputs, output, graph):          # multiplies by 0.49: a slip a user could make
        graph.node("Mul", [inputs[0], graph.scalar(f"{layer.name}/factor", 0.49)], output)
    try:
        status = main(["export", str(tmp_path / "m.h5"), str(tmp_path / "m.onnx"), "--verify"])
        out = capsys.readouterr().out
        assert status == 1 and "BEYOND tolerance 1e-05" in out
        assert out.strip().splitlines()[-1].startswith("the models differ first at layer 'half'")
        assert main(["verify", str(tmp_path / "m.h5"), str(tmp_path / "m.onnx")]) == 1
        assert "differ first at layer 'half'" in capsys.readouterr().out
    finally:
        del EXPORTERS["Halving"]


def test_verify_runs_given_inputs(files, capsys):
    folder, perturbed = files
    np.save(folder / "x.npy", np.random.default_rng(1).random((2, 28, 28, 1)))
    assert main(["verify", str(folder / "a.h5"), str(folder / "b.h5"), "--input", str(folder / "x.npy")]) == 1
    out = capsys.readouterr().out
    assert f"differ first at layer {perturbed!r}" in out and "on 2 sample(s)" not in out


def test_an_unsupported_layer_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(LAYERS._classes, "Halving", Halving)      # a user's layer without an exporter
    model = Model([Conv2D(2, 3, input_shape=(4, 4, 1)), Halving(name="half"), Flatten(), Softmax()], seed=0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.finalize()
    model.save(str(tmp_path / "m.h5"))
    assert main(["export", str(tmp_path / "m.h5"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("nnscratch export: error: cannot export layer 'half' (Halving)")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["export", "a.h5", "a.txt"], "must end in .onnx"),
    (["export", "missing.h5", "a.onnx"], "no such model file: missing.h5"),
    (["verify", "a.h5", "missing.onnx"], "no such model file: missing.onnx"),
    (["verify", "a.h5", "a.h5", "--tolerance", "-1"], "argument --tolerance: expected a number > 0"),
    (["verify", "a.h5", "a.h5", "--samples", "0"], "argument --samples: expected a whole number of at least 1"),
])
def test_bad_arguments_are_one_line_errors(files, args, message, capsys, monkeypatch):
    folder, _ = files
    monkeypatch.chdir(folder)
    try:
        status = main(args)
    except SystemExit as e:  # argparse's own refusals
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    for command in ("export", "verify"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "(default: 1e-05)" in out and "(default: 8)" in out


def test_exported_file_predicts_what_the_saved_model_predicts(files):
    import onnxruntime as ort

    folder, _ = files
    assert main(["export", str(folder / "a.h5"), str(folder / "a.onnx")]) == 0
    x = np.random.default_rng(2).random((3, 28, 28, 1)).astype(np.float32)
    session = ort.InferenceSession(str(folder / "a.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    assert np.abs(got - load_model(str(folder / "a.h5")).predict(x)).max() < 1e-5

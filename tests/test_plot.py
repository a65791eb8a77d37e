"""plot_history: a real PNG of the curves, from a History, a Model or a JSON file; a clear error without matplotlib."""
import math
import os
import struct
import sys

import pytest

from nnscratch.callbacks import History, write_history_json
from nnscratch.plot import INSTALL_HINT, MissingDependencyError, main_plot, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk, which the PNG format puts first."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def distinct_colours(path):
    try:
        from PIL import Image
    except ImportError:
        return None
    with Image.open(path) as image:
        return len(image.convert("RGB").getcolors(1 << 24))


def history(epochs=6, accuracy=True, validation=True, events=True):
    h = History()
    for e in range(epochs):
        logs = {"loss": 1.0 / (e + 1)}
        if accuracy:
            logs["accuracy"] = 1 - 0.5 / (e + 1)
        if validation:
            logs["val_loss"] = 1.2 / (e + 1)
            if accuracy:
                logs["val_accuracy"] = 1 - 0.6 / (e + 1)
        h.on_epoch_end(e, logs)
    if events:
        h.record_event({"kind": "reduce_lr", "epoch": 2, "step": None, "message": "cut"})
        h.record_event({"kind": "rollback", "epoch": 4, "step": 3, "message": "rolled back"})
    return h


def test_plot_from_a_history_writes_a_png_of_the_expected_size(tmp_path):
    out = tmp_path / "curves.png"
    assert plot_history(history(), out) == str(out)
    assert png_size(out) == (1100, 400)  # 11 x 4 inches at the default 100 dpi
    assert os.path.getsize(out) > 10_000
    colours = distinct_colours(out)
    assert colours is None or colours > 50  # lines, text and anti-aliasing, not a blank canvas
    assert os.listdir(tmp_path) == ["curves.png"]  # no temporary file left behind


def test_plot_from_the_json_that_write_history_json_writes(tmp_path):
    h = history()
    h.history["val_loss"][1] = math.nan  # a gap (null in the file) must not break the plot
    path = tmp_path / "run.history.json"
    write_history_json(h, path, meta={"model": "lenet5"})
    out = tmp_path / "run.png"
    plot_history(str(path), out, dpi=50)
    assert png_size(out) == (550, 200)


def test_plot_without_accuracy_or_validation_or_events(tmp_path):
    out = tmp_path / "loss.png"
    plot_history(history(accuracy=False, validation=False, events=False), out)
    assert png_size(out) == (1100, 400)


def test_a_divergence_spike_does_not_flatten_the_rest_of_the_curve(tmp_path):
    h = History()
    for e, loss in enumerate([1.0, 0.5, 3e6, 0.3, 0.2]):
        h.on_epoch_end(e, {"loss": loss})
    plot_history(h, tmp_path / "spike.png")  # drawn on a log scale; here: it renders
    assert png_size(tmp_path / "spike.png") == (1100, 400)


def test_other_formats_follow_the_extension(tmp_path):
    plot_history(history(), tmp_path / "curves.svg")
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match=r"cannot save a plot as \.xyz; use one of: .*\.png"):
        plot_history(history(), tmp_path / "curves.xyz")
    assert not (tmp_path / "curves.xyz").exists()


def test_missing_matplotlib_gives_an_import_error_with_the_install_hint(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ImportError) as info:
        plot_history(history(), tmp_path / "curves.png")
    assert isinstance(info.value, MissingDependencyError)
    assert INSTALL_HINT == 'pip install "nnscratch[plot]"' and INSTALL_HINT in str(info.value)
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize("source, error, match", [
    (History(), ValueError, "no epochs"),
    ("no/such/history.json", FileNotFoundError, "no such history file"),
    (42, TypeError, "History, a Model or the path"),
])
def test_bad_inputs_say_what_is_wrong(tmp_path, source, error, match):
    with pytest.raises(error, match=match):
        plot_history(source, tmp_path / "x.png")


def test_main_plot_writes_beside_the_json_and_reports_errors(tmp_path, capsys):
    path = tmp_path / "run.history.json"
    write_history_json(history(), path)
    assert main_plot([str(path)]) == 0
    assert png_size(tmp_path / "run.history.png") == (1100, 400)
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'run.history.png'}"
    assert main_plot([str(path), "-o", str(tmp_path / "c.png"), "--title", "run 1", "--dpi", "80"]) == 0
    assert png_size(tmp_path / "c.png") == (880, 320)
    (tmp_path / "broken.json").write_text("{")
    assert main_plot([str(tmp_path / "broken.json")]) == 2
    assert "nnscratch plot: error:" in capsys.readouterr().err

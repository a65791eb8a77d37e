"""The `nnscratch` command end to end on a small generated dataset written as IDX files (no network)."""
import json

import numpy as np
import pytest

from nnscratch.cli import main, read_image
from nnscratch.datasets import save_idx


def shape_digit(kind, rng, size=28):
    """A light-on-dark 28x28 glyph centred MNIST-style: 0 a horizontal bar, 1 a vertical bar, 2 a cross."""
    img = np.zeros((size, size), np.float64)
    c = 14 + rng.integers(-1, 2)
    half = 9
    if kind in (0, 2):
        img[c - 1:c + 2, 14 - half:14 + half] = 255
    if kind in (1, 2):
        img[14 - half:14 + half, c - 1:c + 2] = 255
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("shapes")
    for split, n in (("train", 600), ("t10k", 150)):
        y = rng.integers(0, 3, n).astype(np.uint8)
        x = np.stack([shape_digit(k, rng) for k in y])
        save_idx(d / f"{split}-images-idx3-ubyte", x)
        save_idx(d / f"{split}-labels-idx1-ubyte", y)
    return d


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mlp.h5"
    with pytest.warns(UserWarning, match="differ from the original"):
        code = main(["train", "mlp", "--hidden", "32", "--epochs", "4", "--batch-size", "32", "--data-dir",
                     str(data_dir), "--output", str(out), "--verbose", "2"])
    assert code == 0
    return out


def test_train_saves_model_and_history(trained, capsys):
    assert trained.exists()
    history = json.loads(trained.with_suffix(".history.json").read_text())
    assert len(history["history"]["loss"]) == 4
    assert history["meta"]["test_accuracy"] > 0.95


def test_evaluate_reports_accuracy(trained, data_dir, capsys):
    with pytest.warns(UserWarning):
        assert main(["evaluate", str(trained), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 95


def test_predict_on_dark_ink_on_white_paper_off_centre(trained, tmp_path, capsys):
    from PIL import Image

    paper = np.full((120, 90), 250, np.uint8)
    paper[20:80, 10:14] = 20        # a vertical stroke (class 1), dark on light, small and off-centre
    paper[48:52, 0:5] = 200         # a faint smudge
    path = tmp_path / "one.png"
    Image.fromarray(paper).save(path)
    assert main(["predict", str(trained), str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: predicted 1" in out
    assert "probability" in out


def test_read_image_inverts_and_centres(tmp_path):
    from PIL import Image

    paper = np.full((100, 100), 255, np.uint8)
    paper[5:45, 5:15] = 0
    Image.fromarray(paper).save(tmp_path / "x.png")
    img = read_image(tmp_path / "x.png", (28, 28), 1)
    assert img.shape == (28, 28) and img.dtype == np.uint8
    assert img[0].max() == 0 and img.max() > 200            # light ink on a dark background now
    rows, cols = np.nonzero(img > 100)
    assert 12 <= rows.mean() <= 15 and 12 <= cols.mean() <= 15  # centred
    assert rows.max() - rows.min() <= 21                         # fit into the 20x20 box


def test_summary_prints_the_table(trained, capsys):
    assert main(["summary", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "Total params: 25,450" in out  # 784*32+32 + 32*10+10


def test_missing_model_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope.h5")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_unreadable_image_is_a_one_line_error(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["predict", str(trained), str(bad)]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_gradcheck_command_passes_and_fails_properly(tmp_path, monkeypatch, capsys):
    assert main(["gradcheck", "Dense", "Conv2D", "MaxPool2D", "--check", "gradients", "--check", "threads"]) == 0
    out = capsys.readouterr().out
    assert "Conv2D" in out and "threads" in out and "FAIL" not in out and "3 of 3 layer(s) keep the contract" in out
    (tmp_path / "my_layers.py").write_text(
        "from nnscratch.layers import Layer\n"
        "class WrongSquareForCli(Layer):\n"
        "    check_cases = [({}, (4,))]\n"
        "    def forward(self, x, training=False):\n"
        "        self._x = x\n"
        "        return x * x\n"
        "    def backward(self, dout):\n"
        "        return dout * self._x  # should be 2 * x\n")
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "--import", "my_layers"]) == 1  # the module's own layers, the whole contract
    out = capsys.readouterr().out
    assert "WrongSquareForCli" in out and "FAIL" in out and "failed: WrongSquareForCli" in out
    assert "save_load" in out and "\nDense " not in out  # only the module's layers are checked
    assert main(["gradcheck", "--check", "gradient"]) == 2


def test_plot_command(trained, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", str(trained.with_suffix(".history.json")), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_prints_and_draws_the_confusion_matrix(trained, data_dir, capsys, tmp_path):
    image = tmp_path / "confusion.png"
    with pytest.warns(UserWarning):
        assert main(["evaluate", str(trained), "--data-dir", str(data_dir), "--confusion", "--plot", str(image)]) == 0
    out = capsys.readouterr().out
    table = out.split("confusion matrix (rows: true class, columns: predicted class)")[1]
    rows = [line.split() for line in table.splitlines() if line[:1].isdigit()]
    counts = np.array([[int(v.replace(",", "")) for v in r[1:11]] for r in rows[:10]])   # MNIST's 10 class names
    assert counts.shape == (10, 10) and counts.sum() == 150 and np.trace(counts) > 140
    assert [int(r[-1].replace(",", "")) for r in rows[:10]] == counts.sum(axis=1).tolist()
    assert "precision" in out and "macro average" in out
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.warns(UserWarning):
        assert main(["evaluate", str(trained), "--data-dir", str(data_dir), "--plot"]) == 0
    beside = trained.with_name(trained.stem + "_confusion.png")
    assert f"wrote {beside}" in capsys.readouterr().out and beside.exists()


def test_summary_shows_multiply_adds_and_activations(trained, capsys):
    assert main(["summary", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "Multiply-adds per sample: 25,450" in out   # 784*32 + 32 + 32*10 + 10
    assert main(["summary", str(trained), "--no-flops"]) == 0
    assert "MACs" not in capsys.readouterr().out

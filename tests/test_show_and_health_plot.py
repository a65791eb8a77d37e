"""`nnscratch show` on a saved LeNet-5 and `nnscratch plot --health` / plot_health on a recorded run."""
import numpy as np
import pytest

from nnscratch.callbacks import DivergenceGuard, LayerHealth, write_history_json
from nnscratch.cli import main
from nnscratch.models import lenet5, mlp, resnet
from nnscratch.optimizers import SGD
from nnscratch.plot import plot_health

from nnscratch.datasets import save_idx
from test_plot import PNG_SIGNATURE, distinct_colours, png_size

# the generated IDX files stand in for MNIST, whose checksums they do not match
pytestmark = pytest.mark.filterwarnings("ignore:.*differ from the original:UserWarning")


def shape_digit(kind, rng, size=28):
    """A light-on-dark glyph centred MNIST-style: 0 a horizontal bar, 1 a vertical bar, 2 a cross."""
    img = np.zeros((size, size))
    c = 14 + rng.integers(-1, 2)
    if kind in (0, 2):
        img[c - 1:c + 2, 5:23] = 255
    if kind in (1, 2):
        img[5:23, c - 1:c + 2] = 255
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three glyphs written as MNIST's four IDX files (no network)."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("shapes")
    for split, n in (("train", 600), ("t10k", 150)):
        y = rng.integers(0, 3, n).astype(np.uint8)
        save_idx(d / f"{split}-images-idx3-ubyte", np.stack([shape_digit(k, rng) for k in y]))
        save_idx(d / f"{split}-labels-idx1-ubyte", y)
    return d


@pytest.fixture(scope="module")
def lenet_file(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("show") / "lenet.h5"
    assert main(["train", "lenet5", "--epochs", "1", "--batch-size", "32", "--data-dir", str(data_dir),
                 "--output", str(out), "--verbose", "0"]) == 0
    return out


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    assert png_size(path)[0] > 200
    colours = distinct_colours(path)
    assert colours is None or colours > 20


@pytest.mark.parametrize("view, extra", [("kernels", []), ("features", ["--layer", "re_lu_1", "--index", "4"]),
                                         ("saliency", ["--class", "2"]), ("gradcam", []),
                                         ("histograms", ["--count", "8"])])
def test_show_writes_each_view(lenet_file, data_dir, view, extra, capsys):
    code = main(["show", str(lenet_file), view, "--data-dir", str(data_dir)] + extra)
    assert code == 0
    out = lenet_file.with_name(f"lenet.{view}.png")
    assert f"wrote {out}" in capsys.readouterr().out
    assert_png(out)


def test_show_an_image_file(lenet_file, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "cross.png"
    Image.fromarray(255 - shape_digit(2, np.random.default_rng(1))).save(path)  # dark on light, as drawn
    assert main(["show", str(lenet_file), "gradcam", "--image", str(path), "-o", str(tmp_path / "g.png")]) == 0
    assert f"gradcam of {path}" in capsys.readouterr().out
    assert_png(tmp_path / "g.png")


def test_show_errors(lenet_file, data_dir, tmp_path, capsys):
    assert main(["show", str(lenet_file), "features", "--layer", "c9", "--data-dir", str(data_dir)]) == 2
    assert "no layer named 'c9'; its layers are: conv2d_1" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "missing.h5"), "kernels"]) == 2
    assert "no such model file" in capsys.readouterr().err
    model = mlp(hidden_units=(8,), seed=0)
    model.save(tmp_path / "mlp.h5")
    assert main(["show", str(tmp_path / "mlp.h5"), "gradcam", "--image", str(tmp_path / "none.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    img = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(shape_digit(1, np.random.default_rng(0))).save(img)
    assert main(["show", str(tmp_path / "mlp.h5"), "gradcam", "--image", str(img)]) == 2
    assert "no convolution with a spatial output; use saliency" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "mlp.h5"), "kernels"]) == 2
    assert "no Conv2D layer" in capsys.readouterr().err


# -- the health plot ----------------------------------------------------------------------------------------
def health_run(tmp_path, guard=False):
    rng = np.random.default_rng(0)
    x = rng.random((96, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    model = resnet(input_shape=(8, 8, 1), num_classes=3, filters=(2, 4), seed=0, threads=1,
                   optimizer=SGD(30.0 if guard else 0.05))
    callbacks = [LayerHealth(every=2)] + ([DivergenceGuard()] if guard else [])
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
    return write_history_json(model, tmp_path / "run.history.json")


def test_plot_health_draws_every_recorded_quantity(tmp_path):
    path = health_run(tmp_path, guard=True)
    out = plot_health(path, tmp_path / "health.png")
    assert_png(out)
    w, h = png_size(out)
    assert (w, h) == (1400, 3 * 320 + 60)  # loss, gradient norm, update ratio, dead ReLUs, 2 x BN drift: 3 rows


def test_plot_health_from_the_command_line(tmp_path, capsys):
    path = health_run(tmp_path)
    assert main(["plot", str(path), "--health"]) == 0
    assert_png(tmp_path / "run.health.png")  # beside the history, named as `nnscratch plot` names the curves
    assert "run.health.png" in capsys.readouterr().out


def test_plot_health_without_a_record_says_how_to_make_one(tmp_path, capsys):
    model = lenet5("modern", seed=0)
    path = write_history_json(model, tmp_path / "empty.history.json")
    with pytest.raises(ValueError, match=r"no layer health record; train with callbacks=\[nnscratch.callbacks.LayerHealth"):
        plot_health(path, tmp_path / "h.png")
    assert main(["plot", str(path), "--health"]) == 2
    assert "no layer health record" in capsys.readouterr().err

"""The `nnscratch` command end to end, as a user runs it: subprocesses (with a pseudo-terminal where the
output depends on one), on a small generated dataset written as IDX files (no network)."""
import json
import os
import re
import subprocess
import warnings
import sys
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.cli import main
from nnscratch.datasets import save_idx

from interrupts import sigint_as_at_a_terminal

pexpect = pytest.importorskip("pexpect")

TRACEBACK = "Traceback (most recent call last)"


def command():
    """The installed console script (what README's commands run), else the module."""
    script = Path(sys.executable).with_name("nnscratch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnscratch.cli"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NNSCRATCH_DATA")}
    env.update(extra)
    return env


def run(*args, cwd=None, timeout=120):
    """Runs ``nnscratch ARGS`` with its output on pipes (not a terminal)."""
    return subprocess.run(command() + [str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=timeout)


def spawn(*args, cwd=None, columns=80):
    """``nnscratch ARGS`` on a pseudo-terminal ``columns`` wide, as in a terminal window."""
    cmd = command() + [str(a) for a in args]
    with warnings.catch_warnings():
        # JAX (loaded by the Keras tests) warns at every fork; the pty's child runs nothing but an exec
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        return pexpect.spawn(cmd[0], cmd[1:], cwd=cwd, env=clean_env(), dimensions=(24, columns), encoding="utf-8",
                             timeout=120, preexec_fn=sigint_as_at_a_terminal)


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
    r = run("train", "mlp", "--hidden", 32, "--epochs", 4, "--batch-size", 32, "--data-dir", data_dir,
            "--output", out)
    assert r.returncode == 0, r.stderr
    return out


def weights(path):
    import nnscratch
    return nnscratch.load_model(path).get_weights()


# -- 1: train saves by default ---------------------------------------------------------------------------
def test_train_saves_by_default_to_a_name_from_the_network_and_says_where(data_dir, tmp_path):
    r = run("train", "mlp", "--hidden", 16, "--epochs", 1, "--data-dir", data_dir, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "saving to runs/mlp-16.h5 after every epoch (--no-save to skip)" in r.stdout
    assert "saved runs/mlp-16.h5 and runs/mlp-16.history.json" in r.stdout
    assert (tmp_path / "runs" / "mlp-16.h5").exists() and (tmp_path / "runs" / "mlp-16.history.json").exists()
    again = run("train", "mlp", "--hidden", 16, "--epochs", 1, "--data-dir", data_dir, cwd=tmp_path)
    assert "saved runs/mlp-16-2.h5" in again.stdout  # a second run does not overwrite the first
    none = run("train", "mlp", "--hidden", 16, "--epochs", 1, "--data-dir", data_dir, "--no-save", cwd=tmp_path / "runs")
    assert none.returncode == 0 and "not saving (--no-save)" in none.stdout
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "mlp-16-2.h5", "mlp-16-2.history.json", "mlp-16.h5", "mlp-16.history.json"]
    assert "1 epoch of batch 128" in r.stdout  # not "1 epochs"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are forked: Linux only")
def test_train_with_worker_processes_gives_the_threads_weights(data_dir, tmp_path):
    common = ["train", "lenet5", "--epochs", 1, "--limit", 600, "--threads", 2, "--data-dir", data_dir]
    for engine in ("threads", "processes"):
        r = run(*common, "--parallel", engine, "-o", tmp_path / f"{engine}.h5")
        assert r.returncode == 0, r.stderr
    a, b = weights(tmp_path / "threads.h5"), weights(tmp_path / "processes.h5")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- 2: Ctrl-C, --resume, epoch numbering ---------------------------------------------------------------
def test_ctrl_c_stops_with_one_line_saves_the_finished_epochs_and_resume_continues_exactly(data_dir, tmp_path):
    args = ["train", "lenet5", "--epochs", 5, "--batch-size", 1, "--limit", 300, "--data-dir", data_dir]
    child = spawn(*args, "-o", tmp_path / "cut.h5")
    child.expect(r"Epoch 2/5")  # the live line of the second epoch: one epoch is finished and saved
    child.sendcontrol("c")
    output = child.read()
    child.wait()
    child.close()
    assert child.exitstatus == 130, output
    assert TRACEBACK not in output and "KeyboardInterrupt" not in output, output
    lines = [line for line in output.replace("\r", "\n").splitlines() if "interrupted" in line]
    assert len(lines) == 1, output
    m = re.search(r"training interrupted at epoch (\d)/5, (batch \d+/270|while validating); the last checkpoint is "
                  r"(\S+) \(after epoch (\d)\), the history of its (\d) completed epochs? is in (\S+)", lines[0])
    assert m, lines[0]
    epoch, checkpoint, after, completed, history = int(m[1]), m[3], int(m[4]), int(m[5]), m[6]
    # Usually the epoch in progress is not saved; a Ctrl-C while it validates may come after its checkpoint.
    assert 2 <= epoch <= 4 and after == completed and epoch - 1 <= after <= epoch and checkpoint == str(tmp_path / "cut.h5")
    assert len(json.loads(Path(history).read_text())["history"]["loss"]) == completed
    assert f"continue with: nnscratch train --resume {checkpoint}" in output

    resumed = run("train", "--resume", checkpoint, "--data-dir", data_dir, "--verbose", 2)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {checkpoint} after epoch {after}: epochs {after + 1}-5" in resumed.stdout
    numbered = re.findall(r"^Epoch (\d)/(\d)", resumed.stdout, re.M)
    assert numbered == [(str(e), "5") for e in range(after + 1, 6)]  # on from where it was, not "Epoch 1/.."
    unbroken = run(*args, "-o", tmp_path / "whole.h5")
    assert unbroken.returncode == 0, unbroken.stderr
    a, b = weights(checkpoint), weights(tmp_path / "whole.h5")
    assert all(np.array_equal(a[k], b[k]) for k in b)  # bit for bit
    h = json.loads(Path(history).read_text())
    assert len(h["history"]["loss"]) == 5 and h["epoch"] == [0, 1, 2, 3, 4]


def test_two_epochs_then_resume_one_more_equals_three_epochs_bit_for_bit(data_dir, tmp_path):
    common = ["--hidden", 16, "--batch-size", 32, "--schedule", "step", "--data-dir", data_dir, "--verbose", 2]
    assert run("train", "mlp", "--epochs", 2, "-o", tmp_path / "a.h5", *common).returncode == 0
    r = run("train", "--resume", tmp_path / "a.h5", "--epochs", 3, "--data-dir", data_dir, "--verbose", 2)
    assert r.returncode == 0, r.stderr
    assert re.findall(r"^Epoch \d/\d", r.stdout, re.M) == ["Epoch 3/3"]
    assert run("train", "mlp", "--epochs", 3, "-o", tmp_path / "b.h5", *common).returncode == 0
    a, b = weights(tmp_path / "a.h5"), weights(tmp_path / "b.h5")
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_resume_refuses_what_cannot_continue_exactly(data_dir, tmp_path, capsys):
    assert run("train", "mlp", "--hidden", 16, "--epochs", 2, "-o", tmp_path / "c.h5", "--data-dir", data_dir,
               "--verbose", 0).returncode == 0
    cases = [(["--epochs", "3"], "cosine schedule of .* brings the learning rate to 0 at the end of epoch 2"),
             (["--batch-size", "64"], r"--batch-size 64 differs from the run saved in .* \(128\)"),
             (["--epochs", "2"], "has trained 2 epochs of the 2 planned, so --epochs 2 leaves nothing to do; "
                                 "--epochs is the total to reach, e.g. --epochs 3"),
             (["--hidden", "8"], r"--hidden 8 differs .* \(16\)")]
    for extra, message in cases:
        assert main(["train", "--resume", str(tmp_path / "c.h5"), "--data-dir", str(data_dir)] + extra) == 2
        assert re.search(message, capsys.readouterr().err), extra
    import nnscratch
    from nnscratch.layers import Dense, Softmax
    plain = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()], seed=0)  # saved from Python, not by train
    plain.set(loss="categorical_crossentropy", optimizer="sgd")
    plain.finalize()
    plain.save(tmp_path / "plain.h5")
    assert main(["train", "--resume", str(tmp_path / "plain.h5")]) == 2
    assert "does not record the run that trained it" in capsys.readouterr().err


# -- 3: predict on photos ------------------------------------------------------------------------------------
def photo_of_bar(vertical, size=(240, 320), seed=0):
    """A dark pen stroke on paper lit from one side, with paper texture and sensor noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    reflectance = 0.85 * (1 + 0.03 * rng.standard_normal(size))
    if vertical:
        reflectance[60:180, 200:212] = 0.1
    else:
        reflectance[100:112, 150:280] = 0.1
    light = np.linspace(1.0, 0.35, w)[None, :] * np.linspace(1.0, 0.8, h)[:, None]
    return np.clip(255 * light * reflectance + 4 * rng.standard_normal(size), 0, 255).astype(np.uint8)


def test_predict_reads_photos_with_uneven_light_and_saves_what_the_network_saw(trained, tmp_path):
    from PIL import Image

    paths = []
    for vertical, name in ((True, "one.jpg"), (False, "zero.png")):
        Image.fromarray(photo_of_bar(vertical)).save(tmp_path / name)
        paths.append(tmp_path / name)
    rgba = np.zeros((100, 100, 4), np.uint8)  # black ink on a transparent canvas (a drawing app's export)
    rgba[15:85, 45:52] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawn.png")
    deep = np.full((90, 90), 60000, np.uint16)  # a 16-bit scan: values far above 255
    deep[40:47, 10:80] = 3000
    Image.fromarray(deep).save(tmp_path / "scan16.png")
    r = run("predict", trained, *paths, tmp_path / "drawn.png", tmp_path / "scan16.png", "--save-prepared",
            tmp_path / "seen")
    assert r.returncode == 0, r.stderr
    predicted = dict(re.findall(r"^(\S+): predicted (\S+)", r.stdout, re.M))
    assert predicted == {str(paths[0]): "1", str(paths[1]): "0", str(tmp_path / "drawn.png"): "1",
                         str(tmp_path / "scan16.png"): "0"}, r.stdout
    assert "warning" not in r.stderr
    for name in ("one", "zero", "drawn", "scan16"):
        seen = np.asarray(Image.open(tmp_path / "seen" / f"{name}.png"))
        assert seen.shape == (28, 28) and seen.max() == 255
        assert seen[:3].max() == 0 and seen[-3:].max() == 0  # black around the digit: no grey box
        assert f"the network saw {tmp_path / 'seen' / name}.png" in r.stdout


def test_predict_warns_about_a_blank_image(trained, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 4), np.uint8), "RGBA").save(tmp_path / "empty.png")
    r = run("predict", trained, tmp_path / "empty.png")
    assert r.returncode == 0
    assert f"warning: {tmp_path / 'empty.png'}: found no ink" in r.stderr


def png_header(width, height):
    """A PNG that claims ``width x height`` pixels and holds none (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_every_image_error_is_one_line_naming_the_file(trained, tmp_path):
    from PIL import Image

    (tmp_path / "bomb.png").write_bytes(png_header(30000, 30000))
    (tmp_path / "text.png").write_text("not a png")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(np.full((64, 64), 200, np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    (tmp_path / "folder.png").mkdir()
    cases = {"bomb.png": r"30000x30000 pixels \(900 megapixels\) is more than the limit of 100 megapixels .*"
                         r"--max-pixels 900000000",
             "text.png": r"not an image format Pillow can read \(a file starting with b'not a pn'\)",
             "empty.png": r"not an image format Pillow can read \(an empty file\)",
             "cut.png": r"damaged",
             "folder.png": r"it is a folder",
             "missing.png": r"no such file"}
    for name, message in cases.items():
        r = run("predict", trained, tmp_path / name)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1 and TRACEBACK not in err, err
        assert err.startswith(f"nnscratch predict: error: cannot read image {tmp_path / name}: "), err
        assert re.search(message, err), err
    raised = run("predict", trained, tmp_path / "bomb.png", "--max-pixels", 10**9)
    assert raised.returncode == 2 and "damaged" in raised.stderr and TRACEBACK not in raised.stderr


# -- 4: the progress display on a terminal and off it ------------------------------------------------------
def test_at_80_columns_the_live_line_fits_and_keeps_the_metrics_and_learning_rate(data_dir):
    child = spawn("train", "lenet5", "--epochs", 2, "--batch-size", 1, "--limit", 200, "--data-dir", data_dir,
                  "--no-save", columns=80)
    output = child.read()
    child.wait()
    child.close()
    assert child.exitstatus == 0, output
    screen = [s for s in re.split(r"[\r\n]", output) if s.strip()]
    live = [s for s in screen if re.match(r"Epoch \d/2 \d+/180 ", s)]
    assert live, output
    for s in screen:
        if s.startswith(("Epoch", "    ")):  # the progress display (its lines and their continuations)
            assert len(s) <= 80, s
    assert all("loss" in s and "accuracy" in s and "lr " in s for s in live), live
    assert any("|" in s for s in live)  # at 80 columns there is room for the bar too
    finals = [s for s in screen if re.match(r"Epoch \d/2 - ", s)]
    assert [s.split(" - ")[0] for s in finals] == ["Epoch 1/2", "Epoch 2/2"]
    assert not any(s.rstrip().endswith("lr 0") for s in screen)  # the last epoch of a decay to 0 trained


def test_off_a_terminal_each_epoch_is_one_line(data_dir):
    r = run("train", "mlp", "--hidden", 16, "--epochs", 3, "--data-dir", data_dir, "--no-save")
    assert r.returncode == 0 and "\r" not in r.stdout
    assert re.findall(r"^Epoch (\d)/3 - .* - val_accuracy \d\.\d{4} - lr \S+$", r.stdout, re.M) == ["1", "2", "3"]


# -- 5: help and argument checks ------------------------------------------------------------------------------
def test_help_is_plain_text_and_every_training_option_has_help_and_a_default():
    top = run("--help")
    assert top.returncode == 0 and "``" not in top.stdout and "examples:" in top.stdout
    train = " ".join(run("train", "--help").stdout.split())
    for option, default in [("--epochs N", "10"), ("--batch-size N", "128"), ("--seed SEED", "0"),
                            ("--dataset {mnist,fashion-mnist}", "mnist"), ("--val-split FRACTION", "0.1"),
                            ("{lenet5,mlp,resnet}", "lenet5")]:
        assert re.search(re.escape(option) + r" [a-z].*?\(default: " + re.escape(default), train), option
    gradcheck = " ".join(run("gradcheck", "--help").stdout.split())
    assert re.search(r"--tolerance TOLERANCE \w.*\(default: 1e-6 per layer", gradcheck)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: expected a whole number of at least 1, got 0"),
    (["--batch-size", "0"], "argument --batch-size: expected a whole number of at least 1, got 0"),
    (["--limit", "0"], "argument --limit: expected a whole number of at least 1, got 0"),
    (["--limit", "-5"], "argument --limit: expected a whole number of at least 1, got -5"),
    (["--hidden", "64,abc"], "argument --hidden: expected comma-separated layer widths, whole numbers of at least 1 "
                             "such as 300 or 512,256, got '64,abc'"),
    (["--lr", "-1"], "argument --lr: expected a number > 0, got '-1'"),
    (["--val-split", "1"], "argument --val-split: expected a number >= 0 and < 1, got '1'"),
])
def test_bad_training_options_are_refused_before_anything_runs(args, message):
    r = run("train", *args)
    assert r.returncode == 2 and TRACEBACK not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"nnscratch train: error: {message}"


def test_plot_explains_a_file_that_is_not_a_history_and_takes_a_model(trained, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    assert run("plot", trained.with_suffix(".history.json"), "-o", png).returncode == 0
    r = run("plot", png)
    assert r.returncode == 2 and r.stderr.strip() == (
        f"nnscratch plot: {png} is a PNG image (perhaps a plot already drawn), not a training history; pass the "
        ".history.json (or the .h5 model) that `nnscratch train` writes")
    r = run("plot", trained, "-o", tmp_path / "from-model.png")
    assert r.returncode == 0 and (tmp_path / "from-model.png").read_bytes()[:4] == b"\x89PNG"


# -- 6: validation held out of the training set ------------------------------------------------------------
def test_train_validates_on_held_out_training_images_and_tests_once(data_dir, tmp_path):
    r = run("train", "mlp", "--hidden", 16, "--epochs", 2, "--data-dir", data_dir, "-o", tmp_path / "v.h5")
    assert r.returncode == 0, r.stderr
    assert "540 training, 60 validation, 150 test images" in r.stdout
    assert "validation: the last 10% of the training set (--val-split); the test set is used once, at the end" in r.stdout
    assert re.search(r"^validation: accuracy \d+\.\d\d%, loss \d\.\d{4} \(60 held-out training images, last epoch\)\n"
                     r"test: accuracy \d+\.\d\d% \(error \d+\.\d\d%\), loss \d\.\d{4} \(150 images, evaluated once\)$",
                     r.stdout, re.M), r.stdout
    h = json.loads((tmp_path / "v.history.json").read_text())
    assert h["meta"]["validation"] == "the last 10% of the training set" and "val_loss" in h["history"]
    r = run("train", "mlp", "--hidden", 16, "--epochs", 1, "--data-dir", data_dir, "--val-split", 0, "--no-save")
    assert "600 training, 150 test images" in r.stdout and "val_loss" not in r.stdout


# -- 7: a diverging run ---------------------------------------------------------------------------------------
def test_a_diverging_run_is_explained_by_the_guard_without_numpy_warnings(data_dir):
    r = run("train", "mlp", "--hidden", 64, "--epochs", 2, "--optimizer", "sgd", "--lr", "1e6", "--schedule", "none",
            "--data-dir", data_dir, "--no-save")
    assert r.returncode == 0, r.stderr
    assert "RuntimeWarning" not in r.stderr and "encountered" not in r.stderr, r.stderr
    assert "[rollback]" in r.stdout or "[divergence_stop]" in r.stdout, r.stdout
    off = run("train", "mlp", "--hidden", 64, "--epochs", 2, "--optimizer", "sgd", "--lr", "1e20", "--schedule",
              "none", "--divergence", "off", "--data-dir", data_dir, "--no-save")
    assert "RuntimeWarning" not in off.stderr and "encountered" not in off.stderr, off.stderr
    assert "[terminate_on_nan]" in off.stdout, off.stdout


# -- the rest of the commands ----------------------------------------------------------------------------------
def test_evaluate_reports_accuracy(trained, data_dir):
    r = run("evaluate", trained, "--data-dir", data_dir)
    assert r.returncode == 0 and float(r.stdout.split("accuracy ")[1].split("%")[0]) > 95


def test_summary_prints_the_table(trained):
    assert "Total params: 25,450" in run("summary", trained).stdout  # 784*32+32 + 32*10+10


def test_missing_model_file_is_a_one_line_error(tmp_path):
    r = run("summary", tmp_path / "nope.h5")
    assert r.returncode == 2 and r.stderr.strip() == f"nnscratch summary: no such model file: {tmp_path / 'nope.h5'}"


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


def test_what_train_writes_stays_out_of_git(data_dir, tmp_path):
    git = __import__("shutil").which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "clone"
    repo.mkdir()
    (repo / ".gitignore").write_text((Path(__file__).resolve().parents[1] / ".gitignore").read_text())
    subprocess.run([git, "init", "-q"], cwd=repo, check=True)
    for extra in ([], ["-o", "model.h5"]):  # the default under runs/ and a file named on the command line
        assert run("train", "mlp", "--hidden", 8, "--epochs", 1, "--data-dir", data_dir, *extra, cwd=repo).returncode == 0
    assert (repo / "model.history.json").exists() and (repo / "runs" / "mlp-8.history.json").exists()
    status = subprocess.run([git, "status", "--porcelain", "--untracked-files=all"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout
    assert status.splitlines() == ["?? .gitignore"], status


def test_train_resnet_builds_the_residual_network_and_saves_it(data_dir, tmp_path):
    r = run("train", "resnet", "--epochs", 1, "--limit", 120, "--data-dir", data_dir, "--val-split", 0, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resnet8: " in r.stdout and "saved runs/resnet8.h5" in r.stdout
    model = nnscratch.load_model(tmp_path / "runs" / "resnet8.h5")
    assert model.is_graph and any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)
    summary = run("summary", tmp_path / "runs" / "resnet8.h5")
    assert summary.returncode == 0 and "Connected to" in summary.stdout


def test_plot_command(trained, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", str(trained.with_suffix(".history.json")), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_prints_and_draws_the_confusion_matrix(trained, data_dir, capsys, tmp_path):
    image = tmp_path / "confusion.png"
    with warnings.catch_warnings():  # classes the data lacks may warn
        warnings.simplefilter("ignore")
        assert main(["evaluate", str(trained), "--data-dir", str(data_dir), "--confusion", "--plot", str(image)]) == 0
    out = capsys.readouterr().out
    table = out.split("confusion matrix (rows: true class, columns: predicted class)")[1]
    rows = [line.split() for line in table.splitlines() if line[:1].isdigit()]
    counts = np.array([[int(v.replace(",", "")) for v in r[1:11]] for r in rows[:10]])   # MNIST's 10 class names
    assert counts.shape == (10, 10) and counts.sum() == 150 and np.trace(counts) > 140
    assert [int(r[-1].replace(",", "")) for r in rows[:10]] == counts.sum(axis=1).tolist()
    assert "precision" in out and "macro average" in out
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():  # classes the data lacks may warn
        warnings.simplefilter("ignore")
        assert main(["evaluate", str(trained), "--data-dir", str(data_dir), "--plot"]) == 0
    beside = trained.with_name(trained.stem + "_confusion.png")
    assert f"wrote {beside}" in capsys.readouterr().out and beside.exists()


def test_summary_shows_multiply_adds_and_activations(trained, capsys):
    assert main(["summary", str(trained)]) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "Multiply-adds per sample: 25,450" in out   # 784*32 + 32 + 32*10 + 10
    assert main(["summary", str(trained), "--no-flops"]) == 0
    assert "MACs" not in capsys.readouterr().out


# -- LeNet-5 as LeCun et al. trained it: SDLM and distortions (issue 18) ------------------------------------
def test_train_classic_lenet5_with_sdlm_and_distortions_then_resume_bit_for_bit(data_dir, tmp_path):
    common = ["lenet5", "--variant", "classic", "--optimizer", "sdlm", "--distort", "--batch-size", 8, "--limit", 96,
              "--val-split", 0, "--init", "lecun_uniform", "--data-dir", data_dir, "--verbose", 2]
    r = run("train", *common, "--epochs", 2, "-o", tmp_path / "a.h5")
    assert r.returncode == 0, r.stderr
    assert ("2 epochs of batch 8, SDLM mu 0.02, the paper's rates by pass (5e-4 ... 1e-5), Hessian re-estimated on "
            "500 images before each pass; distorted training images; lecun_uniform initialisation") in r.stdout
    model = nnscratch.load_model(tmp_path / "a.h5")
    assert type(model.optimizer).__name__ == "SDLM" and model.optimizer.mu == 0.02
    assert type(model.layers[0]).__name__ == "RandomAffine"
    assert model.metadata["run"]["init"] == "lecun_uniform"
    assert np.abs(model.get_layer("C1").params["kernel"]).max() > 0.2   # the paper's +-2.4/fan-in stops at 0.096
    more = run("train", "--resume", tmp_path / "a.h5", "--epochs", 3, "--data-dir", data_dir, "--verbose", 2)
    assert more.returncode == 0, more.stderr
    whole = run("train", *common, "--epochs", 3, "-o", tmp_path / "b.h5")
    assert whole.returncode == 0, whole.stderr
    assert re.findall(r"^Epoch \d/3 .* lr (\S+)$", whole.stdout, re.M) == ["5e-4", "5e-4", "2e-4"]  # by pass
    a, b = weights(tmp_path / "a.h5"), weights(tmp_path / "b.h5")
    assert all(np.array_equal(a[k], b[k]) for k in b)


@pytest.mark.parametrize("args, mu, init, batch_size", [
    ([], 0.02, "lecun_uniform", 4),                         # the paper's damping, on weights that keep the scale
    (["--init", "lecun1998"], 0.2, "lecun1998", 4),         # the paper's init: its damping diverges there
    (["--mu", "0.05", "--batch-size", "2"], 0.05, "lecun_uniform", 2),
])
def test_sdlm_defaults_are_recorded_in_the_run(data_dir, tmp_path, args, mu, init, batch_size):
    r = run("train", "lenet5", "--variant", "classic", "--optimizer", "sdlm", *args, "--epochs", 1, "--limit", 16,
            "--val-split", 0, "--data-dir", data_dir, "--verbose", 0, "-o", tmp_path / "m.h5")
    assert r.returncode == 0, r.stderr
    model = nnscratch.load_model(tmp_path / "m.h5")
    assert model.optimizer.mu == mu
    assert {k: model.metadata["run"][k] for k in ("mu", "init", "batch_size")} == \
        {"mu": mu, "init": init, "batch_size": batch_size}
    # the initialisation really changed: the paper's +-2.4/fan-in keeps C1's kernels within 0.096
    assert (np.abs(model.get_layer("C1").params["kernel"]).max() > 0.2) == (init == "lecun_uniform")


def test_resuming_an_sdlm_run_saved_before_the_damping_was_recorded_keeps_its_damping(data_dir, tmp_path):
    path = tmp_path / "old.h5"
    r = run("train", "lenet5", "--variant", "classic", "--optimizer", "sdlm", "--init", "lecun1998", "--epochs", 1,
            "--limit", 16, "--val-split", 0, "--data-dir", data_dir, "--verbose", 0, "-o", path)
    assert r.returncode == 0, r.stderr
    model = nnscratch.load_model(path)
    model.metadata["run"].update(mu=None, init=None)   # as the previous version wrote it
    model.save(path)
    more = run("train", "--resume", path, "--epochs", 2, "--data-dir", data_dir, "--verbose", 2)
    assert more.returncode == 0, more.stderr
    assert "SDLM mu 0.2," in more.stdout
    assert nnscratch.load_model(path).optimizer.mu == 0.2


@pytest.mark.parametrize("args, message", [
    (["--mu", "0.1"], "--mu is SDLM's damping; it does nothing for --optimizer adam"),
    (["mlp", "--distort"], "--distort applies LeCun's distortions to LeNet-5's inputs"),
    (["--init", "lecun_uniform"], "--init chooses the classic LeNet-5's initialisation; it does nothing for lenet5 modern"),
    (["--optimizer", "sdlm"], "softmax trained with the cross-entropy, which has no second-order backward"),
])
def test_sdlm_and_distort_misuse_is_explained(data_dir, args, message):
    r = run("train", *args, "--epochs", 1, "--limit", 32, "--data-dir", data_dir, "--no-save")
    assert r.returncode != 0 and TRACEBACK not in r.stderr
    assert message in r.stderr


def test_help_gives_sdlm_and_distort_their_defaults():
    train = " ".join(run("train", "--help").stdout.split())
    assert re.search(r"--mu MU SDLM's damping.*\(default: the paper's 0\.02; 0\.2 with --init lecun1998", train)
    assert "(default: lecun1998; lecun_uniform with --optimizer sdlm)" in train
    assert re.search(r"--distort LeNet-5 only: random affine distortions.*\(default: off\)", train)
    assert "sdlm" in train
    assert "(default: 128; 4 with --optimizer sdlm)" in train
    assert "(default: rollback; off with --optimizer sdlm" in train

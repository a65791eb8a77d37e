"""Data-parallel training over MPI (nnscratch.engine.distributed): runs of tests/distributed/mpi_script.py
under ``mpiexec -n 2`` compared with one process. Skipped, with the reason, when the ``mpi`` extra
(mpi4py and an MPI with ``mpiexec``) is not installed; CI installs it."""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from interrupts import sigint_as_at_a_terminal

SCRIPT = os.path.join(os.path.dirname(__file__), "mpi_script.py")


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")  # the venv's, without activating it
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()


def _launcher(ranks):
    """``mpiexec -n ranks``, with what Open MPI needs to start as root on a small machine (MPICH needs none)."""
    cmd = [MPIEXEC, "-n", str(ranks)]
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return cmd
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="the mpi extra is not installed (pip install -e \".[mpi]\": mpi4py and mpich's mpiexec)")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT))),
                                         env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def run(args, ranks=None, timeout=120, check=True):
    """Runs the script (under ``mpiexec -n ranks`` when given); returns (CompletedProcess, seconds)."""
    cmd = [sys.executable, SCRIPT, *map(str, args)]
    if ranks:
        cmd = _launcher(ranks) + cmd
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    seconds = time.monotonic() - t0
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc, seconds


def assert_close(ref_path, got_path, keys=None, rtol=1e-5):
    ref, got = np.load(ref_path), np.load(got_path)
    keys = keys or ref.files
    assert set(keys) <= set(got.files)
    for k in keys:
        scale = max(float(np.abs(ref[k]).max()), 1e-12)
        err = float(np.abs(ref[k] - got[k]).max()) / scale
        assert err <= rtol, f"{k}: 2 ranks differ from 1 process by {err:.3g} (relative to its largest value)"


@needs_mpi
@pytest.mark.parametrize("model, extra", [
    ("mlp", []),
    # 193 samples in batches of 32: the last batch has 1 sample, so rank 1 computes none of it
    ("cnn", ["--n", 193]),
    # 2 ranks x 2 threads: each rank's share is cut again (tiny batches split on purpose)
    ("cnn", ["--n", 193, "--threads", 2, "--split"]),
    # sample and class weights: in training (both paths: one thread and a rank's share cut again), validation
    # and evaluation, each rank weighing its own rows
    ("mlp", ["--weighted"]),
    ("cnn", ["--n", 193, "--threads", 2, "--split", "--weighted"]),
])
def test_two_ranks_train_like_one_process(tmp_path, model, extra):
    ref, got = tmp_path / "one.npz", tmp_path / "two.npz"
    plain = [a for a in extra if a not in ("--split",)]
    if "--threads" in plain:
        plain = plain[:plain.index("--threads")] + plain[plain.index("--threads") + 2:]
    run(["train", model, ref] + plain)
    run(["train", model, got, "--distributed"] + extra, ranks=2)
    # weights after 2 epochs, the epoch losses, validation, evaluate(distributed) and predict(distributed)
    assert_close(ref, got)


@needs_mpi
def test_rank_exchange_several_inputs_and_outputs_and_stopping_together():
    """RankExchange gathers in batch order and sums (with threads, and with a rank that has no rows);
    predict and evaluate(distributed=True) of a 2-input, 2-output model equal one process's, and ranks
    holding different weights are refused; a callback that stops one rank stops them all."""
    proc, _ = run(["units", "x"], ranks=2)
    assert proc.stdout.count("exchange ok") == 2 and proc.stdout.count("several inputs and outputs ok") == 2, \
        proc.stdout
    assert proc.stdout.count("stopping together ok") == 2, proc.stdout


@needs_mpi
def test_resume_from_a_checkpoint_with_another_rank_count(tmp_path):
    """1 epoch on 2 ranks, saved, then 1 more in one process (and the other way round) equals 2 epochs in one
    process: the checkpoint holds the optimizer state, the seed and the epoch count."""
    run(["train", "cnn", tmp_path / "ref.npz", "--n", 193])
    run(["train", "cnn", tmp_path / "a.npz", "--n", 193, "--epochs", 1, "--save", tmp_path / "two.h5",
         "--distributed"], ranks=2)
    run(["train", "cnn", tmp_path / "b.npz", "--n", 193, "--epochs", 1, "--resume", tmp_path / "two.h5"])
    run(["train", "cnn", tmp_path / "c.npz", "--n", 193, "--epochs", 1, "--save", tmp_path / "one.h5"])
    run(["train", "cnn", tmp_path / "d.npz", "--n", 193, "--epochs", 1, "--resume", tmp_path / "one.h5",
         "--distributed"], ranks=2)
    weights = [k for k in np.load(tmp_path / "ref.npz").files if "|" in k] + ["pred", "eval_loss"]
    assert_close(tmp_path / "ref.npz", tmp_path / "b.npz", weights)
    assert_close(tmp_path / "ref.npz", tmp_path / "d.npz", weights)


@needs_mpi
def test_only_rank_0_prints_and_writes(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc, _ = run(["train", "mlp", tmp_path / "w.npz", "--distributed", "--dir", out], ranks=2)
    assert sorted(os.listdir(out)) == ["ckpt.h5", "history.json", "log.csv", "model.h5"]  # no second copy, no temp file
    assert proc.stdout.count("Epoch 1/2") == 1 and proc.stdout.count("Epoch 2/2") == 1, proc.stdout
    from nnscratch import load_model
    from nnscratch.io.history_json import read_history_json
    assert len(read_history_json(out / "history.json").history["loss"]) == 2
    assert len((out / "log.csv").read_text().splitlines()) == 3  # a header and 2 epochs, written once
    assert load_model(out / "ckpt.h5").epochs_trained == 2


@needs_mpi
def test_a_failing_rank_stops_every_rank_naming_it(tmp_path):
    proc, seconds = run(["fail", 1], ranks=2, timeout=60, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30, (seconds, text)
    # both ranks stop, each with a message naming the failing rank and its exception
    assert "rank 1 stopped after" in text and "MemoryError: simulated: out of memory on this host" in text
    assert ("rank 0 stopped after" in text and "DistributedError: rank 1 (on " in text
            and "failed, so every rank stopped: MemoryError: simulated" in text), text


@needs_mpi
def test_a_rank_failing_inside_a_batch_normalization_exchange_does_not_hang(tmp_path):
    """Rank 1 raises in a forward, between two of BatchNormalization's cross-rank sums: rank 0, waiting in
    the next sum, must hear of it."""
    proc, seconds = run(["failforward", 1], ranks=2, timeout=60, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30, (seconds, text)
    assert "failed, so every rank stopped: FloatingPointError: simulated: bad values in a forward" in text, text


@needs_mpi
def test_an_uncaught_error_outside_nnscratch_aborts_the_job(tmp_path):
    """Rank 1's own code fails between two distributed fits, while rank 0 waits in the second: the
    excepthook nnscratch installs prints the error and aborts the job rather than leave rank 0 waiting."""
    proc, seconds = run(["late", 1], ranks=2, timeout=60, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30, (seconds, text)
    assert "RuntimeError: simulated: the user's own code failed" in text and "should never get here" not in text


@needs_mpi
def test_ctrl_c_on_mpiexec_stops_every_rank(tmp_path):
    cmd = _launcher(2) + [sys.executable, SCRIPT, "fail", "9"]  # there is no rank 9: it trains on
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            preexec_fn=sigint_as_at_a_terminal)
    try:
        time.sleep(2)  # started (~1 s) and training
        assert proc.poll() is None, proc.communicate()[0]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and seconds < 30
    assert out.count("KeyboardInterrupt") >= 2, out


@needs_mpi
@pytest.mark.parametrize("what, message", [
    ("othermodel", "the ranks were given different models or training settings: rank 1 differs from rank 0 in "
                   "architecture, weight shapes"),
    ("smallbatch", "batch_size=1 is smaller than the number of ranks (2)"),
    ("otherweights", "the ranks were given different models or training settings: rank 1 differs from rank 0 in "
                     "training data"),
    # rank 1's own check fails; rank 0 hears it from rank 1
    ("baddata", "failed, so every rank stopped: ValueError: x contains 1 NaN/inf value(s)"),
])
def test_clear_errors_reach_every_rank(what, message):
    proc, seconds = run([what, "x"], ranks=2, timeout=60, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30
    assert message in text, text
    if what != "baddata":  # both ranks found it themselves
        assert text.count(message) >= 2, text


@needs_mpi
def test_distributed_outside_mpiexec_says_how_to_start(tmp_path):
    env = {k: v for k, v in _env().items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "SLURM_", "MPI_"))}
    proc = subprocess.run([sys.executable, SCRIPT, "alone", "x"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode != 0
    assert "not started by an MPI launcher" in proc.stderr and "mpiexec -n 2 python script.py" in proc.stderr


def test_distributed_without_mpi4py_says_how_to_install(monkeypatch):
    import nnscratch.engine.distributed as dist
    from small_models import blobs, small_model
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails, as when it is not installed
    monkeypatch.setattr(dist, "_session", None)
    model, (x, y) = small_model(), blobs()
    with pytest.raises(dist.DistributedError, match=r"needs mpi4py.*pip install -e \"\.\[mpi\]\".*mpiexec -n 2"):
        model.fit(x, y, distributed=True, verbose=0)
    assert dist.is_writer()  # nothing was started


def test_rank_shares_cover_the_batch_in_order():
    from nnscratch.engine.distributed import rank_share
    for n in range(1, 40):
        for ranks in range(1, 6):
            shares = [rank_share(n, ranks, r) for r in range(ranks)]
            got = [s for s in shares if s is not None]
            assert got[0][0] == 0 and got[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
            assert len(got) == min(n, ranks) and shares[:len(got)] == got


@needs_mpi
def test_the_train_command_distributed_matches_one_process(tmp_path):
    """``mpiexec -n 2 nnscratch train lenet5 --distributed`` against the same command in one process, on a
    small generated dataset (float32: the two differ only in the order of summation)."""
    from nnscratch import load_model
    from nnscratch.datasets import save_idx
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 100)):
        y = rng.integers(0, 3, n).astype(np.uint8)
        x = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for k in range(3):  # a bright band whose place gives the class
            x[y == k, 9 * k:9 * k + 9, :] += 150
        save_idx(tmp_path / f"{split}-images-idx3-ubyte", x)
        save_idx(tmp_path / f"{split}-labels-idx1-ubyte", y)
    outputs = {}
    for ranks in (None, 2):
        out = tmp_path / f"lenet-{ranks}.h5"
        cmd = [sys.executable, "-m", "nnscratch.cli", "train", "lenet5", "--epochs", "2", "--batch-size", "32",
               "--data-dir", str(tmp_path), "--output", str(out), "--verbose", "2", "--threads", "1"]
        if ranks:
            cmd = _launcher(ranks) + cmd + ["--distributed"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("test: accuracy") == 1 and proc.stdout.count("Epoch 2/2") == 1, proc.stdout
        outputs[ranks] = (proc.stdout, load_model(out))
    (one, model1), (two, model2) = outputs[None], outputs[2]
    assert "; 2 MPI ranks" in two

    def test_line(text):
        accuracy, loss = re.search(r"test: accuracy ([0-9.]+)% .*, loss ([0-9.]+)", text).groups()
        return float(accuracy), float(loss)

    (acc1, loss1), (acc2, loss2) = test_line(one), test_line(two)
    assert acc1 == acc2 and abs(loss1 - loss2) <= 2e-4, (one, two)  # the same, to the digits printed
    w1, w2 = model1.get_weights(), model2.get_weights()
    for k in w1:
        assert np.abs(w1[k] - w2[k]).max() <= 1e-4 * max(np.abs(w1[k]).max(), 1e-6), k

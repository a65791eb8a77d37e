"""Atomic writes under the worst interruptions: SIGKILL mid-save, concurrent savers, Ctrl-C in h5py.

The subprocess tests run ``_save_worker.py`` beside this file; together they take a few seconds.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

import nnscratch
from nnscratch.io import atomic, hdf5
from nnscratch.io.atomic import atomic_write, remove_stale_temp_files, temp_name_prefix

WORKER = os.path.join(os.path.dirname(__file__), "_save_worker.py")
sys.path.insert(0, os.path.dirname(__file__))
from _save_worker import build  # noqa: E402  (the same models the worker saves)
from interrupts import sigint_as_at_a_terminal  # noqa: E402

posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and PIDs as on POSIX")


def weights_of(seed):
    return build(seed).get_weights()


def assert_holds_one_of(path, seeds):
    """The file loads and holds exactly the weights of one of the models ``seeds`` build."""
    loaded = nnscratch.load_model(path).get_weights()
    for seed in seeds:
        expected = weights_of(seed)
        if all(np.array_equal(loaded[k], v) for k, v in expected.items()):
            return seed
    raise AssertionError(f"{path} holds the weights of none of the models {seeds}")


def others(folder, name="model.h5"):
    return sorted(n for n in os.listdir(folder) if n != name)


def start_worker(mode, path, *seeds):
    process = subprocess.Popen([sys.executable, WORKER, mode, str(path), *map(str, seeds)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_at_a_terminal)
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the worker did not start: {line!r} {err}")
    return process


def dead_pid():
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- stale temporary files --------------------------------------------------------------------------------
def test_temporary_names_carry_the_writer_and_match_the_documented_prefix(tmp_path):
    seen = []
    with atomic_write(tmp_path / "model.h5") as tmp:
        seen.append(os.path.basename(tmp))
        open(tmp, "w").close()
    name = seen[0]
    assert name.startswith(temp_name_prefix(tmp_path / "model.h5"))
    assert f".p{os.getpid()}-{atomic._HOST}." in name and name.endswith(".tmp")


@posix_only
def test_only_stale_temporary_files_of_the_same_target_are_removed(tmp_path):
    host = atomic._HOST
    gone = dead_pid()
    stale = [f".model.h5.p{gone}-{host}.0123abcd.tmp", ".model.h5.89abcdef.tmp"]  # dead writer; old-style name
    kept = [
        f".model.h5.p{os.getpid()}-{host}.0123abcd.tmp",  # this process: another thread may be saving
        f".model.h5.p{os.getppid()}-{host}.0123abcd.tmp",  # a live process
        f".model.h5.p{gone}-{'0' * 8 if host != '0' * 8 else '1' * 8}.0123abcd.tmp",  # another machine
        ".model.h5.fedcba98.tmp",  # old-style name, but recent: maybe an older nnscratch saving right now
        f".model.h5.bak.p{gone}-{host}.0123abcd.tmp",  # the temporary file of another target
        f".model.h5.p{gone}-{host}.0123abcd.tmp.keep",  # not a name atomic_write gives
        "model.h5",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    old = time.time() - atomic.LEGACY_STALE_AFTER - 60
    os.utime(tmp_path / ".model.h5.89abcdef.tmp", (old, old))
    removed = remove_stale_temp_files(tmp_path / "model.h5")
    assert sorted(os.path.basename(p) for p in removed) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


@posix_only
def test_sigkill_in_the_middle_of_a_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "model.h5"
    build(1).save(path)
    worker = start_worker("hang", path, 2)
    assert worker.stdout.readline().strip() == "inside"  # the temporary file holds half a model now
    worker.kill()
    worker.communicate()  # waits, and closes its pipes
    (leftover,) = others(tmp_path)
    assert leftover.startswith(".model.h5.p") and leftover.endswith(".tmp")
    assert assert_holds_one_of(path, [1]) == 1
    build(3).save(path)
    assert others(tmp_path) == []
    assert assert_holds_one_of(path, [3]) == 3


@posix_only
def test_sigkill_at_random_moments_of_repeated_saves(tmp_path):
    path = tmp_path / "model.h5"
    build(1).save(path)
    rng = random.Random(12)
    for _ in range(4):
        worker = start_worker("loop", path, 1, 2)
        time.sleep(rng.uniform(0.0, 0.12))
        worker.kill()
        worker.communicate()  # waits, and closes its pipes
        assert_holds_one_of(path, [1, 2])  # never half of each, never unreadable
    build(3).save(path)  # the next save removes what the killed savers left
    assert others(tmp_path) == []
    assert_holds_one_of(path, [3])


@posix_only
def test_two_concurrent_savers_of_one_file_end_with_one_complete_file(tmp_path):
    """Each cleans stale files before saving: neither may take the other's live temporary file for one."""
    path = tmp_path / "model.h5"
    workers = [start_worker("race", path, seed) for seed in (1, 2)]
    (tmp_path / "model.h5.go").touch()
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0 and "done" in out, err
    os.unlink(tmp_path / "model.h5.go")
    assert others(tmp_path) == []
    assert_holds_one_of(path, [1, 2])


# -- Ctrl-C -------------------------------------------------------------------------------------------------
@posix_only
def test_ctrl_c_landing_in_an_h5py_callback_is_raised_after_the_save_not_lost(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside a weakref callback is printed and dropped by Python; the save used
    to carry on and return as if nothing had happened. Now the save finishes, then the interrupt is raised."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else in this process")
    path = tmp_path / "model.h5"
    build(1).save(path)
    write_optimizer = hdf5._write_optimizer

    def interrupted_inside_a_callback(*args, **kwargs):
        victim = type("Victim", (), {})()
        weakref.finalize(victim, os.kill, os.getpid(), signal.SIGINT)
        del victim  # the callback runs here; the handler runs inside it, where an exception is dropped
        write_optimizer(*args, **kwargs)

    monkeypatch.setattr(hdf5, "_write_optimizer", interrupted_inside_a_callback)
    with pytest.raises(KeyboardInterrupt):
        build(2).save(path)
    assert assert_holds_one_of(path, [2]) == 2  # finished, then raised
    assert others(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@posix_only
def test_a_second_ctrl_c_rolls_the_save_back_at_once(tmp_path, monkeypatch):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else in this process")
    path = tmp_path / "model.h5"
    build(1).save(path)

    def two_interrupts(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # not reached: the second one raises

    monkeypatch.setattr(hdf5, "_write_optimizer", two_interrupts)
    with pytest.raises(KeyboardInterrupt):
        build(2).save(path)
    assert assert_holds_one_of(path, [1]) == 1 and others(tmp_path) == []


def test_outside_the_main_thread_nothing_is_deferred(tmp_path):
    errors = []

    def save():
        try:
            build(1).save(tmp_path / "model.h5")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=save)
    thread.start()
    thread.join()
    assert errors == [] and others(tmp_path) == []


@posix_only
def test_ctrl_c_at_random_moments_of_repeated_saves_always_stops_the_saver(tmp_path):
    """Either the save in progress finishes or it is rolled back, and then KeyboardInterrupt ends the
    process: the saver never carries on as if it had not been interrupted."""
    path = tmp_path / "model.h5"
    build(1).save(path)
    rng = random.Random(7)
    for _ in range(3):
        worker = start_worker("loop", path, 1, 2)
        time.sleep(rng.uniform(0.02, 0.1))
        worker.send_signal(signal.SIGINT)
        try:
            _, err = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
            worker.kill()
            _, err = worker.communicate()
            raise AssertionError(f"Ctrl-C was swallowed and the saver went on saving:\n{err[-2000:]}")
        assert worker.returncode != 0 and "KeyboardInterrupt" in err, err[-2000:]
        assert "Exception ignored" not in err, err[-2000:]
        assert others(tmp_path) == []
        assert_holds_one_of(path, [1, 2])

"""bench_processes times one thread, two threads and two worker processes on the same batches, and the
processes train the same weights as the threads."""
import importlib.util
import pathlib
import sys

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_processes", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_processes.py")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are forked: Linux only")
def test_the_three_ways_run_and_the_processes_train_what_the_threads_train(capsys):
    bench = importlib.util.module_from_spec(SPEC)
    SPEC.loader.exec_module(bench)
    times = bench.run_row("lenet5", steps=2, rounds=1, batch=32)
    out = capsys.readouterr().out
    for way in ("one thread", "two threads", "two processes"):
        assert way in out and len(times[way]) == 1
    assert "parallel='auto' picks processes" in out
    assert "weights afterwards: 0.0e+00" in out

"""bench_infer_threads times every way of using the threads on the same predictions, and refuses one thread."""
import importlib.util
import pathlib

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_infer_threads", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_infer_threads.py")
bench_infer_threads = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_infer_threads)

WAYS = ["one thread", "python threads", "BLAS threads", "BLAS threads, whole batch"]


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(bench_infer_threads, "BLAS_SETTLE_SECONDS", 0.0)


def test_every_way_is_timed_on_the_same_predictions():
    # 256 samples in batches of 128: chunks of 64 MLP samples, enough for predict to use its threads
    results = bench_infer_threads.measure("mlp", threads=2, samples=256, batch_size=128, rounds=2)
    assert list(results) == WAYS
    for name, res in results.items():
        assert len(res["wall"]) == len(res["cpu"]) == 2
        assert all(t > 0 for t in res["wall"]), name
        assert res["diff"] < 1e-5, name
    assert results["one thread"]["diff"] == 0


def test_prints_the_table_and_refuses_one_thread(capsys):
    bench_infer_threads.main(["--samples", "256", "--batch-size", "128", "--rounds", "2"])
    out = capsys.readouterr().out
    assert out.startswith("mlp: 256 images in batches of 128, 2 threads, 2 interleaved rounds; load average")
    assert all(name in out for name in WAYS)
    with pytest.raises(SystemExit):
        bench_infer_threads.main(["--threads", "1"])
    assert "--threads must be at least 2" in capsys.readouterr().err

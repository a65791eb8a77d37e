"""The 3x3 convolution benchmark times like with like: both kernels compute the same convolution, and it runs."""
import importlib.util
import pathlib

import numpy as np

SPEC = importlib.util.spec_from_file_location(
    "bench_conv3x3", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_conv3x3.py")
bench_conv3x3 = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_conv3x3)


def test_every_method_computes_the_same_convolution_and_gradients():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((2, 5, 6, 4)), rng.standard_normal((2, 5, 6, 3))
    kernel, bias = rng.standard_normal((3, 3, 4, 3)), rng.standard_normal(3)
    results = []
    for forward, backward in bench_conv3x3.METHODS.values():
        out, saved = forward(x, kernel, bias, {})
        results.append((out,) + backward(dout, saved, kernel, x.shape, {}))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_tiny_run_prints_a_row_per_method(capsys):
    bench_conv3x3.main(["--shapes", "6x6:4-4", "--rounds", "1", "--repeats", "1", "--chunk", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 6x6:4-4")]
    assert [row.split("|")[2].strip() for row in rows] == list(bench_conv3x3.METHODS)

"""The zoo benchmark compares like with like: every row's nnscratch and PyTorch networks hold the same parameters."""
import importlib.util
import pathlib

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_zoo", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_zoo.py")
bench_zoo = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_zoo)


@pytest.mark.parametrize("row", bench_zoo.ROWS)
def test_both_frameworks_build_the_same_network(row):
    torch = pytest.importorskip("torch")
    ours = bench_zoo.nnscratch_model(row, seed=0, threads=1)
    theirs = bench_zoo.torch_model(row)
    # PyTorch's BatchNorm keeps its running statistics as buffers, not parameters; Keras counts them
    buffers = sum(b.numel() for name, b in theirs.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert ours.count_params() == sum(p.numel() for p in theirs.parameters()) + buffers
    assert ours.input_shape == bench_zoo.SHAPES[row]
    x = torch.zeros((2,) + (bench_zoo.SHAPES[row] if row == "mlp" else bench_zoo.SHAPES[row][::-1][:1]
                                + bench_zoo.SHAPES[row][:2]))
    assert tuple(theirs(x).shape) == (2, 10)

"""Forward and forward+backward times of LeNet-sized convolution and pooling layers, nnscratch vs PyTorch.

Each case runs the nnscratch layer on (N, H, W, C) arrays stored the way a model hands them over (the
model's input as given, everything after a convolution batch-innermost, see nnscratch/ops/layout.py)
and, when PyTorch is installed, the same operation in ``torch.nn.functional`` on NCHW tensors
(PyTorch's native layout), with the same thread count. Repeats are interleaved (ours, theirs, ours, theirs, ...) so both see the same
machine state, and medians are reported with the ratio nnscratch / PyTorch (< 1 means nnscratch is faster).

Backward includes the input gradient on both sides (``x.requires_grad=True`` for PyTorch), except in the
"first layer" row, where neither computes it (a model's first layer does not need it).

    python benchmarks/bench_layers.py                  # batch 128, float32 and float64, 2 threads
    python benchmarks/bench_layers.py --repeats 50 --threads 1 --dtype float32
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=30, help="timed runs per case and framework (median reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    return p.parse_args()


def _cases(batch):
    from nnscratch.layers import LENET5_C3_CONNECTIONS, AvgPool2D, Conv2D, MaxPool2D, Subsampling2D

    return [
        # name, nnscratch layer factory, input shape (H, W, C), torch op name, torch kwargs, needs dx
        ("C1 conv 28x28x1 -> 6@5x5 same", lambda: Conv2D(6, 5, padding="same"), (28, 28, 1), "conv", {"padding": 2},
         True),
        ("C1 as first layer (no dx)", lambda: Conv2D(6, 5, padding="same"), (28, 28, 1), "conv", {"padding": 2},
         False),
        ("C3 conv 14x14x6 -> 16@5x5", lambda: Conv2D(16, 5), (14, 14, 6), "conv", {}, True),
        ("C3 with LeNet table (torch: full)", lambda: Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS), (14, 14, 6),
         "conv", {}, True),
        ("C5 conv 5x5x16 -> 120@5x5", lambda: Conv2D(120, 5), (5, 5, 16), "conv", {}, True),
        ("S2 max pool 2x2 on 28x28x6", lambda: MaxPool2D(2), (28, 28, 6), "max_pool", {}, True),
        ("S2 avg pool 2x2 on 28x28x6", lambda: AvgPool2D(2), (28, 28, 6), "avg_pool", {}, True),
        ("S2 subsampling (torch: avg pool)", lambda: Subsampling2D(2), (28, 28, 6), "avg_pool", {}, True),
        ("S4 max pool 2x2 on 10x10x16", lambda: MaxPool2D(2), (10, 10, 16), "max_pool", {}, True),
        ("max pool 3x3 stride 2 on 28x28x6", lambda: MaxPool2D(3, 2), (28, 28, 6), "max_pool3", {}, True),
    ]


class Ours:
    def __init__(self, make, shape, batch, dtype, need_dx, rng):
        import numpy as np

        self.layer = make()
        out_shape = self.layer.initialize(shape, dtype, np.random.default_rng(0))
        self.layer.input_grad_needed = need_dx
        from nnscratch.ops.layout import from_chwn, to_chwn

        x = rng.standard_normal((batch,) + shape).astype(dtype)
        # a first layer gets the model's input as it is; any other gets what a convolution returns
        self.x = x if not need_dx else from_chwn(to_chwn(x))
        self.dout = from_chwn(to_chwn(rng.standard_normal((batch,) + out_shape).astype(dtype)))

    def forward(self):
        self.layer.forward(self.x, training=True)

    def forward_backward(self):
        self.layer.forward(self.x, training=True)
        self.layer.backward(self.dout)


class Theirs:
    def __init__(self, op, kwargs, ours, dtype, need_dx):
        import torch
        import torch.nn.functional as F

        tdtype = getattr(torch, dtype)
        self.x = torch.tensor(ours.x.transpose(0, 3, 1, 2).copy(), dtype=tdtype, requires_grad=need_dx)
        self.dout = torch.tensor(ours.dout.transpose(0, 3, 1, 2).copy(), dtype=tdtype)
        if op == "conv":
            kernel = ours.layer.params["kernel"].transpose(3, 2, 0, 1).copy()  # (F, C, kh, kw)
            self.w = torch.tensor(kernel, dtype=tdtype, requires_grad=True)
            self.b = torch.zeros(kernel.shape[0], dtype=tdtype, requires_grad=True)
            self.fn = lambda x: F.conv2d(x, self.w, self.b, **kwargs)
        elif op == "max_pool":
            self.fn = lambda x: F.max_pool2d(x, 2)
        elif op == "max_pool3":
            self.fn = lambda x: F.max_pool2d(x, 3, 2)
        else:
            self.fn = lambda x: F.avg_pool2d(x, 2)
        self.torch = torch

    def forward(self):
        with self.torch.no_grad():
            self.fn(self.x)

    def forward_backward(self):
        y = self.fn(self.x)
        y.backward(self.dout)


def _time(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def main():
    args = _parse()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch start their thread pools
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np
    from tabulate import tabulate

    from nnscratch.engine.malloc import keep_freed_memory

    keep_freed_memory()  # what Model.fit and predict do

    try:
        import torch
        torch.set_num_threads(args.threads)
        torch_version = torch.__version__
    except ImportError:
        torch, torch_version = None, None

    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    rng = np.random.default_rng(0)
    rows = []
    for dtype in dtypes:
        for name, make, shape, op, kwargs, need_dx in _cases(args.batch):
            ours = Ours(make, shape, args.batch, dtype, need_dx, rng)
            runners = {"ours": ours}
            if torch is not None:
                runners["torch"] = Theirs(op, kwargs, ours, dtype, need_dx)
            times = {(who, what): [] for who in runners for what in ("f", "fb")}
            for who, r in runners.items():  # warm-up: allocations, thread pools, caches
                for _ in range(3):
                    r.forward_backward()
            for _ in range(args.repeats):
                for who, r in runners.items():
                    times[who, "f"].append(_time(r.forward))
                    times[who, "fb"].append(_time(r.forward_backward))
            med = {k: statistics.median(v) for k, v in times.items()}
            row = [name, dtype, f"{med['ours', 'f']:.2f}", f"{med['ours', 'fb']:.2f}"]
            if torch is not None:
                row += [f"{med['torch', 'f']:.2f}", f"{med['torch', 'fb']:.2f}",
                        f"{med['ours', 'f'] / med['torch', 'f']:.2f}", f"{med['ours', 'fb'] / med['torch', 'fb']:.2f}"]
            rows.append(row)
    headers = ["case", "dtype", "ours fwd ms", "ours fwd+bwd ms"]
    if torch is not None:
        headers += ["torch fwd ms", "torch fwd+bwd ms", "ratio fwd", "ratio fwd+bwd"]
    print(f"batch {args.batch}, {args.threads} thread(s), median of {args.repeats} interleaved repeats; "
          f"numpy {np.__version__}" + (f", torch {torch_version}" if torch_version else ", torch not installed"))
    print(tabulate(rows, headers=headers, disable_numparse=True, colalign=("left", "left") + ("right",) * 8))


if __name__ == "__main__":
    main()

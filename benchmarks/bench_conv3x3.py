"""3x3 stride-1 convolutions alone: im2col + GEMM against Winograd F(4x2, 3x3), interleaved A/B per layer shape.

Each case runs the way a training step runs it: the batch of 128 cut into chunks of 64, one chunk per thread,
BLAS held to one thread, inputs and output gradients stored batch-innermost as the layers hand them over.
Both threads run the same kernel at once (so they share the memory system as in a model); the kernels take
turns, A B A B ..., and the medians of the per-repeat times are printed, with the spread (min-max).

    python benchmarks/bench_conv3x3.py                       # every shape of the vgg and resnet20 rows
    python benchmarks/bench_conv3x3.py --repeats 9 --shapes 32x32:32-32 16x16:64-64
    python benchmarks/bench_conv3x3.py --models vgg resnet20   # whole training steps, Winograd on / off

Times are ms per 64-image chunk: ``fwd`` a training forward (what backward needs is kept), ``bwd`` the
backward with the input gradient, ``infer`` a forward of 128 images on one thread.

``--models`` times whole training steps of bench_zoo's networks in one process instead, switching
:mod:`nnscratch.ops.convolution`'s Winograd rule on and off between rounds of steps (off is exactly the
im2col path every convolution took before), so both sides see the same machine state.
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nnscratch.ops import im2col, winograd
from nnscratch.ops.layout import from_chwn

#: ``HxW:Cin-Cout`` of every 3x3 stride-1 convolution in bench_zoo's vgg and resnet20 rows
SHAPES = ("32x32:3-32", "32x32:32-32", "16x16:32-64", "16x16:64-64", "32x32:3-16", "32x32:16-16", "16x16:32-32",
          "8x8:64-64")
PADS = ((1, 1), (1, 1))


def im2col_pair():
    def forward(x, kernel, bias, ws):
        return im2col.conv2d_forward(x, kernel, bias, (1, 1), PADS, ws)

    def backward(dout, saved, kernel, x_shape, ws):
        return im2col.conv2d_backward(dout, saved, kernel, x_shape, (1, 1), PADS, workspace=ws)
    return forward, backward


def winograd_pair():
    def forward(x, kernel, bias, ws):
        return winograd.winograd_forward(x, kernel, bias, PADS, ws)

    def backward(dout, saved, kernel, x_shape, ws):
        return winograd.winograd_backward(dout, saved, kernel, x_shape, PADS, workspace=ws)
    return forward, backward


#: name -> (forward, backward) of each way to compute the convolution
METHODS = {"im2col": im2col_pair(), "winograd": winograd_pair()}


def _parse(shape: str):
    hw, ch = shape.split(":")
    h, w = (int(v) for v in hw.split("x"))
    c, f = (int(v) for v in ch.split("-"))
    return h, w, c, f


def _chwn(rng, shape):
    n, h, w, c = shape
    return from_chwn(rng.standard_normal((c, h, w, n), dtype=np.float32))


def time_case(shape, method, chunk, reps, threads=2):
    """(fwd ms, bwd ms) per chunk, each thread on its own chunk at once; the slower thread's time counts."""
    h, w, c, f = _parse(shape)
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, c, f), dtype=np.float32) * 0.1
    bias = rng.standard_normal(f, dtype=np.float32)
    data = [(_chwn(rng, (chunk, h, w, c)), _chwn(rng, (chunk, h, w, f)), {}) for _ in range(threads)]
    forward, backward = METHODS[method]
    result = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def run(i):
        x, dout, ws = data[i]
        with threadpool_limits(1, user_api="blas"):
            backward(dout, forward(x, kernel, bias, ws)[1], kernel, x.shape, ws)  # warm the workspace
            for _ in range(reps):
                barrier.wait()
                t0 = time.perf_counter()
                saved = forward(x, kernel, bias, ws)[1]
                t1 = time.perf_counter()
                backward(dout, saved, kernel, x.shape, ws)
                result[i].append((t1 - t0, time.perf_counter() - t1))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    fwd = statistics.median(max(result[i][r][0] for i in range(threads)) for r in range(reps))
    bwd = statistics.median(max(result[i][r][1] for i in range(threads)) for r in range(reps))
    return fwd * 1e3, bwd * 1e3


def time_inference(shape, method, batch, reps):
    h, w, c, f = _parse(shape)
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, c, f), dtype=np.float32) * 0.1
    bias = rng.standard_normal(f, dtype=np.float32)
    x, ws = _chwn(rng, (batch, h, w, c)), {}
    times = []
    forward = METHODS[method][0]
    with threadpool_limits(1, user_api="blas"):
        forward(x, kernel, bias, ws)
        for _ in range(reps):
            t0 = time.perf_counter()
            forward(x, kernel, bias, ws)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def time_models(rows, rounds, steps, batch=128, threads=2):
    """Training ms/step of bench_zoo rows with the Winograd rule on and off, interleaved in one process."""
    import sys
    from pathlib import Path

    from nnscratch.ops import convolution

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_zoo import SHAPES, nnscratch_model

    rule = convolution.WINOGRAD_MAX_PIXELS
    for row in rows:
        model = nnscratch_model(row, 0, threads)
        rng = np.random.default_rng(0)
        x = rng.random((batch * steps,) + SHAPES[row], dtype=np.float32)
        y = rng.integers(0, 10, batch * steps)
        times = {"winograd": [], "im2col only": []}
        for r in range(rounds + 1):
            for side in (times if r % 2 == 0 else list(times)[::-1]):
                convolution.WINOGRAD_MAX_PIXELS = rule if side == "winograd" else 0
                t0 = time.perf_counter()
                model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
                if r:  # round 0 warms both sides' workspaces
                    times[side].append((time.perf_counter() - t0) / steps * 1e3)
        convolution.WINOGRAD_MAX_PIXELS = rule
        for side, got in times.items():
            print(f"| {row} | {side} | {statistics.median(got):.1f} ({min(got):.1f}-{max(got):.1f}) | "
                  f"{' '.join(f'{v:.0f}' for v in got)} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), help="HxW:Cin-Cout, e.g. 32x32:32-32")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per shape (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per round (default 3)")
    parser.add_argument("--chunk", type=int, default=64, help="images per thread (default 64)")
    parser.add_argument("--models", nargs="+", choices=("vgg", "resnet20", "separable", "lenet5"),
                        help="time whole training steps of these bench_zoo rows instead")
    parser.add_argument("--steps", type=int, default=5, help="training steps per round with --models (default 5)")
    args = parser.parse_args(argv)
    if args.models:
        print(f"load average {os.getloadavg()}; training ms/step, batch 128, 2 threads, median over {args.rounds} "
              f"interleaved rounds of {args.steps} steps (min-max)")
        print("| row | convolutions | ms/step | every round |")
        print("|---|---|---|---|")
        time_models(args.models, args.rounds, args.steps)
        return
    print(f"load average {os.getloadavg()}; ms per {args.chunk}-image chunk, median over {args.rounds} "
          f"interleaved rounds (min-max); infer: {2 * args.chunk} images, one thread")
    print("| shape | method | fwd ms | bwd ms | fwd+bwd ms | infer ms |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        runs = {m: {"fwd": [], "bwd": [], "infer": []} for m in METHODS}
        for r in range(args.rounds):
            for m in (METHODS if r % 2 == 0 else list(METHODS)[::-1]):
                fwd, bwd = time_case(shape, m, args.chunk, args.repeats)
                runs[m]["fwd"].append(fwd)
                runs[m]["bwd"].append(bwd)
                runs[m]["infer"].append(time_inference(shape, m, 2 * args.chunk, args.repeats))
        for m, got in runs.items():
            total = [a + b for a, b in zip(got["fwd"], got["bwd"])]

            def cell(v):
                return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
            print(f"| {shape} | {m} | {cell(got['fwd'])} | {cell(got['bwd'])} | {cell(total)} | {cell(got['infer'])} |",
                  flush=True)


if __name__ == "__main__":
    main()

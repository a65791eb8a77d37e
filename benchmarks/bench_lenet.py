"""Modern LeNet-5 training epochs, nnscratch vs PyTorch CPU, interleaved in one run.

Each framework lives in its own worker process (so each has its own peak memory figure), and the parent
asks them for epochs in turn, A B A B ..., so both see the same machine state. Same architecture, batch
size, optimizer (Adam 1e-3), float32 and thread count.

    python benchmarks/bench_lenet.py                      # full MNIST, 3 epochs each
    python benchmarks/bench_lenet.py --samples 10000 --repeats 2   # a quick run (< 1 minute)

Prints per-epoch times, their medians, the ratio nnscratch/PyTorch, inference throughput on the
10k test images (median of 3 passes after a warm-up pass, interleaved too), test accuracy after
training, and peak resident memory of each worker (nnscratch's with its worker processes' own memory).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import peak_rss_mb  # noqa: E402


def _limit_threads(threads: int) -> None:
    # must happen before numpy/torch load their thread pools
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _data(samples):
    import numpy as np

    from nnscratch.data import to_float_images
    from nnscratch.datasets import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(verbose=False)
    x_train, y_train = x_train[:samples], y_train[:samples].astype(np.int64)
    return to_float_images(x_train), y_train, to_float_images(x_test), y_test.astype(np.int64)


class NnscratchRunner:
    name = "nnscratch"

    def __init__(self, samples, batch_size, seed):
        from nnscratch.models import lenet5

        self.x, self.y, self.xt, self.yt = _data(samples)
        self.batch_size = batch_size
        self.model = lenet5("modern", seed=seed)

    def epoch(self):
        t = time.perf_counter()
        self.model.fit(self.x, self.y, epochs=1, batch_size=self.batch_size, verbose=0)
        return time.perf_counter() - t

    def infer(self, batch_size):
        t = time.perf_counter()
        out = self.model.predict(self.xt, batch_size=batch_size)
        elapsed = time.perf_counter() - t
        return elapsed, float((out.argmax(1) == self.yt).mean())


class TorchRunner:
    name = "pytorch"

    def __init__(self, samples, batch_size, seed, threads):
        import numpy as np
        import torch
        from torch import nn

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        x, y, xt, yt = _data(samples)
        # PyTorch's native layout is NCHW; convert once, outside the timings
        self.x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        self.y = torch.from_numpy(y)
        self.xt = torch.from_numpy(np.ascontiguousarray(xt.transpose(0, 3, 1, 2)))
        self.yt = torch.from_numpy(yt)
        self.batch_size = batch_size
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = nn.CrossEntropyLoss()
        self.torch = torch

    def epoch(self):
        torch = self.torch
        t = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.x))
        for s in range(0, len(self.x), self.batch_size):
            idx = order[s:s + self.batch_size]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t

    def infer(self, batch_size):
        torch = self.torch
        self.model.eval()
        t = time.perf_counter()
        with torch.inference_mode():
            out = torch.cat([self.model(self.xt[s:s + batch_size]) for s in range(0, len(self.xt), batch_size)])
        elapsed = time.perf_counter() - t
        return elapsed, float((out.argmax(1) == self.yt).float().mean())


def _worker(kind, conn, samples, batch_size, seed, threads):
    _limit_threads(threads)
    try:
        runner = (NnscratchRunner(samples, batch_size, seed) if kind == "nnscratch"
                  else TorchRunner(samples, batch_size, seed, threads))
        conn.send(("ready", None))
    except Exception as e:  # reported to the parent, which prints it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        cmd, arg = conn.recv()
        if cmd == "epoch":
            conn.send(("ok", runner.epoch()))
        elif cmd == "infer":
            conn.send(("ok", runner.infer(arg)))
        elif cmd == "memory":
            model = getattr(runner, "model", None) if kind == "nnscratch" else None
            used = getattr(model, "_process_workers", None) is not None  # parallel="auto" took processes
            conn.send(("ok", peak_rss_mb(model if used else None)))
        else:
            conn.send(("ok", None))
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000, help="training images per epoch (default 60000)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per framework (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-batch", type=int, default=1000, help="batch size for inference (default 1000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="time nnscratch alone")
    args = parser.parse_args(argv)

    kinds = ["nnscratch"]
    if not args.no_torch:
        try:
            import importlib.util
            if importlib.util.find_spec("torch") is None:
                raise ImportError
            kinds.append("pytorch")
        except ImportError:
            print("PyTorch is not installed (pip install torch==2.13.0): timing nnscratch alone")
    ctx = mp.get_context("spawn")
    workers = {}
    for kind in kinds:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(kind, child, args.samples, args.batch_size, args.seed, args.threads))
        proc.start()
        status, msg = parent.recv()
        if status != "ready":
            sys.exit(f"{kind} worker failed: {msg}")
        workers[kind] = (proc, parent)

    def ask(kind, cmd, arg=None):
        conn = workers[kind][1]
        conn.send((cmd, arg))
        return conn.recv()[1]

    times = {k: [] for k in kinds}
    for r in range(args.repeats):
        for kind in kinds:
            times[kind].append(ask(kind, "epoch"))
            print(f"epoch {r + 1} {kind:9s} {times[kind][-1]:7.2f} s", flush=True)
    # inference: one untimed warm-up pass each (thread pools, first-touch memory), then the median of 3
    infer = {}
    for kind in kinds:
        ask(kind, "infer", args.infer_batch)
    runs = {k: [] for k in kinds}
    for _ in range(3):
        for kind in kinds:
            runs[kind].append(ask(kind, "infer", args.infer_batch))
    for kind in kinds:
        runs[kind].sort(key=lambda r: r[0])
        infer[kind] = runs[kind][1]
    memory = {k: ask(k, "memory") for k in kinds}
    for kind in kinds:
        ask(kind, "stop")
        workers[kind][0].join()

    from tabulate import tabulate

    rows = []
    for kind in kinds:
        med = statistics.median(times[kind])
        seconds, acc = infer[kind]
        rows.append([kind, " ".join(f"{t:.2f}" for t in times[kind]), f"{med:.2f}",
                     f"{args.samples / med:,.0f}", f"{10000 / seconds:,.0f}", f"{100 * acc:.2f}", f"{memory[kind]:,.0f}"])
    print()
    print(f"modern LeNet-5, {args.samples:,} images/epoch, batch {args.batch_size}, Adam, float32, "
          f"{args.threads} thread(s), {args.repeats} interleaved epochs each")
    print(tabulate(rows, headers=["framework", "epoch times (s)", "median (s)", "train img/s", "infer img/s",
                                  "test acc %", "peak RSS (MB)"], disable_numparse=True))
    if "pytorch" in kinds:
        ratio = statistics.median(times["nnscratch"]) / statistics.median(times["pytorch"])
        infer_ratio = (10000 / infer["nnscratch"][0]) / (10000 / infer["pytorch"][0])
        print(f"\nepoch time ratio nnscratch/PyTorch: {ratio:.2f} (<= 1.0 means nnscratch is as fast or faster)")
        print(f"inference throughput ratio nnscratch/PyTorch: {infer_ratio:.2f} (>= 1.0 means as fast or faster)")


if __name__ == "__main__":
    main()

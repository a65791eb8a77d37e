"""The CNNs people build, nnscratch vs PyTorch CPU, side by side: training steps and inference, interleaved.

Rows (synthetic data of the right shape: only the time is measured, so random images and labels do):

* ``lenet5``: the modern LeNet-5 on 28x28x1;
* ``vgg``: a CIFAR-shaped VGG-style CNN: 3x3 conv 32-32, max pool, 3x3 conv 64-64, max pool, Dense 256, 10;
* ``resnet20``: He et al.'s ResNet-20 with BatchNormalization on 32x32x3 (``nnscratch.models.resnet``);
* ``separable``: a depthwise-separable CNN on 32x32x3 (conv 32, separable 64, pool, separable 128, pool, GAP);
* ``mlp``: 784-512-512-10.

Each framework runs in its own worker process per row (so each has its own peak memory), with the same
thread count, batch size, optimizer (Adam 1e-3) and float32. The parent asks the workers for timed runs in
turn, A B A B ..., so both see the same machine state; medians are reported. A worker first measures this
machine's float32 GEMM rate (one thread, 1024x1024) so each row can say what fraction of the machine's
peak (that rate times the thread count) it reaches. A timed training run is one shuffled pass over
``steps * batch_size`` samples in both frameworks (nnscratch's ``fit``; PyTorch gathers each batch through a
``randperm`` index), as in ``bench_lenet.py``, with a per-row number of steps (:data:`TRAIN_STEPS`) so that
every window lasts ~0.3 s or more. A timed inference run predicts a per-row number of images
(:data:`INFER_SAMPLES`, 2,000 to 40,000) in batches of 1,000, so that every window lasts ~0.2 s or more.

PyTorch's OpenMP threads lose far more than nnscratch's when another process wants the cores (a LeNet-5 step
of ~4.4 ms on a quiet machine took 50-350 ms at a load average of 3), so the torch column of a run on a busy
machine flatters nnscratch: read ``uptime`` before believing a ratio.

Which BLAS kernels NumPy runs decides half of the picture. Some machines' environments set
``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) for older OpenBLAS builds that fail on their CPU; on an AVX-512
CPU that holds a current NumPy to its AVX2 (Haswell) kernels, at half the GEMM rate, while PyTorch's convolutions
use AVX-512 regardless. To compare with what a current NumPy runs, unset both for the benchmark's command alone
(tests and CI keep the environment's setting); the table's header names the kernels that ran:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_zoo.py

    python benchmarks/bench_zoo.py                    # every row, 30-100 training steps x 3 repeats each
    python benchmarks/bench_zoo.py --quick            # a quick run (about a minute): fewer steps, two rows
    python benchmarks/bench_zoo.py --rows vgg resnet20 --steps 50 --repeats 5

GFLOP/s counts 2 FLOPs per multiply-add; a training step is taken as 3 forward passes' work (forward, the
input gradient and the weight gradient), the usual rule for convolutions and dense layers.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time

ROWS = ("lenet5", "vgg", "resnet20", "separable", "mlp")
SHAPES = {"lenet5": (28, 28, 1), "vgg": (32, 32, 3), "resnet20": (32, 32, 3), "separable": (32, 32, 3),
          "mlp": (784,)}


#: seconds of pause before every timed run, so that the other framework's spinning threads have gone to sleep
SETTLE_SECONDS = 0.5

#: training steps per timed run, unless --steps says otherwise: LeNet-5 and the MLP step in 3-5 ms, so 30 steps
#: were a ~0.1 s window, where one ``fit``'s own start (its first step is 1.5-2 ms longer: the kept workers'
#: fingerprint, caches cold after the pause) weighed ~2 % and a scheduler tick as much again
TRAIN_STEPS = {"lenet5": 100, "vgg": 30, "resnet20": 30, "separable": 30, "mlp": 100}

#: images per timed inference run, unless --infer-samples says otherwise: enough for a window of ~0.2 s or more
#: in each row (the MLP predicts ~150k images/s, so 2,000 images were a 14 ms window, in which a scheduler tick
#: or another process's burst moved the ratio by 20-30 %)
INFER_SAMPLES = {"lenet5": 20_000, "vgg": 2_000, "resnet20": 2_000, "separable": 2_000, "mlp": 40_000}


def _limit_threads(threads: int) -> None:
    # before numpy/torch load their thread pools
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def gemm_gflops(seconds=1.0) -> float:
    """One thread's float32 GEMM rate on 1024x1024 matrices, GFLOP/s (best of a few)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    best = 0.0
    with threadpool_limits(1, user_api="blas"):
        a @ a
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            a @ a
            best = max(best, 2 * 1024**3 / (time.perf_counter() - t) / 1e9)
    return best


def nnscratch_model(row, seed, threads, parallel="auto"):
    model = _nnscratch_model(row, seed, threads)
    model.parallel = parallel
    return model


def _nnscratch_model(row, seed, threads):
    import nnscratch
    from nnscratch.layers import (Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU, SeparableConv2D,
                                  Softmax)
    from nnscratch.models import lenet5, resnet
    from nnscratch.optimizers import Adam

    if row == "lenet5":
        model = lenet5("modern", seed=seed)
        model.threads = threads
        return model
    if row == "resnet20":
        return resnet(input_shape=(32, 32, 3), blocks_per_stage=3, optimizer=Adam(1e-3), seed=seed, threads=threads)
    if row == "vgg":
        layers = [Conv2D(32, 3, padding="same", input_shape=(32, 32, 3)), ReLU(), Conv2D(32, 3, padding="same"),
                  ReLU(), MaxPool2D(2), Conv2D(64, 3, padding="same"), ReLU(), Conv2D(64, 3, padding="same"), ReLU(),
                  MaxPool2D(2), Flatten(), Dense(256), ReLU(), Dense(10), Softmax()]
    elif row == "separable":
        layers = [Conv2D(32, 3, padding="same", input_shape=(32, 32, 3)), ReLU(),
                  SeparableConv2D(64, 3, padding="same"), ReLU(), MaxPool2D(2),
                  SeparableConv2D(128, 3, padding="same"), ReLU(), MaxPool2D(2), GlobalAvgPool2D(), Dense(10),
                  Softmax()]
    else:
        layers = [Dense(512, input_shape=(784,)), ReLU(), Dense(512), ReLU(), Dense(10), Softmax()]
    model = nnscratch.Model(layers, seed=seed, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer=Adam(1e-3))
    model.finalize()
    return model


def torch_model(row):
    from torch import nn

    if row == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10))
    if row == "vgg":
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, 10))
    if row == "separable":
        def sep(c_in, c_out):
            return [nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.Conv2d(c_in, c_out, 1)]
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), *sep(32, 64), nn.ReLU(), nn.MaxPool2d(2),
                             *sep(64, 128), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(128, 10))
    if row == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                      nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
            self.short = (nn.Identity() if stride == 1 and c_in == c_out else
                          nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

        def forward(self, x):
            return (self.body(x) + self.short(x)).relu()

    blocks, c = [], 16
    for stage, width in enumerate((16, 32, 64)):
        for b in range(3):
            blocks.append(Block(c, width, 2 if stage and not b else 1))
            c = width
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), *blocks,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


class Worker:
    """One framework, one row: ``train(steps)`` and ``infer(samples)`` return seconds."""

    def __init__(self, kind, row, batch_size, threads, seed, samples, parallel="auto"):
        import numpy as np

        self.kind, self.row, self.batch_size = kind, row, batch_size
        rng = np.random.default_rng(seed)
        shape = SHAPES[row]
        self.x = rng.random((samples,) + shape, dtype=np.float32)
        self.y = rng.integers(0, 10, samples)
        if kind == "nnscratch":
            self.model = nnscratch_model(row, seed, threads, parallel)
            self.macs = sum(layer.count_macs() for layer in self.model.layers)
        else:
            import torch
            torch.set_num_threads(threads)
            torch.manual_seed(seed)
            self.torch = torch
            self.model = torch_model(row)
            x = self.x if len(shape) == 1 else np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
            self.tx, self.ty = torch.from_numpy(x), torch.from_numpy(self.y)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
            self.loss = torch.nn.CrossEntropyLoss()
            self.macs = None

    def train(self, steps):
        n = self.batch_size * steps
        if self.kind == "nnscratch":
            t = time.perf_counter()
            self.model.fit(self.x[:n], self.y[:n], epochs=1, batch_size=self.batch_size, verbose=0)
            seconds = time.perf_counter() - t
            self.used_processes = getattr(self.model, "_process_workers", None) is not None
            return seconds
        torch = self.torch
        self.model.train()
        t = time.perf_counter()
        # shuffled batches gathered through an index, as nnscratch's fit does (shuffle=True) and as
        # bench_lenet.py does for both: contiguous slices would spare PyTorch a gather per step
        order = torch.randperm(n)
        for s in range(0, n, self.batch_size):
            idx = order[s:s + self.batch_size]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.tx[idx]), self.ty[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t

    def infer(self, samples, batch_size=1000):
        if self.kind == "nnscratch":
            t = time.perf_counter()
            self.model.predict(self.x[:samples], batch_size=batch_size)
            return time.perf_counter() - t
        torch = self.torch
        self.model.eval()
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, samples, batch_size):
                self.model(self.tx[s:min(samples, s + batch_size)])
        return time.perf_counter() - t


def numpy_blas() -> str:
    """Which BLAS NumPy runs and with which kernels, e.g. ``"NumPy 2.4.6's openblas 0.3.31 (Haswell kernels, as
    OPENBLAS_CORETYPE says)"``: the GEMM rate, and so every ratio here, depends on it."""
    import numpy as np  # loaded first: threadpoolctl sees only the libraries already loaded
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            name = f"NumPy {np.__version__}'s {info.get('internal_api')} {info.get('version')}"
            arch = info.get("architecture")
            if not arch:
                return name
            forced = info.get("internal_api") == "openblas" and os.environ.get("OPENBLAS_CORETYPE")
            return f"{name} ({arch} kernels" + (", as OPENBLAS_CORETYPE says)" if forced else ")")
    return "no BLAS found"


def _serve(kind, row, conn, batch_size, threads, seed, samples, parallel):
    _limit_threads(threads)
    try:
        worker = Worker(kind, row, batch_size, threads, seed, samples, parallel)
        conn.send(("ready", {"macs": worker.macs, "gemm": gemm_gflops(), "blas": numpy_blas()}))
    except Exception as e:  # reported by the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        cmd, arg = conn.recv()
        if cmd == "train":
            conn.send(("ok", worker.train(arg)))
        elif cmd == "infer":
            conn.send(("ok", worker.infer(arg)))
        elif cmd == "memory":
            used = getattr(worker, "used_processes", False)
            conn.send(("ok", (peak_rss_mb(worker.model if used else None), "processes" if used else "")))
        else:
            conn.send(("ok", None))
            return


def peak_rss_mb(model=None, threads=1) -> float:
    """This process's peak resident memory in MB, plus, for a ``model`` that trained with worker processes,
    the memory each worker holds of its own (``Private_*`` of /proc/PID/smaps_rollup, read now, after
    training: its workspaces stay allocated, so this is about its peak). Pages a worker still shares with
    this process copy-on-write are in this process's figure already. ResNet-20 here: 451 + 370 MB, while the
    sum of the two processes' proportional shares (Pss) was 820 MB and two threads' 756 MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = getattr(model, "_process_workers", None) if model is not None else None
    for process in workers.processes if workers is not None else []:
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            peak += sum(int(line.split()[1]) for line in f if line.startswith("Private_")) / 1024
    return peak


def run_row(row, kinds, args, steps, infer_samples):
    ctx = mp.get_context("spawn")
    samples = max(args.batch_size * steps, infer_samples)
    workers, facts = {}, {}
    for kind in kinds:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(kind, row, child, args.batch_size, args.threads, args.seed, samples,
                                                      args.parallel))
        proc.start()
        status, info = parent.recv()
        if status != "ready":
            sys.exit(f"{kind} worker for {row} failed: {info}")
        workers[kind], facts[kind] = (proc, parent), info

    def ask(kind, cmd, arg=None):
        workers[kind][1].send((cmd, arg))
        return workers[kind][1].recv()[1]

    def timed(kind, cmd, arg):
        # PyTorch's OpenMP threads spin for a while after each parallel region before they sleep: a run that
        # starts right after PyTorch's shares the cores with them (the MLP's 14 ms inference measured 107k
        # images/s so, 145k with no PyTorch worker beside it). A pause lets the other worker's threads sleep.
        time.sleep(SETTLE_SECONDS)
        return ask(kind, cmd, arg)

    for kind in kinds:  # untimed warm-up: thread pools, first-touch memory, workspaces
        ask(kind, "train", 2)
        ask(kind, "infer", min(infer_samples, 1000))
    train = {k: [] for k in kinds}
    infer = {k: [] for k in kinds}
    for r in range(args.repeats):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            train[kind].append(timed(kind, "train", steps))
        for kind in order:
            infer[kind].append(timed(kind, "infer", infer_samples))
    memory = {k: ask(k, "memory") for k in kinds}
    for kind in kinds:
        ask(kind, "stop")
        workers[kind][0].join()
    return train, infer, memory, facts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per timed run (default per row: " +
                        ", ".join(f"{row} {n}" for row, n in TRAIN_STEPS.items()) + ")")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per framework and row (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-samples", type=int, default=None,
                        help="images per timed inference run (default per row: " +
                        ", ".join(f"{row} {n:,}" for row, n in INFER_SAMPLES.items()) + ")")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", default="auto", choices=("auto", "threads", "processes"),
                        help="how nnscratch's fit shares each batch between the threads (Model(parallel=...), "
                             "default auto, as the library's)")
    parser.add_argument("--quick", action="store_true", help="lenet5 and vgg, 8 steps, 2 repeats")
    parser.add_argument("--no-torch", action="store_true", help="time nnscratch alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.steps, args.repeats, args.infer_samples = ["lenet5", "vgg"], 8, 2, 1000

    import importlib.util

    kinds = ["nnscratch"]
    if not args.no_torch:
        if importlib.util.find_spec("torch") is None:
            print("PyTorch is not installed (pip install torch==2.13.0): timing nnscratch alone")
        else:
            kinds.append("pytorch")
    from tabulate import tabulate

    table = []
    for row in args.rows:
        steps = args.steps or TRAIN_STEPS[row]
        infer_samples = args.infer_samples or INFER_SAMPLES[row]
        train, infer, memory, facts = run_row(row, kinds, args, steps, infer_samples)
        macs = facts["nnscratch"]["macs"]
        peak = facts["nnscratch"]["gemm"] * args.threads
        ms = {k: 1000 * statistics.median(train[k]) / steps for k in kinds}
        ips = {k: infer_samples / statistics.median(infer[k]) for k in kinds}
        for kind in kinds:
            gflops = 3 * 2 * macs * args.batch_size / (ms[kind] / 1000) / 1e9
            table.append([row, kind, f"{ms[kind]:.1f}", f"{args.batch_size / ms[kind] * 1000:,.0f}", f"{ips[kind]:,.0f}",
                          f"{ms[kind] / ms['nnscratch']:.2f}" if kind != "nnscratch" else "",
                          f"{gflops:.1f}", f"{gflops / peak:.0%}", f"{memory[kind][0]:,.0f}"])
            if memory[kind][1]:  # which engine parallel="auto" chose for the row
                table[-1][1] += f" ({memory[kind][1]})"
        if "pytorch" in kinds:
            table[-2][5] = f"{ms['nnscratch'] / ms['pytorch']:.2f} / {ips['nnscratch'] / ips['pytorch']:.2f}"
            table[-1][5] = ""
        runs = ", ".join(f"{k} {[round(1000 * t / steps, 1) for t in train[k]]}" for k in kinds)
        print(f"{row}: train ms/step over {steps} steps {runs}", flush=True)
    print()
    print(f"batch {args.batch_size}, Adam, float32, {args.threads} thread(s) each (nnscratch: "
          f"parallel={args.parallel}), {args.steps or 'per-row'} steps x {args.repeats} interleaved runs per row "
          "(medians); "
          f"GEMM peak {facts['nnscratch']['gemm']:.1f} GFLOP/s per thread "
          f"({facts['nnscratch']['blas']})")
    print(tabulate(table, headers=["row", "framework", "ms/step", "train img/s", "infer img/s",
                                   "ratio train / infer (ours vs torch)", "GFLOP/s", "of peak", "peak RSS (MB)"],
                   disable_numparse=True))
    if "pytorch" in kinds:
        print("\nratio: nnscratch's time per training step over PyTorch's (<= 1 is as fast or faster) / nnscratch's "
              "inference throughput over PyTorch's (>= 1 is as fast or faster)")
    if "OPENBLAS_CORETYPE" in facts["nnscratch"]["blas"]:
        print("NumPy ran the kernels the environment's OPENBLAS_CORETYPE names, not those it would pick itself; to "
              "compare with those: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_zoo.py ...")


if __name__ == "__main__":
    main()

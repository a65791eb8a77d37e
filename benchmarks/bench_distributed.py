"""Data-parallel training over MPI: epoch times for 1 and 2 processes on this machine, the bytes allreduced
per step, and a model of the cost on N hosts, for LeNet-5 and the ResNet.

Every process runs 1 thread (and BLAS 1 thread), so 2 processes x 1 thread against 1 process x 1 thread is
a fair comparison of the engine, not of the thread count. For context, 1 process x 2 threads (the
in-process data parallelism) runs too. They are run interleaved (1, 2, 1x2t, 1, 2, ...), each launch
timing ``--epochs`` epochs after a short warm-up, so all see the same machine state; the spread
(min-max) over the repeats says how noisy the machine was.

    python benchmarks/bench_distributed.py                           # LeNet-5 on 12,800 MNIST images, ResNet on 1,280
    python benchmarks/bench_distributed.py --lenet-samples 60000 --resnet-samples 6400 --repeats 3
    python benchmarks/bench_distributed.py --bandwidth 1.25e9 --latency 20e-6    # the network to model

The model of N hosts (one process each) for one step of a global batch B::

    step(N) = compute(1) / N                                   # each host computes B / N samples
            + 2 (N - 1) / N * gradient bytes / bandwidth       # ring allreduce: reduce-scatter + allgather
            + 2 (N - 1) * latency                              # its 2 (N - 1) messages
            + BN exchanges * ceil(log2 N) * latency            # BatchNormalization's small allgathers
                                                               # (one each, recursive doubling)

``compute(1)`` is the measured 1-process step time. The model ignores load imbalance and assumes the
network is the only shared resource; it is an estimate of what to expect, not a measurement.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


def _limit_threads():
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def _model(name, seed=0):
    from nnscratch.models import lenet5, resnet
    if name == "lenet5":
        return lenet5("modern", seed=seed)
    return resnet(input_shape=(28, 28, 1), blocks_per_stage=3, seed=seed)  # ResNet-20 (He et al.'s CIFAR form)


def worker(args):
    """One launch: warm up, then time ``args.epochs`` epochs; rank 0 prints one JSON line."""
    _limit_threads()
    import numpy as np

    from nnscratch.data import to_float_images
    from nnscratch.datasets import load_mnist

    (x, y), _ = load_mnist(verbose=False)
    x, y = to_float_images(x[:args.samples]), y[:args.samples].astype(np.int64)
    model = _model(args.model)
    model.threads = args.threads
    distributed = args.ranks > 1
    model.fit(x[:4 * args.batch_size], y[:4 * args.batch_size], epochs=1, batch_size=args.batch_size, verbose=0,
              distributed=distributed)  # warm-up: first-call allocations, MPI connections
    stats0 = None
    if distributed:
        from nnscratch.engine.distributed import session
        stats0 = dict(session().stats)
    times = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0, distributed=distributed)
        times.append(time.perf_counter() - t)
    steps = args.epochs * -(-len(x) // args.batch_size)
    out = {"model": args.model, "ranks": args.ranks, "samples": len(x), "epoch_seconds": times,
           "params": int(sum(p.size for _, p, _ in model.trainable_params())),
           "dtype_bytes": model.dtype.itemsize,
           "bn_exchanges_per_step": 3 * sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers)}
    if distributed:
        from nnscratch.engine.distributed import rank_of_this_process, session
        stats = session().stats
        delta = {k: stats[k] - stats0[k] for k in stats}
        out.update(bytes_per_step=delta["allreduce_bytes"] / delta["allreduces"],
                   allreduce_ms_per_step=1e3 * delta["allreduce_seconds"] / steps,
                   collectives_per_step=delta["collectives"] / steps,
                   collective_ms_per_step=1e3 * delta["collective_seconds"] / steps)
        if rank_of_this_process() != 0:
            return
    print("RESULT " + json.dumps(out), flush=True)


def launch(model, ranks, args, threads=1):
    cmd = [sys.executable, HERE, "--worker", "--model", model, "--ranks", str(ranks), "--epochs", str(args.epochs),
           "--threads", str(threads),
           "--batch-size", str(args.batch_size),
           "--samples", str(args.lenet_samples if model == "lenet5" else args.resnet_samples)]
    if ranks > 1:
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", str(ranks)] + cmd
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def model_of_hosts(step1, grad_bytes, bn_exchanges, bandwidth, latency, hosts):
    ring = 2 * (hosts - 1) / hosts * grad_bytes / bandwidth + 2 * (hosts - 1) * latency
    bn = bn_exchanges * math.ceil(math.log2(hosts)) * latency if hosts > 1 else 0.0
    return step1 / hosts + (ring + bn if hosts > 1 else 0.0), ring, bn


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--samples", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--models", default="lenet5,resnet", help="comma-separated: lenet5, resnet (default both)")
    p.add_argument("--lenet-samples", type=int, default=12800)
    p.add_argument("--resnet-samples", type=int, default=1280)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per launch (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="launches of each, interleaved (default 3)")
    p.add_argument("--bandwidth", type=float, default=1.25e9,
                   help="bytes/s per link for the model of N hosts (default 1.25e9: 10 Gbit/s Ethernet)")
    p.add_argument("--latency", type=float, default=20e-6,
                   help="seconds per message for the model (default 20e-6: TCP over 10 GbE)")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the "
          f"start; batch {args.batch_size}; {args.repeats} interleaved launches of each")
    for model in args.models.split(","):
        runs = {1: [], 2: [], "threads": []}
        for _ in range(args.repeats):
            for ranks in (1, 2):
                runs[ranks].append(launch(model, ranks, args))
            runs["threads"].append(launch(model, 1, args, threads=2))
        samples = runs[1][0]["samples"]
        full = 60000 / samples
        print(f"\n{model}: {runs[1][0]['params']:,} trainable parameters, {samples:,} MNIST images per epoch")
        med = {}
        for ranks, results in runs.items():
            times = [t for r in results for t in r["epoch_seconds"]]
            med[ranks] = statistics.median(times)
            what = ("1 process x 2 threads" if ranks == "threads"
                    else f"{ranks} process{'es' if ranks > 1 else ''} x 1 thread")
            print(f"  {what}: epoch {med[ranks]:.2f} s median "
                  f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} epochs; full MNIST ~"
                  f"{med[ranks] * full:.0f} s)")
        two = runs[2]
        print(f"  speed-up over 1 process x 1 thread: 2 processes {med[1] / med[2]:.2f}x, "
              f"2 threads {med[1] / med['threads']:.2f}x")
        bytes_step = two[0]["bytes_per_step"]
        print(f"  allreduced per step: {bytes_step:,.0f} bytes (the gradients and 3 numbers: loss, accuracy, "
              f"samples); {statistics.median(r['allreduce_ms_per_step'] for r in two):.2f} ms/step waiting in it, "
              f"{statistics.median(r['collectives_per_step'] for r in two):.0f} collectives/step, "
              f"{statistics.median(r['collective_ms_per_step'] for r in two):.2f} ms/step in all of them "
              "(waits for the slower rank included)")
        steps = -(-samples // args.batch_size)
        step1 = med[1] / steps
        grad_bytes = runs[1][0]["params"] * runs[1][0]["dtype_bytes"]
        bn = runs[1][0]["bn_exchanges_per_step"]
        print(f"  model of N hosts (bandwidth {args.bandwidth / 1e9:g} GB/s, latency {args.latency * 1e6:g} us; "
              f"compute {1e3 * step1:.1f} ms/step on 1 host as measured, {bn} BN exchanges/step):")
        print("      N   step ms   of which network ms   full-MNIST epoch s   efficiency")
        for hosts in (1, 2, 4, 8, 16, 32):
            step, ring, bnc = model_of_hosts(step1, grad_bytes, bn, args.bandwidth, args.latency, hosts)
            print(f"    {hosts:3d}   {1e3 * step:7.2f}   {1e3 * (ring + bnc):19.3f}   "
                  f"{step * -(-60000 // args.batch_size):18.1f}   {step1 / hosts / step:9.0%}")


if __name__ == "__main__":
    main()

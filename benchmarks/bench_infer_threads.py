"""How a zoo network's inference uses two cores: nnscratch's Python threads against BLAS's own threads.

``predict`` with ``Model(threads=2)`` cuts each batch into one chunk per thread and holds BLAS to one thread
(:mod:`nnscratch.engine.parallel`); PyTorch instead hands each whole GEMM to its OpenMP threads. For a network
that is almost all GEMM (the zoo's MLP 784-512-512-10) the question is which way two cores give more, so this
times, interleaved in one process (A B C A B C ...):

* ``one thread``: ``Model(threads=1)``, BLAS on one thread (the base of the scaling figures);
* ``python threads``: ``Model(threads=T)``, nnscratch's way;
* ``BLAS threads``: the calling thread alone runs ``Plan.infer`` (pieces of ``INFERENCE_PIECE`` samples)
  with BLAS allowed ``T`` threads;
* ``BLAS threads, whole batch``: the same on each batch at once, without pieces (larger GEMMs).

It prints, per way, the wall time of ``--samples`` images (median, interquartile range, best), the
throughput, the speed-up over one thread, the process's CPU time (BLAS threads that spin while waiting
count there), the largest difference of its predictions from one thread's, and the load average before and
after. After each run of a BLAS-threads way it pauses (untimed) until OpenBLAS's threads stop spinning:
without the pause the way timed next ran beside them and took twice its CPU time. On a machine other processes share, the second core is mostly someone else's and no way scales:
read the load average before believing a speed-up.

    python benchmarks/bench_infer_threads.py                       # mlp, 2 threads, 30 rounds
    python benchmarks/bench_infer_threads.py --row lenet5 --rounds 10
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import ROWS, SHAPES, nnscratch_model  # noqa: E402


#: untimed pause after each run of a way that used BLAS's threads, longer than their spinning
BLAS_SETTLE_SECONDS = 0.5


def _ways(model, threads, batch_size):
    """``{name: (x -> predictions)}``, each predicting in batches of ``batch_size``."""
    from threadpoolctl import ThreadpoolController

    from nnscratch.engine.parallel import blas_single_thread

    controller = ThreadpoolController()

    def predict_with(count):
        def run(x):
            model.threads = count
            return model.predict(x, batch_size=batch_size)
        return run

    def blas_threads(pieces):
        def run(x):
            out = np.empty((len(x),) + model.output_shape, model.dtype)
            with controller.limit(limits=threads, user_api="blas"):
                for s in range(0, len(x), batch_size):
                    part = [x[s:s + batch_size]]
                    out[s:s + batch_size] = (model.plan.infer(part) if pieces else
                                             model.plan.forward(part, False))[0][0]
            return out
        return run

    with blas_single_thread():  # the controller is made and cached outside the timed runs
        pass
    return {"one thread": predict_with(1), "python threads": predict_with(threads),
            "BLAS threads": blas_threads(True), "BLAS threads, whole batch": blas_threads(False)}


def measure(row="mlp", threads=2, samples=2000, batch_size=1000, rounds=30, seed=0):
    """Times every way ``rounds`` times, interleaved. Returns ``{way: {"wall": [s], "cpu": [s], "diff": float}}``."""
    model = nnscratch_model(row, seed, threads)
    x = np.random.default_rng(seed).random((samples,) + SHAPES[row], dtype=np.float32)
    ways = _ways(model, threads, batch_size)
    reference = ways["one thread"](x)
    results = {}
    for name, run in ways.items():  # untimed warm-up: thread pools, workspaces, first-touch memory
        results[name] = {"wall": [], "cpu": [], "diff": float(np.abs(run(x) - reference).max())}
    for _ in range(rounds):
        for name, run in ways.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run(x)
            results[name]["wall"].append(time.perf_counter() - wall)
            results[name]["cpu"].append(time.process_time() - cpu)
            if name.startswith("BLAS"):
                # OpenBLAS's threads spin for a while after a call before they sleep (OPENBLAS_THREAD_TIMEOUT,
                # ~0.1 s by default): without a pause the next way would run beside them and pay for it
                time.sleep(BLAS_SETTLE_SECONDS)
    model.threads = threads
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=ROWS, default="mlp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2000, help="images per timed run (default 2000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="predict's batch size (default 1000)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved timed runs per way (default 30)")
    args = parser.parse_args(argv)
    if args.threads < 2:
        parser.error(f"--threads must be at least 2 to compare ways of using them, got {args.threads}")
    from tabulate import tabulate

    load_before = os.getloadavg()[0]
    results = measure(args.row, args.threads, args.samples, args.batch_size, args.rounds)
    load_after = os.getloadavg()[0]
    one = statistics.median(results["one thread"]["wall"])
    table = []
    for name, res in results.items():
        wall = statistics.median(res["wall"])
        q1, _, q3 = statistics.quantiles(res["wall"], n=4) if len(res["wall"]) > 1 else (wall, wall, wall)
        table.append([name, f"{1000 * wall:.1f}", f"{1000 * q1:.1f}-{1000 * q3:.1f}", f"{1000 * min(res['wall']):.1f}",
                      f"{args.samples / wall:,.0f}", f"{one / wall:.2f}", f"{1000 * statistics.median(res['cpu']):.1f}",
                      f"{res['diff']:.2g}"])
    print(f"{args.row}: {args.samples} images in batches of {args.batch_size}, {args.threads} threads, "
          f"{args.rounds} interleaved rounds; load average {load_before:.2f} before, {load_after:.2f} after")
    print(tabulate(table, headers=["way", "ms (median)", "IQR", "best", "img/s", "speed-up over one thread",
                                   "CPU ms", "max |diff| from one thread"], disable_numparse=True))


if __name__ == "__main__":
    main()

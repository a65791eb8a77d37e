"""One thread, two threads and two worker processes (``Model(parallel=...)``) on the same batches, interleaved.

For each row of ``bench_zoo.py``, one parent builds three copies of the same model (``threads=1``;
``threads=2, parallel="threads"``; ``threads=2, parallel="processes"``) and trains them round by round, A B C
A B C ..., one ``fit`` of ``--steps`` batches each per round, on the same data: so the three see the same
machine state. Every batch is split, however small (``split_every_batch``): this compares the engines, not
the library's choice of whether to split, and the processes' workers (forked in an untimed first round, then
kept by their model) idle while the others run. Prints the median step time of each, the ratios, and what
``parallel="auto"`` picks, and checks that the processes trained the same weights as the threads, bit for bit.

    python benchmarks/bench_processes.py                                # every row, 30 steps x 5 rounds
    python benchmarks/bench_processes.py --rows lenet5 mlp --steps 20 --rounds 3   # under a minute
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import ROWS, SHAPES, nnscratch_model  # noqa: E402

WAYS = {"one thread": (1, "threads"), "two threads": (2, "threads"), "two processes": (2, "processes")}


def run_row(row, steps, rounds, batch, seed=0):
    """Times the three ways on ``row``; returns ``{way: [seconds per step of each round]}``."""
    from nnscratch.engine.parallel import split_every_batch
    from nnscratch.engine.processes import processes_pay, stop_workers

    rng = np.random.default_rng(seed)
    x = rng.random((batch * steps,) + SHAPES[row], dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    models = {way: nnscratch_model(row, seed, threads, parallel) for way, (threads, parallel) in WAYS.items()}
    times = {way: [] for way in WAYS}
    try:
        with split_every_batch():
            for r in range(rounds + 1):  # round 0 is untimed: workers forked, workspaces and pools filled
                for way, model in models.items():
                    t = time.perf_counter()
                    model.fit(x, y, epochs=1, batch_size=batch, verbose=0, shuffle=True)
                    if r:
                        times[way].append((time.perf_counter() - t) / steps)
        threads, processes = models["two threads"].get_weights(), models["two processes"].get_weights()
        gap = max(float(np.abs(threads[k] - processes[k]).max()) for k in threads)
        auto = "processes" if processes_pay(models["two threads"], batch, 2) else "threads"
    finally:
        stop_workers(models["two processes"])
    one = statistics.median(times["one thread"])
    print(f"{row}: " + ", ".join(f"{way} {1000 * statistics.median(t):.1f} ms ({one / statistics.median(t):.2f}x "
                                 "one thread)" for way, t in times.items()))
    ratio = statistics.median(times["two processes"]) / statistics.median(times["two threads"])
    print(f"    two processes / two threads: {ratio:.2f}; parallel='auto' picks {auto}; largest difference between "
          f"their weights afterwards: {gap:.1e}", flush=True)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--steps", type=int, default=30, help="batches per fit (default 30)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    print(f"batch {args.batch_size}, Adam, float32, {args.steps} steps per fit, {args.rounds} interleaved rounds "
          "(medians)")
    for row in args.rows:
        run_row(row, args.steps, args.rounds, args.batch_size)


if __name__ == "__main__":
    main()

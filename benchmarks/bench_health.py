"""LayerHealth's cost: LeNet-5 epochs with and without it, interleaved so the machine's load hits both alike.

    python benchmarks/bench_health.py [--pairs 6] [--every 20] [--samples 4000] [--batch-size 64]

Prints each pair's epoch times and the median overhead (with / without - 1), and the time spent inside
LayerHealth's hooks as a share of the epochs that ran it: on a shared machine the epoch times swing by tens
of percent from one epoch to the next, far more than the overhead, and the hooks' own time does not.
"""
import argparse
import statistics
import time

from nnscratch.callbacks import LayerHealth
from nnscratch.data import to_float_images
from nnscratch.datasets import load_mnist
from nnscratch.models import lenet5


class TimedLayerHealth(LayerHealth):
    """LayerHealth that adds up the time spent in its hooks."""

    spent = 0.0

    def on_batch_begin(self, batch, logs=None):
        t0 = time.perf_counter()
        super().on_batch_begin(batch, logs)
        TimedLayerHealth.spent += time.perf_counter() - t0

    def on_batch_end(self, batch, logs=None):
        t0 = time.perf_counter()
        super().on_batch_end(batch, logs)
        TimedLayerHealth.spent += time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    (x, y), _ = load_mnist()
    x, y = to_float_images(x[: args.samples]), y[: args.samples]
    models = {name: lenet5("modern", seed=0) for name in ("without", "with")}
    if args.threads:
        for m in models.values():
            m.threads = args.threads
    for m in models.values():  # warm up: first-call allocations, BLAS start-up
        m.fit(x[:512], y[:512], epochs=1, batch_size=args.batch_size, verbose=0)
    times = {"without": [], "with": []}
    for pair in range(args.pairs):
        order = ("without", "with") if pair % 2 == 0 else ("with", "without")
        for name in order:
            callbacks = [TimedLayerHealth(every=args.every)] if name == "with" else []
            t0 = time.perf_counter()
            models[name].fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0, callbacks=callbacks)
            times[name].append(time.perf_counter() - t0)
        print(f"pair {pair + 1}: without {times['without'][-1]:.3f} s, with {times['with'][-1]:.3f} s, "
              f"ratio {times['with'][-1] / times['without'][-1]:.3f}", flush=True)
    ratios = [w / o for w, o in zip(times["with"], times["without"])]
    spread = (max(times["without"]) - min(times["without"])) / statistics.median(times["without"])
    print(f"every={args.every}: median overhead {100 * (statistics.median(ratios) - 1):+.1f}% "
          f"(pairs from {100 * (min(ratios) - 1):+.1f}% to {100 * (max(ratios) - 1):+.1f}%); epochs without it "
          f"varied by {100 * spread:.0f}% of their median")
    print(f"time inside LayerHealth's hooks: {100 * TimedLayerHealth.spent / sum(times['with']):.2f}% of the epochs "
          f"with it ({1000 * TimedLayerHealth.spent / args.pairs:.1f} ms per epoch of "
          f"{-(-args.samples // args.batch_size)} steps)")


if __name__ == "__main__":
    main()

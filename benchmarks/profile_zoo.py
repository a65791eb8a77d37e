"""Where a training step of a bench_zoo network spends its time: pyinstrument over a few steps.

    pip install pyinstrument
    python benchmarks/profile_zoo.py vgg                 # 10 steps of batch 128, 2 threads
    python benchmarks/profile_zoo.py resnet20 --im2col-only --steps 6

pyinstrument samples the calling thread, which computes chunk 0 of every batch itself (the other chunk
runs in a pool thread at the same time) and then the optimizer step, so the tree is one chunk's
forward and backward plus what the step does alone. ``--im2col-only`` switches Winograd off
(:mod:`nnscratch.ops.convolution`), the way every convolution ran before it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import ROWS, SHAPES, nnscratch_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--im2col-only", action="store_true", help="no Winograd convolutions")
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("profile_zoo needs pyinstrument: pip install pyinstrument")
    if args.im2col_only:
        from nnscratch.ops import convolution
        convolution.WINOGRAD_MAX_PIXELS = 0
    model = nnscratch_model(args.row, 0, args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((128 * args.steps,) + SHAPES[args.row], dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    model.fit(x[:256], y[:256], epochs=1, batch_size=128, verbose=0)  # warm the workspaces
    profiler = Profiler(interval=0.0005)
    start = time.perf_counter()
    profiler.start()
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    profiler.stop()
    print(f"{args.row}: {(time.perf_counter() - start) / args.steps * 1e3:.1f} ms/step")
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()

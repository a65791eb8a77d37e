"""Where the second thread's time goes in a training step: spans per layer call and per serial section.

    python benchmarks/profile_threads.py lenet5 mlp --steps 60 --rounds 3

For each row it times, interleaved round by round in one process, **one thread on a batch of 64** and
**two threads on a batch of 128** (each thread then has a chunk of 64, the same work as the one-thread
step), with every layer call's forward and backward, the loss and metrics, and the step's serial sections
(state sync, gradient collection, optimizer step, the rest of ``fit``'s loop) wrapped in spans. Each span
records wall time (``perf_counter_ns``) and the thread's CPU time (``thread_time_ns``). A span's wall time
beyond its CPU time is time the thread did not run: waiting for the GIL, for the other thread at a
barrier, or for a core another process had (``/proc/thread-self/schedstat``'s run-queue wait, read per
chunk, tells the last apart). A span's CPU time above the one-thread figure is the cost of sharing the
machine while running: caches, memory bandwidth, spinning.

The spans add ~2 us per layer call (two clocks in, two out); the numbers are for comparing the two modes,
both of which pay it. Synthetic data (bench_zoo's rows); only times are measured.

What holds the GIL is a question for a sampling profiler that can see it, py-spy (``pip install py-spy``):
``py-spy record -r 1000 --nonblocking --gil -f raw -o gil.txt -- python SCRIPT`` keeps only the samples in
which a thread held the GIL (the same command without ``--gil`` counts all of them), and the raw lines name
the Python line each sample was taken at (docs/performance.md, "Two threads on one batch").
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import SHAPES, nnscratch_model  # noqa: E402

_spans = collections.defaultdict(lambda: [0, 0, 0])   # (thread slot, label) -> [wall ns, cpu ns, calls]
_slot = threading.local()


def _thread_slot():
    return getattr(_slot, "value", 0 if threading.current_thread() is threading.main_thread() else 1)


class span:
    """Adds the wall and CPU time of the block to ``_spans[(thread slot, label)]``."""

    __slots__ = ("label", "w", "c")

    def __init__(self, label):
        self.label = label

    def __enter__(self):
        self.w = time.perf_counter_ns()
        self.c = time.thread_time_ns()

    def __exit__(self, *exc):
        c = time.thread_time_ns() - self.c
        w = time.perf_counter_ns() - self.w
        rec = _spans[(_thread_slot(), self.label)]
        rec[0] += w
        rec[1] += c
        rec[2] += 1


def _schedstat():
    """(ns on a CPU, ns waiting in the run queue) of the calling thread."""
    with open("/proc/thread-self/schedstat") as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


class Patches:
    """Replaces attributes and puts every original back on :meth:`undo` (the spans must not outlive a run)."""

    def __init__(self):
        self._saved = []

    def wrap(self, owner, name, tag):
        """``owner.name`` (a function or method) inside a span labelled ``tag(self_or_None)``."""
        original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name)
        if original is None or getattr(original, "_profiled", False):
            return
        self._saved.append((owner, name, original))

        def wrapper(*args, **kwargs):
            with span(tag(args[0] if args else None)):
                return original(*args, **kwargs)
        wrapper._profiled = True
        setattr(owner, name, wrapper)

    def undo(self):
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


def instrument(model) -> Patches:
    """Wraps the forward and backward of every layer class of ``model`` (class-wide, so every thread's
    instances) and the engine's sections in spans; returns the :class:`Patches` to undo."""
    from nnscratch import model as model_module
    from nnscratch.engine import parallel, plan as plan_module

    patches = Patches()
    names = {layer.name: f"{i:02d} {type(layer).__name__}" for i, layer in enumerate(model.layers)}
    for layer in model.layers:
        for method in ("forward", "backward", "apply", "backward_from_logits"):
            for klass in type(layer).__mro__:
                if method in klass.__dict__:
                    patches.wrap(klass, method,
                                 lambda self, m=method: f"{names.get(self.name, type(self).__name__)} {m}")
                    break
    for owner, name, tag in ((plan_module.Plan, "sync_state", "serial: sync_state"),
                             (plan_module.Plan, "collect_grads", "serial: collect_grads"),
                             (parallel, "optimizer_step", "serial: optimizer_step"),
                             (model_module, "optimizer_step", "serial: optimizer_step"),
                             (model_module.Model, "_scores", "loss + metrics"),
                             (plan_module.Plan, "forward", "chunk: forward total"),
                             (plan_module.Plan, "backward", "chunk: backward total"),
                             (parallel.DataParallel, "train_step", "step: DataParallel.train_step"),
                             (model_module.Model, "_train_step", "step: Model._train_step"),
                             (parallel.Exchange, "gather", "chunk: waiting at the barrier")):
        patches.wrap(owner, name, lambda _, tag=tag: tag)
    in_threads = getattr(parallel.DataParallel, "_update_in_threads", None)
    if in_threads is not None:  # this branch's step: the chunks sum and update their own range
        def update_in_threads(self):
            found = in_threads(self)
            if found is None:
                return None
            reduce_and_update, finish = found

            def spanned(chunk, chunks):
                with span("chunk: sum + optimizer range"):
                    reduce_and_update(chunk, chunks)
            return spanned, finish
        patches._saved.append((parallel.DataParallel, "_update_in_threads", in_threads))
        parallel.DataParallel._update_in_threads = update_in_threads

    original_fb = model_module.Model.forward_backward

    def forward_backward(self, *args, **kwargs):
        run0, wait0 = _schedstat()
        with span("chunk: forward_backward"):
            result = original_fb(self, *args, **kwargs)
        run1, wait1 = _schedstat()
        rec = _spans[(_thread_slot(), "chunk: run-queue wait (schedstat)")]
        rec[0] += wait1 - wait0
        rec[2] += 1
        return result
    patches._saved.append((model_module.Model, "forward_backward", original_fb))
    model_module.Model.forward_backward = forward_backward
    return patches


def run(row, threads, batch, steps, x, y):
    model = nnscratch_model(row, 0, threads)
    model.fit(x[:batch * 3], y[:batch * 3], epochs=1, batch_size=batch, verbose=0)  # warm
    _spans.clear()
    start = time.perf_counter_ns()
    model.fit(x[:batch * steps], y[:batch * steps], epochs=1, batch_size=batch, verbose=0)
    total = time.perf_counter_ns() - start
    result = {key: list(v) for key, v in _spans.items()}
    result[(0, "fit: whole step")] = [total, 0, steps]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", choices=("lenet5", "mlp", "vgg", "resnet20", "separable"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-spans", action="store_true", help="only whole-step times, no instrumentation")
    args = parser.parse_args(argv)
    import os
    print(f"load average at start: {os.getloadavg()}")
    rng = np.random.default_rng(0)
    for row in args.rows:
        x = rng.random((128 * args.steps,) + SHAPES[row], dtype=np.float32)
        y = rng.integers(0, 10, len(x))
        patches = None if args.no_spans else instrument(nnscratch_model(row, 0, 2))
        per_mode = {"1x64": [], "2x128": []}
        try:
            for _ in range(args.rounds):
                per_mode["1x64"].append(run(row, 1, 64, args.steps, x, y))
                per_mode["2x128"].append(run(row, 2, 128, args.steps, x, y))
        finally:
            if patches is not None:
                patches.undo()
        labels = sorted({key[1] for runs in per_mode.values() for r in runs for key in r})
        print(f"\n{row}: ms per step, median of {args.rounds} rounds of {args.steps} steps "
              f"(wall / cpu); load now {os.getloadavg()[0]:.2f}")
        print(f"{'span':44s} {'1 thread, 64':>16s} {'2 thr: thread 0':>16s} {'2 thr: thread 1':>16s}")
        for lab in labels:
            cells = []
            for mode, slot in (("1x64", 0), ("2x128", 0), ("2x128", 1)):
                ws = [r[(slot, lab)][0] / args.steps / 1e6 for r in per_mode[mode] if (slot, lab) in r]
                cs = [r[(slot, lab)][1] / args.steps / 1e6 for r in per_mode[mode] if (slot, lab) in r]
                cells.append(f"{statistics.median(ws):7.3f}/{statistics.median(cs):7.3f}" if ws else " " * 15)
            print(f"{lab:44s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s}")


if __name__ == "__main__":
    main()

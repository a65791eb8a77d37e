"""Prototype: a training step's two chunks in two processes against nnscratch's two threads, interleaved.

The question (issue 17): is the Python that runs with the GIL held what keeps two threads from making a step
~2x faster? Two processes have a GIL each. Here the parent forks one worker per row after moving the model's
trainable parameters into a ``multiprocessing.shared_memory`` block, so both processes compute with the same
parameter arrays; the worker's gradients go to a second shared block. A step: the parent sends the worker its
chunk's sample indices through a pipe, computes its own chunk, waits for the worker's reply, adds the worker's
gradients to its own and takes the optimizer step, which updates the shared parameters in place.

Timed in one parent, alternating round by round: one thread on the whole batch (``Model._train_step``), the
library's two threads (``DataParallel.train_step``) and the two processes, each on the same shuffled batches.
Not a library feature: no error handling beyond the benchmark's needs, no BatchNormalization (whose batch
statistics would need an exchange per layer), no dropout.

    python benchmarks/bench_processes.py --rows lenet5 mlp --steps 30 --rounds 8
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import SHAPES, nnscratch_model  # noqa: E402


def _trainable(model):
    """``[(sublayer, key)]`` in ``model.trainable_params()``'s order."""
    return [(sub, k) for layer in model.layers for _, sub, trainable in layer._walk_trainable() if trainable
            for k in sub.params]


def _views(buffer, arrays):
    """Views of ``buffer`` (flat) shaped like ``arrays``, laid end to end."""
    views, at = [], 0
    for a in arrays:
        views.append(buffer[at:at + a.size].reshape(a.shape))
        at += a.size
    return views


class TwoProcesses:
    """The parent's side of a two-process step on ``model`` (threads=1): fork on ``__enter__``."""

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, x, y
        entries = _trainable(model)
        total = sum(sub.params[k].size for sub, k in entries)
        dtype = entries[0][0].params[entries[0][1]].dtype
        self._shm = [shared_memory.SharedMemory(create=True, size=total * dtype.itemsize) for _ in range(2)]
        params = np.ndarray(total, dtype, buffer=self._shm[0].buf)
        self.worker_grads = np.ndarray(total, dtype, buffer=self._shm[1].buf)
        for (sub, k), view in zip(entries, _views(params, [sub.params[k] for sub, k in entries])):
            view[...] = sub.params[k]
            sub.params[k] = view  # the twin after the fork computes with these very arrays
        self._grad_views = _views(self.worker_grads, [sub.grads[k] for sub, k in entries])
        self._entries = entries

    def __enter__(self):
        parent, child = mp.get_context("fork").Pipe()
        self._conn = parent
        self._process = mp.get_context("fork").Process(target=self._serve, args=(child,), daemon=True)
        self._process.start()
        child.close()
        return self

    def _serve(self, conn):
        from nnscratch.engine.parallel import blas_single_thread

        for (sub, k), view in zip(self._entries, self._grad_views):
            sub.grads[k] = view  # in this process only: the layers write their gradients into the shared block
        with blas_single_thread():
            while True:
                message = conn.recv_bytes()
                if not message:
                    return
                scale = float(np.frombuffer(message[:8], np.float64)[0])
                index = np.frombuffer(message[8:], np.int64)
                logs = self.model.forward_backward([self.x[index]], [self.y[index]], scale=scale)
                conn.send_bytes(np.float64(logs["loss"]).tobytes())

    def __exit__(self, *exc):
        self._conn.send_bytes(b"")
        self._process.join(5)
        for shm in self._shm:
            shm.close()
            shm.unlink()
        return False

    def train_step(self, index):
        from nnscratch.engine.penalties import optimizer_step

        half = len(index) // 2
        mine, theirs = index[:half], index[half:]
        self._conn.send_bytes(np.float64(len(theirs) / len(index)).tobytes() + theirs.astype(np.int64).tobytes())
        logs = self.model.forward_backward([self.x[mine]], [self.y[mine]], scale=half / len(index))
        their_loss = float(np.frombuffer(self._conn.recv_bytes(), np.float64)[0])
        for (sub, k), view in zip(self._entries, self._grad_views):
            sub.grads[k] += view
        logs["loss"] = (logs["loss"] * half + their_loss * (len(index) - half)) / len(index)
        return optimizer_step(self.model, logs)


def _time(step, batches):
    start = time.perf_counter()
    for index in batches:
        step(index)
    return (time.perf_counter() - start) / len(batches) * 1e3


def run_row(row, steps, rounds, batch):
    from nnscratch.engine.parallel import DataParallel, blas_single_thread

    rng = np.random.default_rng(0)
    x = rng.random((batch * steps,) + SHAPES[row], dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    one, threads, procs = nnscratch_model(row, 0, 1), nnscratch_model(row, 0, 2), nnscratch_model(row, 0, 1)
    batches = [rng.permutation(len(x))[:batch] for _ in range(steps)]
    times = {"one thread": [], "two threads": [], "two processes": []}
    # BLAS held to one thread before the fork, so the worker starts that way too
    with blas_single_thread(), TwoProcesses(procs, x, y) as two, DataParallel(threads, 2) as runner:
        ways = {"one thread": lambda i: one._train_step([x[i]], [y[i]], None),
                "two threads": lambda i: runner.train_step([x], [y], i),
                "two processes": two.train_step}
        for way in ways.values():  # warm: workspaces, page faults
            _time(way, batches[:3])
        for _ in range(rounds):
            for name, way in ways.items():
                times[name].append(_time(way, batches))
        drift = max(float(np.abs(threads.get_weights()[k] - procs.get_weights()[k]).max())
                    for k in threads.get_weights())
    base = statistics.median(times["one thread"])
    print(f"{row}: ms per step of {batch}, median of {rounds} rounds of {steps} steps (min-max); "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, values in times.items():
        speedup = [a / b for a, b in zip(times["one thread"], values)]
        print(f"  {name:14s} {statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})   "
              f"speed-up over one thread {statistics.median(speedup):.2f} (per-round median; at the median "
              f"times {base / statistics.median(values):.2f})")
    print(f"  largest difference between the threads' and the processes' weights afterwards: {drift:.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=("lenet5", "mlp", "vgg"), default=["lenet5", "mlp"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}")
    for row in args.rows:
        run_row(row, args.steps, args.rounds, args.batch_size)


if __name__ == "__main__":
    main()

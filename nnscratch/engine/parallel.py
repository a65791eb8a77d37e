"""Data parallelism over threads: one batch, cut into contiguous chunks, runs through per-thread
replicas of the model at once, and the chunks' gradients are summed before one optimizer step.

Why threads work here: NumPy releases the GIL inside its array loops, so two threads keep two cores
busy on the element-wise work (ReLU, pooling, im2col copies) that a single NumPy call runs on one core.
BLAS is held to one thread meanwhile: its own threads would only compete with ours for the cores.

Replicas share the parameter arrays (the same ``params`` dict) and keep their own gradients and
forward caches. Chunk boundaries and the order in which gradients are summed depend only on the batch
size and the thread count, so a run is reproducible bit for bit for a given ``Model(threads=...)``.

Example:
    >>> default_threads() >= 1
    True
"""
from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

#: below this many activations per chunk, handing work to threads costs more than it saves
MIN_ACTIVATIONS_PER_CHUNK = 100_000
#: more chunks than this makes each too small to keep BLAS and NumPy efficient
MAX_THREADS = 4


def default_threads() -> int:
    """The cores this process may run on, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def chunk_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, near-equal ``(start, stop)`` ranges covering ``range(n)`` (fewer if ``n < parts``).

    Example:
        >>> chunk_bounds(10, 3)
        [(0, 4), (4, 7), (7, 10)]
    """
    parts = max(1, min(parts, n))
    edges = [(n * i) // parts for i in range(parts + 1)]
    edges = [n - e for e in reversed(edges)]  # the larger chunks first
    return list(zip(edges[:-1], edges[1:]))


def worthwhile(model, batch_size: int, threads: int) -> bool:
    """Whether chunks of ``batch_size / threads`` samples carry enough work to run in threads."""
    if threads < 2 or batch_size < 2:
        return False
    per_sample = sum(int(np.prod(layer.output_shape)) for layer in model.layers)
    return (batch_size // threads) * per_sample >= MIN_ACTIVATIONS_PER_CHUNK


def _blas_limit():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a soft dependency: without it BLAS keeps its threads (slower, still correct)
        return None
    return threadpool_limits(limits=1, user_api="blas")


class DataParallel:
    """Runs ``model`` on chunks of each batch in ``threads`` threads. Use as a context manager.

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        threads: number of chunks and threads (>= 2).
    """

    def __init__(self, model, threads: int):
        self.model = model
        self.threads = threads
        self.replicas = [model.layers] + [self._replicate(model.layers) for _ in range(threads - 1)]
        self._stack = ExitStack()
        self._pool = None

    @staticmethod
    def _replicate(layers):
        replica = []
        for layer in layers:
            twin = copy.copy(layer)  # shares params/constants dicts, so every update reaches it
            twin.grads = {k: np.zeros_like(v) for k, v in layer.grads.items()}
            twin.workspace = {}  # scratch arrays are written during forward/backward: one set per thread
            replica.append(twin)
        return replica

    def __enter__(self):
        self._pool = self._stack.enter_context(ThreadPoolExecutor(self.threads - 1, thread_name_prefix="nnscratch"))
        limit = _blas_limit()
        if limit is not None:
            self._stack.enter_context(limit)
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._pool = None
        return False

    def reseed(self, seed: int, epoch: int) -> None:
        """Gives each replica's stochastic layers their own stream for this epoch (replica 0 keeps
        the model's own, set by ``fit``)."""
        for r, layers in enumerate(self.replicas[1:], start=1):
            for i, layer in enumerate(layers):
                if layer.stochastic:
                    layer.rng = np.random.default_rng([seed, epoch, i, r])

    def train_step(self, x, y, index=None) -> dict:
        """Forward, backward and one optimizer step on the batch ``(x[index], y[index])`` (default: all of
        ``x, y``); returns the batch logs.

        Each thread gathers its own chunk of an index array, so the gathering runs in parallel and the
        pool thread is woken before it starts rather than after.
        """
        model = self.model
        if index is None:
            index = slice(0, len(x))
        if isinstance(index, slice):  # one with plain bounds, so a chunk of it is a slice too
            start, stop, step = index.indices(len(x))
            index = slice(start, max(start, stop)) if step == 1 else np.arange(start, stop, step)
        n = index.stop - index.start if isinstance(index, slice) else len(index)
        bounds = chunk_bounds(n, self.threads)

        def work(r):
            start, stop = bounds[r]
            if isinstance(index, slice):
                part = slice(index.start + start, index.start + stop)
            else:
                part = index[start:stop]
            return model.forward_backward(x[part], y[part], layers=self.replicas[r], scale=(stop - start) / n)

        results = self._run(work, len(bounds))
        for i, layer in enumerate(model.layers):
            for key, grad in layer.grads.items():
                for r in range(1, len(bounds)):
                    grad += self.replicas[r][i].grads[key]
        model.optimizer.step(model.trainable_params())
        weights = [(stop - start) / n for start, stop in bounds]
        return {k: float(sum(w * res[k] for w, res in zip(weights, results))) for k in results[0]}

    def forward(self, x):
        """Inference on ``x`` in chunks: ``(output, logits)`` as :meth:`Model.forward` returns them."""
        bounds = chunk_bounds(len(x), self.threads)
        return _join(self._run(
            lambda r: inference_forward(self.model, x[bounds[r][0]:bounds[r][1]], self.replicas[r]), len(bounds)))

    def _run(self, work, chunks: int) -> list:
        """``[work(0), ..., work(chunks - 1)]``, chunk 0 in the calling thread and the rest in the pool.

        The calling thread would otherwise only wait; waking one pool thread fewer per batch saved
        ~0.6-1 ms of a ~16 ms LeNet-5 step on this VM, where an idle virtual CPU is slow to wake.
        """
        futures = [self._pool.submit(work, r) for r in range(1, chunks)]
        first = work(0)
        return [first] + [f.result() for f in futures]


def _join(parts):
    """One ``(output, logits)`` from the ``(output, logits)`` of consecutive pieces of a batch."""
    output = np.concatenate([p[0] for p in parts])
    logits = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    return output, logits


#: inference runs through the layers this many samples at a time: a batch of 1000 LeNet-5 inputs unfolds
#: into ~80 MB of im2col columns, far out of cache; pieces of 128 ran 1.7x faster here
INFERENCE_PIECE = 128


def inference_forward(model, x, layers=None):
    """``model.forward(x, training=False)`` in pieces of at most :data:`INFERENCE_PIECE` samples."""
    if len(x) <= INFERENCE_PIECE:
        return model.forward(x, training=False, layers=layers)
    return _join([model.forward(x[s:s + INFERENCE_PIECE], training=False, layers=layers)
                  for s in range(0, len(x), INFERENCE_PIECE)])

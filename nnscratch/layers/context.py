"""What a layer may learn about the batch it computes a part of: whole-batch sums and random draws.

When a model trains, a batch may be cut into chunks that run at once in several threads (and, with MPI,
in several processes). Most layers never notice: each sample is computed on its own. Two kinds of layer do:

* layers whose training forward couples the samples of a batch (BatchNormalization's batch statistics)
  gather a partial result from every chunk with :func:`gather` and combine the parts, so each chunk sees
  the statistics of the whole batch;
* stochastic layers (Dropout, augmentation) draw with :func:`uniform`, which hands each chunk its rows of
  one draw made for the whole batch, so the numbers do not depend on how the batch was cut.

The engine installs a :class:`BatchContext` around every forward call it makes; outside it (a layer
called on its own), a batch is one chunk and draws come from the layer's own ``rng``. Layers reach these
through ``Layer.batch_gather``, ``Layer.batch_sum`` and ``Layer.batch_uniform``.

Example:
    >>> import numpy as np
    >>> ctx = BatchContext(offset=2, total=5, seed=(0, 0, 0))
    >>> with installed(ctx):
    ...     part = uniform(None, (3, 2))           # rows 2..4 of a (5, 2) draw
    >>> with installed(BatchContext(offset=0, total=5, seed=(0, 0, 0))):
    ...     whole = uniform(None, (5, 2))
    >>> bool(np.array_equal(part, whole[2:]))
    True
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_local = threading.local()


class BatchContext:
    """The chunk of a batch that the current thread computes.

    Args:
        offset: index of the chunk's first sample within the whole batch.
        total: samples in the whole batch.
        seed: integers that name this batch's random streams (the model's seed, the epoch and the step),
            or None to draw from each layer's ``rng``.
        exchange: ``f(array) -> [array of every chunk, in batch order]``; None when the chunk is the batch.

    Attributes:
        node: which call in the model's graph is running (set by the engine before each forward), so two
            calls of one layer draw different numbers.
        draw: how many draws this call has made so far.
    """

    __slots__ = ("offset", "total", "seed", "exchange", "node", "draw")

    def __init__(self, offset=0, total=None, seed=None, exchange=None):
        self.offset = int(offset)
        self.total = total
        self.seed = None if seed is None else tuple(int(s) for s in seed)
        self.exchange = exchange
        self.node = 0
        self.draw = 0

    def at_node(self, node: int) -> "BatchContext":
        self.node = node
        self.draw = 0
        return self


def current() -> BatchContext | None:
    """The context of the calling thread, or None outside an engine-run forward."""
    return getattr(_local, "context", None)


@contextlib.contextmanager
def installed(context: BatchContext | None):
    """Makes ``context`` the calling thread's context for the ``with`` block."""
    old = getattr(_local, "context", None)
    _local.context = context
    try:
        yield context
    finally:
        _local.context = old


def gather(array: np.ndarray) -> list[np.ndarray]:
    """``[array of chunk 0, array of chunk 1, ...]`` for the whole batch; ``[array]`` outside a split batch.

    Every chunk must call it the same number of times in the same order (they run the same graph).
    """
    context = current()
    if context is None or context.exchange is None:
        return [array]
    return context.exchange(array)


def batch_sum(array: np.ndarray) -> np.ndarray:
    """The sum of ``array`` over every chunk of the batch, added in batch order (so reproducible)."""
    context = current()
    add = getattr(context.exchange, "sum", None) if context is not None else None
    if add is not None:  # an exchange that sums by itself: across processes, one fixed-size collective
        return add(array)
    parts = gather(array)
    if len(parts) == 1:
        return parts[0]
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def uniform(rng: np.random.Generator | None, shape) -> np.ndarray:
    """Uniform float64 draws in ``[0, 1)`` of ``shape``, whose first axis is this chunk's samples.

    Inside a context with a seed they are rows ``offset .. offset + shape[0]`` of one draw of shape
    ``(total, *shape[1:])`` from the stream named by ``(seed, node, draw)``: PCG64 skips ahead to the
    chunk's first value (each float64 consumes exactly one 64-bit output), so no chunk draws numbers it
    does not use. Otherwise they come from ``rng``.
    """
    shape = tuple(int(d) for d in shape)
    context = current()
    if context is None or context.seed is None:
        if rng is None:
            raise ValueError("uniform needs a generator outside a seeded batch context")
        return rng.random(shape)
    per_sample = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    bits = np.random.PCG64(np.random.SeedSequence(context.seed + (context.node, context.draw)))
    context.draw += 1
    if context.offset:
        bits.advance(context.offset * per_sample)
    return np.random.Generator(bits).random(shape)

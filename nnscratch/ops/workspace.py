"""Scratch arrays kept between batches.

A LeNet-5 convolution unfolds a batch of 64 images into a 5 MB column matrix. Allocated afresh on
every batch, such an array is handed back to the operating system when it is freed and faulted in
again, page by page, on the next batch; with two threads doing this at once the page faults also
contend for the process's memory map. Measured on LeNet-5 training with 2 threads: ~140 page faults
and 10-15 % of the step time. A layer keeps these arrays in its ``workspace`` dict instead.

Example:
    >>> ws = {}
    >>> a = scratch(ws, "cols", (3, 4), np.float32)
    >>> b = scratch(ws, "cols", (2, 4), np.float32)   # smaller: a view of the same memory
    >>> np.shares_memory(a, b), b.shape
    (True, (2, 4))
"""
from __future__ import annotations

import numpy as np


def scratch(workspace: dict | None, name: str, shape, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` with arbitrary contents, reused across calls.

    Args:
        workspace: the owner's dict (a layer's ``workspace``); None allocates a new array.
        name: which of the owner's arrays; each name is one block of memory, grown when a larger
            shape asks for it and otherwise shared by every shape.
        shape, dtype: of the array wanted.

    The caller must be done with the previous array of the same ``name`` (the layer's own earlier
    call), since the new one overwrites it. In inference the workspace is a :class:`SharedWorkspace`
    and the array comes from a pool that the other layers of the thread use too: it must not outlive
    the call (be returned, or read by a later call without a backward in between).
    """
    dtype = np.dtype(dtype)
    if workspace is None:
        return np.empty(shape, dtype)
    if isinstance(workspace, SharedWorkspace):
        workspace = workspace.shared
    size = int(np.prod(shape))
    block = workspace.get(name)
    if block is None or block.dtype != dtype or block.size < size:
        block = workspace[name] = np.empty(size, dtype)
    return block[:size].reshape(shape)


#: zero-padded copies kept per name, one per shape (a batch's last, shorter chunk has its own)
KEPT_SHAPES = 4


def zero_bordered(workspace: dict | None, name: str, shape, dtype) -> np.ndarray:
    """Like :func:`scratch` for a zero-padded copy: all zeros the first time ``name`` has this shape,
    afterwards exactly what the previous call with this shape left.

    A caller that only ever writes the same interior region therefore finds the border still zero.
    One array is kept per shape (up to :data:`KEPT_SHAPES`), so chunks of two sizes taking turns, as
    inference pieces of 128, 128, 128 and 116 images do, never zero a whole array again.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    if workspace is None:
        return np.zeros(shape, dtype)
    kept = workspace.setdefault(f"{name}:by_shape", {})
    buf = kept.get((shape, dtype))
    if buf is None:
        if len(kept) >= KEPT_SHAPES:
            kept.pop(next(iter(kept)))  # the oldest
        buf = kept[(shape, dtype)] = np.zeros(shape, dtype)
    return buf


class SharedWorkspace:
    """A layer's workspace during inference: :func:`scratch` arrays come from ``shared``, a pool that every layer
    of one thread uses in turn; everything else (:func:`zero_bordered` arrays, whatever a layer keeps there
    itself) stays in the layer's own dict, ``own``.

    In training a layer's column matrix must live until its backward, so every layer keeps its own; in inference
    nothing is read after the call returns (a convolution's output is always a new array), so one pool per
    thread serves them all. ResNet-20 predicting in pieces of 128 kept ~750 MB of columns per thread, one
    block per convolution; the pool holds the largest one. A zero-bordered copy stays per layer because two
    layers may pad arrays of one shape differently (the border of one would be the interior of the other).

    Example:
        >>> pool, first, second = {}, {}, {}
        >>> a = scratch(SharedWorkspace(first, pool), "cols", (4, 8), np.float32)
        >>> b = scratch(SharedWorkspace(second, pool), "cols", (2, 8), np.float32)
        >>> np.shares_memory(a, b), sorted(pool), first
        (True, ['cols'], {})
    """

    __slots__ = ("own", "shared")

    def __init__(self, own: dict, shared: dict):
        self.own = own
        self.shared = shared

    def get(self, name, default=None):
        return self.own.get(name, default)

    def __getitem__(self, name):
        return self.own[name]

    def __setitem__(self, name, value):
        self.own[name] = value

    def __contains__(self, name):
        return name in self.own

    def setdefault(self, name, default=None):
        return self.own.setdefault(name, default)

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

import math
import threading

import numpy as np


def scratch(workspace: dict | None, name: str, shape, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` with arbitrary contents, reused across calls.

    Args:
        workspace: the owner's dict (a layer's ``workspace``); None allocates a new array.
        name: which of the owner's arrays; each name is one block of memory, grown when a larger
            shape asks for it and otherwise shared by every shape.
        shape, dtype: of the array wanted.

    The caller must be done with the previous array of the same ``name`` (the layer's own earlier
    call), since the new one overwrites it. Arrays needed only during the call are better taken from
    :func:`temporary`, which every layer of a thread shares. In inference the workspace is a :class:`SharedWorkspace`
    and the array comes from a pool that the other layers of the thread use too: it must not outlive
    the call (be returned, or read by a later call without a backward in between).
    """
    dtype = np.dtype(dtype)
    if workspace is None:
        return np.empty(shape, dtype)
    if isinstance(workspace, SharedWorkspace):
        workspace = workspace.shared
    size = math.prod(shape)  # not np.prod: ~4 us of Python for every scratch array of every layer call
    block = workspace.get(name)
    if block is None or block.dtype != dtype or block.size < size:
        block = workspace[name] = np.empty(size, dtype)
    return block[:size].reshape(shape)


_per_thread = threading.local()


def thread_pool() -> dict:
    """The calling thread's pool of :func:`temporary` arrays in training (a dict of name -> block).

    It lives as long as the thread: a data-parallel ``fit``'s worker threads drop theirs when the fit ends;
    the calling thread keeps its blocks for its next call (the largest temporary of each name, ~60 MB for a
    ResNet-20 chunk of 64 images, against ~400 MB when every layer kept its own).
    """
    pool = getattr(_per_thread, "pool", None)
    if pool is None:
        pool = _per_thread.pool = {}
    return pool


def temporary(workspace: dict | None, name: str, shape, dtype) -> np.ndarray:
    """Like :func:`scratch` for an array that is dead once the call that asks for it returns.

    Every layer of a thread takes such arrays from one pool: :func:`thread_pool` with a layer's own
    workspace (training), the inference pool with a :class:`SharedWorkspace`; without a workspace, a new
    array. Nothing that outlives the call (what backward reads, a result) may be one: a later layer of the
    same thread overwrites it.

    Example:
        >>> a = temporary({}, "dout_rows", (2, 3), np.float32)
        >>> b = temporary({}, "dout_rows", (3, 2), np.float32)   # another layer's workspace, same thread
        >>> np.shares_memory(a, b)
        True
    """
    if workspace is None:
        return np.empty(shape, np.dtype(dtype))
    pool = workspace.shared if isinstance(workspace, SharedWorkspace) else thread_pool()
    return scratch(pool, name, shape, dtype)


def bordered(workspace: dict | None, name: str, shape, dtype, top: int, height: int, left: int,
             width: int, kept: bool = False) -> np.ndarray:
    """A :func:`temporary` ``(C, Hp, Wp, N)`` array that is zero outside rows ``top .. top + height`` and
    columns ``left .. left + width`` of axes 1 and 2; the caller fills that interior. ``kept=True``: a
    :func:`scratch` array of the layer's own instead, for one that backward reads.

    Only the border is written (four slices), so a padded copy costs one interior copy and no full zeroing,
    and one block serves every layer and every padding of the thread.

    Example:
        >>> a = bordered(None, "padded", (1, 4, 5, 2), np.float32, 1, 2, 2, 2)
        >>> a[:, 1:3, 2:4] = 7
        >>> a[0, :, :, 0]
        array([[0., 0., 0., 0., 0.],
               [0., 0., 7., 7., 0.],
               [0., 0., 7., 7., 0.],
               [0., 0., 0., 0., 0.]], dtype=float32)
    """
    a = (scratch if kept else temporary)(workspace, name, shape, dtype)
    a[:, :top] = 0
    a[:, top + height:] = 0
    a[:, top:top + height, :left] = 0
    a[:, top:top + height, left + width:] = 0
    return a


class SharedWorkspace:
    """A layer's workspace during inference: :func:`scratch` and :func:`temporary` arrays come from ``shared``, a
    pool that every layer of one thread uses in turn; whatever a layer keeps there itself stays in the layer's
    own dict, ``own``.

    In training a layer's column matrix must live until its backward, so every layer keeps its own; in inference
    nothing is read after the call returns (a convolution's output is always a new array), so one pool per
    thread serves them all. ResNet-20 predicting in pieces of 128 kept ~750 MB of columns per thread, one
    block per convolution; the pool holds the largest one.

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


def backward_follows(workspace) -> bool:
    """Whether a backward may follow the call that uses ``workspace``: False inside an inference plan (a
    :class:`SharedWorkspace`), where a layer need keep nothing for a backward.

    Example:
        >>> backward_follows({}), backward_follows(None), backward_follows(SharedWorkspace({}, {}))
        (True, True, False)
    """
    return not isinstance(workspace, SharedWorkspace)

"""How image batches are stored: logically ``(N, H, W, C)``, in memory often ``(C, H, W, N)``.

Every layer sees a batch of images as a channels-last array ``(N, H, W, C)``. The convolution and
pooling kernels, however, *store* what they return batch-innermost, as ``(C, H, W, N)`` ("CHWN", the
layout of cuda-convnet), and hand out the transposed view, so shapes and values are exactly what
channels-last code expects.

Why: NumPy copies and element-wise passes are fast on long contiguous runs and slow on short ones.
Every window offset that im2col, col2im and pooling touch is a slice ``x[:, i::s, j::s]``; in CHWN
each of its rows is a run of ``Wo * N`` elements, in NHWC a run of ``C`` (or ``kw * C``) elements.
The convolution's GEMMs then read and write ``(F, Ho * Wo * N)`` matrices with no transposes.
Measured on LeNet-5 (batch 64, one core): conv-pool-conv-pool forward 6.2 ms stored NHWC, 3.6 ms CHWN.

A layer written without any of this in mind still works: a transposed view is an ordinary ndarray,
NumPy computes the same values whatever the memory order, and ``reshape`` copies when it must.

Example:
    >>> x = np.arange(24.0).reshape(2, 3, 2, 2)     # (N, H, W, C), stored NHWC
    >>> stored = to_chwn(x)                          # (C, H, W, N), a copy
    >>> y = from_chwn(stored)                        # (N, H, W, C) again, a free view
    >>> bool((y == x).all()), y.flags.c_contiguous, np.shares_memory(to_chwn(y), stored)
    (True, False, True)
"""
from __future__ import annotations

import numpy as np


def to_chwn(x: np.ndarray) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` as a C-contiguous ``(C, H, W, N)`` array; a free view when ``x`` is stored that way."""
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0))


def from_chwn(a: np.ndarray) -> np.ndarray:
    """The ``(N, H, W, C)`` view of a ``(C, H, W, N)`` array (no copy)."""
    return a.transpose(3, 1, 2, 0)


def spatial_first(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``x`` ``(N, H, W, C)`` as a C-contiguous 4-D array with the image axes at 1 and 2, copying only
    when ``x`` is stored neither NHWC nor CHWN.

    Returns:
        ``(array, flipped)``: ``x`` itself and False when ``x`` is C-contiguous; otherwise the ``(C, H, W, N)``
        array and True. Kernels that only reduce or scatter over axes 1 and 2 (pooling) run on either;
        :func:`restore` turns their result back into ``(N, H, W, C)``.
    """
    if x.flags.c_contiguous:
        return x, False
    return to_chwn(x), True


def oriented(a: np.ndarray, flipped: bool) -> np.ndarray:
    """``a`` ``(N, H, W, C)`` in the orientation :func:`spatial_first` chose, C-contiguous."""
    return to_chwn(a) if flipped else np.ascontiguousarray(a)


def restore(a: np.ndarray, flipped: bool) -> np.ndarray:
    """Undoes :func:`spatial_first`'s orientation on a result (no copy)."""
    return from_chwn(a) if flipped else a


def is_chwn(x: np.ndarray) -> bool:
    """True when ``x`` ``(N, H, W, C)`` is stored batch-innermost (and not also C-contiguous)."""
    return x.ndim == 4 and not x.flags.c_contiguous and x.transpose(3, 1, 2, 0).flags.c_contiguous


def stored_like(a: np.ndarray, chwn: bool) -> np.ndarray:
    """``a`` ``(N, H, W, C)`` stored batch-innermost when ``chwn`` (one transposing copy if it is not yet),
    else ``a`` as it is.

    Layers whose backward builds a gradient in C order use it to hand the gradient back stored the way
    their input was, so the element-wise backward passes before the next convolution run on arrays of
    one storage order and the transpose happens once, on the smaller array.
    """
    return from_chwn(to_chwn(a)) if chwn else a

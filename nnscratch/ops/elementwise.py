"""Element-wise passes that NumPy runs slower than it need, done another way with the same bits.

NumPy 2.4's ``np.maximum`` has a vectorised loop for two contiguous arrays but none for an array and a scalar:
``np.maximum(x, 0)`` over 64 images of 32x32x16 in float32 (4 MB) took 0.31 ms here, against 0.07 for
``x * 2`` and 0.10 for the same ``np.maximum`` against an array of zeros. :func:`positive_part` takes its zeros
from a small read-only row broadcast down the data in its own memory order, so every inner loop is the
vectorised one.

Example:
    >>> positive_part(np.array([[-1.0, 2.0], [0.5, -0.0]]))
    array([[0. , 2. ],
           [0.5, 0. ]])
"""
from __future__ import annotations

import numpy as np

#: values per row of zeros: long enough that the loop over rows costs nothing (~1 % at 4,096 per row against
#: 16,384, measured on 4 MB), short enough (64 KB in float32) to stay in cache
ZEROS_WIDTH = 16384

_zeros: dict = {}


def _zero_row(dtype: np.dtype) -> np.ndarray:
    row = _zeros.get(dtype)
    if row is None:
        row = np.zeros(ZEROS_WIDTH, dtype)
        row.flags.writeable = False
        row = _zeros.setdefault(dtype, row)  # atomic: threads racing here all get the first row stored
    return row


def positive_part(x: np.ndarray) -> np.ndarray:
    """``np.maximum(x, 0)`` in a new array with ``x``'s shape and memory order, bit for bit (NaN stays NaN, -0.0
    becomes 0.0), about 3x faster on large arrays.

    Args:
        x: a NumPy array of any shape and memory order.

    Returns:
        ``max(x, 0)`` element by element, stored in ``x``'s axis order (a convolution's CHWN output stays CHWN).

    Example:
        >>> x = np.arange(-3.0, 3.0).reshape(2, 3).T          # stored column by column
        >>> y = positive_part(x)
        >>> y.tolist(), y.flags.f_contiguous
        ([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]], True)
    """
    x = np.asarray(x)
    if x.size < ZEROS_WIDTH or x.dtype.kind != "f":
        return np.maximum(x, 0)
    order = sorted(range(x.ndim), key=lambda a: -x.strides[a])  # the axes from outermost to innermost in memory
    stored = x.transpose(order)
    if not stored.flags.c_contiguous:  # not one block of memory (a slice with gaps): the plain way
        return np.maximum(x, 0)
    out = np.empty(stored.shape, x.dtype)
    flat, into = stored.reshape(-1), out.reshape(-1)
    zeros = _zero_row(x.dtype)
    whole = flat.size - flat.size % ZEROS_WIDTH
    np.maximum(flat[:whole].reshape(-1, ZEROS_WIDTH), zeros, out=into[:whole].reshape(-1, ZEROS_WIDTH))
    if whole < flat.size:
        np.maximum(flat[whole:], zeros[:flat.size - whole], out=into[whole:])
    return out.transpose(np.argsort(order))

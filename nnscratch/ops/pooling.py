"""Pooling kernels on image batches ``(N, H, W, C)``.

Pooling only reduces and scatters over the image axes, so every kernel runs on whichever of the two
storage orders its input has (:func:`~nnscratch.ops.layout.spatial_first`): ``(N, H, W, C)`` as it is,
or the ``(C, H, W, N)`` array behind a CHWN-stored input, which the convolution kernels produce. Results
come back in the input's storage order, as ``(N, H, W, C)`` arrays or views.

Windows are reduced through strided views, rows first: a row slice ``a[:, i::sh]`` streams runs of
``W * C`` (or ``W * N``) contiguous elements, while a column slice ``a[:, :, j::sw]`` only has runs of
``C`` (or ``N``), so reducing the ``kh`` rows before the ``kw`` columns leaves the slower pass on an
array ``kh`` times smaller.
The only Python loops run over window offsets (``kh + kw`` in forward, ``kh * kw`` in backward).
Non-overlapping windows (stride >= pool size, the common case) are written straight into the
gradient instead of accumulated.

Padding: max pooling pads with ``-inf`` (padding never wins); sum/average pooling pad with zeros, and
:func:`window_counts` gives the number of real elements per window for averages that ignore the padding
(Keras/TensorFlow ``'same'``).
"""
from __future__ import annotations

import numpy as np

from .im2col import Pads, output_hw, pad_spatial
from .layout import from_chwn, oriented, restore, spatial_first


def _rows(xp, k, s, n_out):
    return [xp[:, i:i + (n_out - 1) * s + 1:s] for i in range(k)]


def _cols(v, k, s, n_out):
    return [v[:, :, j:j + (n_out - 1) * s + 1:s] for j in range(k)]


def _reduce(xp, pool_size, strides, out_hw, ufunc):
    """``ufunc``-reduction of every window of padded ``xp``; always returns a new array."""
    (kh, kw), (sh, sw), (ho, wo) = pool_size, strides, out_hw
    rows = _rows(xp, kh, sh, ho)
    v = rows[0] if kh == 1 else ufunc(rows[0], rows[1])
    for r in rows[2:]:
        ufunc(v, r, out=v)
    cols = _cols(v, kw, sw, wo)
    out = cols[0].copy() if kw == 1 else ufunc(cols[0], cols[1])
    for c in cols[2:]:
        ufunc(out, c, out=out)
    return out


def _tiles(pool_size, strides, padded_hw, out_hw) -> bool:
    """True when the windows cover every padded position exactly once (stride == pool, nothing left over)."""
    return all(k == s and n * s == p for k, s, p, n in zip(pool_size, strides, padded_hw, out_hw))


def max_pool_forward(x: np.ndarray, pool_size, strides, pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """Maximum of every window.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(kh, kw)``.
        strides: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))``, filled with ``-inf``.

    Returns:
        ``(N, Ho, Wo, C)``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> max_pool_forward(x, (2, 2), (2, 2))[0, :, :, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """
    out_hw = output_hw(x.shape[1:3], pool_size, strides, pads)
    a, flipped = spatial_first(x)
    return restore(_reduce(pad_spatial(a, pads, -np.inf), pool_size, strides, out_hw, np.maximum), flipped)


def max_pool_backward(dout: np.ndarray, x: np.ndarray, out: np.ndarray, pool_size, strides,
                      pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """Routes each window's gradient to exactly one input: its maximum, the first one in column-major
    window order when several elements tie (leftmost column first, then topmost; the rule the fast
    2x2 path gets for free from its rows-first reduction).

    Recomputing the argmax here from ``x`` and ``out`` (instead of storing it in forward) keeps
    inference free of that cost.

    Args:
        dout: ``(N, Ho, Wo, C)``.
        x: the forward input ``(N, H, W, C)``.
        out: the forward output ``(N, Ho, Wo, C)``.
        pool_size, strides, pads: as in forward.

    Returns:
        ``dx`` ``(N, H, W, C)``.

    Example:
        >>> x = np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1)
        >>> out = max_pool_forward(x, (2, 2), (2, 2))
        >>> max_pool_backward(np.ones_like(out), x, out, (2, 2), (2, 2))[0, :, :, 0]
        array([[0., 0.],
               [1., 0.]])
    """
    (kh, kw), (sh, sw) = pool_size, strides
    _, ho, wo, _ = out.shape
    a, flipped = spatial_first(x)
    out, dout = oriented(out, flipped), oriented(dout, flipped)
    xp = pad_spatial(a, pads, -np.inf)
    tiles = _tiles(pool_size, strides, xp.shape[1:3], (ho, wo))
    disjoint = sh >= kh and sw >= kw
    dxp = (np.empty if tiles else np.zeros)(xp.shape, dtype=dout.dtype)
    # Strided slices (runs of C elements) cost ~10x a contiguous pass, so each offset does exactly one
    # strided read (the comparison) and one strided write; the bookkeeping runs on contiguous arrays.
    hit = np.empty(out.shape, dtype=bool)
    contrib = np.empty_like(dout)
    remaining = dout  # the part of each window's gradient not yet routed
    last = kh * kw - 1
    for index in range(kh * kw):
        j, i = divmod(index, kh)  # column-major, the order the fast 2x2 path's rows-first reduction decides in
        rows = slice(i, i + (ho - 1) * sh + 1, sh)
        cols = slice(j, j + (wo - 1) * sw + 1, sw)
        np.equal(xp[:, rows, cols], out, out=hit)
        np.multiply(remaining, hit, out=contrib)
        if index < last:
            # exact: r - r == 0 and r - 0 == r, so later ties get nothing
            remaining = remaining - contrib if index == 0 else np.subtract(remaining, contrib, out=remaining)
        target = dxp[:, rows, cols]
        if disjoint:
            target[...] = contrib
        else:
            target += contrib
    (t, _), (l, _) = pads
    h, w = x.shape[1:3]
    return restore(dxp if dxp.shape == a.shape else np.ascontiguousarray(dxp[:, t:t + h, l:l + w]), flipped)


def max_pool_2x2_forward(x: np.ndarray):
    """2x2 max pooling with stride 2 that also records each window's winner, for training.

    Rows first: the two rows of every window are whole contiguous runs of ``W * C`` elements, so the
    row comparison is a fast contiguous pass; only the column step walks runs of ``C``. Deciding the
    winners here leaves backward contiguous arithmetic and two strided writes, instead of the generic
    backward's four strided comparisons and accumulations. Ties go to the first maximum in
    column-major window order, the rule :func:`max_pool_backward` uses too.

    Args:
        x: ``(N, H, W, C)`` with even ``H`` and ``W``.

    Returns:
        ``(out, winners)``: ``out`` ``(N, H/2, W/2, C)``; ``winners`` is what :func:`max_pool_2x2_backward` needs.

    Example:
        >>> x = np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1)
        >>> out, winners = max_pool_2x2_forward(x)
        >>> max_pool_2x2_backward(np.ones_like(out), winners)[0, :, :, 0]
        array([[0., 0.],
               [1., 0.]])
    """
    a, flipped = spatial_first(x)
    n, h, w, c = a.shape
    a6 = a.reshape(n, h // 2, 2, w // 2, 2, c)
    upper, lower = a6[:, :, 0], a6[:, :, 1]          # (N, Ho, Wo, 2, C), contiguous runs
    lower_wins = lower > upper                         # strict: the upper row keeps ties
    column_max = np.maximum(upper, lower)
    left, right = column_max[..., 0, :], column_max[..., 1, :]
    right_wins = right > left                          # strict: the left column keeps ties
    return restore(np.maximum(left, right), flipped), (lower_wins, right_wins, a.shape, flipped)


def max_pool_2x2_backward(dout: np.ndarray, winners) -> np.ndarray:
    """Gradient of :func:`max_pool_2x2_forward`: ``dout`` ``(N, H/2, W/2, C)`` -> ``dx`` ``(N, H, W, C)``."""
    lower_wins, right_wins, shape, flipped = winners
    dout = oriented(dout, flipped)
    n, h, w, c = shape
    d_column = np.empty(lower_wins.shape, dtype=dout.dtype)   # (N, Ho, Wo, 2, C)
    np.multiply(dout, right_wins, out=d_column[..., 1, :])
    np.subtract(dout, d_column[..., 1, :], out=d_column[..., 0, :])  # exact: one column gets it all
    dx = np.empty(shape, dtype=dout.dtype)
    dx6 = dx.reshape(n, h // 2, 2, w // 2, 2, c)
    np.multiply(d_column, lower_wins, out=dx6[:, :, 1])
    np.subtract(d_column, dx6[:, :, 1], out=dx6[:, :, 0])
    return restore(dx, flipped)


def sum_pool_forward(x: np.ndarray, pool_size, strides, pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """Sum of every window (zero padding).

    Example:
        >>> sum_pool_forward(np.ones((1, 4, 4, 1)), (2, 2), (2, 2))[0, :, :, 0]
        array([[4., 4.],
               [4., 4.]])
    """
    out_hw = output_hw(x.shape[1:3], pool_size, strides, pads)
    a, flipped = spatial_first(x)
    return restore(_reduce(pad_spatial(a, pads), pool_size, strides, out_hw, np.add), flipped)


def sum_pool_backward(dout: np.ndarray, input_shape, pool_size, strides, pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """Gradient of :func:`sum_pool_forward`: every input gets the sum of ``dout`` over the windows holding it.

    Args:
        dout: ``(N, Ho, Wo, C)``.
        input_shape: ``(N, H, W, C)``.

    Returns:
        ``dx`` of ``input_shape``.

    Example:
        >>> sum_pool_backward(np.ones((1, 2, 2, 1)), (1, 3, 3, 1), (2, 2), (1, 1))[0, :, :, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    n, h, w, c = input_shape
    (kh, kw), (sh, sw) = pool_size, strides
    (t, b), (l, r) = pads
    dout, flipped = spatial_first(dout)  # dx is stored the way dout is
    if flipped:
        n, c = c, n
    _, ho, wo, _ = dout.shape
    hp, wp = h + t + b, w + l + r
    # columns first on the small array, then rows (whose slices are long contiguous runs)
    if kw == 1 and sw == 1 and wo == wp:
        v = dout
    else:
        v = (np.empty if _tiles((kw,), (sw,), (wp,), (wo,)) else np.zeros)((n, ho, wp, c), dtype=dout.dtype)
        for j in range(kw):
            part = v[:, :, j:j + (wo - 1) * sw + 1:sw]
            if sw >= kw:
                part[...] = dout
            else:
                part += dout
    dxp = (np.empty if _tiles((kh,), (sh,), (hp,), (ho,)) else np.zeros)((n, hp, wp, c), dtype=dout.dtype)
    for i in range(kh):
        part = dxp[:, i:i + (ho - 1) * sh + 1:sh]
        if sh >= kh:
            part[...] = v
        else:
            part += v
    return restore(dxp if dxp.shape == (n, h, w, c) else np.ascontiguousarray(dxp[:, t:t + h, l:l + w]), flipped)


def window_counts(input_hw, pool_size, strides, pads: Pads) -> np.ndarray:
    """How many real (non-padding) elements each window holds, ``(Ho, Wo, 1)`` float64.

    Example:
        >>> window_counts((3, 3), (2, 2), (2, 2), ((0, 1), (0, 1)))[:, :, 0]
        array([[4., 2.],
               [2., 1.]])
    """
    ones = np.ones((1,) + tuple(input_hw) + (1,))
    return sum_pool_forward(ones, pool_size, strides, pads)[0]


def global_avg_pool_forward(x: np.ndarray) -> np.ndarray:
    """Mean over height and width: ``(N, H, W, C)`` -> ``(N, C)``.

    Example:
        >>> global_avg_pool_forward(np.arange(8.0).reshape(1, 2, 2, 2))
        array([[3., 4.]])
    """
    a, flipped = spatial_first(x)
    n, h, w, c = a.shape
    # a batched vector-matrix product sums the H*W rows far faster than x.mean(axis=(1, 2))
    ones = np.full(h * w, 1.0 / (h * w), dtype=x.dtype)
    means = ones @ a.reshape(n, h * w, c)
    return means.T if flipped else means


def global_avg_pool_backward(dout: np.ndarray, input_shape, chwn: bool = False) -> np.ndarray:
    """Gradient of :func:`global_avg_pool_forward`: ``dout / (H * W)`` spread over every position,
    stored batch-innermost when ``chwn`` (as the forward input was)."""
    n, h, w, c = input_shape
    scale = dout.dtype.type(1.0 / (h * w))
    if chwn:
        dx = np.empty((c, h, w, n), dtype=dout.dtype)
        np.multiply(dout.T[:, None, None, :], scale, out=dx)
        return from_chwn(dx)
    dx = np.empty(input_shape, dtype=dout.dtype)
    np.multiply(dout[:, None, None, :], scale, out=dx)
    return dx

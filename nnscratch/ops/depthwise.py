"""Depthwise convolutions of stride 1 without a column matrix: row taps by GEMM, column taps by shifted sums.

A depthwise convolution filters each channel on its own, so im2col's column matrix, ``kh * kw`` copies of the
input, buys no reuse: its GEMM does one multiply per copied value. For a 3x3 kernel over 64 images of 32x32x32
that matrix is 75 MB, written and read back in forward and again in backward, and the layer ran 1.3-3.4x
PyTorch's time on one thread while the arithmetic is a tenth of a same-sized Conv2D's.

Here, in batch-innermost storage (:mod:`nnscratch.ops.layout`), the padded input's rows are runs of ``Wp * N``
values, so the ``kh`` padded rows that one output row of one channel meets form a strided ``(kh, Wp * N)``
matrix (a view). Small GEMMs ``(kw * m, kh) @ (kh, Wp * N)``, one per channel and output row (one ``np.matmul``
call for a block of them), apply every kernel row to every column tap at once; the ``kw`` column taps are then
``kw`` whole-array slices of the result, ``dw * N`` values apart, added up. The input gradient is the same
correlation of the zero-padded output gradient with the kernel flipped; the kernel gradient is one GEMV per
column tap, channel and output row. Channels and rows are processed a block at a time so each block's GEMM
result stays in cache.

What forward keeps for backward is the padded input, one copy of the input instead of ``kh * kw``.

Example:
    >>> import numpy as np
    >>> from nnscratch.ops.im2col import grouped_conv2d_forward
    >>> rng = np.random.default_rng(0)
    >>> x, k = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 2))
    >>> pads = ((1, 1), (1, 1))
    >>> out, _ = depthwise_forward(x, k, None, pads)
    >>> reference, _ = grouped_conv2d_forward(x, k.reshape(3, 3, 1, 6), None, 3, (1, 1), pads)
    >>> bool(np.allclose(out, reference))
    True
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .im2col import Pads, padded_chwn
from .layout import from_chwn, to_chwn
from .workspace import backward_follows, bordered, temporary

#: the values of the GEMM result (``kw * m`` column-tap planes) per block of channels and rows: ~1 MB in float32
VALUES_PER_BLOCK = 1 << 18


def applies(strides) -> bool:
    """Whether a depthwise convolution has the stride (1, 1) these kernels compute (any kernel, dilation and
    depth multiplier).

    Example:
        >>> applies((1, 1)), applies((2, 2))
        (True, False)
    """
    return tuple(strides) == (1, 1)


def _row_taps(padded: np.ndarray, first_row: int, taps: int, step: int, rows: int) -> np.ndarray:
    """``padded`` ``(C, R, W, N)`` (C-contiguous) as ``(C, rows, taps, W * N)``: tap ``a`` of output row ``i`` is
    padded row ``first_row + i + a * step`` (a view; the rows of neighbouring outputs overlap).

    One ``(taps, W * N)`` matrix per row and channel, so every GEMM reads a matrix whose rows are at least a row
    apart: a single ``(taps, rows * W * N)`` matrix of overlapping rows would be the same numbers in one GEMM,
    but NumPy hands BLAS only matrices whose rows do not overlap and multiplied it with its own loop, 1.6x slower.
    """
    c, r, w, n = padded.shape
    if first_row + (taps - 1) * step + rows > r or not padded.flags.c_contiguous:
        # an internal misuse: as_strided would read past the rows the array holds
        raise ValueError(f"_row_taps needs a C-contiguous array with {first_row + (taps - 1) * step + rows} rows; "
                         f"got shape {padded.shape}")
    row = w * n * padded.itemsize
    return as_strided(padded[:, first_row:], (c, rows, taps, w * n),
                      (padded.strides[0], row, step * row, padded.itemsize))


def _blocks(channels: int, rows: int, values_per_channel_row: int):
    """``(channel slice, row slice)`` pairs covering ``channels x rows`` with about :data:`VALUES_PER_BLOCK`
    values of ``values_per_channel_row`` each per block: whole channels when one fits, else row runs."""
    per_channel = rows * values_per_channel_row
    if per_channel >= VALUES_PER_BLOCK:
        step = max(1, VALUES_PER_BLOCK // values_per_channel_row)
        for c in range(channels):
            for i in range(0, rows, step):
                yield slice(c, c + 1), slice(i, min(i + step, rows))
    else:
        step = max(1, VALUES_PER_BLOCK // max(1, per_channel))  # an empty batch: one block of nothing
        for c in range(0, channels, step):
            yield slice(c, min(c + step, channels)), slice(0, rows)


def _correlate(padded, taps_matrix, dilation, out, first_row, first_col, workspace):
    """``out[c, mm, i, j] = sum_{a, b} K[c, b, mm, a] padded[c, first_row + i + a dh, first_col + j + b dw]``
    (over the trailing batch axis too): ``padded`` ``(C, R, Wp, N)``, ``taps_matrix`` ``(C, kw * m, kh)`` ordered
    ``(b, mm)``, ``out`` ``(C, m, Ho, Wo, N)`` (written, not added to)."""
    c, _, wp, n = padded.shape
    _, m, ho, wo, _ = out.shape
    kh = taps_matrix.shape[2]
    kw = taps_matrix.shape[1] // m
    dh, dw = dilation
    for cs, rs in _blocks(c, ho, kw * m * wp * n):
        rows = rs.stop - rs.start
        taps = _row_taps(padded[cs], first_row + rs.start, kh, dh, rows)
        cb = taps.shape[0]
        product = np.matmul(taps_matrix[cs, None], taps,
                            out=temporary(workspace, "depthwise_rows", (cb, rows, kw * m, wp * n), padded.dtype))
        product = product.reshape(cb, rows, kw, m, wp, n)
        block = out[cs, :, rs]

        def tap(b):  # (cb, m, rows, wo, n)
            start = first_col + b * dw
            return product[:, :, b, :, start:start + wo].transpose(0, 2, 1, 3, 4)

        if kw == 1:
            np.copyto(block, tap(0))
            continue
        np.add(tap(0), tap(1), out=block)
        for b in range(2, kw):
            block += tap(b)


def depthwise_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pads: Pads, dilation=(1, 1),
                      workspace: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A depthwise convolution of stride 1 (cross-correlation, as Keras' DepthwiseConv2D) plus ``bias``.

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(kh, kw, C, m)``, ``m`` maps per channel.
        bias: ``(C * m,)`` or None.
        pads: ``((top, bottom), (left, right))``; dilation: ``(dh, dw)``.
        workspace: scratch arrays kept between calls (a layer's ``workspace``), default None.

    Returns:
        ``(out, saved)``: ``out`` ``(N, Ho, Wo, C * m)`` stored CHWN, map ``c * m + mm`` from channel ``c``
        (Keras' order); ``saved``, what :func:`depthwise_backward` needs (None inside inference).
    """
    n, h, w, c = x.shape
    kh, kw, _, m = kernel.shape
    (t, b), (l, r) = pads
    dh, dw = dilation
    ho, wo = h + t + b - (kh - 1) * dh, w + l + r - (kw - 1) * dw
    if ho < 1 or wo < 1:
        raise ValueError(f"a {kh}x{kw} kernel (dilation {dh}x{dw}) needs a padded input of at least "
                         f"{(kh - 1) * dh + 1}x{(kw - 1) * dw + 1}, got {h + t + b}x{w + l + r} "
                         f"(input {h}x{w}, padding {pads}); pad more or use a larger input")
    keep = backward_follows(workspace)
    xp = padded_chwn(x, pads, workspace, "depthwise_padded", kept=keep)
    out = np.empty((c, m, ho, wo, n), x.dtype)
    taps_matrix = np.ascontiguousarray(kernel.astype(x.dtype, copy=False).transpose(2, 1, 3, 0)).reshape(c, kw * m, kh)
    _correlate(xp, taps_matrix, dilation, out, 0, 0, workspace)
    if bias is not None:
        out += bias.astype(x.dtype, copy=False).reshape(c, m, 1, 1, 1)
    return from_chwn(out.reshape(c * m, ho, wo, n)), (xp if keep else None)


def _kernel_gradient(dm, xp, kh, kw, dilation):
    """``dk[a, b, c, mm] = sum dm[c, mm, i, j] xp[c, i + a dh, j + b dw]`` over ``i, j`` and the batch, with
    ``dm`` ``(C, m, Ho, Wo, N)`` and ``xp`` ``(C, Hp, Wp, N)``: ``(kh, kw, C, m)``.

    Per column tap ``b``, one GEMV per channel, map and output row: the ``kh`` padded rows it meets, from column
    ``b dw`` on, times that row of ``dm``; then a sum over the rows. (GEMMs over blocks of rows, keeping the
    ``kh`` diagonals of each block's result, took 2.7x as long: they compute ``(rows + kh - 1) / kh`` times the
    products needed.)
    """
    c, m, ho, wo, n = dm.shape
    dh, dw = dilation
    dk = np.empty((kh, kw, c, m), np.result_type(dm, xp))
    rows_of_dm = dm.reshape(c, m, ho, wo * n, 1)
    row = xp.shape[2] * n * xp.itemsize
    for b in range(kw):
        taps = as_strided(xp[:, :, b * dw:], (c, ho, kh, wo * n), (xp.strides[0], row, dh * row, xp.itemsize))
        for mm in range(m):  # a loop, not a broadcast over the maps: NumPy's 5-D stacked matmul ran 1.3x slower
            per_row = np.matmul(taps, rows_of_dm[:, mm])                       # (C, Ho, kh, 1)
            dk[:, b, :, mm] = per_row[..., 0].sum(axis=1).T
    return dk


def depthwise_backward(dout: np.ndarray, saved, kernel: np.ndarray, input_shape, pads: Pads, dilation=(1, 1),
                       has_bias: bool = True, need_dx: bool = True, workspace: dict | None = None):
    """Gradients of :func:`depthwise_forward`: ``(dx or None, dkernel (kh, kw, C, m), dbias or None)``.

    Args:
        dout: ``(N, Ho, Wo, C * m)``, any memory order.
        saved: the second value :func:`depthwise_forward` returned.
        kernel, pads, dilation: as in forward; input_shape: ``(N, H, W, C)``.
        has_bias: return the bias gradient; need_dx: compute ``dx`` (False for a model's first layer).
        workspace: scratch arrays kept between calls, default None.

    ``dx`` is ``(N, H, W, C)`` stored CHWN.
    """
    if saved is None:
        raise RuntimeError("depthwise_backward after a forward inside predict/evaluate, which keeps nothing "
                           "for a backward; run the forward in training first")
    xp = saved
    n, h, w, c = input_shape
    kh, kw, _, m = kernel.shape
    (t, _), (l, _) = pads
    dh, dw = dilation
    dm = np.ascontiguousarray(to_chwn(dout))  # a free view of a convolution's CHWN-stored output gradient
    cm, ho, wo, _ = dm.shape
    dbias = None
    if has_bias:
        flat = dm.reshape(cm, -1)
        dbias = flat @ np.ones(flat.shape[1], flat.dtype)
    dm5 = dm.reshape(c, m, ho, wo, n)
    dkernel = _kernel_gradient(dm5, xp, kh, kw, dilation)
    if not need_dx:
        return None, dkernel, dbias
    # dx is the correlation of dout, zero-padded by the kernel's reach, with the flipped kernel, summed over the
    # m maps of each channel; only the rows and columns of the unpadded input are computed
    reach_h, reach_w = (kh - 1) * dh, (kw - 1) * dw
    flipped = np.ascontiguousarray(kernel[::-1, ::-1].astype(dm.dtype, copy=False).transpose(2, 3, 1, 0))
    dx = np.empty((c, 1, h, w, n), dm.dtype)
    wide = bordered(workspace, "depthwise_dout", (c, ho + 2 * reach_h, wo + 2 * reach_w, n), dm.dtype,
                    reach_h, ho, reach_w, wo)
    for mm in range(m):  # each map's gradient in turn in the same padded block: the border stays zero
        wide[:, reach_h:reach_h + ho, reach_w:reach_w + wo] = dm5[:, mm]
        target = dx if mm == 0 else temporary(workspace, "depthwise_dx_map", dx.shape, dm.dtype)
        _correlate(wide, flipped[:, mm].reshape(c, kw, kh), dilation, target, t, l, workspace)
        if mm:
            dx += target
    return from_chwn(dx.reshape(c, h, w, n)), dkernel, dbias

"""Padding arithmetic, im2col / col2im and the 2-D convolution kernels built on them.

All arrays are channels-last: inputs ``(N, H, W, C)``, kernels ``(kh, kw, C, F)``, outputs ``(N, Ho, Wo, F)``.
Every function works in the dtype it is given (float32 or float64) and never loops in Python over
samples or output positions; the only Python loops run over the ``kh * kw`` kernel offsets.

Layout notes (measured on a 2-core AMD EPYC with OpenBLAS; see ``benchmarks/bench_layers.py``):

* numpy copies and element-wise ops are fast when the innermost contiguous run is long and slow when it
  is a handful of elements. An NHWC im2col copies runs of ``kw * C`` elements (5 for a 1-channel input),
  a channels-first one runs of ``Wo`` elements. :func:`im2col` therefore fills the column matrix in
  whichever memory order gives the longer runs; the *logical* result is always ``(N*Ho*Wo, kh*kw*C)``
  and BLAS takes either order without a copy (the transposed one as a transposed operand).
* col2im accumulates ``kh * kw`` shifted slices. In NHWC those have runs of ``C`` elements, which made it
  10x slower than the GEMMs around it. :func:`conv2d_backward` instead accumulates into a
  ``(C, H, W, N)`` buffer, where a slice has runs of ``Wo * N`` elements, and transposes once at the end.
* A bias is folded into the GEMM as a column of ones (:func:`im2col` with ``ones_column=True``), which
  saves a broadcast add over the whole output in forward and a slow axis-0 sum in backward.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

#: ``((top, bottom), (left, right))`` zero rows/columns added around each image
Pads = tuple[tuple[int, int], tuple[int, int]]

PADDING_MODES = ("valid", "same", "full")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_padding(name: str, padding, modes=PADDING_MODES, explicit: bool = True):
    """Validates a padding argument at layer construction and returns it in a JSON-able form.

    Accepted: a mode name from ``modes``; when ``explicit``, also an int ``p`` (``p`` on every side),
    a pair ``(ph, pw)`` (``ph`` above and below, ``pw`` left and right) or ``((top, bottom), (left, right))``.

    Returns:
        The mode string, the int, or nested lists (tuples become lists so ``get_config`` is plain JSON).

    Example:
        >>> check_padding("padding", (1, (2, 0)))
        Traceback (most recent call last):
        ...
        ValueError: padding must be one of 'valid', 'same', 'full', a non-negative int, a pair (ph, pw), ((top, bottom), (left, right)); got (1, (2, 0))
        >>> check_padding("padding", ((1, 2), (0, 0)))
        [[1, 2], [0, 0]]
    """
    if isinstance(padding, str):
        if padding.lower() in modes:
            return padding.lower()
    elif not explicit:
        pass
    elif _is_int(padding) and padding >= 0:
        return int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(_is_int(p) and p >= 0 for p in padding):
            return [int(p) for p in padding]
        if all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(q) and q >= 0 for q in p)
               for p in padding):
            return [[int(q) for q in p] for p in padding]
    choices = [repr(m) for m in modes]
    if explicit:
        choices += ["a non-negative int", "a pair (ph, pw)", "((top, bottom), (left, right))"]
    raise ValueError(f"{name} must be one of {', '.join(choices)}; got {padding!r}")


def resolve_padding(padding, input_hw, kernel_hw, strides) -> Pads:
    """Turns a padding argument into explicit ``((top, bottom), (left, right))`` amounts.

    ``'valid'`` pads nothing; ``'full'`` pads ``k - 1`` on each side (every partial overlap);
    ``'same'`` follows TensorFlow/Keras: the output has ``ceil(size / stride)`` positions and the
    total padding ``max((out - 1) * stride + k - size, 0)`` is split with the extra row/column at
    the bottom/right, so an even kernel with stride 1 keeps the size with asymmetric padding.

    Example:
        >>> resolve_padding("same", (28, 28), (4, 4), (1, 1))
        ((1, 2), (1, 2))
        >>> resolve_padding("full", (14, 14), (5, 3), (1, 1))
        ((4, 4), (2, 2))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "full":
            return ((kernel_hw[0] - 1,) * 2, (kernel_hw[1] - 1,) * 2)
        if padding == "same":
            pads = []
            for size, k, s in zip(input_hw, kernel_hw, strides):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"unknown padding mode {padding!r}; use one of {PADDING_MODES}")
    if _is_int(padding):
        return ((padding, padding), (padding, padding))
    first, second = padding
    if _is_int(first):
        return ((first, first), (second, second))
    return (tuple(first), tuple(second))


def output_hw(input_hw, kernel_hw, strides, pads: Pads, what: str = "window") -> tuple[int, int]:
    """``(Ho, Wo)`` of a sliding window; ``ValueError`` when the window (``what``) does not fit even once.

    Example:
        >>> output_hw((28, 28), (5, 5), (1, 1), ((0, 0), (0, 0)))
        (24, 24)
    """
    out = []
    for axis, size, k, s, (before, after) in zip(("height", "width"), input_hw, kernel_hw, strides, pads):
        padded = size + before + after
        if k > padded:
            raise ValueError(
                f"the {what} {axis} {k} is larger than the padded input {axis} {padded} (input {size}, padding "
                f"{before}+{after}); use a smaller {what}, padding='same', or a larger input"
            )
        out.append((padded - k) // s + 1)
    return tuple(out)


def pad_nhwc(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` with ``pads`` rows/columns of ``value`` around each image (``x`` itself if none).

    Faster than ``np.pad`` (one allocation and one interior copy).
    """
    (t, b), (l, r) = pads
    if not (t or b or l or r):
        return x
    n, h, w, c = x.shape
    out = (np.zeros if value == 0 else np.empty)((n, h + t + b, w + l + r, c), dtype=x.dtype)
    if value != 0:
        out.fill(value)
    out[:, t:t + h, l:l + w, :] = x
    return out


def _windows_nhwc(xp, kernel_hw, strides, out_hw):
    """Read-only view ``(N, Ho, Wo, kh, kw, C)`` of the windows of a padded NHWC array."""
    kh, kw = kernel_hw
    sh, sw = strides
    ho, wo = out_hw
    v = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    return v[:, :(ho - 1) * sh + 1:sh, :(wo - 1) * sw + 1:sw].transpose(0, 1, 2, 4, 5, 3)


def choose_layout(channels: int, kernel_hw, strides, out_hw) -> str:
    """``'rows'`` (C-order ``(M, K)`` columns) or ``'cols'`` (C-order ``(K, M)``), whichever copies longer runs.

    A row-major column matrix copies runs of ``kw * C`` elements (a window row, whatever the stride); a
    column-major one copies runs of ``Wo`` (1 with a horizontal stride) from a channels-first copy of the
    input. Example: LeNet's C1 (1 channel, 5x5, 28 wide) -> ``'cols'``; C3 (6 channels, 10 wide) -> ``'rows'``.
    """
    run_rows = kernel_hw[1] * channels
    run_cols = out_hw[1] if strides[1] == 1 else 1
    return "cols" if run_cols > run_rows else "rows"


def im2col(x: np.ndarray, kernel_size, strides=(1, 1), pads: Pads = ((0, 0), (0, 0)), *,
           ones_column: bool = False, layout: str = "auto") -> np.ndarray:
    """Unfolds every ``kh x kw`` window of ``x`` into a row of a matrix.

    Args:
        x: ``(N, H, W, C)``.
        kernel_size: ``(kh, kw)``.
        strides: ``(sh, sw)``, default ``(1, 1)``.
        pads: ``((top, bottom), (left, right))`` zero padding, default none (see :func:`resolve_padding`).
        ones_column: append a column of ones (so ``cols @ [[kernel], [bias]]`` adds the bias), default False.
        layout: memory order of the result: ``'rows'`` (C-contiguous), ``'cols'`` (Fortran-contiguous,
            filled from a channels-first copy of ``x``) or ``'auto'`` (default: :func:`choose_layout`).
            The values are the same in every layout.

    Returns:
        ``cols`` ``(N * Ho * Wo, kh * kw * C (+1))``: row ``(n, ho, wo)`` in C order, column ``(i, j, c)``
        in C order, so ``cols @ kernel.reshape(-1, F)`` is the convolution ``(N * Ho * Wo, F)``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> im2col(x, (2, 2), (2, 2))
        array([[ 0.,  1.,  4.,  5.],
               [ 2.,  3.,  6.,  7.],
               [ 8.,  9., 12., 13.],
               [10., 11., 14., 15.]])
    """
    n, h, w, c = x.shape
    kh, kw = kernel_hw = tuple(kernel_size)
    sh, sw = strides = tuple(strides)
    ho, wo = output_hw((h, w), kernel_hw, strides, pads)
    m, k = n * ho * wo, kh * kw * c
    if layout == "auto":
        layout = choose_layout(c, kernel_hw, strides, (ho, wo))
    extra = 1 if ones_column else 0
    if layout == "rows":
        windows = _windows_nhwc(pad_nhwc(x, pads), kernel_hw, strides, (ho, wo))
        if not ones_column:
            return windows.reshape(m, k)  # the reshape is the one copy
        buf = np.empty((m, k + 1), dtype=x.dtype)
        buf[:, k] = 1
        # a 6-D writable view of the first k columns, filled in one strided copy
        item = buf.itemsize
        dst = as_strided(buf, (n, ho, wo, kh, kw, c),
                         ((k + 1) * ho * wo * item, (k + 1) * wo * item, (k + 1) * item, kw * c * item, c * item,
                          item))
        np.copyto(dst, windows)
        return buf
    if layout != "cols":
        raise ValueError(f"layout must be 'auto', 'rows' or 'cols', got {layout!r}")
    (t, b), (l, r) = pads
    if c == 1 and not (t or b or l or r) and x.flags.c_contiguous:
        xt = x.reshape(1, n, h, w)  # channels-first already: a free view
    else:
        xt = np.zeros((c, n, h + t + b, w + l + r), dtype=x.dtype)
        xt[:, :, t:t + h, l:l + w] = x.transpose(3, 0, 1, 2)
    buf = np.empty((k + extra, m), dtype=x.dtype)
    dst = buf[:k].reshape(kh, kw, c, n, ho, wo)
    for i in range(kh):
        for j in range(kw):
            dst[i, j] = xt[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
    if ones_column:
        buf[k] = 1
    return buf.T


def col2im(cols: np.ndarray, input_shape, kernel_size, strides=(1, 1), pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """The adjoint of :func:`im2col`: adds every row of ``cols`` back onto the window it came from.

    Args:
        cols: ``(N * Ho * Wo, kh * kw * C)`` in :func:`im2col`'s order (either memory layout;
            a Fortran-ordered one is fastest).
        input_shape: ``(N, H, W, C)`` of the unpadded input.
        kernel_size, strides, pads: as given to :func:`im2col`.

    Returns:
        ``dx`` ``(N, H, W, C)``; padding positions are dropped.

    Example:
        >>> x = np.ones((1, 3, 3, 1))
        >>> col2im(im2col(x, (2, 2)), x.shape, (2, 2))[0, :, :, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    n, h, w, c = input_shape
    kh, kw = kernel_size
    sh, sw = strides
    (t, b), (l, r) = pads
    ho, wo = output_hw((h, w), (kh, kw), (sh, sw), pads)
    # splitting axes is always a view, so this costs nothing in either memory layout
    d = cols[:, :kh * kw * c].reshape(n, ho, wo, kh, kw, c).transpose(3, 4, 5, 0, 1, 2)
    acc = np.zeros((c, n, h + t + b, w + l + r), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            acc[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += d[i, j]
    return np.ascontiguousarray(acc[:, :, t:t + h, l:l + w].transpose(1, 2, 3, 0))


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None, strides=(1, 1),
                   pads: Pads = ((0, 0), (0, 0)), layout: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation of ``x`` with ``kernel`` plus ``bias`` (what deep-learning libraries call convolution).

    Args:
        x: ``(N, H, W, C)``.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)`` or None.
        strides: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))``.
        layout: see :func:`im2col`.

    Returns:
        ``(out, cols)``: ``out`` ``(N, Ho, Wo, F)`` and the column matrix that :func:`conv2d_backward` needs.

    Example:
        >>> x = np.ones((1, 3, 3, 1))
        >>> out, _ = conv2d_forward(x, np.ones((2, 2, 1, 1)), np.array([0.5]))
        >>> out[0, :, :, 0]
        array([[4.5, 4.5],
               [4.5, 4.5]])
    """
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    ho, wo = output_hw((h, w), (kh, kw), strides, pads)
    w2 = kernel.reshape(kh * kw * c, f)
    if bias is not None:
        w2 = np.concatenate([w2, bias.reshape(1, f)])
    cols = im2col(x, (kh, kw), strides, pads, ones_column=bias is not None, layout=layout)
    return (cols @ w2).reshape(n, ho, wo, f), cols


def conv2d_backward(dout: np.ndarray, cols: np.ndarray, kernel: np.ndarray, input_shape, strides=(1, 1),
                    pads: Pads = ((0, 0), (0, 0)), has_bias: bool = True, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dout: ``(N, Ho, Wo, F)``, the gradient of the loss w.r.t. the output.
        cols: the column matrix returned by :func:`conv2d_forward`.
        kernel: ``(kh, kw, C, F)``, as used in forward.
        input_shape: ``(N, H, W, C)``.
        strides, pads: as in forward.
        has_bias: whether forward had a bias (``cols`` then ends with a column of ones).
        need_dx: compute ``dx``; False skips the col2im (a model's first layer), default True.

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` or None, ``dkernel`` ``(kh, kw, C, F)``,
        ``dbias`` ``(F,)`` or None.
    """
    n, h, w, c = input_shape
    kh, kw, _, f = kernel.shape
    k = kh * kw * c
    _, ho, wo, _ = dout.shape
    dm = dout.reshape(-1, f)
    dw = cols.T @ dm  # (K (+1), F); the ones column's row is the bias gradient
    dkernel = dw[:k].reshape(kernel.shape)
    dbias = dw[k].copy() if has_bias else None
    if not need_dx:
        return None, dkernel, dbias
    (t, b), (l, r) = pads
    sh, sw = strides
    # rows ordered (ho, wo, n) make every col2im slice below a run of wo * n contiguous elements
    dm_hwn = np.ascontiguousarray(dout.transpose(1, 2, 0, 3)).reshape(-1, f)
    dcols = (kernel.reshape(k, f) @ dm_hwn.T).reshape(kh, kw, c, ho, wo, n)
    acc = np.zeros((c, h + t + b, w + l + r, n), dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            acc[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :] += dcols[i, j]
    dx = np.ascontiguousarray(acc[:, t:t + h, l:l + w, :].transpose(3, 1, 2, 0))
    return dx, dkernel, dbias

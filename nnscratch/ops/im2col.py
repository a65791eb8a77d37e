"""Padding arithmetic, im2col / col2im and the 2-D convolution kernels built on them.

Image batches are ``(N, H, W, C)`` arrays and kernels ``(kh, kw, C, F)``. The kernels here work in the
batch-innermost storage order described in :mod:`nnscratch.ops.layout`: they read any ``(N, H, W, C)``
array (a CHWN-stored one for free, others with one transposing copy) and return ``(N, Ho, Wo, F)`` views
of ``(F, Ho, Wo, N)`` arrays. Every function works in the dtype it is given (float32 or float64) and
never loops in Python over samples or output positions; the only Python loops run over the ``kh * kw``
kernel offsets.

Layout notes (measured on a 2-core AMD EPYC with OpenBLAS; see ``benchmarks/bench_layers.py``):

* The column matrix is ``(kh * kw * C, Ho * Wo * N)``: every kernel offset fills ``C`` blocks of
  ``(Ho, Wo * N)``, whose rows are runs of ``Wo * N`` elements (whole padded-image rows times the batch
  for a stride of 1). Stored NHWC, the same copy moved runs of ``kw * C`` elements (5 for LeNet's C1)
  and cost 1.5-2x as much.
* All ``kh * kw`` offsets are copied in one NumPy call through a strided view: every call releases and
  retakes the GIL, and with two threads competing that handoff cost more than 25 separate copies.
* The input gradient of a convolution with a horizontal stride of 1 sums the kernel's columns inside
  one GEMM and needs ``kh`` slice additions (:func:`_input_gradient_by_rows`); col2im's ``kh * kw``
  additions ran slower on two threads than on one. Other strides use :func:`col2im`.
* The GEMMs are ``(F, K) @ (K, M)`` forward and ``(K, M) @ (M, F)`` backward, with ``M = Ho * Wo * N``
  the long dimension and no transposing copies around them.
* Big arrays are not allocated per batch (:mod:`nnscratch.ops.workspace`): the column matrix, which
  backward reads, lives in the calling layer's ``workspace``; what only one call uses (padded copies, the
  backward's unfolded gradients and accumulators) comes from one pool per thread that every layer shares
  (:func:`~nnscratch.ops.workspace.temporary`), so a 20-layer network holds one set, not twenty.
* A bias is folded into the GEMM as a row of ones (:func:`im2col` with ``ones_row=True``), which saves a
  broadcast add over the whole output in forward and a separate sum in backward.
* Dilation is im2col with offsets ``d`` apart: the same strided view with the offset strides multiplied
  by ``d`` (a dilated kernel of size ``k`` spans ``d * (k - 1) + 1`` positions). Groups are im2col with
  group-major rows ``(g, i, j, c)``, so each group's block of rows is contiguous and the convolution is
  one batched GEMM ``(g, F/g, K/g) @ (g, K/g, M)`` (:func:`grouped_conv2d_forward`); a depthwise
  convolution is the case ``g = C``.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from .layout import from_chwn, to_chwn
from .workspace import bordered, scratch, temporary

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


def output_hw(input_hw, kernel_hw, strides, pads: Pads, what: str = "window",
              axes=("height", "width")) -> tuple[int, ...]:
    """``(Ho, Wo)`` of a sliding window; ``ValueError`` when the window (``what``) does not fit even once, naming
    the axis by ``axes`` (a 1-D layer passes ``("length",)``).

    Example:
        >>> output_hw((28, 28), (5, 5), (1, 1), ((0, 0), (0, 0)))
        (24, 24)
        >>> output_hw((3,), (5,), (1,), ((0, 0),), what="kernel", axes=("length",))
        Traceback (most recent call last):
        ...
        ValueError: the kernel length 5 is larger than the padded input length 3 (input 3, padding 0+0); use a smaller kernel, padding='same', or a larger input
    """
    if len(axes) != len(input_hw):
        raise ValueError(f"output_hw got {len(input_hw)} input sizes but {len(axes)} axis names {axes!r}")
    out = []
    for axis, size, k, s, (before, after) in zip(axes, input_hw, kernel_hw, strides, pads):
        padded = size + before + after
        if k > padded:
            raise ValueError(
                f"the {what} {axis} {k} is larger than the padded input {axis} {padded} (input {size}, padding "
                f"{before}+{after}); use a smaller {what}, padding='same', or a larger input"
            )
        out.append((padded - k) // s + 1)
    return tuple(out)


def dilated_size(kernel_hw, dilation=(1, 1)) -> tuple[int, int]:
    """The extent ``d * (k - 1) + 1`` of a kernel of size ``k`` whose taps are ``d`` apart, per axis.

    Example:
        >>> dilated_size((3, 5), (2, 1))
        (5, 5)
    """
    return tuple((k - 1) * d + 1 for k, d in zip(kernel_hw, dilation))


def pad_spatial(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """``x`` with ``pads`` rows/columns of ``value`` around axes 1 and 2 (``x`` itself if there are none).

    Axes 1 and 2 are the image axes in both storage orders, ``(N, H, W, C)`` and ``(C, H, W, N)``.
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


def padded_chwn(x: np.ndarray, pads: Pads, workspace=None, name: str = "padded", kept: bool = False) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` padded with zeros and stored ``(C, Hp, Wp, N)``, in at most one copy: a
    :func:`~nnscratch.ops.workspace.bordered` array called ``name``, the layer's own when backward reads it
    (``kept``), else a temporary; unpadded and not kept, ``x`` itself when it is stored so.

    Example:
        >>> padded_chwn(np.ones((2, 1, 1, 3)), ((1, 0), (0, 1))).shape
        (3, 2, 2, 2)
    """
    (t, b), (l, r) = pads
    xt = x.transpose(3, 1, 2, 0)
    if not (t or b or l or r or kept):
        return np.ascontiguousarray(xt)
    c, h, w, n = xt.shape
    xp = bordered(workspace, name, (c, h + t + b, w + l + r, n), x.dtype, t, h, l, w, kept=kept)
    xp[:, t:t + h, l:l + w] = xt
    return xp


def windows(xp: np.ndarray, kernel_hw, strides, dilation, first_row: int, rows: int, wo: int) -> np.ndarray:
    """The read-only ``(kh, kw, C, rows, Wo, N)`` view of a padded ``(C, Hp, Wp, N)`` array that im2col copies:
    element ``(i, j, c, r, q, n)`` is ``xp[c, (first_row + r) * sh + i * dh, q * sw + j * dw, n]``."""
    kh, kw = kernel_hw
    (sh, sw), (dh, dw) = strides, dilation
    s_c, s_h, s_w, s_n = xp.strides
    return as_strided(xp[:, first_row * sh:], (kh, kw, xp.shape[0], rows, wo, xp.shape[3]),
                      (s_h * dh, s_w * dw, s_c, s_h * sh, s_w * sw, s_n), writeable=False)


def im2col(x: np.ndarray, kernel_size, strides=(1, 1), pads: Pads = ((0, 0), (0, 0)), *,
           ones_row: bool = False, workspace: dict | None = None, dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """Unfolds every ``kh x kw`` window of ``x`` into a column of a matrix.

    Args:
        x: ``(N, H, W, C)``, in any memory order (stored CHWN it is read without a copy).
        kernel_size: ``(kh, kw)``.
        strides: ``(sh, sw)``, default ``(1, 1)``.
        pads: ``((top, bottom), (left, right))`` zero padding, default none (see :func:`resolve_padding`).
        ones_row: append a row of ones (so ``[kernel; bias].T @ cols`` adds the bias), default False; not
            with ``groups > 1``.
        workspace: a dict to keep the padded copy and the result in between calls (see
            :mod:`nnscratch.ops.workspace`); the result is then overwritten by the next call.
            Default None: new arrays.
        dilation: ``(dh, dw)``, the distance between a kernel's taps, default ``(1, 1)``.
        groups: ``g``, default 1. With ``g > 1`` the rows are ordered ``(group, i, j, c)`` with ``c`` the
            channel within its group of ``C / g``.

    Returns:
        ``cols`` ``(kh * kw * C (+1), Ho * Wo * N)``, C-contiguous: row ``(i, j, c)`` (``(group, i, j, c)``
        for groups) and column ``(ho, wo, n)`` in C order, so ``kernel.reshape(-1, F).T @ cols`` is the
        convolution stored ``(F, Ho, Wo, N)``.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> im2col(x, (2, 2), (2, 2))
        array([[ 0.,  2.,  8., 10.],
               [ 1.,  3.,  9., 11.],
               [ 4.,  6., 12., 14.],
               [ 5.,  7., 13., 15.]])
        >>> im2col(x, (2, 2), dilation=(2, 2))[:, 0]   # the taps of the first window are 2 apart
        array([ 0.,  2.,  8., 10.])
    """
    n, h, w, c = x.shape
    kh, kw = kernel_hw = tuple(kernel_size)
    sh, sw = strides = tuple(strides)
    dh, dw = tuple(dilation)
    if groups > 1 and ones_row:
        raise ValueError("im2col: ones_row is not available with groups > 1")
    ho, wo = output_hw((h, w), dilated_size(kernel_hw, (dh, dw)), strides, pads)
    k = kh * kw * c
    xp = padded_chwn(x, pads, workspace)
    cols = scratch(workspace, "cols", (k + (1 if ones_row else 0), ho, wo, n), x.dtype)
    # all kh * kw offsets as one read-only view, so the unfolding is a single NumPy call: each call
    # releases and retakes the GIL, which costs more than the copy itself when two threads compete
    if groups == 1:
        np.copyto(cols[:k].reshape(kh, kw, c, ho, wo, n), windows(xp, kernel_hw, strides, (dh, dw), 0, ho, wo))
    else:
        s_c, s_h, s_w, s_n = xp.strides
        cg = c // groups
        grouped = as_strided(xp, (groups, kh, kw, cg, ho, wo, n),
                             (s_c * cg, s_h * dh, s_w * dw, s_c, s_h * sh, s_w * sw, s_n), writeable=False)
        np.copyto(cols.reshape(groups, kh, kw, cg, ho, wo, n), grouped)
    if ones_row:
        cols[k] = 1
    return cols.reshape(len(cols), -1)


def col2im(cols: np.ndarray, input_shape, kernel_size, strides=(1, 1), pads: Pads = ((0, 0), (0, 0)),
           workspace: dict | None = None, dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """The adjoint of :func:`im2col`: adds every column of ``cols`` back onto the window it came from.

    Args:
        cols: ``(kh * kw * C, Ho * Wo * N)`` in :func:`im2col`'s order (extra rows after the first
            ``kh * kw * C``, such as the ones row, are ignored).
        input_shape: ``(N, H, W, C)`` of the unpadded input.
        kernel_size, strides, pads, dilation, groups: as given to :func:`im2col`.
        workspace: keeps the padded accumulator between calls (the result is always a new array).

    Returns:
        ``dx`` ``(N, H, W, C)``, stored CHWN; padding positions are dropped.

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
    dh, dw = dilation
    (t, b), (l, r) = pads
    ho, wo = output_hw((h, w), dilated_size((kh, kw), (dh, dw)), (sh, sw), pads)
    acc = _zeroed_accumulator(workspace, pads, (c, h + t + b, w + l + r, n), cols.dtype)
    if groups == 1:
        d, target = cols[:kh * kw * c].reshape(kh, kw, c, ho, wo, n), acc
    else:
        d = cols[:kh * kw * c].reshape(groups, kh, kw, c // groups, ho, wo, n).transpose(1, 2, 0, 3, 4, 5, 6)
        target = acc.reshape(groups, c // groups, *acc.shape[1:])
    for i in range(kh):
        for j in range(kw):
            target[..., i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw, :] += d[i, j]
    return _unpadded(acc, pads, h, w)


def _zeroed_accumulator(workspace, pads: Pads, shape, dtype) -> np.ndarray:
    """A zeroed ``(C, Hp, Wp, N)`` array to add input-gradient slices into: the workspace's when there is
    padding (only the interior leaves, as a copy), else a new array, which becomes ``dx`` itself."""
    (t, b), (l, r) = pads
    if not (t or b or l or r):
        return np.zeros(shape, dtype=dtype)
    acc = temporary(workspace, "col2im", shape, dtype)
    acc.fill(0)
    return acc


def _unpadded(acc: np.ndarray, pads: Pads, h: int, w: int) -> np.ndarray:
    """``dx`` ``(N, H, W, C)`` from a :func:`_zeroed_accumulator`: its interior, stored CHWN."""
    (t, b), (l, r) = pads
    if t or b or l or r:
        acc = acc[:, t:t + h, l:l + w].copy()
    return from_chwn(acc)


def weight_rows(kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``kernel`` ``(kh, kw, C, F)`` as the ``(kh * kw * C (+1), F)`` matrix whose rows meet im2col's rows, with
    ``bias`` as a last row when given (it meets the column matrix's row of ones).

    Example:
        >>> weight_rows(np.ones((1, 2, 1, 3)), np.arange(3.0))
        array([[1., 1., 1.],
               [1., 1., 1.],
               [0., 1., 2.]])
    """
    w2 = kernel.reshape(-1, kernel.shape[3])
    if bias is None:
        return w2
    return np.concatenate([w2, bias.reshape(1, -1)])


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None, strides=(1, 1),
                   pads: Pads = ((0, 0), (0, 0)), workspace: dict | None = None,
                   dilation=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation of ``x`` with ``kernel`` plus ``bias`` (what deep-learning libraries call convolution).

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)`` or None.
        strides: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))``.
        workspace: scratch arrays kept between calls (a layer's ``workspace``); ``cols`` then lives
            there until the next call. Default None.
        dilation: ``(dh, dw)``, default ``(1, 1)``.

    Returns:
        ``(out, cols)``: ``out`` ``(N, Ho, Wo, F)`` (stored CHWN, always a new array) and the column
        matrix that :func:`conv2d_backward` needs.

    Example:
        >>> x = np.ones((1, 3, 3, 1))
        >>> out, _ = conv2d_forward(x, np.ones((2, 2, 1, 1)), np.array([0.5]))
        >>> out[0, :, :, 0]
        array([[4.5, 4.5],
               [4.5, 4.5]])
    """
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    ho, wo = output_hw((h, w), dilated_size((kh, kw), dilation), strides, pads)
    w2 = weight_rows(kernel, bias)
    cols = im2col(x, (kh, kw), strides, pads, ones_row=bias is not None, workspace=workspace, dilation=dilation)
    return from_chwn((w2.T @ cols).reshape(f, ho, wo, n)), cols


def conv2d_backward(dout: np.ndarray, cols: np.ndarray, kernel: np.ndarray, input_shape, strides=(1, 1),
                    pads: Pads = ((0, 0), (0, 0)), has_bias: bool = True, need_dx: bool = True,
                    workspace: dict | None = None, dilation=(1, 1)):
    """Gradients of :func:`conv2d_forward`.

    Args:
        dout: ``(N, Ho, Wo, F)``, the gradient of the loss w.r.t. the output, any memory order.
        cols: the column matrix returned by :func:`conv2d_forward`.
        kernel: ``(kh, kw, C, F)``, as used in forward.
        input_shape: ``(N, H, W, C)``.
        strides, pads, dilation: as in forward.
        has_bias: whether forward had a bias (``cols`` then ends with a row of ones).
        need_dx: compute ``dx``; False skips the col2im (a model's first layer), default True.
        workspace: scratch arrays kept between calls, default None.

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` (stored CHWN) or None, ``dkernel``
        ``(kh, kw, C, F)``, ``dbias`` ``(F,)`` or None.
    """
    kh, kw, c, f = kernel.shape
    k = kh * kw * c
    dm = to_chwn(dout).reshape(f, -1)       # (F, Ho * Wo * N)
    # np.dot, not @: NumPy's matmul keeps the GIL when its output has fewer than 500 values, and this one
    # has (K+1) x F (LeNet-5's first layer: 26 x 6), so its GEMM over the whole chunk (0.8 ms for a 64-image
    # chunk) ran with the other threads shut out; np.dot releases the GIL whatever the size
    dw = np.dot(cols, dm.T)                 # (K (+1), F); the ones row's row is the bias gradient
    dkernel = dw[:k].reshape(kernel.shape)
    dbias = dw[k].copy() if has_bias else None
    if not need_dx:
        return None, dkernel, dbias
    return conv2d_input_gradient(dm, kernel, input_shape, strides, pads, workspace, dilation), dkernel, dbias


def conv2d_input_gradient(dm: np.ndarray, kernel: np.ndarray, input_shape, strides=(1, 1),
                          pads: Pads = ((0, 0), (0, 0)), workspace: dict | None = None, dilation=(1, 1)):
    """``dx`` ``(N, H, W, C)`` (stored CHWN) of a convolution, given its output gradient.

    This is also the forward pass of a transposed convolution (:class:`~nnscratch.layers.Conv2DTranspose`):
    the GEMM ``kernel @ dout`` scattered back onto the windows by col2im.

    Args:
        dm: ``(F, Ho * Wo * N)``, the output gradient stored CHWN (``to_chwn(dout).reshape(F, -1)``).
        kernel: ``(kh, kw, C, F)``.
        input_shape: ``(N, H, W, C)`` of the convolution's input.
        strides, pads, dilation: the convolution's.
        workspace: scratch arrays kept between calls, default None.
    """
    kh, kw, c, f = kernel.shape
    if strides[1] == 1 and dilation[1] == 1:
        return _input_gradient_by_rows(dm, kernel, input_shape, strides[0], pads, workspace, dilation[0])
    k = kh * kw * c
    dcols = np.matmul(kernel.reshape(k, f), dm, out=temporary(workspace, "dcols", (k, dm.shape[1]), dm.dtype))
    return col2im(dcols, input_shape, (kh, kw), strides, pads, workspace, dilation)


def _input_gradient_by_rows(dm, kernel, input_shape, sh, pads, workspace=None, dh=1):
    """``dx`` of a convolution with a horizontal stride and dilation of 1, in ``kh`` accumulations instead of
    col2im's ``kh * kw``.

    col2im adds ``kh * kw`` shifted slices, one NumPy call each; with two threads competing for the GIL
    those calls cost more than their arithmetic (C3's backward ran 0.65x as fast on 2 threads as on 1).
    Here the sum over the kernel's columns happens inside one GEMM instead: ``dout`` is unfolded along
    the width only (``kw`` shifted copies, one strided copy in all), multiplied by the kernel with its
    columns reversed, and the ``kh`` kernel rows are then added with whole-row slices.

    Args:
        dm: ``(F, Ho * Wo * N)``, the output gradient stored CHWN.
        kernel: ``(kh, kw, C, F)``.
        input_shape: ``(N, H, W, C)``; ``sh``: the vertical stride; ``pads`` as in forward; ``dh``: the
            vertical dilation.
    """
    n, h, w, c = input_shape
    kh, kw, _, f = kernel.shape
    (t, b), (l, r) = pads
    hp, wp = h + t + b, w + l + r
    ho, wo = (hp - (kh - 1) * dh - 1) // sh + 1, wp - kw + 1
    # dout with kw - 1 zero columns on each side; its width-wp windows at the kw offsets are the rows
    # that each reversed kernel column meets
    wide = bordered(workspace, "dout_wide", (f, ho, wo + 2 * (kw - 1), n), dm.dtype, 0, ho, kw - 1, wo)
    wide[:, :, kw - 1:kw - 1 + wo] = dm.reshape(f, ho, wo, n)
    rows = temporary(workspace, "dout_rows", (f, kw, ho, wp, n), dm.dtype)
    np.copyto(rows, sliding_window_view(wide, wp, axis=2).transpose(0, 2, 1, 4, 3))
    reversed_kernel = kernel[:, ::-1].transpose(0, 2, 3, 1).reshape(kh * c, f * kw)  # [(i, c), (f, kw-1-j)]
    per_row = np.matmul(reversed_kernel, rows.reshape(f * kw, -1),
                        out=temporary(workspace, "dx_rows", (kh * c, ho * wp * n), dm.dtype)).reshape(kh, c, ho, wp, n)
    acc = _zeroed_accumulator(workspace, pads, (c, hp, wp, n), dm.dtype)
    for i in range(kh):
        acc[:, i * dh:i * dh + (ho - 1) * sh + 1:sh] += per_row[i]
    return _unpadded(acc, pads, h, w)


def _group_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """``(kh, kw, C/g, F)`` -> ``(g, F/g, kh * kw * C/g)``: each group's kernel as a matrix over its rows of
    the grouped column matrix (output channel ``group * F/g + f``, as Keras and PyTorch number them)."""
    kh, kw, cg, f = kernel.shape
    return kernel.reshape(kh, kw, cg, groups, f // groups).transpose(3, 4, 0, 1, 2).reshape(groups, f // groups, -1)


def grouped_conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, groups: int, strides=(1, 1),
                           pads: Pads = ((0, 0), (0, 0)), dilation=(1, 1), workspace: dict | None = None):
    """A grouped convolution: the ``C`` input channels and ``F`` output maps are cut into ``g`` groups, and
    group ``i``'s maps see group ``i``'s channels only. ``g = C`` is a depthwise convolution.

    One im2col with group-major rows, then one batched GEMM ``(g, F/g, K/g) @ (g, K/g, M)``.

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(kh, kw, C/g, F)`` (Keras' layout for ``groups``).
        bias: ``(F,)`` or None.
        groups: ``g``, dividing ``C`` and ``F``.
        strides, pads, dilation: as for :func:`conv2d_forward`.
        workspace: scratch arrays kept between calls, default None.

    Returns:
        ``(out, cols)``: ``out`` ``(N, Ho, Wo, F)`` stored CHWN, and the ``(g, K/g, M)`` column matrix that
        :func:`grouped_conv2d_backward` needs.

    Example:
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)          # two channels
        >>> out, _ = grouped_conv2d_forward(x, np.ones((2, 2, 1, 2)), None, groups=2)
        >>> out.reshape(-1).tolist()                       # each map sums its own channel
        [12.0, 16.0]
    """
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    ho, wo = output_hw((h, w), dilated_size((kh, kw), dilation), strides, pads)
    cols = im2col(x, (kh, kw), strides, pads, workspace=workspace, dilation=dilation, groups=groups)
    cols = cols.reshape(groups, -1, cols.shape[1])
    kernel_g = _group_kernel(kernel, groups)
    if f == groups:  # one map per group (depthwise): NumPy's stacked matmul of (1, K) rows is slow on big M
        out = np.einsum("gk,gkm->gm", kernel_g[:, 0], cols)
    else:
        out = np.matmul(kernel_g, cols).reshape(f, ho * wo * n)
    if bias is not None:
        out += bias[:, None]
    return from_chwn(out.reshape(f, ho, wo, n)), cols


def grouped_conv2d_backward(dout: np.ndarray, cols: np.ndarray, kernel: np.ndarray, input_shape, groups: int,
                            strides=(1, 1), pads: Pads = ((0, 0), (0, 0)), dilation=(1, 1), has_bias: bool = True,
                            need_dx: bool = True, workspace: dict | None = None):
    """Gradients of :func:`grouped_conv2d_forward`: ``(dx or None, dkernel (kh, kw, C/g, F), dbias or None)``."""
    kh, kw, cg, f = kernel.shape
    dm = to_chwn(dout).reshape(groups, f // groups, -1)                       # (g, F/g, M)
    # (K/g, M) @ (M, F/g) per group streams the big column matrix row by row: 10x faster than dm @ cols^T here.
    # One np.dot per group, not one stacked matmul: matmul keeps the GIL when its output has fewer than 500
    # values (a depthwise layer's 9 x groups), and held it ~6 ms per call while the other thread waited
    dk = np.empty((groups, cols.shape[1], f // groups), dtype=np.result_type(cols, dm))
    for g in range(groups):
        np.dot(cols[g], dm[g].T, out=dk[g])
    dk = dk.transpose(0, 2, 1)                                                # (g, F/g, K/g)
    dkernel = dk.reshape(groups, f // groups, kh, kw, cg).transpose(2, 3, 4, 0, 1).reshape(kernel.shape)
    dbias = dm.sum(axis=2).reshape(f) if has_bias else None
    if not need_dx:
        return None, dkernel, dbias
    kernel_t = np.ascontiguousarray(_group_kernel(kernel, groups).transpose(0, 2, 1))   # (g, K/g, F/g)
    # a temporary, not a new array: (g, K/g, M) is 75 MB for a 32-channel depthwise layer on 64 images of 32x32,
    # above glibc's mmap threshold, so every call mapped it afresh and faulted it in page by page
    dcols = temporary(workspace, "dcols", (groups, kernel_t.shape[1], dm.shape[2]), np.result_type(kernel_t, dm))
    if f == groups:  # depthwise: an outer product per group, as a broadcast multiplication
        np.multiply(kernel_t, dm, out=dcols)
    else:
        np.matmul(kernel_t, dm, out=dcols)                                    # (g, K/g, M)
    dx = col2im(dcols.reshape(-1, dcols.shape[2]), input_shape, (kh, kw), strides, pads, workspace, dilation, groups)
    return dx, dkernel, dbias

"""Convolutions with few output maps by im2col in blocks of output rows: each block's columns are made and
multiplied while they are in cache, and made again in backward for the kernel gradient, instead of one column
matrix written out in forward and kept for backward.

Why: with ``F`` output maps the GEMM ``(F, K) @ (K, M)`` does ``2 F`` multiply-adds per value of the column
matrix, and with ``F <= 16`` that is too few to hide the matrix's trip through memory. LeNet-5's first
convolution (5x5, 1 -> 6 maps, 64 images of 28x28) unfolds 5.2 MB of columns; in blocks of ~400 KB its forward +
backward took 0.47 ms against 0.84-0.94 (one thread; the OpenBLAS kernels NumPy picks by itself on this AVX-512
machine). In two-process LeNet-5 training, where the processes share the last-level cache and memory, a step took
3.4-3.5 ms against 4.8-5.1, and 4.0-4.1 against 4.2-5.1 with the Haswell kernels this environment pins
(docs/performance.md). With 32 maps (VGG's first convolution) blocks changed nothing, and a small column matrix
stays in cache anyway: :func:`applies` says when blocks run.

The input gradient does not need the columns and is :func:`~nnscratch.ops.im2col.conv2d_input_gradient`'s, as
with im2col. What forward keeps for backward is the padded input (``(C, Hp, Wp, N)``), ``kh * kw`` times smaller
than the column matrix.

Example:
    >>> import numpy as np
    >>> from nnscratch.ops import im2col
    >>> rng = np.random.default_rng(0)
    >>> x, k, b = rng.standard_normal((3, 9, 8, 2)), rng.standard_normal((5, 5, 2, 4)), rng.standard_normal(4)
    >>> pads = ((2, 2), (2, 2))
    >>> out, xp = conv2d_forward(x, k, b, (1, 1), pads, block_bytes=2048)   # blocks of one output row
    >>> bool(np.allclose(out, im2col.conv2d_forward(x, k, b, (1, 1), pads)[0])), xp.shape
    (True, (2, 13, 12, 3))
"""
from __future__ import annotations

import numpy as np

from .im2col import Pads, conv2d_input_gradient, dilated_size, output_hw, padded_chwn, weight_rows, windows
from .layout import from_chwn, to_chwn
from .workspace import backward_follows, temporary

#: blocks run for convolutions of at most this many output maps ...
MAX_FILTERS = 16
#: ... whose whole column matrix would take more than this many bytes (smaller ones stay in cache as they are)
MIN_COLUMN_BYTES = 1 << 20
#: bytes of columns per block: two rows of LeNet-5's first convolution on 64 images. Blocks of 256-400 KB took
#: 0.22-0.26 ms for its forward, 750 KB 0.43-0.56 (the 1 MB cache of a core holds the block, the padded input
#: and the block's output)
BLOCK_BYTES = 400 << 10


def applies(input_shape, kernel_shape, strides=(1, 1), pads: Pads = ((0, 0), (0, 0)), dilation=(1, 1),
            itemsize: int = 4) -> bool:
    """Whether a (one-group) convolution runs in column blocks: at most :data:`MAX_FILTERS` output maps, a column
    matrix of more than :data:`MIN_COLUMN_BYTES`, and more output rows than one block holds (a block is whole output
    rows: with one row, a 1-D convolution's, there is nothing to split, and blocks took 1.02-1.07x im2col's time).

    Example:
        >>> applies((64, 28, 28, 1), (5, 5, 1, 6), pads=((2, 2), (2, 2))), applies((4, 28, 28, 1), (5, 5, 1, 6))
        (True, False)
        >>> applies((64, 32, 32, 3), (3, 3, 3, 32), pads=((1, 1), (1, 1)))   # 32 maps: one GEMM does well
        False
        >>> applies((64, 1, 4096, 1), (1, 9, 1, 8), pads=((0, 0), (4, 4)))   # one output row
        False
    """
    n, h, w, c = input_shape
    kh, kw, _, f = kernel_shape
    ho, wo = output_hw((h, w), dilated_size((kh, kw), dilation), strides, pads)
    height = kh * kw * c + 1
    return (f <= MAX_FILTERS and height * ho * wo * n * itemsize > MIN_COLUMN_BYTES
            and _block_rows(height, wo, n, itemsize, BLOCK_BYTES) < ho)


def _block_rows(rows_of_columns: int, wo: int, n: int, itemsize: int, block_bytes: int) -> int:
    return max(1, block_bytes // max(1, rows_of_columns * wo * n * itemsize))  # an empty batch: any block


def _fill(cols, xp, kernel_hw, strides, dilation, first: int, count: int) -> np.ndarray:
    """Unfolds output rows ``first .. first + count`` into ``cols[:, :count]`` (``(K (+1), rows, Wo, N)``), in
    im2col's row order ``(i, j, c)``; returns that block as a ``(K (+1), count * Wo * N)`` matrix."""
    kh, kw = kernel_hw
    c, n, wo = xp.shape[0], xp.shape[3], cols.shape[2]
    block = cols[:, :count]
    np.copyto(block[:kh * kw * c].reshape(kh, kw, c, count, wo, n),
              windows(xp, kernel_hw, strides, dilation, first, count, wo))
    return block.reshape(len(block), -1)


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides=(1, 1),
                   pads: Pads = ((0, 0), (0, 0)), workspace: dict | None = None, dilation=(1, 1),
                   block_bytes: int = BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation of ``x`` with ``kernel`` plus ``bias``, im2col's arithmetic in blocks of output rows.

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)`` or None.
        strides, pads, dilation: ``(sh, sw)``, ``((top, bottom), (left, right))``, ``(dh, dw)``.
        workspace: the layer's scratch arrays (kept between calls), default None.
        block_bytes: columns per block, default :data:`BLOCK_BYTES`.

    Returns:
        ``(out, xp)``: ``out`` ``(N, Ho, Wo, F)`` stored CHWN (a new array) and the padded input ``(C, Hp, Wp,
        N)`` that :func:`conv2d_backward` needs (in the layer's workspace until its next forward).
    """
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    ho, wo = output_hw((h, w), dilated_size((kh, kw), dilation), strides, pads)
    # the layer's own when a backward follows (it reads xp); in inference the thread's shared pool
    xp = padded_chwn(x, pads, workspace, "padded_input", kept=backward_follows(workspace))
    k = kh * kw * c
    # with a bias, a row of ones in the columns adds it inside the GEMM, as im2col does
    w2 = weight_rows(kernel, bias).T.astype(x.dtype, copy=False)
    rows = _block_rows(len(w2[0]), wo, n, x.itemsize, block_bytes)
    cols = temporary(workspace, "column_block", (len(w2[0]), rows, wo, n), x.dtype)
    if bias is not None:
        cols[k] = 1  # every call: other layers of the thread use this block too
    out = np.empty((f, ho, wo, n), x.dtype)
    for first in range(0, ho, rows):
        count = min(rows, ho - first)
        np.matmul(w2, _fill(cols, xp, (kh, kw), strides, dilation, first, count),
                  out=out[:, first:first + count].reshape(f, -1))
    return from_chwn(out), xp


def conv2d_backward(dout: np.ndarray, xp: np.ndarray, kernel: np.ndarray, input_shape, strides=(1, 1),
                    pads: Pads = ((0, 0), (0, 0)), has_bias: bool = True, need_dx: bool = True,
                    workspace: dict | None = None, dilation=(1, 1), block_bytes: int = BLOCK_BYTES):
    """Gradients of :func:`conv2d_forward`: each block's columns made again and multiplied by its rows of the
    output gradient.

    Args:
        dout: ``(N, Ho, Wo, F)``, any memory order.
        xp: the padded input :func:`conv2d_forward` returned.
        kernel, input_shape, strides, pads, dilation, block_bytes: as in forward.
        has_bias: whether forward had a bias; need_dx: compute ``dx`` (False for a model's first layer).
        workspace: the layer's scratch arrays, default None.

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` stored CHWN or None, ``dkernel`` ``(kh, kw, C, F)``,
        ``dbias`` ``(F,)`` or None.
    """
    kh, kw, c, f = kernel.shape
    n, ho, wo = dout.shape[:3]
    k = kh * kw * c
    dm = to_chwn(dout).reshape(f, -1)  # (F, Ho * Wo * N): a block of output rows is a run of its columns
    height = k + (1 if has_bias else 0)
    rows = _block_rows(height, wo, n, dm.itemsize, block_bytes)
    cols = temporary(workspace, "column_block", (height, rows, wo, n), dm.dtype)
    if has_bias:
        cols[k] = 1
    dw = np.zeros((height, f), dm.dtype)  # the ones row's row is the bias gradient
    part = np.empty_like(dw)
    run = wo * n
    for first in range(0, ho, rows):
        count = min(rows, ho - first)
        block = _fill(cols, xp, (kh, kw), strides, dilation, first, count)
        # matmul, not np.dot: np.dot copies the strided rows of dm first (0.65 against 0.47 ms for LeNet-5's first
        # convolution, forward + backward). Its output has fewer than 500 values, so matmul keeps the GIL through
        # each block's GEMM (~20 us), which im2col's np.dot avoids; with parallel="threads" LeNet-5's step still
        # went from 5.1-5.3 to 4.4-4.7 ms
        np.matmul(block, dm[:, first * run:(first + count) * run].T, out=part)
        dw += part
    dkernel = dw[:k].reshape(kernel.shape)
    dbias = dw[k].copy() if has_bias else None
    if not need_dx:
        return None, dkernel, dbias
    return conv2d_input_gradient(dm, kernel, input_shape, strides, pads, workspace, dilation), dkernel, dbias

"""3x3 stride-1 convolutions by Winograd's minimal filtering F(4x2, 3x3) (Lavin & Gray 2015), training included.

Every tile of 4 output rows by 2 output columns comes from a 6x4 tile of the padded input ``d`` (tiles overlap
by 2 both ways) and the 3x3 kernel ``g`` as ``Y = A4^T [(G4 g G2^T) * (B4^T d B2)] A2``: F(4, 3) along the rows
and F(2, 3) along the columns, 24 multiplications per tile and channel pair where im2col takes 72, i.e. 3x
fewer (F(2x2, 3x3), which this module ran before, took 16 per 4 outputs: 2.25x fewer). Over a batch the 24
element-wise products become 24 GEMMs ``(F, C) @ (C, T)`` with ``T`` the number of tiles
(``Ho * Wo * N / 8``), run as one stacked ``np.matmul``.

Why the two axes differ: the transforms work on whole arrays in batch-innermost storage
(:mod:`nnscratch.ops.layout`), one axis at a time. Along the rows a tap is a whole padded row (``W * N``
contiguous values), so the rows take F(4, 3), whose transforms are dense 6x6 (or 4x6) matrices, done as small
GEMMs over those rows, one ``np.matmul`` call per stage; they leave 25 % fewer GEMM multiplications and a 25 %
smaller transformed input than F(2, 3). Along the columns the taps of a tile overlap by two; the columns keep
F(2, 3)'s four plain sums and differences, on a padded input stored with its even and odd columns apart
(:func:`_padded`).

Every element-wise pass runs over one contiguous run of memory. NumPy's ufuncs are about twice as fast so as
over the same values in runs of a tile row (a 16-channel block of 32x32 images: 0.038 against 0.080 ms for the
column stage; each run costs its own trip through NumPy's iterator, which also copies short runs through a
buffer). For that each parity of a padded row keeps ``tw + 1`` columns of ``N`` values, and the column stage
computes ``tw + 1`` tiles per row, the tap of tile ``s + 1`` being the values ``N`` further on: the last tile of
a row reads into the next row and is junk. The GEMMs skip it (their operands are views of ``tw * N`` values a
row); the adjoint gives it a zero gradient, so the next row's first column receives nothing from it.

The backward pass stays in the transformed domain, as the adjoint of each step: the output gradient is
transformed once (``A dY A^T`` per tile) and feeds both the kernel gradient (24 GEMMs against the forward's
transformed input, then ``G^T dU G``) and the input gradient (24 GEMMs against the transformed kernel, then
``B dV B^T`` added back onto the overlapping tiles). Forward and backward both run over blocks of whole tile
rows, so their intermediates stay in cache (:func:`_forward_tile_rows`, :func:`_backward_tile_rows`). What
forward keeps for backward is the transformed input of every block, ``24 * C * th * (tw + 1) * N`` values,
a third of im2col's column matrix (plus the junk column).

Rounding: the row transforms add up to five terms scaled by up to 8, ``G4`` divides by 4, 6 and 24, so float32
results are a few times further from the exact ones than im2col's, still ~1e-6 relative
(``tests/ops/test_winograd.py`` measures it; docs/performance.md has the figures).

Example:
    >>> import numpy as np
    >>> from nnscratch.ops.im2col import conv2d_forward
    >>> rng = np.random.default_rng(0)
    >>> x, k = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    >>> pads = ((1, 1), (1, 1))
    >>> out, _ = winograd_forward(x, k, None, pads)
    >>> bool(np.allclose(out, conv2d_forward(x, k, None, (1, 1), pads)[0]))
    True
"""
from __future__ import annotations

import numpy as np

from .im2col import Pads
from .layout import from_chwn, to_chwn
from .workspace import backward_follows, bordered, scratch, temporary

#: the kernel transform of F(4, 3), along the rows: ``U = G4 g G2^T`` per (input channel, output map)
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
#: the kernel transform of F(2, 3), along the columns
G2 = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: outputs and input taps of a tile along the rows (F(4, 3)) and along the columns (F(2, 3))
ROW_OUT, ROW_TAPS, COL_OUT, COL_TAPS = 4, 6, 2, 4
#: transformed values per tile: the number of GEMMs
PRODUCTS = ROW_TAPS * COL_TAPS


def applies(kernel_hw, strides, dilation=(1, 1), groups: int = 1) -> bool:
    """Whether a convolution has the geometry these kernels compute: 3x3, stride 1, no dilation, one group.

    Example:
        >>> applies((3, 3), (1, 1)), applies((3, 3), (2, 2)), applies((5, 5), (1, 1))
        (True, False, False)
    """
    return tuple(kernel_hw) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1


# Scratch names: "winograd_stage" holds the half-transformed array between the two one-axis stages of every
# transform (input, output and their adjoints never overlap in time), "winograd_tmp" the row stages' GEMM results
# and the column adjoint's sums. All but "winograd_v" (the transformed input, kept for backward) are temporaries: one
# block per name and thread, shared by every layer (nnscratch.ops.workspace.temporary).
#
# Layouts, for a block of k tile rows of tw tiles (cols = tw + 1 columns of N values per parity and row):
#   padded input       (2 parities, C, 4 th + 2 rows, cols, N)
#   row-transformed    (2 parities, 6 row taps, k, C, cols, N), each parity one flat run, then N values of slack
#   transformed input  (4 column taps, 6 row taps, k, C, cols, N): product p = 6 j + r for column tap j, row tap r
#   products           (24, k, F, tw N), the same order of p; junk tiles left out


def _tiles(size: int, before: int, after: int, width: int) -> int:
    """Number of ``width``-wide output tiles along an axis of ``size`` padded by ``before + after`` (3-tap kernel)."""
    return -(-(size + before + after - 2) // width)


def _tile_rows(a: np.ndarray, tiles: int, taps: int) -> np.ndarray:
    """``a`` ``(..., R, W, N)`` (its last two axes contiguous together) as ``(..., tiles, taps, W * N)``: row ``j``
    of tile ``s`` is row ``4 s + j`` of ``a``, a view (tiles overlap when ``taps`` > 4). Writing through it is
    safe for ``taps`` <= 4, where no two of its elements share memory."""
    lead, (r, w, n) = a.shape[:-3], a.shape[-3:]
    rows_read = ROW_OUT * (tiles - 1) + taps
    if a.strides[-1] != a.itemsize or a.strides[-2] != n * a.itemsize or rows_read > r:
        # an internal misuse: as_strided would read (or write) past what the rows hold
        raise ValueError(f"_tile_rows needs rows of contiguous (W, N) values and {rows_read} rows "
                         f"for {tiles} tiles of {taps} taps; got shape {a.shape}, strides {a.strides}")
    step = a.strides[-3]
    return np.lib.stride_tricks.as_strided(a, lead + (tiles, taps, w * n),
                                           a.strides[:-3] + (ROW_OUT * step, step, a.itemsize))


# The row stages are small GEMMs, one per (parity, channel, tile row), in one np.matmul call each: the 6 (or 4)
# taps of a tile are whole padded rows, so every GEMM is (6, 6) @ (6, cols * N) with long contiguous rows. The same
# transforms as ufuncs took 13-18 passes each: the GEMM took 0.65-0.75x their time per block alone, 0.9-1.0x per
# layer, and with two threads every call saved is a GIL handoff saved (training steps 0.90x for ResNet-20, 0.96x
# for vgg).

def _input_rows(xp, tiles, out):
    """F(4, 3) down the rows: ``out`` ``(2, 6, tiles, C, cols * N)`` receives ``B4^T`` applied to the 6 overlapping
    rows of every tile (rows ``4 s .. 4 s + 5`` of ``xp`` ``(2, C, 4 * tiles + 2, cols, N)`` for tile ``s``)."""
    np.matmul(B4_T.astype(xp.dtype), _tile_rows(xp, tiles, ROW_TAPS), out=out.transpose(0, 3, 2, 1, 4))


def _input_rows_adjoint(dv, tiles, out, tmp):
    """The adjoint of :func:`_input_rows`: ``out`` (``(2, C, 4 * tiles + 2, cols, N)``) receives ``B4 dV``, the
    contributions of neighbouring tiles added where they overlap; ``dv`` is ``(2, 6, tiles, C, cols * N)``.
    ``tmp`` is scratch ``(2, C, tiles, 6, cols * N)``. Every element of ``out`` is written (no read-modify-write
    pass over what it held): row ``4 s + j`` gets tap ``j`` of tile ``s`` and, for ``j < 2``, tap ``j + 4`` of tile
    ``s - 1``."""
    taps = np.matmul(B4_T.T.astype(dv.dtype), dv.transpose(0, 3, 2, 1, 4), out=tmp)
    by_tile = _tile_rows(out, tiles, ROW_OUT)
    np.copyto(by_tile, taps[:, :, :, :ROW_OUT])
    by_tile[:, :, 1:, :2] += taps[:, :, :-1, ROW_OUT:]
    last = out[:, :, ROW_OUT * tiles:]
    np.copyto(last, taps[:, :, tiles - 1, ROW_OUT:].reshape(last.shape))


def _input_stage(rows, size, n, out):
    """F(2, 3) across: ``out[j]`` (``size`` values) = row ``j`` of ``B2^T`` applied to the 4 overlapping column
    taps of every tile, from ``rows`` ``(2, size + n)``: the even and the odd padded columns, each one flat run of
    rows of ``cols`` columns of ``n`` values (then ``n`` values of slack). Tile ``s`` reads ``even[s], odd[s],
    even[s + 1], odd[s + 1]``: the values at ``0`` and ``n`` further on."""
    even, odd = rows[0], rows[1]
    d0, d2 = even[:size], even[n:size + n]
    d1, d3 = odd[:size], odd[n:size + n]
    np.subtract(d0, d2, out=out[0])
    np.add(d1, d2, out=out[1])
    np.subtract(d2, d1, out=out[2])
    np.subtract(d1, d3, out=out[3])


def _input_stage_adjoint(dv, n, rows, tmp):
    """The adjoint of :func:`_input_stage`: ``rows[0]`` and ``rows[1]`` (the even and odd padded columns, flat)
    receive ``B2 dV``, the contributions of neighbouring tiles added where they overlap. ``dv`` is ``(4, size)``
    with zeros at every row's junk tile, which therefore adds nothing to the next row's first column. ``tmp`` is
    scratch of ``size`` values.

    Column ``2s`` gets tap 0 of tile ``s`` and tap 2 of tile ``s - 1``; column ``2s + 1`` gets taps 1 and 3
    likewise. Every element of ``rows`` is written once (no read-modify-write passes over them).
    """
    even, odd = rows[0], rows[1]
    np.add(dv[1], dv[2], out=tmp)               # what taps 2 receive: dv1 + dv2 - dv0
    tmp -= dv[0]
    np.copyto(even[:n], dv[0, :n])
    np.add(dv[0, n:], tmp[:-n], out=even[n:])
    np.subtract(dv[1], dv[2], out=tmp)          # what taps 1 receive: dv1 - dv2 + dv3
    tmp += dv[3]
    np.copyto(odd[:n], tmp[:n])
    np.subtract(tmp[n:], dv[3, :-n], out=odd[n:])


def _output_stage(m, out):
    """F(2, 3): ``out[i]`` = row ``i`` of ``A2^T`` = ``[[1, 1, 1, 0], [0, 1, -1, -1]]`` applied to ``m[0..3]``."""
    np.add(m[0], m[1], out=out[0])
    out[0] += m[2]
    np.subtract(m[1], m[2], out=out[1])
    out[1] -= m[3]


def _output_stage_adjoint(dy, out):
    """The adjoint of :func:`_output_stage`: ``out[k]`` = row ``k`` of ``A`` applied to ``dy[0..1]``."""
    np.copyto(out[0], dy[0])
    np.add(dy[0], dy[1], out=out[1])
    np.subtract(dy[0], dy[1], out=out[2])
    np.negative(dy[1], out=out[3])


#: F(4, 3)'s input transform, applied down the rows: ``B4^T`` (Lavin & Gray's points 0, +-1, +-2, infinity)
B4_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)
#: F(4, 3)'s output transform: ``A4^T``
A4_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)


def _output_rows(half, out, tmp):
    """F(4, 3): ``A4^T`` applied to the row taps of ``half`` ``(2, 6, k, F, tw, N)``, into ``out`` ``(F, k, 4, tw, 2,
    N)`` (a strided view of the output); ``tmp`` is scratch ``(2, 4, k * F * tw * N)``."""
    cols, _, k, f, tw, n = half.shape
    rows = np.matmul(A4_T.astype(half.dtype), half.reshape(cols, ROW_TAPS, -1), out=tmp)
    np.copyto(out, rows.reshape(cols, ROW_OUT, k, f, tw, n).transpose(3, 2, 1, 4, 0, 5))


def _output_rows_adjoint(dy, out, tmp):
    """The adjoint of :func:`_output_rows`: ``out`` ``(2, 6, k * F * tw * N)`` receives ``A4`` applied to ``dy``
    ``(F, k, 4, tw, 2, N)`` (a strided view of the output gradient); ``tmp`` is scratch ``(2, 4, k * F * tw * N)``."""
    f, k, _, tw, cols, n = dy.shape
    np.copyto(tmp.reshape(cols, ROW_OUT, k, f, tw, n), dy.transpose(4, 2, 1, 0, 3, 5))
    np.matmul(A4_T.T.astype(dy.dtype), tmp, out=out)


def _products_view(v, k, c, tw, n):
    """The transformed input of a block, ``(4, 6 * k * C * cols * N)``, as the GEMMs' operand ``(24, k, C, tw * N)``:
    every row's junk tile left out (a view; BLAS takes the row stride)."""
    return v.reshape(PRODUCTS, k, c, (tw + 1) * n)[..., :tw * n]


def _by_column_tap(u: np.ndarray) -> np.ndarray:
    """``U`` ``(24, F, C)`` in (row tap, column tap) order -> ``(24, 1, F, C)`` in (column tap, row tap) order, the
    order of the products here (a copy; 24 F C values)."""
    return u.reshape(ROW_TAPS, COL_TAPS, *u.shape[1:]).transpose(1, 0, 2, 3).reshape(PRODUCTS, 1, *u.shape[1:])


def _both_sides(rows: np.ndarray, cols: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``rows a cols^T`` over the first two axes of ``a`` ``(p, r, X, Y)``, with ``rows`` ``(q, p)`` and ``cols``
    ``(s, r)``: ``(q, s, Y, X)``, C-contiguous (the last two axes swapped), by two GEMMs, one per side.
    np.einsum's three-operand loop took 8-13x as long (0.3 ms at 64x64 channels, per layer, step and thread)."""
    q, p = rows.shape
    s, r = cols.shape
    rest = a.shape[2:]
    half = np.matmul(rows, a.reshape(p, -1)).reshape(q, r, *rest)                           # (q, r, X, Y)
    full = np.matmul(cols, half.transpose(1, 0, 2, 3).reshape(r, -1)).reshape(s, q, *rest)  # (s, q, X, Y)
    return np.ascontiguousarray(full.transpose(1, 0, 3, 2))


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """``(3, 3, C, F)`` -> ``U`` ``(24, F, C)``: ``G4 g G2^T`` for every (channel, map) pair, C-contiguous, the
    24 values of a pair ordered (row tap, column tap).

    Example:
        >>> transform_kernel(np.ones((3, 3, 1, 1)))[:, 0, 0].reshape(6, 4)
        array([[ 0.25      ,  0.375     ,  0.125     ,  0.25      ],
               [-0.5       , -0.75      , -0.25      , -0.5       ],
               [-0.16666667, -0.25      , -0.08333333, -0.16666667],
               [ 0.29166667,  0.4375    ,  0.14583333,  0.29166667],
               [ 0.125     ,  0.1875    ,  0.0625    ,  0.125     ],
               [ 1.        ,  1.5       ,  0.5       ,  1.        ]])
    """
    c, f = kernel.shape[2:]
    return _both_sides(G4.astype(kernel.dtype), G2.astype(kernel.dtype), kernel).reshape(PRODUCTS, f, c)


def _kernel_gradient(du: np.ndarray, dtype) -> np.ndarray:
    """``(24, F, C)`` -> ``(3, 3, C, F)``: ``G4^T dU G2``, the adjoint of :func:`transform_kernel`."""
    f, c = du.shape[1:]
    return _both_sides(G4.T.astype(dtype), G2.T.astype(dtype), du.reshape(ROW_TAPS, COL_TAPS, f, c))


def _columns_of(parity: int, left: int, width: int) -> tuple[int, int, int]:
    """Where the input's columns of one parity of the padded input lie: ``(first input column, its index among
    that parity's padded columns, how many)``; input column ``j`` is padded column ``j + left``.

    Example:
        >>> _columns_of(0, 1, 5), _columns_of(1, 1, 5)   # padded columns 2, 4 and 1, 3, 5
        ((1, 1, 2), (0, 0, 3))
    """
    first = (parity - left) % 2
    return first, (first + left) // 2, len(range(first, width, 2))


def _padded(x, pads, th, tw, workspace):
    """``x`` with zeros around it (and past it, where the tiles overhang the output), its padded columns stored
    apart by parity: ``(2, C, 4 * th + 2, tw + 1, N)``, ``[0]`` the even columns and ``[1]`` the odd.

    Stored so, each of F(2, 3)'s column taps is the same flat run of values as its neighbour's, ``N`` further on
    (a tile's taps are columns ``2s .. 2s + 3``): in a ResNet-20 step on 64 images (one thread) the column stage
    and its adjoint took 21.2 ms instead of 27.1 with runs of a row, while this copy in and the gradient's copy
    out, whose runs are ``N`` values instead of whole rows, took ~3 ms more."""
    n, h, w, c = x.shape
    (t, _), (l, _) = pads
    xp = temporary(workspace, "winograd_padded", (2, c, ROW_OUT * th + 2, tw + 1, n), x.dtype)
    xp[:, :, :t] = 0
    xp[:, :, t + h:] = 0
    image = x.transpose(3, 1, 2, 0)
    for parity in (0, 1):
        first, start, count = _columns_of(parity, l, w)
        side = xp[parity, :, t:t + h]
        side[:, :, :start] = 0
        side[:, :, start + count:] = 0
        side[:, :, start:start + count] = image[:, :, first::2]
    return xp


#: forward and backward run over blocks of whole tile rows holding at least this many tiles. Blocks of 512 rather
#: than 1,024 tiles: with the OpenBLAS kernels NumPy picks by itself on an AVX-512 CPU (SkylakeX), a 16x16 layer of
#: 64 images took 5.0-5.3 ms forward + backward against 6.1-7.2 (32 channels) and 15.3-15.7 against 16.7-17.0 (64),
#: its 24 GEMMs running from cache (docs/performance.md). 256 rather than 512 since the GEMMs of a block of k tile
#: rows are k GEMMs per product (a row's junk tile between them): an 8x8 layer of 64 images with 64 channels,
#: 256 tiles a row, took 3.1 ms in blocks of one row against 3.5 in blocks of two; with 128 tiles a row, blocks of
#: two rows took 1.5 ms against 1.9 in blocks of one.
TILES_PER_BLOCK = 256


def _transformed_rows(xp, i, k, workspace):
    """Tile rows ``i`` to ``i + k`` after F(4, 3) down the rows: ``(2, size + N)``, each parity's ``size = 6 k C
    (tw + 1) N`` values then ``N`` of slack, which the last junk tile reads: zeros, not what the scratch held
    before, so that the junk is computed from finite values like the rest (an inf left there would make a NaN,
    which ``np.errstate(invalid="raise")`` turns into an error)."""
    _, c, _, cols, n = xp.shape
    size = ROW_TAPS * k * c * cols * n
    rows = temporary(workspace, "winograd_stage", (2, size + n), xp.dtype)
    rows[:, size:] = 0
    _input_rows(xp[:, :, ROW_OUT * i:ROW_OUT * (i + k) + 2], k, rows[:, :size].reshape(2, ROW_TAPS, k, c, cols * n))
    return rows, size


def _forward_tile_rows(xp, i, k, v, u4, bias, y7, workspace):
    """Tile rows ``i`` to ``i + k`` of the forward pass: their input transform (into ``v`` ``(4, size)``, kept for
    backward, or when ``v`` is None into a temporary), 24 GEMMs and output transform (into ``y7``).

    A block of tile rows at a time keeps every intermediate but ``v`` in cache (0.5-2 MB) instead of
    sending arrays 2-4x the image's size through memory: done for the whole batch at once, the same
    passes made the forward 1.1-1.3x slower at 16x16 and 32x32 (two threads at once; docs/performance.md).
    Blocks of fewer than :data:`TILES_PER_BLOCK` tiles give the GEMMs too little to do.
    """
    c, n = xp.shape[1], xp.shape[4]
    tw, f = y7.shape[3], u4.shape[2]
    rows, size = _transformed_rows(xp, i, k, workspace)
    if v is None:  # inference: this block's transform, in cache, instead of its place in a V kept for backward
        v = temporary(workspace, "winograd_v_block", (COL_TAPS, size), xp.dtype)
    _input_stage(rows, size, n, v)
    m = np.matmul(u4, _products_view(v, k, c, tw, n),
                  out=temporary(workspace, "winograd_m", (PRODUCTS, k, f, tw * n), xp.dtype))
    if bias is not None:  # A4^T e_1 and A2^T e_1 are all ones: a bias added to product (1, 1) reaches every output
        m[ROW_TAPS + 1] += bias
    half = temporary(workspace, "winograd_stage", (COL_OUT, ROW_TAPS, k, f, tw, n), xp.dtype)
    _output_stage(m.reshape(COL_TAPS, -1), half.reshape(COL_OUT, -1))
    _output_rows(half, y7[:, i:i + k], temporary(workspace, "winograd_tmp", (COL_OUT, ROW_OUT, k * f * tw * n),
                                                 xp.dtype))


def _backward_tile_rows(dy7, i, k, v, u4, du, dbias, dxp, workspace):
    """Tile rows ``i`` to ``i + k`` of the backward pass: the output gradient's transform, the kernel and bias
    gradients added into ``du`` (``(24, F, C)``, products in this module's order) and ``dbias``, and (when ``dxp``
    is given) the input gradient of those tiles added onto padded rows ``4 i .. 4 (i + k) + 2`` of ``dxp``.

    As in :func:`_forward_tile_rows`, a block keeps the transformed gradient, its 24 products and the adjoint
    stages in cache; done for the whole chunk at once they went through memory.
    Neighbouring blocks share two padded rows (tiles overlap by two): the rows the previous block wrote there are
    set aside, overwritten by this block's adjoint (which writes every element once) and added back.
    """
    f, tw, n = dy7.shape[0], dy7.shape[3], dy7.shape[5]
    c = u4.shape[3]
    values = k * f * tw * n
    half = temporary(workspace, "winograd_stage", (COL_OUT, ROW_TAPS, values), dy7.dtype)
    _output_rows_adjoint(dy7[:, i:i + k], half,
                         temporary(workspace, "winograd_tmp", (COL_OUT, ROW_OUT, values), dy7.dtype))
    dm = temporary(workspace, "winograd_m", (COL_TAPS, ROW_TAPS * values), dy7.dtype)
    _output_stage_adjoint(half.reshape(COL_OUT, -1), dm)
    dm = dm.reshape(PRODUCTS, k, f, tw * n)
    kernel_part = np.matmul(dm, _products_view(v, k, c, tw, n).transpose(0, 1, 3, 2))   # (24, k, F, C)
    du += kernel_part[:, 0] if k == 1 else kernel_part.sum(axis=1)
    if dbias is not None:
        dbias += dm[ROW_TAPS + 1].sum(axis=(0, 2))
    if dxp is None:
        return
    cols = tw + 1
    size = ROW_TAPS * k * c * cols * n
    dv = temporary(workspace, "winograd_dv", (COL_TAPS, size), dy7.dtype)
    dv.reshape(COL_TAPS, ROW_TAPS, k, c, cols, n)[..., tw, :] = 0   # the junk tiles: no gradient
    np.matmul(u4.transpose(0, 1, 3, 2), dm, out=_products_view(dv, k, c, tw, n))
    rows = temporary(workspace, "winograd_stage", (2, size), dy7.dtype)
    _input_stage_adjoint(dv, n, rows, temporary(workspace, "winograd_tmp", (size,), dy7.dtype))
    overlap = dxp[:, :, ROW_OUT * i:ROW_OUT * i + 2].copy() if i else None
    _input_rows_adjoint(rows.reshape(2, ROW_TAPS, k, c, cols * n), k,
                        dxp[:, :, ROW_OUT * i:ROW_OUT * (i + k) + 2],
                        temporary(workspace, "winograd_tmp", (2, c, k, ROW_TAPS, cols * n), dy7.dtype))
    if overlap is not None:
        dxp[:, :, ROW_OUT * i:ROW_OUT * i + 2] += overlap


def _tile_counts(h, w, pads):
    (t, b), (l, r) = pads
    return _tiles(h, t, b, ROW_OUT), _tiles(w, l, r, COL_OUT)


def _blocks(th, tw, n):
    """``(first tile row, tile rows)`` of each block: whole tile rows, at least :data:`TILES_PER_BLOCK` tiles (the
    last block may hold fewer)."""
    k = max(1, -(-TILES_PER_BLOCK // (tw * n)))
    return [(i, min(k, th - i)) for i in range(0, th, k)]


def transform_input(x: np.ndarray, pads: Pads, workspace: dict | None = None) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` (any memory order), zero-padded by ``pads`` -> ``V`` ``(24, C, T)``: ``B4^T d B2`` of
    every 6x4 tile, the 24 values of a tile ordered (row tap, column tap), with ``T = th * tw * N`` tiles ordered
    ``(tile row, tile column, sample)``. (The layers keep their transformed input in their own order.)

    Where the tiles overhang the output (its height not a multiple of 4, its width odd), the padded input gets
    more zero rows or columns; the extra outputs are dropped by :func:`winograd_forward`.
    """
    n, h, w, c = x.shape
    th, tw = _tile_counts(h, w, pads)
    xp = _padded(x, pads, th, tw, workspace)
    rows, size = _transformed_rows(xp, 0, th, workspace)
    v = temporary(workspace, "winograd_v_block", (COL_TAPS, size), x.dtype)
    _input_stage(rows, size, n, v)
    out = scratch(workspace, "winograd_v", (ROW_TAPS, COL_TAPS, c, th, tw, n), x.dtype)
    np.copyto(out, v.reshape(COL_TAPS, ROW_TAPS, th, c, tw + 1, n)[..., :tw, :].transpose(1, 0, 3, 2, 4, 5))
    return out.reshape(PRODUCTS, c, th * tw * n)


def winograd_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pads: Pads,
                     workspace: dict | None = None) -> tuple[np.ndarray, tuple]:
    """A 3x3 stride-1 convolution (cross-correlation) plus ``bias``, by F(4x2, 3x3).

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(3, 3, C, F)``.
        bias: ``(F,)`` or None.
        pads: ``((top, bottom), (left, right))``.
        workspace: scratch arrays kept between calls (a layer's ``workspace``), default None; what is
            saved for backward then lives there until the next call.

    Returns:
        ``(out, saved)``: ``out`` ``(N, Ho, Wo, F)`` stored CHWN (a new array), and what
        :func:`winograd_backward` needs.
    """
    n, h, w, c = x.shape
    f = kernel.shape[3]
    (t, b), (l, r) = pads
    ho, wo = h + t + b - 2, w + l + r - 2
    if ho < 1 or wo < 1:
        raise ValueError(f"a 3x3 kernel needs a padded input of at least 3x3, got {h + t + b}x{w + l + r} "
                         f"(input {h}x{w}, padding {pads}); pad more or use a larger input")
    th, tw = _tile_counts(h, w, pads)
    u4 = _by_column_tap(transform_kernel(kernel))
    if n == 0:  # an empty batch: nothing to tile
        return from_chwn(np.zeros((f, ho, wo, 0), x.dtype)), (np.zeros(0, x.dtype), u4)
    xp = _padded(x, pads, th, tw, workspace)
    per_row = PRODUCTS * c * (tw + 1) * n  # transformed values of one tile row, junk tiles included
    # in inference nothing reads V afterwards: each block's transform stays in cache (VGG's 32x32 layer: 50 MB of
    # V per piece of 128 images written out for nothing)
    v = scratch(workspace, "winograd_v", (th * per_row,), x.dtype) if backward_follows(workspace) else None
    exact = ho == ROW_OUT * th and wo == COL_OUT * tw
    shape = (f, ROW_OUT * th, COL_OUT * tw, n)
    y = np.empty(shape, x.dtype) if exact else temporary(workspace, "winograd_y", shape, x.dtype)
    y7 = y.reshape(f, th, ROW_OUT, tw, COL_OUT, n)
    bias = None if bias is None else bias.astype(x.dtype)[:, None]
    for i, k in _blocks(th, tw, n):
        vi = None if v is None else v[i * per_row:(i + k) * per_row].reshape(COL_TAPS, -1)
        _forward_tile_rows(xp, i, k, vi, u4, bias, y7, workspace)
    if not exact:
        y = y[:, :ho, :wo].copy()
    return from_chwn(y), (v, u4)


def winograd_backward(dout: np.ndarray, saved: tuple, kernel: np.ndarray, input_shape, pads: Pads,
                      has_bias: bool = True, need_dx: bool = True, workspace: dict | None = None):
    """Gradients of :func:`winograd_forward`.

    Args:
        dout: ``(N, Ho, Wo, F)``, any memory order.
        saved: the second value :func:`winograd_forward` returned.
        kernel: ``(3, 3, C, F)``, as used in forward.
        input_shape: ``(N, H, W, C)``; pads: as in forward.
        has_bias: return the bias gradient, default True.
        need_dx: compute ``dx``, default True (False for a model's first layer).
        workspace: scratch arrays kept between calls, default None.

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` stored CHWN or None, ``dkernel`` ``(3, 3, C, F)``,
        ``dbias`` ``(F,)`` or None.
    """
    v, u4 = saved
    n, h, w, c = input_shape
    f = kernel.shape[3]
    (t, _), (l, _) = pads
    th, tw = _tile_counts(h, w, pads)
    dy = to_chwn(dout)
    if dy.shape[1:3] != (ROW_OUT * th, COL_OUT * tw):  # the tiles overhang: zero gradient for their extra outputs
        ho, wo = dy.shape[1:3]
        padded = bordered(workspace, "winograd_dy", (f, ROW_OUT * th, COL_OUT * tw, n), dy.dtype, 0, ho, 0, wo)
        padded[:, :ho, :wo] = dy
        dy = padded
    dy7 = dy.reshape(f, th, ROW_OUT, tw, COL_OUT, n)
    du = np.zeros((PRODUCTS, f, c), dy.dtype)
    dbias = np.zeros(f, dy.dtype) if has_bias else None
    if n == 0:  # an empty batch: no gradient
        return (from_chwn(np.zeros((c, h, w, 0), dy.dtype)) if need_dx else None,
                np.zeros(kernel.shape, dy.dtype), dbias)
    dxp = (temporary(workspace, "winograd_dx", (2, c, ROW_OUT * th + 2, tw + 1, n), dy.dtype) if need_dx
           else None)
    per_row = PRODUCTS * c * (tw + 1) * n
    for i, k in _blocks(th, tw, n):
        _backward_tile_rows(dy7, i, k, v[i * per_row:(i + k) * per_row].reshape(COL_TAPS, -1), u4, du, dbias, dxp,
                            workspace)
    # du's products are in (column tap, row tap) order: back to (row tap, column tap) for G^T dU G
    dkernel = _kernel_gradient(du.reshape(COL_TAPS, ROW_TAPS, f, c).transpose(1, 0, 2, 3).reshape(PRODUCTS, f, c),
                               dy.dtype)
    if not need_dx:
        return None, dkernel, dbias
    dx = np.empty((c, h, w, n), dy.dtype)
    for parity in (0, 1):  # the input's columns back in order from the parity-split padded gradient
        first, start, count = _columns_of(parity, l, w)
        dx[:, :, first::2] = dxp[parity, :, t:t + h, start:start + count]
    return from_chwn(dx), dkernel, dbias

"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2015), training included.

Every 2x2 block of outputs comes from a 4x4 tile of the padded input ``d`` (tiles overlap by 2) and the
3x3 kernel ``g`` as ``Y = A^T [(G g G^T) * (B^T d B)] A``: 16 multiplications per tile and channel pair
instead of im2col's 36, i.e. 2.25x fewer. Over a batch the 16 element-wise products become 16 GEMMs
``(F, C) @ (C, T)`` with ``T`` the number of tiles (``Ho * Wo * N / 4``), run as one stacked ``np.matmul``.

The transforms are additions and subtractions only (``B`` and ``A`` hold 0 and +-1; ``G`` halves), done on
whole arrays in batch-innermost storage (:mod:`nnscratch.ops.layout`), one axis at a time: four strided
slices of the padded input along the rows, then four along the columns of the result, so no Python loop
runs over tiles or samples.

The backward pass stays in the transformed domain, as the adjoint of each step: the output gradient is
transformed once (``A dY A^T`` per tile) and feeds both the kernel gradient (16 GEMMs against the forward's
transformed input, then ``G^T dU G``) and the input gradient (16 GEMMs against the transformed kernel, then
``B dV B^T`` added back onto the overlapping tiles). Forward and backward both run over blocks of whole tile
rows, so their intermediates stay in cache (:func:`_forward_tile_rows`, :func:`_backward_tile_rows`). What forward keeps for backward is the transformed
input, ``16 * C * T = 4 * C * Ho * Wo * N`` values, less than half of im2col's column matrix.

Rounding: the transforms add at most four terms per stage and ``G`` only halves, so float32 results stay
within a few ulps of im2col's (``tests/test_winograd.py`` measures it).

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

# Scratch names: "winograd_stage" holds the half-transformed array between the two one-axis stages of every
# transform (input, output and their adjoints never overlap in time), "winograd_tmp" the adjoints' sums. All
# but "winograd_v" (the transformed input, kept for backward) are temporaries: one block per name and thread,
# shared by every layer (nnscratch.ops.workspace.temporary).

#: the kernel transform of F(2x2, 3x3): ``U = G g G^T`` per (input channel, output map)
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def applies(kernel_hw, strides, dilation=(1, 1), groups: int = 1) -> bool:
    """Whether a convolution has the geometry these kernels compute: 3x3, stride 1, no dilation, one group.

    Example:
        >>> applies((3, 3), (1, 1)), applies((3, 3), (2, 2)), applies((5, 5), (1, 1))
        (True, False, False)
    """
    return tuple(kernel_hw) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1


def _tiles(size: int, before: int, after: int) -> int:
    """Number of 2-wide output tiles along an axis of ``size`` padded by ``before + after`` (3-tap kernel)."""
    return -(-(size + before + after - 2) // 2)


def _along(a: np.ndarray, axis: int, index) -> np.ndarray:
    return a[(slice(None),) * axis + (index,)]


def _input_stage(src, axis, tiles, out):
    """``out[k]`` = row ``k`` of ``B^T`` applied to the 4 overlapping taps of each tile along ``axis``."""
    d0, d1, d2, d3 = (_along(src, axis, slice(j, j + 2 * tiles, 2)) for j in range(4))
    np.subtract(d0, d2, out=out[0])
    np.add(d1, d2, out=out[1])
    np.subtract(d2, d1, out=out[2])
    np.subtract(d1, d3, out=out[3])


def _input_stage_adjoint(dv, axis, tiles, out, tmp):
    """The adjoint of :func:`_input_stage`: ``out`` (length ``2 * tiles + 2`` along ``axis``) receives ``B dV``,
    the contributions of neighbouring tiles added where they overlap. ``tmp`` is scratch shaped like ``dv[0]``.

    Tap ``2s`` of the axis gets tap 0 of tile ``s`` and tap 2 of tile ``s - 1``; tap ``2s + 1`` gets taps 1
    and 3 likewise. Every element of ``out`` is written once (no read-modify-write passes over it).
    """
    def part(a, start, stop):
        return _along(a, axis, slice(start, stop))

    even = _along(out, axis, slice(0, 2 * tiles + 2, 2))
    odd = _along(out, axis, slice(1, 2 * tiles + 2, 2))
    np.add(dv[1], dv[2], out=tmp)               # what taps 2 receive: dv1 + dv2 - dv0
    tmp -= dv[0]
    np.copyto(part(even, 0, 1), part(dv[0], 0, 1))
    np.add(part(dv[0], 1, tiles), part(tmp, 0, tiles - 1), out=part(even, 1, tiles))
    np.copyto(part(even, tiles, tiles + 1), part(tmp, tiles - 1, tiles))
    np.subtract(dv[1], dv[2], out=tmp)          # what taps 1 receive: dv1 - dv2 + dv3
    tmp += dv[3]
    np.copyto(part(odd, 0, 1), part(tmp, 0, 1))
    np.subtract(part(tmp, 1, tiles), part(dv[3], 0, tiles - 1), out=part(odd, 1, tiles))
    np.negative(part(dv[3], tiles - 1, tiles), out=part(odd, tiles, tiles + 1))


def _output_stage(m, out):
    """``out[i]`` = row ``i`` of ``A^T`` = ``[[1, 1, 1, 0], [0, 1, -1, -1]]`` applied to ``m[0..3]``."""
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


def _both_sides(m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``m a m^T`` over the first two axes of ``a`` ``(p, p, X, Y)`` with ``m`` ``(q, p)``: ``(q, q, Y, X)``,
    C-contiguous (the last two axes swapped), by two GEMMs, one per side. np.einsum's three-operand loop took
    8-13x as long (0.3 ms at 64x64 channels, per layer, step and thread)."""
    q, p = m.shape
    rest = a.shape[2:]
    half = np.matmul(m, a.reshape(p, -1)).reshape(q, p, *rest)                          # (r, j, X, Y)
    full = np.matmul(m, half.transpose(1, 0, 2, 3).reshape(p, -1)).reshape(q, q, *rest)  # (s, r, X, Y)
    return np.ascontiguousarray(full.transpose(1, 0, 3, 2))


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """``(3, 3, C, F)`` -> ``U`` ``(16, F, C)``: ``G g G^T`` for every (channel, map) pair, C-contiguous.

    Example:
        >>> transform_kernel(np.ones((3, 3, 1, 1)))[:, 0, 0].reshape(4, 4)
        array([[1.  , 1.5 , 0.5 , 1.  ],
               [1.5 , 2.25, 0.75, 1.5 ],
               [0.5 , 0.75, 0.25, 0.5 ],
               [1.  , 1.5 , 0.5 , 1.  ]])
    """
    c, f = kernel.shape[2:]
    return _both_sides(G.astype(kernel.dtype), kernel).reshape(16, f, c)


def _kernel_gradient(du: np.ndarray, dtype) -> np.ndarray:
    """``(16, F, C)`` -> ``(3, 3, C, F)``: ``G^T dU G``, the adjoint of :func:`transform_kernel`."""
    f, c = du.shape[1:]
    return _both_sides(G.T.astype(dtype), du.reshape(4, 4, f, c))


def _padded(x, pads, th, tw, workspace):
    """``x`` stored ``(C, 2 * th + 2, 2 * tw + 2, N)`` with zeros around it (and past it, for an odd output)."""
    n, h, w, c = x.shape
    (t, _), (l, _) = pads
    xp = bordered(workspace, "winograd_padded", (c, 2 * th + 2, 2 * tw + 2, n), x.dtype, t, h, l, w)
    xp[:, t:t + h, l:l + w] = x.transpose(3, 1, 2, 0)
    return xp


#: the forward pass runs over blocks of whole tile rows holding at least this many tiles
TILES_PER_BLOCK = 1024


def _forward_tile_rows(xp, i, k, v, u, bias, y6, workspace):
    """Tile rows ``i`` to ``i + k`` of the forward pass: their input transform (into ``v``, kept for backward, or
    when ``v`` is None into a temporary), 16 GEMMs and output transform (into ``y6``).

    A block of tile rows at a time keeps every intermediate but ``v`` in cache (0.5-2 MB) instead of
    sending arrays 2-4x the image's size through memory: done for the whole batch at once, the same
    passes made the forward 1.1-1.3x slower at 16x16 and 32x32 (two threads at once; docs/performance.md).
    Blocks of fewer than :data:`TILES_PER_BLOCK` tiles give the GEMMs too little to do.
    """
    c, n = xp.shape[0], xp.shape[3]
    tw, f = y6.shape[3], u.shape[1]
    rows = temporary(workspace, "winograd_stage", (4, c, k, 2 * tw + 2, n), xp.dtype)
    _input_stage(xp[:, 2 * i:2 * (i + k) + 2], 1, k, rows)
    if v is None:  # inference: this block's transform, in cache, instead of its place in a V kept for backward
        vi = temporary(workspace, "winograd_v_block", (4, 4, c, k, tw, n), xp.dtype)
    else:
        vi = v[:, :, :, i:i + k]                # (4, 4, C, k, tw, N): a view, rows th * tw * N apart
    _input_stage(rows, 3, tw, vi.transpose(1, 0, 2, 3, 4, 5))
    m = np.matmul(u, vi.reshape(16, c, k * tw * n),
                  out=temporary(workspace, "winograd_m", (16, f, k * tw * n), xp.dtype))
    if bias is not None:  # A^T e_11 A is all ones: a bias added to product (1, 1) reaches all four outputs
        m[5] += bias
    half = temporary(workspace, "winograd_stage", (4, 2, f, k, tw, n), xp.dtype)
    _output_stage(m.reshape(4, 4, f, k, tw, n).transpose(1, 0, 2, 3, 4, 5), half.transpose(1, 0, 2, 3, 4, 5))
    _output_stage(half, [y6[:, i:i + k, r].transpose(3, 0, 1, 2, 4) for r in range(2)])


def _backward_tile_rows(dy6, i, k, v, u, du, dbias, dxp, workspace):
    """Tile rows ``i`` to ``i + k`` of the backward pass: the output gradient's transform, the kernel and bias
    gradients added into ``du`` and ``dbias``, and (when ``dxp`` is given) the input gradient of those tiles
    added onto padded rows ``2 i .. 2 (i + k) + 2`` of ``dxp``.

    As in :func:`_forward_tile_rows`, a block keeps the transformed gradient, its 16 products and the adjoint
    stages in cache; done for the whole chunk at once they went through memory.
    Neighbouring blocks share two padded rows (tiles overlap by two): the rows the previous block wrote there are
    set aside, overwritten by this block's adjoint (which writes every element once) and added back.
    """
    f, tw, n = dy6.shape[0], dy6.shape[3], dy6.shape[5]
    c = v.shape[1]
    half = temporary(workspace, "winograd_stage", (4, 2, f, k, tw, n), dy6.dtype)
    _output_stage_adjoint([dy6[:, i:i + k, r].transpose(3, 0, 1, 2, 4) for r in range(2)], half)
    dm = temporary(workspace, "winograd_m", (4, 4, f, k, tw, n), dy6.dtype)
    _output_stage_adjoint(half.transpose(1, 0, 2, 3, 4, 5), dm.transpose(1, 0, 2, 3, 4, 5))
    dm = dm.reshape(16, f, k * tw * n)
    th = v.shape[2] // (tw * n)
    vi = v.reshape(16, c, th, tw * n)[:, :, i:i + k].reshape(16, c, k * tw * n)  # a view: whole tile rows
    du += np.matmul(dm, vi.transpose(0, 2, 1))
    if dbias is not None:
        dbias += dm[5].sum(axis=1)
    if dxp is None:
        return
    dv = np.matmul(u.transpose(0, 2, 1), dm, out=temporary(workspace, "winograd_dv", (16, c, k * tw * n), dy6.dtype))
    rows = temporary(workspace, "winograd_stage", (4, c, k, 2 * tw + 2, n), dy6.dtype)
    tmp = temporary(workspace, "winograd_tmp", (4, c, k, tw, n), dy6.dtype)
    _input_stage_adjoint(dv.reshape(4, 4, c, k, tw, n).transpose(1, 0, 2, 3, 4, 5), 3, tw, rows, tmp)
    overlap = dxp[:, 2 * i:2 * i + 2].copy() if i else None
    _input_stage_adjoint(rows, 1, k, dxp[:, 2 * i:2 * (i + k) + 2],
                         temporary(workspace, "winograd_tmp", rows.shape[1:], dy6.dtype))
    if overlap is not None:
        dxp[:, 2 * i:2 * i + 2] += overlap


def transform_input(x: np.ndarray, pads: Pads, workspace: dict | None = None) -> np.ndarray:
    """``x`` ``(N, H, W, C)`` (any memory order), zero-padded by ``pads`` -> ``V`` ``(16, C, T)``: ``B^T d B`` of
    every 4x4 tile, with ``T = th * tw * N`` tiles ordered ``(tile row, tile column, sample)``.

    An odd output size gets one more zero row or column so the tiles cover it; the extra outputs are
    dropped by :func:`winograd_forward`.
    """
    n, h, w, c = x.shape
    (t, b), (l, r) = pads
    th, tw = _tiles(h, t, b), _tiles(w, l, r)
    xp = _padded(x, pads, th, tw, workspace)
    rows = temporary(workspace, "winograd_stage", (4, c, th, 2 * tw + 2, n), x.dtype)
    _input_stage(xp, 1, th, rows)
    v = scratch(workspace, "winograd_v", (4, 4, c, th, tw, n), x.dtype)
    _input_stage(rows, 3, tw, v.transpose(1, 0, 2, 3, 4, 5))
    return v.reshape(16, c, th * tw * n)


def winograd_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pads: Pads,
                     workspace: dict | None = None) -> tuple[np.ndarray, tuple]:
    """A 3x3 stride-1 convolution (cross-correlation) plus ``bias``, by F(2x2, 3x3).

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
    th, tw = _tiles(h, t, b), _tiles(w, l, r)
    xp = _padded(x, pads, th, tw, workspace)
    # in inference nothing reads V afterwards: each block's transform stays in cache (VGG's 32x32 layer: 67 MB of
    # V per piece of 128 images written out for nothing)
    v = scratch(workspace, "winograd_v", (4, 4, c, th, tw, n), x.dtype) if backward_follows(workspace) else None
    u = transform_kernel(kernel)
    exact = ho == 2 * th and wo == 2 * tw
    y = np.empty((f, 2 * th, 2 * tw, n), x.dtype) if exact else temporary(workspace, "winograd_y",
                                                                         (f, 2 * th, 2 * tw, n), x.dtype)
    y6 = y.reshape(f, th, 2, tw, 2, n)
    bias = None if bias is None else bias.astype(x.dtype)[:, None]
    k = max(1, -(-TILES_PER_BLOCK // (tw * n)))
    for i in range(0, th, k):
        _forward_tile_rows(xp, i, min(k, th - i), v, u, bias, y6, workspace)
    if not exact:
        y = y[:, :ho, :wo].copy()
    return from_chwn(y), (None if v is None else v.reshape(16, c, th * tw * n), u)


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
    v, u = saved
    n, h, w, c = input_shape
    f = kernel.shape[3]
    (t, b), (l, r) = pads
    th, tw = _tiles(h, t, b), _tiles(w, l, r)
    dy = to_chwn(dout)
    if dy.shape[1:3] != (2 * th, 2 * tw):  # odd output: zero gradient for the tiles' extra row/column
        ho, wo = dy.shape[1:3]
        padded = bordered(workspace, "winograd_dy", (f, 2 * th, 2 * tw, n), dy.dtype, 0, ho, 0, wo)
        padded[:, :dy.shape[1], :dy.shape[2]] = dy
        dy = padded
    dy6 = dy.reshape(f, th, 2, tw, 2, n)
    du = np.zeros((16, f, c), dy.dtype)
    dbias = np.zeros(f, dy.dtype) if has_bias else None
    dxp = temporary(workspace, "winograd_dx", (c, 2 * th + 2, 2 * tw + 2, n), dy.dtype) if need_dx else None
    k = max(1, -(-TILES_PER_BLOCK // (tw * n)))
    for i in range(0, th, k):
        _backward_tile_rows(dy6, i, min(k, th - i), v, u, du, dbias, dxp, workspace)
    dkernel = _kernel_gradient(du, dy.dtype)
    if not need_dx:
        return None, dkernel, dbias
    return from_chwn(dxp[:, t:t + h, l:l + w].copy()), dkernel, dbias

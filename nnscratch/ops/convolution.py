"""The 2-D convolution a layer calls: one interface, and per layer shape the kernel that measured fastest.

Three kernels compute the same convolution: im2col + GEMM (:mod:`nnscratch.ops.im2col`, any geometry), the same
in blocks of output rows for few output maps (:mod:`nnscratch.ops.column_blocks`) and Winograd F(4x2, 3x3)
(:mod:`nnscratch.ops.winograd`, 3x3 stride 1 only). Which one runs is decided here from the shapes alone, so a
layer never names a kernel: it calls :func:`conv2d_forward`, keeps what it returns as ``saved`` and hands that back
to :func:`conv2d_backward`. All give the same values up to rounding (float32: ~1e-6 relative; float64: ~1e-15).

The rule (:func:`use_winograd`) follows ``benchmarks/bench_conv3x3.py`` (tables in docs/performance.md):
Winograd does 3x fewer multiplications, but its transforms are extra passes over memory, so it pays only
when the GEMMs are large enough: with 3 or 4 input channels the transforms cost more than the GEMM time they
save (32x32 3-32: 1.3x im2col's time, 4-16: 1.13x); with 8-15 it pays on images of 28x28 and larger (forward +
backward 0.60-0.81x im2col's time, F(4x2, 3x3) measured 2026-12-01) and not below; from 16 channels on it was
faster at every image size measured, 8x8 to 512x512 (forward + backward 0.60-0.93x im2col's time), except in chunks
of 1-2 images at some sizes (``WINOGRAD_MAX_PIXELS``'s comment). Of the rest, convolutions with at most 16 output
maps and a column matrix over 1 MB run in column blocks (:func:`nnscratch.ops.column_blocks.applies`).

Example:
    >>> import numpy as np
    >>> x = np.ones((2, 8, 8, 32), np.float32)
    >>> out, saved = conv2d_forward(x, np.ones((3, 3, 32, 4), np.float32), None, (1, 1), ((1, 1), (1, 1)))
    >>> out.shape, saved[0], float(out[0, 3, 3, 0])
    ((2, 8, 8, 4), 'winograd', 288.0)
"""
from __future__ import annotations

import numpy as np

from . import column_blocks, im2col, winograd
from .im2col import Pads

#: Winograd needs at least this many input channels ...
WINOGRAD_MIN_CHANNELS = 16
#: ... or at least this many on padded images of at least :data:`WINOGRAD_FEW_CHANNELS_MIN_PIXELS` pixels (8-12
#: channels: 28x28 and larger 0.60-0.81x im2col's time for forward + backward, 0.73-1.01x in inference; 24x24 and
#: smaller as fast or slower; 4 channels slower at every size measured)
WINOGRAD_FEW_CHANNELS = 8
WINOGRAD_FEW_CHANNELS_MIN_PIXELS = 30 * 30
#: ... and images of at most this many pixels (padded): the largest measured, 512x512 (F(4x2, 3x3), 2026-12-01,
#: Winograd's time over im2col's for forward + backward / inference: 16 -> 16 channels in chunks of 2 images 0.93 /
#: 0.91; 384x384 32 -> 32, chunks of 2: 0.83 / 0.76; 256x256 and 224x224 in chunks of 4-8: 0.64-0.84 / 0.68-0.84;
#: 256x256 16 -> 16 in chunks of 2 images 1.14 / 1.01, the one loss)
WINOGRAD_MAX_PIXELS = 514 * 514


def use_winograd(input_shape, kernel_shape, strides=(1, 1), pads: Pads = ((0, 0), (0, 0)), dilation=(1, 1)) -> bool:
    """Whether :func:`conv2d_forward` runs this convolution by Winograd F(4x2, 3x3).

    Args:
        input_shape: ``(N, H, W, C)``; kernel_shape: ``(kh, kw, C, F)``; strides, pads, dilation: the
            convolution's.

    Example:
        >>> use_winograd((64, 16, 16, 32), (3, 3, 32, 64), pads=((1, 1), (1, 1)))
        True
        >>> use_winograd((64, 32, 32, 3), (3, 3, 3, 32), pads=((1, 1), (1, 1)))   # 3 channels: im2col
        False
        >>> use_winograd((64, 32, 32, 32), (3, 3, 32, 32), strides=(2, 2), pads=((0, 1), (0, 1)))
        False
    """
    _, h, w, c = input_shape
    (t, b), (l, r) = pads
    pixels = (h + t + b) * (w + l + r)
    enough_channels = c >= WINOGRAD_MIN_CHANNELS or (c >= WINOGRAD_FEW_CHANNELS
                                                     and pixels >= WINOGRAD_FEW_CHANNELS_MIN_PIXELS)
    return winograd.applies(kernel_shape[:2], strides, dilation) and enough_channels and pixels <= WINOGRAD_MAX_PIXELS


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides=(1, 1),
                   pads: Pads = ((0, 0), (0, 0)), workspace: dict | None = None, dilation=(1, 1)):
    """Cross-correlation of ``x`` with ``kernel`` plus ``bias``, by the kernel :func:`use_winograd` and
    :func:`~nnscratch.ops.column_blocks.applies` pick.

    Args:
        x: ``(N, H, W, C)``, any memory order.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)`` or None.
        strides, pads, dilation: ``(sh, sw)``, ``((top, bottom), (left, right))``, ``(dh, dw)``.
        workspace: the layer's scratch arrays, kept between calls, default None.

    Returns:
        ``(out, saved)``: ``out`` ``(N, Ho, Wo, F)`` stored CHWN (a new array); ``saved`` is what
        :func:`conv2d_backward` needs, ``(method name, data)``; with a workspace its arrays live there
        until the layer's next forward.
    """
    if use_winograd(x.shape, kernel.shape, strides, pads, dilation):
        out, data = winograd.winograd_forward(x, kernel, bias, pads, workspace)
        return out, ("winograd", data)
    if column_blocks.applies(x.shape, kernel.shape, strides, pads, dilation, x.dtype.itemsize):
        out, xp = column_blocks.conv2d_forward(x, kernel, bias, strides, pads, workspace, dilation)
        return out, ("column_blocks", xp)
    out, cols = im2col.conv2d_forward(x, kernel, bias, strides, pads, workspace, dilation)
    return out, ("im2col", cols)


def conv2d_backward(dout: np.ndarray, saved, kernel: np.ndarray, input_shape, strides=(1, 1),
                    pads: Pads = ((0, 0), (0, 0)), has_bias: bool = True, need_dx: bool = True,
                    workspace: dict | None = None, dilation=(1, 1)):
    """Gradients of :func:`conv2d_forward`, by the kernel that ran forward.

    Args:
        dout: ``(N, Ho, Wo, F)``, any memory order.
        saved: the second value :func:`conv2d_forward` returned.
        kernel, input_shape, strides, pads, dilation: as in forward.
        has_bias: whether forward had a bias, default True.
        need_dx: compute ``dx`` (False for a model's first layer), default True.
        workspace: the layer's scratch arrays, default None.

    Returns:
        ``(dx, dkernel, dbias)``: ``dx`` ``(N, H, W, C)`` stored CHWN or None, ``dkernel`` ``(kh, kw, C, F)``,
        ``dbias`` ``(F,)`` or None.
    """
    method, data = saved
    if method == "winograd":
        return winograd.winograd_backward(dout, data, kernel, input_shape, pads, has_bias, need_dx, workspace)
    if method == "column_blocks":
        return column_blocks.conv2d_backward(dout, data, kernel, input_shape, strides, pads, has_bias, need_dx,
                                             workspace, dilation)
    return im2col.conv2d_backward(dout, data, kernel, input_shape, strides, pads, has_bias, need_dx, workspace,
                                  dilation)

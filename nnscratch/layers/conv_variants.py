"""The rest of Keras' convolution family: depthwise, separable, transposed and 1-D convolutions.

All of them run on the kernels of :mod:`nnscratch.ops.im2col`, vectorised over the batch like
:class:`~nnscratch.layers.Conv2D`, and keep Keras' weight names and layouts so a Keras file maps onto them
one to one:

=====================  =======================================================================
layer                  weights
=====================  =======================================================================
DepthwiseConv2D        ``depthwise_kernel (kh, kw, c_in, depth_multiplier)``, ``bias (c_in * m,)``
SeparableConv2D        ``depthwise_kernel (kh, kw, c_in, m)``, ``pointwise_kernel (1, 1, c_in * m,
                       filters)``, ``bias (filters,)``
Conv2DTranspose        ``kernel (kh, kw, filters, c_in)``, ``bias (filters,)``
Conv1D                 ``kernel (k, c_in / groups, filters)``, ``bias (filters,)``
=====================  =======================================================================

* A depthwise convolution is a grouped convolution with one group per input channel; output channel
  ``c * m + j`` is input channel ``c`` filtered by ``depthwise_kernel[:, :, c, j]`` (TensorFlow's order).
* A transposed convolution is the input gradient of a convolution: the GEMM ``kernel @ x`` scattered onto
  the output windows (col2im); its backward is that convolution itself.
* A 1-D convolution is the 2-D one on ``(N, 1, L, C)`` views.

Outputs are ``(N, H, W, C)`` views of batch-innermost arrays, as Conv2D's (see :mod:`nnscratch.ops.layout`).
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..initializers import check_name
from ..ops import depthwise
from ..ops.im2col import (check_padding, conv2d_backward, conv2d_forward, conv2d_input_gradient, dilated_size,
                          grouped_conv2d_backward, grouped_conv2d_forward, output_hw, resolve_padding)
from ..ops.layout import from_chwn, to_chwn
from .base import LAYERS, Layer
from .conv import _spatial_shape
from .options import KerasOptions


def _pair_argument(layer, name, value, allow_zero=False):
    """Validates an int-or-pair argument, stores its config form on ``layer`` and returns the pair."""
    pair = _checks.int_pair(name, value, allow_zero=allow_zero)
    setattr(layer, name, value if isinstance(value, int) else list(pair))
    return pair


def _as_dtype(layer, a):
    return a if a.dtype == layer.dtype else a.astype(layer.dtype)


class DepthwiseConv2D(KerasOptions, Layer):
    """Depthwise 2-D convolution: every input channel is filtered on its own by ``depth_multiplier`` kernels.

    Args (Keras' order):
        kernel_size: ``k`` or ``(kh, kw)``.
        strides: ``s`` or ``(sh, sw)``, default 1.
        padding: ``'valid'`` (default), ``'same'``, ``'full'`` or explicit amounts (as :class:`Conv2D`).
        depth_multiplier: ``m``, output channels per input channel, default 1.
        dilation_rate: ``d`` or ``(dh, dw)``, default 1.
        activation: activation name, default None.
        use_bias: default True.
        depthwise_initializer: default None (He uniform before a ReLU-like activation, else Glorot uniform;
            fans as Keras computes them for the kernel's shape).
        bias_initializer: default ``"zeros"``.
        depthwise_regularizer, bias_regularizer, depthwise_constraint, bias_constraint: see
            :class:`~nnscratch.layers.Dense`.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, C * m)``; ``depthwise_kernel (kh, kw, C, m)``, ``bias (C * m,)``.

    Example:
        >>> import numpy as np
        >>> layer = DepthwiseConv2D(3, depth_multiplier=2, padding="same")
        >>> layer.initialize((8, 8, 3))
        (8, 8, 6)
        >>> layer.params["depthwise_kernel"].shape, layer.count_params()
        ((3, 3, 3, 2), 60)
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, dilation_rate=1, activation=None,
                 use_bias=True, depthwise_initializer=None, bias_initializer="zeros", depthwise_regularizer=None,
                 bias_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._kernel_hw = _pair_argument(self, "kernel_size", kernel_size)
        self._strides = _pair_argument(self, "strides", strides)
        self.padding = check_padding("padding", padding)
        self.depth_multiplier = _checks.positive_int("depth_multiplier", depth_multiplier)
        self._dilation = _pair_argument(self, "dilation_rate", dilation_rate)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = check_name("depthwise_initializer", depthwise_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, depthwise_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer,
                           depthwise_constraint=depthwise_constraint, bias_constraint=bias_constraint)

    def _geometry(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        extent = dilated_size(self._kernel_hw, self._dilation)
        pads = resolve_padding(self.padding, (h, w), extent, self._strides)
        return pads, output_hw((h, w), extent, self._strides, pads, what="kernel")

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = self._geometry(input_shape)
        return (ho, wo, input_shape[2] * self.depth_multiplier)

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)
        kh, kw = self._kernel_hw
        c, m = input_shape[2], self.depth_multiplier
        self.add_weight("depthwise_kernel", (kh, kw, c, m), self.depthwise_initializer or
                        self._default_kernel_initializer())
        if self.use_bias:
            self.add_weight("bias", (c * m,), self.bias_initializer)
        self._drop_options_without_weight()

    def count_macs(self):
        ho, wo, cm = self.output_shape
        kh, kw = self._kernel_hw
        return ho * wo * cm * (kh * kw + (1 if self.use_bias else 0))

    def _forward_linear(self, x, training):
        x = _as_dtype(self, x)
        self._x_shape = x.shape
        out, self._depthwise_saved = _depthwise_forward(self, x, self.params.get("bias"))
        return out

    def _backward_linear(self, dout):
        dout = _as_dtype(self, dout)
        kernel = self.params["depthwise_kernel"]
        dx, dk, db = _depthwise_backward(self, dout, has_bias=self.use_bias)
        self.grads["depthwise_kernel"][...] = dk.reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"][...] = db
        return dx


class SeparableConv2D(KerasOptions, Layer):
    """Depthwise-separable 2-D convolution: a :class:`DepthwiseConv2D` (no bias) followed by a 1x1 convolution
    mixing the channels, as in Xception and MobileNet.

    Args (Keras' order):
        filters: output maps ``F``.
        kernel_size, strides, padding, dilation_rate: of the depthwise step (see :class:`DepthwiseConv2D`).
        depth_multiplier: ``m``, default 1.
        activation: applied after the pointwise step, default None.
        use_bias: one bias per output map, default True.
        depthwise_initializer, pointwise_initializer: default None (He uniform before a ReLU-like
            activation, else Glorot uniform).
        bias_initializer: default ``"zeros"``.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer, depthwise_constraint,
        pointwise_constraint, bias_constraint: see :class:`~nnscratch.layers.Dense`.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, F)``; ``depthwise_kernel (kh, kw, C, m)``,
        ``pointwise_kernel (1, 1, C * m, F)``, ``bias (F,)``.

    Example:
        >>> layer = SeparableConv2D(16, 3, padding="same")
        >>> layer.initialize((8, 8, 4))
        (8, 8, 16)
        >>> layer.count_params()     # 3*3*4 + 4*16 + 16, against 3*3*4*16 + 16 = 592 for a Conv2D
        116
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, depth_multiplier=1,
                 activation=None, use_bias=True, depthwise_initializer=None, pointwise_initializer=None,
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self._kernel_hw = _pair_argument(self, "kernel_size", kernel_size)
        self._strides = _pair_argument(self, "strides", strides)
        self.padding = check_padding("padding", padding)
        self._dilation = _pair_argument(self, "dilation_rate", dilation_rate)
        self.depth_multiplier = _checks.positive_int("depth_multiplier", depth_multiplier)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = check_name("depthwise_initializer", depthwise_initializer)
        self.pointwise_initializer = check_name("pointwise_initializer", pointwise_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, depthwise_regularizer=depthwise_regularizer,
                           pointwise_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
                           depthwise_constraint=depthwise_constraint, pointwise_constraint=pointwise_constraint,
                           bias_constraint=bias_constraint)

    _geometry = DepthwiseConv2D._geometry

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = self._geometry(input_shape)
        return (ho, wo, self.filters)

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)
        kh, kw = self._kernel_hw
        c, m, f = input_shape[2], self.depth_multiplier, self.filters
        # the depthwise step is linear: the activation's choice of initialiser concerns the pointwise one
        self.add_weight("depthwise_kernel", (kh, kw, c, m), self.depthwise_initializer or "glorot_uniform")
        self.add_weight("pointwise_kernel", (1, 1, c * m, f), self.pointwise_initializer or
                        self._default_kernel_initializer())
        if self.use_bias:
            self.add_weight("bias", (f,), self.bias_initializer)
        self._drop_options_without_weight()

    def count_macs(self):
        ho, wo, f = self.output_shape
        kh, kw = self._kernel_hw
        cm = self.built_input_shape[2] * self.depth_multiplier
        return ho * wo * (cm * kh * kw + cm * f + (f if self.use_bias else 0))

    def _forward_linear(self, x, training):
        x = _as_dtype(self, x)
        self._x_shape = x.shape
        h, self._depthwise_saved = _depthwise_forward(self, x, None)
        n, ho, wo, cm = h.shape
        h = to_chwn(h).reshape(cm, -1)                                        # a free view: h is stored CHWN
        self._h = h if self.keeps_for_backward else None
        pointwise = self.params["pointwise_kernel"].reshape(cm, self.filters)
        out = pointwise.T @ h
        if self.use_bias:
            out += self.params["bias"][:, None]
        return from_chwn(out.reshape(self.filters, ho, wo, n))

    def _backward_linear(self, dout):
        dout = _as_dtype(self, dout)
        f = self.filters
        dm = to_chwn(dout).reshape(f, -1)                                      # (F, M)
        pointwise = self.params["pointwise_kernel"]
        cm = pointwise.shape[2]
        self.grads["pointwise_kernel"][...] = (self._h @ dm.T).reshape(pointwise.shape)
        if self.use_bias:
            self.grads["bias"][...] = dm.sum(axis=1)
        dh = from_chwn((pointwise.reshape(cm, f) @ dm).reshape(cm, *dout.shape[1:3], dout.shape[0]))
        kernel = self.params["depthwise_kernel"]
        dx, dk, _ = _depthwise_backward(self, dh, has_bias=False)
        self.grads["depthwise_kernel"][...] = dk.reshape(kernel.shape)
        return dx


def _depthwise_forward(layer, x, bias):
    """The depthwise step of ``layer`` (a DepthwiseConv2D or SeparableConv2D): ``(out, saved)``, ``saved`` what
    :func:`_depthwise_backward` needs (None when no backward follows).

    Stride 1 runs :mod:`nnscratch.ops.depthwise` (no column matrix: 2.2x faster for 3x3, 3.1x for 5x5, and
    ``kh * kw`` times less kept memory); other strides run the grouped im2col, which skips the positions between
    strides.
    """
    kernel = layer.params["depthwise_kernel"]
    if depthwise.applies(layer._strides):
        return depthwise.depthwise_forward(x, kernel, bias, layer._pads, layer._dilation, layer.workspace)
    kh, kw, c, m = kernel.shape
    out, cols = grouped_conv2d_forward(x, kernel.reshape(kh, kw, 1, c * m), bias, c, layer._strides, layer._pads,
                                       layer._dilation, layer.workspace)
    return out, (cols if layer.keeps_for_backward else None)


def _depthwise_backward(layer, dout, has_bias):
    """``(dx or None, dkernel (kh, kw, C, m), dbias or None)`` of the depthwise step :func:`_depthwise_forward` ran."""
    kernel = layer.params["depthwise_kernel"]
    if depthwise.applies(layer._strides):
        return depthwise.depthwise_backward(dout, layer._depthwise_saved, kernel, layer._x_shape, layer._pads,
                                            layer._dilation, has_bias=has_bias, need_dx=layer.input_grad_needed,
                                            workspace=layer.workspace)
    kh, kw, c, m = kernel.shape
    return grouped_conv2d_backward(dout, layer._depthwise_saved, kernel.reshape(kh, kw, 1, c * m), layer._x_shape, c,
                                   layer._strides, layer._pads, layer._dilation, has_bias=has_bias,
                                   need_dx=layer.input_grad_needed, workspace=layer.workspace)


def transpose_geometry(size: int, k: int, s: int, d: int, padding: str, output_padding):
    """One axis of a transposed convolution: ``(out, top, used, bottom)``.

    ``out`` is Keras' output length (``deconv_output_length``); the output is the full scatter of the
    input over the windows, ``covered = (size - 1) * s + d * (k - 1) + 1`` positions long, from which ``out``
    positions are kept starting at ``top`` (the padding of the convolution it transposes, TensorFlow's
    ``'same'`` split): ``used`` of them come from the scatter, ``bottom`` positions of it are cut at the
    end, and ``out - used`` zero positions are appended (an ``output_padding`` beyond the scatter).

    Example:
        >>> transpose_geometry(4, 3, 2, 1, "same", None)     # (out, top, used, bottom)
        (8, 0, 8, 1)
        >>> transpose_geometry(4, 3, 2, 1, "valid", 1)
        (10, 0, 9, 0)
    """
    extent = (k - 1) * d + 1
    covered = (size - 1) * s + extent
    if output_padding is None:
        out = size * s + max(extent - s, 0) if padding == "valid" else size * s
    else:
        pad = extent // 2 if padding == "same" else 0
        out = (size - 1) * s + extent - 2 * pad + output_padding
    top = max(covered - out, 0) // 2 if padding == "same" else 0
    used = min(out, covered - top)
    return out, top, used, covered - top - used


class Conv2DTranspose(KerasOptions, Layer):
    """Transposed 2-D convolution (sometimes called deconvolution): the gradient of a convolution with respect
    to its input, used to upsample (decoders, autoencoders, segmentation).

    Args (Keras' order):
        filters: output maps ``F``.
        kernel_size: ``k`` or ``(kh, kw)``.
        strides: ``s`` or ``(sh, sw)``, default 1: the upsampling factor.
        padding: ``'valid'`` (default) or ``'same'``; the output size is Keras' (``deconv_output_length``):
            ``size * s + max(k - s, 0)`` for ``'valid'``, ``size * s`` for ``'same'``.
        output_padding: ``p`` or ``(ph, pw)``, default None: extra rows/columns at the bottom/right, making the
            output ``(size - 1) * s + k - 2 * pad + p`` long (``pad`` is ``k // 2`` for ``'same'``, else 0);
            each must be non-negative and smaller than the stride or the dilation (PyTorch's rule).
        dilation_rate: ``d`` or ``(dh, dw)``, default 1.
        activation: activation name, default None.
        use_bias: default True.
        kernel_initializer: default None (He uniform before a ReLU-like activation, else Glorot uniform).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: see
            :class:`~nnscratch.layers.Dense`.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, F)``; ``kernel (kh, kw, F, C)`` (Keras' layout: output maps
        before input channels), ``bias (F,)``.

    Example:
        >>> layer = Conv2DTranspose(8, 3, strides=2, padding="same")
        >>> layer.initialize((7, 7, 16))
        (14, 14, 8)
        >>> layer.params["kernel"].shape
        (3, 3, 8, 16)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer=None, bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self._kernel_hw = _pair_argument(self, "kernel_size", kernel_size)
        self._strides = _pair_argument(self, "strides", strides)
        self.padding = check_padding("padding", padding, modes=("valid", "same"), explicit=False)
        self._dilation = _pair_argument(self, "dilation_rate", dilation_rate)
        if output_padding is None:
            self._output_padding = self.output_padding = None
        else:
            if isinstance(output_padding, (int, np.integer)) and not isinstance(output_padding, bool) \
                    and output_padding < 0:
                raise ValueError(f"output_padding must be non-negative, got {output_padding}")
            if isinstance(output_padding, (tuple, list)) and any(
                    isinstance(p, (int, np.integer)) and p < 0 for p in output_padding):
                raise ValueError(f"output_padding must be non-negative, got {tuple(output_padding)}")
            self._output_padding = _pair_argument(self, "output_padding", output_padding, allow_zero=True)
            for axis, p, s, d in zip(("height", "width"), self._output_padding, self._strides, self._dilation):
                if p >= max(s, d):
                    raise ValueError(f"output_padding {p} along the {axis} must be smaller than the stride ({s}) or "
                                     f"the dilation ({d}) along it; got output_padding={output_padding!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_name("kernel_initializer", kernel_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def _geometry(self, input_shape):
        h, w, _ = _spatial_shape(self, input_shape)
        ops = self._output_padding or (None, None)
        return [transpose_geometry(size, k, s, d, self.padding, p)
                for size, k, s, d, p in zip((h, w), self._kernel_hw, self._strides, self._dilation, ops)]

    def compute_output_shape(self, input_shape):
        (ho, *_), (wo, *_) = self._geometry(input_shape)
        return (ho, wo, self.filters)

    def build(self, input_shape):
        (self._out_h, top, used_h, bottom), (self._out_w, left, used_w, right) = self._geometry(input_shape)
        self._used = (used_h, used_w)
        self._pads = ((top, bottom), (left, right))     # of the convolution this layer transposes
        kh, kw = self._kernel_hw
        self.add_weight("kernel", (kh, kw, self.filters, input_shape[2]),
                        self.kernel_initializer or self._default_kernel_initializer())
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        self._drop_options_without_weight()

    def count_macs(self):
        h, w, c = self.built_input_shape
        ho, wo, f = self.output_shape
        kh, kw = self._kernel_hw
        return h * w * c * kh * kw * f + (ho * wo * f if self.use_bias else 0)

    def _forward_linear(self, x, training):
        x = _as_dtype(self, x)
        self._x = x if self.keeps_for_backward else None
        n, h, w, c = x.shape
        f = self.filters
        used_h, used_w = self._used
        y = conv2d_input_gradient(to_chwn(x).reshape(c, -1), self.params["kernel"], (n, used_h, used_w, f),
                                  self._strides, self._pads, self.workspace, self._dilation)
        if (used_h, used_w) != (self._out_h, self._out_w):   # output padding beyond the scatter: zeros
            full = np.zeros((f, self._out_h, self._out_w, n), dtype=self.dtype)
            full[:, :used_h, :used_w] = to_chwn(y)
            y = from_chwn(full)
        if self.use_bias:
            y += self.params["bias"]
        return y

    def _backward_linear(self, dout):
        dout = _as_dtype(self, dout)
        used_h, used_w = self._used
        kernel = self.params["kernel"]
        # the convolution this layer transposes, run on the output gradient, is the input gradient; its
        # column matrix gives the kernel gradient
        dx, cols = conv2d_forward(dout[:, :used_h, :used_w], kernel, None, self._strides, self._pads, self.workspace,
                                  self._dilation)
        x = self._x
        self.grads["kernel"][...] = (cols @ to_chwn(x).reshape(x.shape[3], -1).T).reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"][...] = to_chwn(dout).reshape(self.filters, -1).sum(axis=1)
        return dx if self.input_grad_needed else None


class Conv1D(KerasOptions, Layer):
    """1-D convolution over sequences ``(N, L, C)`` (time series, audio, text embeddings).

    Args (Keras' order):
        filters: output channels ``F``.
        kernel_size: ``k``.
        strides: default 1.
        padding: ``'valid'`` (default), ``'same'`` (output ``ceil(L / stride)``, TensorFlow's split),
            ``'causal'`` (``d * (k - 1)`` zeros on the left only, so output ``t`` sees inputs up to ``t``,
            as in WaveNet), ``'full'``, or an int / ``(left, right)``.
        dilation_rate: default 1.
        groups: default 1 (see :class:`~nnscratch.layers.Conv2D`).
        activation: activation name, default None.
        use_bias: default True.
        kernel_initializer: default None (He uniform before a ReLU-like activation, else Glorot uniform).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: see
            :class:`~nnscratch.layers.Dense`.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, L, C)`` -> ``(N, Lo, F)``; ``kernel (k, C / groups, F)``, ``bias (F,)``.

    Example:
        >>> layer = Conv1D(4, 3, padding="causal", dilation_rate=2)
        >>> layer.initialize((10, 2))
        (10, 4)
        >>> layer.params["kernel"].shape
        (3, 2, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer=None, bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self.kernel_size = _checks.positive_int("kernel_size", _single("kernel_size", kernel_size))
        self.strides = _checks.positive_int("strides", _single("strides", strides))
        self._padding = _check_padding_1d(padding)
        self.padding = padding if isinstance(self._padding, str) or isinstance(padding, (int, np.integer)) \
            else list(self._padding)
        self.dilation_rate = _checks.positive_int("dilation_rate", _single("dilation_rate", dilation_rate))
        self.groups = _checks.positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide filters={self.filters}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_name("kernel_initializer", kernel_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def _geometry(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.describe()} expects sequences of shape (steps, channels), got input shape "
                             f"{tuple(input_shape)}; add Reshape((steps, channels)) before it")
        length, c = input_shape
        if c % self.groups:
            raise ValueError(f"{self.describe()} has groups={self.groups}, which must divide the input's {c} channels")
        extent = (self.kernel_size - 1) * self.dilation_rate + 1
        if self._padding == "causal":
            pads = (extent - 1, 0)
        elif isinstance(self._padding, str):
            pads = resolve_padding(self._padding, (1, length), (1, extent), (1, self.strides))[1]
        else:
            pads = tuple(self._padding)
        (lo,) = output_hw((length,), (extent,), (self.strides,), (pads,), what="kernel", axes=("length",))
        return ((0, 0), tuple(pads)), lo

    def compute_output_shape(self, input_shape):
        _, lo = self._geometry(input_shape)
        return (lo, self.filters)

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)
        c = input_shape[1] // self.groups
        self.add_weight("kernel", (self.kernel_size, c, self.filters),
                        self.kernel_initializer or self._default_kernel_initializer())
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        self._drop_options_without_weight()

    def count_macs(self):
        lo, f = self.output_shape
        return lo * f * (self.kernel_size * self.built_input_shape[1] // self.groups + (1 if self.use_bias else 0))

    def _forward_linear(self, x, training):
        x = _as_dtype(self, x)[:, None]                                         # (N, 1, L, C), a view
        kernel = self.params["kernel"][None]                                     # (1, k, C/g, F)
        self._x_shape = x.shape
        strides, dilation = (1, self.strides), (1, self.dilation_rate)
        if self.groups > 1:
            out, cols = grouped_conv2d_forward(x, kernel, self.params.get("bias"), self.groups, strides,
                                               self._pads, dilation, self.workspace)
        else:
            out, cols = conv2d_forward(x, kernel, self.params.get("bias"), strides, self._pads, self.workspace,
                                       dilation)
        self._cols = cols if self.keeps_for_backward else None
        return out[:, 0]

    def _backward_linear(self, dout):
        dout = _as_dtype(self, dout)[:, None]
        kernel = self.params["kernel"][None]
        strides, dilation = (1, self.strides), (1, self.dilation_rate)
        if self.groups > 1:
            dx, dk, db = grouped_conv2d_backward(dout, self._cols, kernel, self._x_shape, self.groups, strides,
                                                 self._pads, dilation, has_bias=self.use_bias,
                                                 need_dx=self.input_grad_needed, workspace=self.workspace)
        else:
            dx, dk, db = conv2d_backward(dout, self._cols, kernel, self._x_shape, strides, self._pads,
                                         has_bias=self.use_bias, need_dx=self.input_grad_needed,
                                         workspace=self.workspace, dilation=dilation)
        self.grads["kernel"][...] = dk[0]
        if self.use_bias:
            self.grads["bias"][...] = db
        return None if dx is None else dx[:, 0]


def _single(name, value):
    """Keras lets 1-D layers take ``(k,)`` for ``k``."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return value[0]
    return value


def _check_padding_1d(padding):
    if isinstance(padding, str) and padding in ("valid", "same", "causal", "full"):
        return padding
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return [int(padding), int(padding)]
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in padding):
        return [int(p) for p in padding]
    raise ValueError(f"padding must be one of 'valid', 'same', 'causal', 'full', a non-negative int or a pair "
                     f"(left, right); got {padding!r}")


# Keras' longer names, accepted in code and in saved configs
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution2D = SeparableConv2D
Convolution1D = Conv1D
LAYERS.register(Conv2DTranspose, aliases=("Convolution2DTranspose", "Deconvolution2D"))
LAYERS.register(SeparableConv2D, aliases=("SeparableConvolution2D",))
LAYERS.register(Conv1D, aliases=("Convolution1D",))

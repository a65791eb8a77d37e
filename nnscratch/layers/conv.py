"""2-D convolution (with optional LeNet-style connection tables) and zero padding, channels-last.

Conv2D's outputs and input gradients are ``(N, H, W, C)`` views of batch-innermost arrays; see
:mod:`nnscratch.ops.layout` for why.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..initializers import check_name, get_initializer
from ..ops.convolution import conv2d_backward, conv2d_forward
from ..ops.im2col import (check_padding, dilated_size, grouped_conv2d_backward, grouped_conv2d_forward, output_hw,
                          resolve_padding)
from ..ops.layout import from_chwn, is_chwn, stored_like, to_chwn
from .base import LAYERS, Layer
from .options import KerasOptions


def _lenet5_c3_table() -> tuple[tuple[bool, ...], ...]:
    links = [{i % 6, (i + 1) % 6, (i + 2) % 6} for i in range(6)]            # maps 0-5: 3 adjacent inputs
    links += [{(i + d) % 6 for d in range(4)} for i in range(6)]            # maps 6-11: 4 adjacent
    links += [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]                     # maps 12-14: 4 non-adjacent
    links += [set(range(6))]                                                # map 15: all six
    return tuple(tuple(c in links[f] for f in range(16)) for c in range(6))


#: LeNet-5's S2 -> C3 connection table (LeCun et al. 1998, Table I): ``table[c][f]`` is True when input
#: map ``c`` (of 6) feeds output map ``f`` (of 16). 60 links, so C3 has 60 * 25 + 16 = 1,516 parameters.
LENET5_C3_CONNECTIONS = _lenet5_c3_table()


def _spatial_shape(layer: Layer, input_shape) -> tuple[int, int, int]:
    """``(H, W, C)`` or a ValueError saying how to get there."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{layer.describe()} expects images of shape (height, width, channels), got input shape "
            f"{tuple(input_shape)}; add Reshape((height, width, channels)) before it, e.g. Reshape((28, 28, 1))"
        )
    return tuple(input_shape)


def _check_connections(table, filters: int) -> np.ndarray:
    try:
        mask = np.array(table)
    except ValueError:  # ragged nested lists
        mask = None
    if mask is None or mask.ndim != 2 or mask.shape[1] != filters:
        shape = "ragged" if mask is None else mask.shape
        raise ValueError(
            f"connections must be a boolean table of shape (input_channels, filters) = (C, {filters}), "
            f"got shape {shape}; table[c][f] says whether input map c feeds output map f"
        )
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"connections must hold booleans (or 0/1), got values of dtype {mask.dtype}: "
                             f"{np.unique(mask)[:5].tolist()}")
        mask = mask.astype(bool)
    unfed = np.flatnonzero(~mask.any(axis=0))
    if unfed.size:
        raise ValueError(
            f"output map(s) {unfed.tolist()} are connected to no input map; every column of connections "
            "needs at least one True (or reduce filters)"
        )
    return mask


class Conv2D(KerasOptions, Layer):
    """2-D convolution (cross-correlation, as in Keras/PyTorch) over channels-last images.

    Args:
        filters: number of output maps ``F``.
        kernel_size: ``k`` or ``(kh, kw)``.
        strides: ``s`` or ``(sh, sw)``, default 1.
        padding: ``'valid'`` (default, no padding), ``'same'`` (output ``ceil(size / stride)``, padding
            split TensorFlow-style, the extra row/column at the bottom/right), ``'full'`` (``k - 1`` on
            each side), an int, ``(ph, pw)`` or ``((top, bottom), (left, right))``.
        connections: optional boolean table ``(C, filters)``; ``connections[c][f]`` says whether input map
            ``c`` feeds output map ``f`` (LeNet-5's C3 uses :data:`LENET5_C3_CONNECTIONS`). Unlinked kernel
            weights stay exactly zero and are not counted as parameters. Default None (all linked).
        use_bias: add one bias per output map, default True.
        kernel_initializer: initialiser name; default None picks He uniform when a ReLU-like activation
            follows or is the layer's own, and Glorot uniform otherwise. Fans are ``kh * kw * (linked
            inputs)`` in and ``kh * kw * filters`` out.
        bias_initializer: default ``"zeros"``.
        dilation_rate: ``d`` or ``(dh, dw)``, the distance between the kernel's taps (an atrous
            convolution: a ``k``-tap kernel spans ``d * (k - 1) + 1`` positions), default 1. Any stride
            works with it (as in PyTorch; Keras refuses strides > 1 with dilation).
        groups: ``g`` dividing the channels and ``filters``, default 1: group ``i`` of ``filters / g`` maps
            sees only group ``i`` of ``C / g`` input channels; the kernel is ``(kh, kw, C / g, filters)``.
        activation: activation name applied to the output (``"relu"``...), default None.
        kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint: see :class:`Dense`.
        **kwargs: ``input_shape``, ``name`` (see :class:`Layer`).

    Shapes:
        x ``(N, H, W, C)`` -> y ``(N, Ho, Wo, filters)`` with ``Ho = (H + pad_h - dh * (kh - 1) - 1) // sh + 1``;
        kernel ``(kh, kw, C / groups, filters)``, bias ``(filters,)``.

    Example:
        >>> import numpy as np
        >>> c3 = Conv2D(16, 5, connections=LENET5_C3_CONNECTIONS)
        >>> c3.initialize((14, 14, 6), rng=np.random.default_rng(0))
        (10, 10, 16)
        >>> c3.count_params()
        1516
        >>> c3.forward(np.ones((2, 14, 14, 6), np.float32)).shape
        (2, 10, 10, 16)
        >>> Conv2D(8, 3, dilation_rate=2, groups=2, activation="relu").initialize((9, 9, 4))
        (5, 5, 8)
    """

    second_order_by_squares = True  # SDLM: see nnscratch.layers.second_order

    def __init__(self, filters, kernel_size, strides=1, padding="valid", connections=None, use_bias=True,
                 kernel_initializer=None, bias_initializer="zeros", dilation_rate=1, groups=1, activation=None,
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self._kernel_hw = _checks.int_pair("kernel_size", kernel_size)
        self.kernel_size = kernel_size if isinstance(kernel_size, int) else list(self._kernel_hw)
        self._strides = _checks.int_pair("strides", strides)
        self.strides = strides if isinstance(strides, int) else list(self._strides)
        self.padding = check_padding("padding", padding)
        self._dilation = _checks.int_pair("dilation_rate", dilation_rate)
        self.dilation_rate = dilation_rate if isinstance(dilation_rate, int) else list(self._dilation)
        self.groups = _checks.positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide filters={self.filters}")
        self._mask = None if connections is None else _check_connections(connections, self.filters)
        if self._mask is not None and self.groups > 1:
            raise ValueError("give either connections (a table of which input maps feed which output maps) or "
                             f"groups, not both; got groups={self.groups}")
        self.connections = None if self._mask is None else self._mask.tolist()
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_name("kernel_initializer", kernel_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        #: set by Model.finalize from the activation that follows, used when kernel_initializer is None
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    # -- shapes -------------------------------------------------------------------------------
    def _geometry(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        if self._mask is not None and self._mask.shape[0] != c:
            raise ValueError(
                f"{self.describe()} has a connection table for {self._mask.shape[0]} input maps but the input "
                f"has {c} channels; give a ({c}, {self.filters}) table or feed {self._mask.shape[0]} channels"
            )
        if c % self.groups:
            raise ValueError(f"{self.describe()} has groups={self.groups}, which must divide the input's {c} channels")
        extent = dilated_size(self._kernel_hw, self._dilation)
        pads = resolve_padding(self.padding, (h, w), extent, self._strides)
        what = "kernel" if self._dilation == (1, 1) else f"dilated kernel (dilation_rate={self.dilation_rate})"
        return pads, output_hw((h, w), extent, self._strides, pads, what=what)

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = self._geometry(input_shape)
        return (ho, wo, self.filters)

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)
        kh, kw = self._kernel_hw
        c, f, area = input_shape[2] // self.groups, self.filters, kh * kw
        init = self.kernel_initializer or self._default_kernel_initializer()
        if self._mask is None:
            self.add_weight("kernel", (kh, kw, c, f), init, fan_in=area * c, fan_out=area * f)
        else:
            kernel = self.add_weight("kernel", (kh, kw, c, f), "zeros")
            # each output map's fan-in is what its own linked inputs give (LeCun 1998's F_i)
            fan_out = area * self._mask.sum() / c
            for o in range(f):
                linked = np.flatnonzero(self._mask[:, o])
                kernel[:, :, linked, o] = get_initializer(init)((kh, kw, linked.size), area * linked.size, fan_out,
                                                                self.rng, self.dtype)
        if self.use_bias:
            self.add_weight("bias", (f,), self.bias_initializer, fan_in=area * c, fan_out=area * f)
        self._kernel_mask = None if self._mask is None else np.broadcast_to(self._mask, (kh, kw, c, f))
        self._drop_options_without_weight()

    def count_macs(self):
        ho, wo, f = self.output_shape
        kh, kw = self._kernel_hw
        links = int(self._mask.sum()) if self._mask is not None else self.built_input_shape[2] // self.groups * f
        return ho * wo * (kh * kw * links + (f if self.use_bias else 0))

    def weight_count(self, name, array):
        if name == "kernel" and self._mask is not None:
            return int(self._kernel_hw[0] * self._kernel_hw[1] * self._mask.sum())
        return int(array.size)

    # -- computation --------------------------------------------------------------------------
    def _forward_linear(self, x, training):
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        kernel = self.params["kernel"]
        if self._kernel_mask is not None:
            # unlinked weights are zero already; masking here too keeps the table's meaning even if a
            # user loads or sets weights that break it (the kernel is tiny, so this costs nothing)
            kernel = kernel * self._kernel_mask
        keep = self.keeps_for_backward  # not in inference: the columns are the thread's shared scratch there
        if self.groups > 1:
            out, cols = grouped_conv2d_forward(x, kernel, self.params.get("bias"), self.groups, self._strides,
                                               self._pads, self._dilation, self.workspace)
            self._cols = cols if keep else None
        else:
            out, saved = conv2d_forward(x, kernel, self.params.get("bias"), self._strides, self._pads,
                                        self.workspace, self._dilation)
            self._saved = saved if keep else None
        self._x_shape = x.shape
        self._kernel_used = kernel
        return out

    def _backward_linear(self, dout):
        if dout.dtype != self.dtype:
            dout = dout.astype(self.dtype)
        if self.groups > 1:
            dx, dkernel, dbias = grouped_conv2d_backward(dout, self._cols, self._kernel_used, self._x_shape,
                                                         self.groups, self._strides, self._pads, self._dilation,
                                                         has_bias=self.use_bias, need_dx=self.input_grad_needed,
                                                         workspace=self.workspace)
        else:
            dx, dkernel, dbias = conv2d_backward(dout, self._saved, self._kernel_used, self._x_shape, self._strides,
                                                 self._pads, has_bias=self.use_bias,
                                                 need_dx=self.input_grad_needed, workspace=self.workspace,
                                                 dilation=self._dilation)
        if self._kernel_mask is not None:
            np.multiply(dkernel, self._kernel_mask, out=self.grads["kernel"])
        else:
            self.grads["kernel"][...] = dkernel
        if self.use_bias:
            self.grads["bias"][...] = dbias
        return dx


class ZeroPad2D(Layer):
    """Adds rows and columns of zeros around each image.

    Args:
        padding: ``p`` (every side), ``(ph, pw)`` (``ph`` above and below, ``pw`` left and right) or
            ``((top, bottom), (left, right))``; default 1.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, H + top + bottom, W + left + right, C)``.

    Example:
        >>> import numpy as np
        >>> pad = ZeroPad2D(((1, 0), (0, 2)))
        >>> pad.initialize((2, 2, 1))
        (3, 4, 1)
        >>> pad.forward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
        array([[0., 0., 0., 0.],
               [1., 1., 0., 0.],
               [1., 1., 0., 0.]], dtype=float32)
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = check_padding("padding", padding, modes=())
        self._pads = resolve_padding(self.padding, None, None, None)

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        (t, b), (l, r) = self._pads
        return (h + t + b, w + l + r, c)

    def forward(self, x, training=False):
        (t, b), (l, r) = self._pads
        n, h, w, c = x.shape
        self._chwn = is_chwn(x)
        if self._chwn:  # keep the storage order the convolution after it reads for free
            out = np.zeros((c, h + t + b, w + l + r, n), dtype=self.dtype)
            out[:, t:t + h, l:l + w] = to_chwn(x)
            return from_chwn(out)
        out = np.zeros((n, h + t + b, w + l + r, c), dtype=self.dtype)
        out[:, t:t + h, l:l + w] = x
        return out

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        (t, _), (l, _) = self._pads
        h, w, _ = self.built_input_shape
        return stored_like(dout[:, t:t + h, l:l + w].copy(order="K"), self._chwn)


# Keras' names, so models written for Keras read naturally and saved configs from either spelling load
Convolution2D = Conv2D
ZeroPadding2D = ZeroPad2D
LAYERS.register(Conv2D, aliases=("Convolution2D",))
LAYERS.register(ZeroPad2D, aliases=("ZeroPadding2D",))

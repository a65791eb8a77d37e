"""Pooling layers over channels-last images and sequences: max, average, LeNet's trainable subsampling,
global average and maximum; 1-D max and average pooling over ``(N, L, C)`` sequences."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..initializers import check_name
from ..ops.im2col import check_padding, output_hw, resolve_padding
from ..ops.pooling import (global_avg_pool_backward, global_avg_pool_forward, max_pool_2x2_backward,
                           max_pool_2x2_forward, max_pool_backward, max_pool_forward, sum_pool_backward,
                           sum_pool_forward, window_counts)
from ..ops.layout import is_chwn, restore, spatial_first, stored_like, to_chwn
from .base import LAYERS, Layer
from .conv import _spatial_shape


def _as_dtype(layer, x):
    return x if x.dtype == layer.dtype else x.astype(layer.dtype)


class _Pool2D(Layer, register=False):
    """Shared arguments and shape logic of the windowed pools.

    Args:
        pool_size: ``k`` or ``(kh, kw)``, default 2.
        strides: ``s`` or ``(sh, sw)``; default None means ``pool_size`` (non-overlapping windows).
        padding: ``'valid'`` (default: windows that do not fit are dropped, so odd sizes floor, as in
            Keras) or ``'same'`` (output ``ceil(size / stride)``, TensorFlow-style padding that windows
            ignore).
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self._pool = _checks.int_pair("pool_size", pool_size)
        self.pool_size = pool_size if isinstance(pool_size, int) else list(self._pool)
        self._strides = self._pool if strides is None else _checks.int_pair("strides", strides)
        self.strides = strides if strides is None or isinstance(strides, int) else list(self._strides)
        self.padding = check_padding("padding", padding, modes=("valid", "same"), explicit=False)

    def _geometry(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        pads = resolve_padding(self.padding, (h, w), self._pool, self._strides)
        return pads, output_hw((h, w), self._pool, self._strides, pads, what="pool")

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = self._geometry(input_shape)
        return (ho, wo, input_shape[2])

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)


class MaxPool2D(_Pool2D):
    """Maximum over each window; backward sends each window's gradient to one input, its maximum
    (on ties the first in column-major window order: leftmost column, then topmost).

    Args: see :class:`_Pool2D` (``pool_size=2, strides=None, padding='valid'``).

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, C)``, ``Ho = (H - kh) // sh + 1`` for ``'valid'``.

    Example:
        >>> import numpy as np
        >>> pool = MaxPool2D(2)
        >>> pool.initialize((5, 5, 3))   # odd sizes floor
        (2, 2, 3)
        >>> pool.forward(np.ones((4, 5, 5, 3), np.float32)).shape
        (4, 2, 2, 3)
    """

    def build(self, input_shape):
        super().build(input_shape)
        # LeNet's case, 2x2 windows tiling the image: winners are recorded in forward when training
        self._tiled_2x2 = (self._pool == (2, 2) and self._strides == (2, 2) and self._pads == ((0, 0), (0, 0))
                           and input_shape[0] % 2 == 0 and input_shape[1] % 2 == 0)

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        self._winners = None
        if training and self._tiled_2x2:
            out, self._winners = max_pool_2x2_forward(x)
        else:
            out = max_pool_forward(x, self._pool, self._strides, self._pads)
        self._x, self._out = (x, out) if self.keeps_for_backward else (None, None)
        return out

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        dout = _as_dtype(self, dout)
        if self._winners is not None:
            return max_pool_2x2_backward(dout, self._winners)
        return max_pool_backward(dout, self._x, self._out, self._pool, self._strides, self._pads)

    def gradcheck_input(self, shape, rng):
        # distinct values at least 2/size apart (plus jitter well below that), so no finite-difference
        # step of the checker can change which element of a window is the maximum
        size = int(np.prod(shape))
        grid = rng.permutation(size).reshape(shape) * (2.0 / size) - 1.0
        return grid + rng.uniform(-0.2 / size, 0.2 / size, size=shape)


class AvgPool2D(_Pool2D):
    """Mean over each window; with ``'same'`` padding only the real elements are averaged (Keras).

    Args: see :class:`_Pool2D` (``pool_size=2, strides=None, padding='valid'``).

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, C)``.

    Example:
        >>> import numpy as np
        >>> pool = AvgPool2D(2)
        >>> pool.initialize((4, 4, 1))
        (2, 2, 1)
        >>> pool.forward(np.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """

    def build(self, input_shape):
        super().build(input_shape)
        counts = window_counts(input_shape[:2], self._pool, self._strides, self._pads)
        area = self._pool[0] * self._pool[1]
        # a scalar keeps the common case a cheap scalar multiply
        self._scale = (1.0 / area) if (counts == area).all() else (1.0 / counts).astype(self.dtype)

    def count_macs(self):
        ho, wo, c = self.output_shape
        return ho * wo * c * self._pool[0] * self._pool[1]

    def _scale_as(self, dtype):
        return dtype.type(self._scale) if np.isscalar(self._scale) else self._scale.astype(dtype, copy=False)

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        self._x_shape = x.shape
        self._chwn = is_chwn(x)
        out = sum_pool_forward(x, self._pool, self._strides, self._pads)
        out *= self._scale_as(out.dtype)
        return out

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        # dx comes back stored the way dout is: make that the way x was
        dout = stored_like(_as_dtype(self, dout), self._chwn) * self._scale_as(self.dtype)
        return sum_pool_backward(dout, self._x_shape, self._pool, self._strides, self._pads)


class Subsampling2D(_Pool2D):
    """LeNet-1998 subsampling (S2, S4): each window's **sum**, times one trainable coefficient per map,
    plus one trainable bias per map: ``y[..., c] = coefficient[c] * sum(window) + bias[c]``.

    LeNet-5 then applies its squashing function as a separate activation layer.

    Args:
        pool_size: default 2; strides default to it (see :class:`_Pool2D`).
        strides: default None (= pool_size).
        padding: ``'valid'`` (default) or ``'same'`` (zero padding).
        coefficient_initializer: initialiser name with fans ``(kh * kw, 1)``, e.g. ``"lecun1998"`` for
            LeCun's uniform +-2.4/4; default None starts every coefficient at ``1 / (kh * kw)``, i.e. as an
            average pool.
        bias_initializer: default ``"zeros"``.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, Ho, Wo, C)``; coefficient ``(C,)``, bias ``(C,)`` (``2 * C`` parameters).

    Example:
        >>> import numpy as np
        >>> s2 = Subsampling2D(2)
        >>> s2.initialize((28, 28, 6))
        (14, 14, 6)
        >>> s2.count_params()
        12
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", coefficient_initializer=None,
                 bias_initializer="zeros", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)
        self.coefficient_initializer = check_name("coefficient_initializer", coefficient_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)

    def count_macs(self):
        ho, wo, c = self.output_shape
        return ho * wo * c * (self._pool[0] * self._pool[1] + 1)   # LeCun's connections: the window and the bias

    def build(self, input_shape):
        super().build(input_shape)
        c, area = input_shape[2], self._pool[0] * self._pool[1]
        self.add_weight("coefficient", (c,), self.coefficient_initializer or 1.0 / area, fan_in=area, fan_out=1)
        self.add_weight("bias", (c,), self.bias_initializer, fan_in=area, fan_out=1)

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        self._x_shape = x.shape
        self._chwn = is_chwn(x)
        sums = sum_pool_forward(x, self._pool, self._strides, self._pads)
        self._sums = sums if self.keeps_for_backward else None
        out = sums * self.params["coefficient"]
        out += self.params["bias"]
        return out

    def backward(self, dout):
        dout = stored_like(_as_dtype(self, dout), self._chwn)
        np.copyto(self.grads["coefficient"], _channel_sums(dout * self._sums))
        np.copyto(self.grads["bias"], _channel_sums(dout))
        if not self.input_grad_needed:
            return None
        return sum_pool_backward(dout * self.params["coefficient"], self._x_shape, self._pool, self._strides,
                                 self._pads)

    def backward_second_order(self, x, d2out):
        # dy/dcoefficient is the whole window's sum, so its square is the square of the sum (the paper's
        # per-connection rule would take the sum of squares instead); dy/dx is the coefficient
        d2out = stored_like(_as_dtype(self, d2out), self._chwn)
        coefficient = self.params["coefficient"]
        self.hessian_diagonal = {"coefficient": _channel_sums(d2out * self._sums * self._sums),
                                 "bias": _channel_sums(d2out)}
        if not self.input_grad_needed:
            return None
        return sum_pool_backward(d2out * (coefficient * coefficient), self._x_shape, self._pool, self._strides,
                                 self._pads)


def _channel_sums(a: np.ndarray) -> np.ndarray:
    """Sum over batch and positions of ``a`` ``(N, H, W, C)`` -> ``(C,)``, in either storage order.

    A vector-matrix product with ones sums far faster than ``a.sum(axis=(0, 1, 2))``.
    """
    c = a.shape[-1]
    ones = np.ones(a.size // c, dtype=a.dtype)
    if is_chwn(a):
        return to_chwn(a).reshape(c, -1) @ ones
    return ones @ np.ascontiguousarray(a).reshape(-1, c)


class GlobalAvgPool2D(Layer):
    """Mean over height and width: ``(N, H, W, C)`` -> ``(N, C)``.

    Args:
        **kwargs: ``input_shape``, ``name``.

    Example:
        >>> import numpy as np
        >>> gap = GlobalAvgPool2D()
        >>> gap.initialize((7, 7, 32))
        (32,)
        >>> gap.forward(np.ones((2, 7, 7, 32))).shape
        (2, 32)
    """

    def compute_output_shape(self, input_shape):
        return (_spatial_shape(self, input_shape)[2],)

    def count_macs(self):
        return int(np.prod(self.built_input_shape))

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        self._x_shape = x.shape
        self._chwn = is_chwn(x)
        return global_avg_pool_forward(x)

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        return global_avg_pool_backward(_as_dtype(self, dout), self._x_shape, chwn=self._chwn)


class GlobalMaxPool2D(Layer):
    """Maximum over height and width: ``(N, H, W, C)`` -> ``(N, C)`` (``(N, 1, 1, C)`` with ``keepdims``).

    Backward sends each map's gradient to one position, its maximum (on ties the first in column-major
    order, as :class:`MaxPool2D`).

    Args:
        keepdims: keep the image axes with size 1, default False (Keras' argument).
        **kwargs: ``input_shape``, ``name``.

    Example:
        >>> import numpy as np
        >>> gmp = GlobalMaxPool2D()
        >>> gmp.initialize((2, 2, 1), "float64")
        (1,)
        >>> gmp.forward(np.array([[[[1.0], [4.0]], [[3.0], [2.0]]]]))
        array([[4.]])
    """

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        c = _spatial_shape(self, input_shape)[2]
        return (1, 1, c) if self.keepdims else (c,)

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        a, flipped = spatial_first(x)                     # (B, H, W, D): B, D are N, C in either order
        b, h, w, d = a.shape
        # column-major winners: scan the positions column by column
        columns = a.transpose(0, 2, 1, 3).reshape(b, w * h, d)
        winner = columns.argmax(axis=1)                   # (B, D), index w * H + h
        self._winner = winner if self.keeps_for_backward else None
        self._shape, self._flipped = a.shape, flipped
        out = np.take_along_axis(columns, winner[:, None], axis=1)[:, 0]   # (B, D)
        out = out.T if flipped else out
        return out.reshape(len(out), 1, 1, -1) if self.keepdims else out

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        dout = _as_dtype(self, dout).reshape(len(dout), -1)      # (N, C)
        b, h, w, d = self._shape
        g = dout.T if self._flipped else dout                    # (B, D)
        dx = np.zeros((b, w * h, d), dtype=self.dtype)
        np.put_along_axis(dx, self._winner[:, None], g[:, None], axis=1)
        return restore(np.ascontiguousarray(dx.reshape(b, w, h, d).transpose(0, 2, 1, 3)), self._flipped)

    def gradcheck_input(self, shape, rng):
        return MaxPool2D.gradcheck_input(self, shape, rng)


class _Pool1D(Layer, register=False):
    """Shared arguments of the 1-D pools over sequences ``(N, L, C)``.

    Args:
        pool_size: ``k``, default 2.
        strides: default None (= ``pool_size``).
        padding: ``'valid'`` (default) or ``'same'``.
        **kwargs: ``input_shape``, ``name``.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _checks.positive_int("pool_size", _single(pool_size))
        self.strides = None if strides is None else _checks.positive_int("strides", _single(strides))
        self.padding = check_padding("padding", padding, modes=("valid", "same"), explicit=False)
        self._pool = (1, self.pool_size)
        self._strides = (1, self.pool_size if strides is None else self.strides)

    def _geometry(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self.describe()} expects sequences of shape (steps, channels), got input shape "
                             f"{tuple(input_shape)}")
        pads = resolve_padding(self.padding, (1, input_shape[0]), self._pool, self._strides)
        (lo,) = output_hw((input_shape[0],), self._pool[1:], self._strides[1:], pads[1:], what="pool", axes=("length",))
        return pads, lo

    def compute_output_shape(self, input_shape):
        _, lo = self._geometry(input_shape)
        return (lo, input_shape[1])

    def build(self, input_shape):
        self._pads, _ = self._geometry(input_shape)


def _single(value):
    return value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value


class MaxPool1D(_Pool1D):
    """Maximum over each window of a sequence: ``(N, L, C)`` -> ``(N, Lo, C)``, ``Lo = (L - k) // s + 1`` for
    ``'valid'``. Args: see :class:`_Pool1D` (``pool_size=2, strides=None, padding='valid'``).

    Example:
        >>> import numpy as np
        >>> pool = MaxPool1D(2)
        >>> pool.initialize((4, 1), "float64")
        (2, 1)
        >>> pool.forward(np.array([[[1.0], [3.0], [2.0], [0.0]]]))[0, :, 0]
        array([3., 2.])
    """

    def forward(self, x, training=False):
        x = _as_dtype(self, x)[:, None]
        out = max_pool_forward(x, self._pool, self._strides, self._pads)
        self._x, self._out = (x, out) if self.keeps_for_backward else (None, None)
        return out[:, 0]

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        dout = _as_dtype(self, dout)[:, None]
        return max_pool_backward(dout, self._x, self._out, self._pool, self._strides, self._pads)[:, 0]

    gradcheck_input = MaxPool2D.gradcheck_input


class AvgPool1D(_Pool1D):
    """Mean over each window of a sequence (with ``'same'`` padding, of its real elements only, as Keras):
    ``(N, L, C)`` -> ``(N, Lo, C)``. Args: see :class:`_Pool1D`.

    Example:
        >>> import numpy as np
        >>> pool = AvgPool1D(2, strides=1, padding="same")
        >>> pool.initialize((4, 1), "float64")
        (4, 1)
        >>> pool.forward(np.array([[[1.0], [3.0], [2.0], [0.0]]]))[0, :, 0]
        array([2. , 2.5, 1. , 0. ])
    """

    def count_macs(self):
        lo, c = self.output_shape
        return lo * c * self.pool_size

    def build(self, input_shape):
        super().build(input_shape)
        counts = window_counts((1, input_shape[0]), self._pool, self._strides, self._pads)
        self._scale = (1.0 / counts).astype(self.dtype)        # (1, Lo, 1)

    def forward(self, x, training=False):
        x = _as_dtype(self, x)
        self._x_shape = x[:, None].shape
        out = sum_pool_forward(x[:, None], self._pool, self._strides, self._pads)
        return (out * self._scale.astype(out.dtype, copy=False))[:, 0]

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        dout = _as_dtype(self, dout)[:, None] * self._scale.astype(self.dtype, copy=False)
        return sum_pool_backward(dout, self._x_shape, self._pool, self._strides, self._pads)[:, 0]


# Keras' names, accepted in code and in saved configs
MaxPooling2D = MaxPool2D
AveragePooling2D = AvgPool2D
GlobalAveragePooling2D = GlobalAvgPool2D
LAYERS.register(MaxPool2D, aliases=("MaxPooling2D",))
LAYERS.register(AvgPool2D, aliases=("AveragePooling2D",))
LAYERS.register(GlobalAvgPool2D, aliases=("GlobalAveragePooling2D",))
GlobalMaxPooling2D = GlobalMaxPool2D
MaxPooling1D = MaxPool1D
AveragePooling1D = AvgPool1D
LAYERS.register(GlobalMaxPool2D, aliases=("GlobalMaxPooling2D",))
LAYERS.register(MaxPool1D, aliases=("MaxPooling1D",))
LAYERS.register(AvgPool1D, aliases=("AveragePooling1D",))

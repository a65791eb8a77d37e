"""Layers that change the size of images: UpSampling2D (nearest, bilinear) and Cropping2D."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..ops.layout import restore, spatial_first
from ..ops.resize import linear_weights, resize_bilinear, upsample_nearest, upsample_nearest_backward
from .base import Layer
from .conv import _spatial_shape

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Enlarges images by whole factors, repeating pixels (``"nearest"``) or interpolating between them
    (``"bilinear"``, half-pixel centres as TensorFlow 2, JAX and PyTorch's ``align_corners=False``).

    Args:
        size: ``s`` or ``(sh, sw)``, default 2.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, H * sh, W * sw, C)``.

    Example:
        >>> import numpy as np
        >>> up = UpSampling2D(2, interpolation="bilinear")
        >>> up.initialize((2, 2, 1), "float64")
        (4, 4, 1)
        >>> up.forward(np.array([[[[0.0], [1.0]], [[2.0], [3.0]]]]))[0, 0, :, 0]
        array([0.  , 0.25, 0.75, 1.  ])
    """

    def __init__(self, size=2, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self._size = _checks.int_pair("size", size)
        self.size = size if isinstance(size, int) else list(self._size)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, got "
                             f"{interpolation!r}")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        return (h * self._size[0], w * self._size[1], c)

    def build(self, input_shape):
        h, w, _ = input_shape
        if self.interpolation == "bilinear":
            self._weights = (linear_weights(h, h * self._size[0], self.dtype),
                             linear_weights(w, w * self._size[1], self.dtype))

    def count_macs(self):
        """Bilinear: 4 per output value (two taps along each axis, applied one axis after the other); nearest: 0."""
        return 4 * int(np.prod(self.output_shape)) if self.interpolation == "bilinear" else 0

    def forward(self, x, training=False):
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if self.interpolation == "nearest":
            return upsample_nearest(x, self._size)
        return resize_bilinear(x, *self._weights)

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        if dout.dtype != self.dtype:
            dout = dout.astype(self.dtype)
        if self.interpolation == "nearest":
            return upsample_nearest_backward(dout, self._size)
        wh, ww = self._weights
        return resize_bilinear(dout, wh.T, ww.T)

    def astype(self, dtype):
        super().astype(dtype)
        if getattr(self, "_weights", None) is not None:
            # made afresh, not cast: float32 weights cast to float64 would keep float32's rounding (of thirds, ...)
            self.build(self.built_input_shape)
        return self


def _check_cropping(cropping):
    def non_negative(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0

    if non_negative(cropping):
        return ((int(cropping),) * 2,) * 2
    if isinstance(cropping, (tuple, list)) and len(cropping) == 2:
        if all(non_negative(v) for v in cropping):
            return tuple((int(v), int(v)) for v in cropping)
        if all(isinstance(p, (tuple, list)) and len(p) == 2 and all(non_negative(v) for v in p) for p in cropping):
            return tuple((int(p[0]), int(p[1])) for p in cropping)
    raise ValueError("cropping must be a non-negative int, a pair (symmetric_height, symmetric_width) or "
                     f"((top, bottom), (left, right)); got {cropping!r}")


class Cropping2D(Layer):
    """Removes rows and columns at the borders of each image.

    Args:
        cropping: ``c`` (every side), ``(ch, cw)`` (``ch`` rows at the top and at the bottom, ``cw`` columns
            left and right) or ``((top, bottom), (left, right))``; default ``((0, 0), (0, 0))`` as in Keras.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        x ``(N, H, W, C)`` -> ``(N, H - top - bottom, W - left - right, C)``.

    Example:
        >>> import numpy as np
        >>> crop = Cropping2D(((1, 0), (0, 2)))
        >>> crop.initialize((3, 4, 1))
        (2, 2, 1)
        >>> crop.forward(np.arange(12.0).reshape(1, 3, 4, 1))[0, :, :, 0]
        array([[4., 5.],
               [8., 9.]])
    """

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self._crops = _check_cropping(cropping)
        # the form the user gave, in plain ints: NumPy integers would reach the config as np.int64(2)
        self.cropping = int(cropping) if isinstance(cropping, (int, np.integer)) else \
            [[int(v) for v in p] if isinstance(p, (tuple, list)) else int(p) for p in cropping]

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial_shape(self, input_shape)
        (t, b), (l, r) = self._crops
        for axis, size, before, after in (("height", h, t, b), ("width", w, l, r)):
            if before + after >= size:
                raise ValueError(f"cropping={self.cropping!r} removes {before} + {after} of the {size} positions along "
                                 f"the {axis}, leaving none; crop less")
        return (h - t - b, w - l - r, c)

    def forward(self, x, training=False):
        (t, b), (l, r) = self._crops
        h, w = x.shape[1:3]
        return x[:, t:h - b, l:w - r]       # a view: nothing reads and writes it at once

    def backward(self, dout):
        if not self.input_grad_needed:
            return None
        (t, _), (l, _) = self._crops
        a, flipped = spatial_first(dout)
        h, w, _ = self.built_input_shape
        dx = np.zeros((a.shape[0], h, w, a.shape[3]), dtype=a.dtype)     # in dout's storage order
        dx[:, t:t + a.shape[1], l:l + a.shape[2]] = a
        return restore(dx, flipped)


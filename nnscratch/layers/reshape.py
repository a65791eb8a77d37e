"""Layers that only change the shape of the data."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..ops.layout import is_chwn, stored_like
from .base import Layer


class Flatten(Layer):
    """``(N, d1, d2, ...)`` -> ``(N, d1 * d2 * ...)``, in C order (channels-last stays channels-last).

    Example:
        >>> import numpy as np
        >>> Flatten().forward(np.zeros((2, 4, 4, 3))).shape
        (2, 48)
    """

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self._shape = x.shape
        self._chwn = is_chwn(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return stored_like(dout.reshape(self._shape), self._chwn)

    def backward_second_order(self, x, d2out):
        return self.backward(d2out)  # a permutation: every derivative is 0 or 1


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (same number of elements).

    Args:
        target_shape: shape without the batch axis, e.g. ``(28, 28, 1)``.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = _checks.shape_tuple("target_shape", target_shape)

    def compute_output_shape(self, input_shape):
        if int(np.prod(input_shape)) != int(np.prod(self.target_shape)):
            raise ValueError(
                f"{self.describe()} cannot reshape {tuple(input_shape)} ({int(np.prod(input_shape))} values) "
                f"to {self.target_shape} ({int(np.prod(self.target_shape))} values)"
            )
        return self.target_shape

    def forward(self, x, training=False):
        self._chwn = is_chwn(x)
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dout):
        return stored_like(dout.reshape((dout.shape[0],) + self.built_input_shape), self._chwn)

    def backward_second_order(self, x, d2out):
        return self.backward(d2out)  # a permutation: every derivative is 0 or 1

"""Fully connected layer."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..initializers import check_name
from .base import Layer


class Dense(Layer):
    """``y = x @ kernel + bias``.

    Args:
        units: number of outputs.
        use_bias: add a bias vector, default True.
        kernel_initializer: initialiser name; default None picks He when a ReLU-like activation follows
            (the model tells the layer at ``finalize``) and Glorot uniform otherwise.
        bias_initializer: default ``"zeros"``.
        **kwargs: ``input_shape``, ``name`` (see :class:`Layer`).

    Shapes:
        x ``(N, in_features)`` -> y ``(N, units)``; kernel ``(in_features, units)``, bias ``(units,)``.

    Example:
        >>> import numpy as np
        >>> layer = Dense(3, input_shape=(4,))
        >>> layer.initialize((4,))
        (3,)
        >>> layer.forward(np.ones((2, 4), np.float32)).shape
        (2, 3)
    """

    def __init__(self, units, use_bias=True, kernel_initializer=None, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_name("kernel_initializer", kernel_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        #: set by Model.finalize from the activation that follows, used when kernel_initializer is None
        self.default_initializer = "glorot_uniform"

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"{self.describe()} expects flat inputs (features,), got shape {tuple(input_shape)}; "
                "add a Flatten() layer before it"
            )
        return (self.units,)

    def build(self, input_shape):
        fan_in = input_shape[0]
        self.add_weight("kernel", (fan_in, self.units), self.kernel_initializer or self.default_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, fan_in=fan_in, fan_out=self.units)

    def forward(self, x, training=False):
        self._x = x
        y = x @ self.params["kernel"]
        if self.use_bias:
            y += self.params["bias"]
        return y

    def backward(self, dout):
        x = self._x
        np.matmul(x.T, dout, out=self.grads["kernel"])
        if self.use_bias:
            np.sum(dout, axis=0, out=self.grads["bias"])
        return dout @ self.params["kernel"].T

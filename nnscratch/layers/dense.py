"""Fully connected layer."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..initializers import check_name
from .base import Layer
from .options import KerasOptions


class Dense(KerasOptions, Layer):
    """``y = activation(x @ kernel + bias)``.

    Args (Keras' order):
        units: number of outputs.
        activation: an activation name (``"relu"``, ``"softmax"``, ``"tanh"``...; see
            :data:`~nnscratch.layers.activations.ACTIVATIONS`) applied to the output, default None (linear).
        use_bias: add a bias vector, default True.
        kernel_initializer: initialiser name; default None picks He when the activation (its own or the
            layer after it, which the model tells at ``finalize``) is ReLU-like and Glorot uniform otherwise.
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer: ``"l1"``, ``"l2"``, ``"l1_l2"``, ``L1L2(l1, l2)``... (see
            :mod:`nnscratch.regularizers`), default None.
        kernel_constraint, bias_constraint: ``MaxNorm(...)``, ``"non_neg"``, ``"unit_norm"``... (see
            :mod:`nnscratch.constraints`), default None.
        **kwargs: ``input_shape``, ``name`` (see :class:`Layer`).

    Shapes:
        x ``(N, in_features)`` -> y ``(N, units)``; kernel ``(in_features, units)``, bias ``(units,)``.

    Example:
        >>> import numpy as np
        >>> layer = Dense(3, activation="softmax", input_shape=(4,))
        >>> layer.initialize((4,))
        (3,)
        >>> y = layer.forward(np.ones((2, 4), np.float32))
        >>> y.shape, bool(np.allclose(y.sum(axis=1), 1))
        ((2, 3), True)
    """

    second_order_by_squares = True  # SDLM: see nnscratch.layers.second_order

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None, bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_name("kernel_initializer", kernel_initializer)
        self.bias_initializer = check_name("bias_initializer", bias_initializer)
        #: set by Model.finalize from the activation that follows, used when kernel_initializer is None
        self.default_initializer = "glorot_uniform"
        self._init_options(activation, kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"{self.describe()} expects flat inputs (features,), got shape {tuple(input_shape)}; "
                "add a Flatten() layer before it"
            )
        return (self.units,)

    def build(self, input_shape):
        fan_in = input_shape[0]
        self.add_weight("kernel", (fan_in, self.units), self.kernel_initializer or self._default_kernel_initializer())
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, fan_in=fan_in, fan_out=self.units)
        self._drop_options_without_weight()

    def count_macs(self):
        return self.built_input_shape[0] * self.units + (self.units if self.use_bias else 0)

    def _forward_linear(self, x, training):
        self._x = x if self.keeps_for_backward else None
        y = x @ self.params["kernel"]
        if self.use_bias:
            y += self.params["bias"]
        return y

    def _backward_linear(self, dout):
        x = self._x
        np.matmul(x.T, dout, out=self.grads["kernel"])
        if self.use_bias:
            np.sum(dout, axis=0, out=self.grads["bias"])
        if not self.input_grad_needed:
            # a model's first layer: nobody reads dx, and for the MLP 784-512-512-10 it was a sixth of a step
            return None
        return dout @ self.params["kernel"].T

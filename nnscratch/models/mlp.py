"""A plain multi-layer perceptron, the baseline next to LeNet-5.

Example:
    >>> model = mlp(input_shape=(28, 28, 1), hidden_units=(300,))
    >>> [type(layer).__name__ for layer in model.layers]
    ['Flatten', 'Dense', 'ReLU', 'Dense', 'Softmax']
"""
from __future__ import annotations

from .. import _checks
from ..layers import LAYERS, Dense, Flatten, Softmax
from ..metrics import CategoricalAccuracy
from ..model import Model
from ..optimizers import Adam


def mlp(input_shape=(28, 28, 1), hidden_units=(300,), num_classes=10, activation="ReLU", optimizer=None,
        seed=None, dtype="float32") -> Model:
    """Flatten -> (Dense -> activation) per hidden layer -> Dense(num_classes) -> Softmax, finalized.

    Args:
        input_shape: shape of one sample, default ``(28, 28, 1)``.
        hidden_units: widths of the hidden layers, default ``(300,)`` (LeCun 1998's 300-unit net).
        num_classes: default 10.
        activation: a registered activation layer name, default ``"ReLU"``.
        optimizer: default Adam(1e-3).
        seed, dtype: as for :class:`~nnscratch.Model`.
    """
    input_shape = _checks.shape_tuple("input_shape", input_shape)
    act = LAYERS.get(activation)
    model = Model(name="mlp", seed=seed, dtype=dtype)
    model.add(Flatten(input_shape=input_shape))
    for i, units in enumerate(hidden_units):
        model.add(Dense(_checks.positive_int(f"hidden_units[{i}]", units)))
        model.add(act())
    model.add(Dense(_checks.positive_int("num_classes", num_classes)))
    model.add(Softmax())
    model.set(loss="categorical_crossentropy", optimizer=optimizer if optimizer is not None else Adam(1e-3),
              accuracy=CategoricalAccuracy())
    model.finalize()
    return model

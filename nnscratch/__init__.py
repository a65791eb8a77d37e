"""nnscratch: a Keras-style neural-network framework in NumPy, with hand-written backward passes.

Example:
    >>> import nnscratch
    >>> from nnscratch.layers import Dense, Softmax
    >>> model = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()])
    >>> model.set(loss="categorical_crossentropy", optimizer="sgd")
    >>> model.finalize()
"""
from . import (callbacks, data, datasets, gradcheck, initializers, layers, losses, metrics, models, optimizers, schedules,
               sdlm)
from ._version import __version__
from .graph import Input, InputLayer
from .model import Model

__all__ = ["Input", "InputLayer", "Model", "load_model", "layers", "losses", "metrics", "optimizers", "schedules",
           "callbacks", "initializers", "data", "datasets", "gradcheck", "models", "__version__"]


def load_model(path):
    """Loads a model saved by ``Model.save`` (HDF5): architecture, weights, optimizer state and history; or a
    Keras model (legacy ``.h5`` of Keras 2/3, or a Keras 3 ``.keras`` file), see ``docs/interop.md``."""
    from .io.formats import load_model as _load
    return _load(path)

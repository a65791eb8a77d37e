"""Weight initialisers, selectable by name.

Each initialiser is ``f(shape, fan_in, fan_out, rng, dtype) -> np.ndarray``. Layers pick a default from
the activation that follows them (He for ReLU-like units, Glorot otherwise, as the issue asks), and the
user can name any of :data:`INITIALIZERS`.

Example:
    >>> import numpy as np
    >>> w = get_initializer("he_normal")((784, 10), 784, 10, np.random.default_rng(0), np.float32)
    >>> w.shape, w.dtype
    ((784, 10), dtype('float32'))
"""
from __future__ import annotations

import numpy as np


def _uniform(limit):
    def init(shape, fan_in, fan_out, rng, dtype):
        return rng.uniform(-limit(fan_in, fan_out), limit(fan_in, fan_out), size=shape).astype(dtype)

    return init


def _normal(std):
    def init(shape, fan_in, fan_out, rng, dtype):
        return (rng.standard_normal(size=shape) * std(fan_in, fan_out)).astype(dtype)

    return init


def _constant(value):
    def init(shape, fan_in, fan_out, rng, dtype):
        return np.full(shape, value, dtype=dtype)

    return init


INITIALIZERS = {
    # Glorot & Bengio 2010: keeps activation variance for tanh/sigmoid/linear units.
    "glorot_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / (fi + fo))),
    "glorot_normal": _normal(lambda fi, fo: np.sqrt(2.0 / (fi + fo))),
    # He et al. 2015: doubles the variance because ReLU zeroes half the units.
    "he_uniform": _uniform(lambda fi, fo: np.sqrt(6.0 / fi)),
    "he_normal": _normal(lambda fi, fo: np.sqrt(2.0 / fi)),
    "lecun_uniform": _uniform(lambda fi, fo: np.sqrt(3.0 / fi)),
    "lecun_normal": _normal(lambda fi, fo: np.sqrt(1.0 / fi)),
    # LeCun 1998 Appendix C: uniform in +-2.4/fan_in, used by the classic LeNet-5.
    "lecun1998": _uniform(lambda fi, fo: 2.4 / fi),
    "zeros": _constant(0.0),
    "ones": _constant(1.0),
}

#: activations after which He initialisation is the better default
RELU_LIKE = {"ReLU", "LeakyReLU", "Swish"}


def get_initializer(name: str):
    """The initialiser function called ``name``.

    Raises:
        ValueError: unknown name; lists the known ones.
    """
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown initializer {name!r}; known: {', '.join(sorted(INITIALIZERS))}") from None


def check_name(argument: str, name) -> str:
    """Validates an initialiser name at layer construction, so a typo fails before ``finalize``."""
    if name is not None:
        try:
            get_initializer(name)
        except ValueError as e:  # the layer has several initialiser arguments: say which one is wrong
            raise ValueError(f"{argument}: {e}") from None
    return name

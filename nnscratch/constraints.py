"""Weight constraints (Keras' ``kernel_constraint`` / ``bias_constraint``): a projection applied to a weight
in place after every optimizer step.

Layers take them by name (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``), as a
``{"class_name", "config"}`` dict or as an object. Norms are taken over ``axis`` as in Keras: for a Dense
kernel ``(in, out)`` the default ``axis=0`` constrains each unit's incoming weights; for a convolution
kernel ``(kh, kw, c_in, c_out)`` pass ``axis=[0, 1, 2]`` to constrain each filter.

Example:
    >>> import numpy as np
    >>> w = np.array([[3.0, 0.1], [4.0, 0.1]])
    >>> MaxNorm(1.0)(w)      # column 0 has norm 5: scaled down to norm 1 (in place)
    >>> np.round(w, 3).tolist()
    [[0.6, 0.1], [0.8, 0.1]]
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .registry import Configurable, Registry, serialize

CONSTRAINTS = Registry("constraint", case_insensitive=True)

#: Keras adds this to norms before dividing by them
EPSILON = 1e-7


def _axis(value):
    if isinstance(value, (list, tuple)):
        return [_checks.positive_int("axis", a, allow_zero=True) for a in value]
    return _checks.positive_int("axis", value, allow_zero=True)


def _norms(w, axis):
    axes = tuple(axis) if isinstance(axis, list) else axis
    try:
        return np.sqrt(np.sum(np.square(w), axis=axes, keepdims=True))
    except np.exceptions.AxisError:
        raise ValueError(f"constraint axis {axis} does not exist in a weight of shape {w.shape}") from None


class Constraint(Configurable):
    """Base class: ``constraint(w)`` projects the array ``w`` in place."""

    registry = CONSTRAINTS

    def __call__(self, w: np.ndarray) -> None:
        raise NotImplementedError


class MaxNorm(Constraint, aliases=("max_norm", "maxnorm")):
    """Rescales the slices whose L2 norm over ``axis`` exceeds ``max_value`` down to it (Keras' formula,
    ``w * clip(norm, 0, max_value) / (epsilon + norm)``).

    Args:
        max_value: default 2.
        axis: int or list of ints, default 0.
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = _checks.number("max_value", max_value, low=0)
        self.axis = _axis(axis)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}

    def __call__(self, w):
        norms = _norms(w, self.axis)
        w *= (np.clip(norms, 0, self.max_value) / (EPSILON + norms)).astype(w.dtype)


class NonNeg(Constraint, aliases=("non_neg", "nonneg")):
    """Sets negative weights to zero."""

    def __call__(self, w):
        np.maximum(w, 0, out=w)


class UnitNorm(Constraint, aliases=("unit_norm", "unitnorm")):
    """Scales every slice over ``axis`` to unit L2 norm (``w / (epsilon + norm)``).

    Args:
        axis: int or list of ints, default 0.
    """

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def get_config(self):
        return {"axis": self.axis}

    def __call__(self, w):
        w /= (EPSILON + _norms(w, self.axis)).astype(w.dtype)


class MinMaxNorm(Constraint, aliases=("min_max_norm", "minmaxnorm")):
    """Moves each slice's norm over ``axis`` a fraction ``rate`` of the way into ``[min_value, max_value]``.

    Args:
        min_value: default 0.0.
        max_value: default 1.0.
        rate: default 1.0 (all the way).
        axis: default 0.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _checks.number("min_value", min_value, low=0)
        self.max_value = _checks.number("max_value", max_value, low=self.min_value)
        self.rate = _checks.number("rate", rate, low=0, high=1)
        self.axis = _axis(axis)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        w *= (desired / (EPSILON + norms)).astype(w.dtype)


def get_constraint(spec, argument: str = "constraint") -> Constraint | None:
    """A constraint from None, a name, a config dict or an instance; errors name ``argument``."""
    if spec is None:
        return None
    try:
        return CONSTRAINTS.create(spec, base=Constraint)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{argument}: {e}") from None


def constraint_config(constraint: Constraint | None):
    """The JSON form a layer's ``get_config`` stores (None stays None)."""
    return None if constraint is None else serialize(constraint, CONSTRAINTS)

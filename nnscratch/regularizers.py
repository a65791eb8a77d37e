"""Weight regularizers (Keras' ``kernel_regularizer`` / ``bias_regularizer``): a penalty on a weight that is
added to the loss, and whose gradient is added to the weight's gradient.

Layers take them by name (``"l1"``, ``"l2"``, ``"l1_l2"``, Keras' defaults of 0.01), as a
``{"class_name", "config"}`` dict, or as an object (:class:`L1`, :class:`L2`, :class:`L1L2`). The model adds
every penalty once per training step, for the whole batch, to the reported loss, and its gradient to the
weight's gradient before the optimizer step (:mod:`nnscratch.engine.penalties`); ``evaluate`` reports the
loss with the penalties too, as Keras does.

Penalties follow Keras exactly: ``L1(l1)`` is ``l1 * sum(|w|)``, ``L2(l2)`` is ``l2 * sum(w ** 2)`` (no 1/2),
so ``L2(l2)`` equals a coupled weight decay of ``2 * l2``.

Example:
    >>> import numpy as np
    >>> reg = get_regularizer("l2")
    >>> reg, reg.penalty(np.array([1.0, -2.0]))
    (L2(l2=0.01), 0.05)
    >>> reg.gradient(np.array([1.0, -2.0])).tolist()
    [0.02, -0.04]
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .registry import Configurable, Registry, serialize

REGULARIZERS = Registry("regularizer", case_insensitive=True)


class Regularizer(Configurable):
    """Base class: ``penalty(w) -> float`` and ``gradient(w) -> array`` (of ``w``'s shape and dtype)."""

    registry = REGULARIZERS

    def penalty(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class L1L2(Regularizer, aliases=("l1_l2",)):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``; the gradient takes ``sign(0) = 0``.

    Args:
        l1: default 0.0 (``"l1_l2"`` by name: 0.01).
        l2: default 0.0 (``"l1_l2"`` by name: 0.01).
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _checks.number("l1", l1, low=0)
        self.l2 = _checks.number("l2", l2, low=0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def penalty(self, w):
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.square(w, dtype=np.float64).sum())
        return total

    def gradient(self, w):
        g = np.zeros_like(w)
        if self.l1:
            g += w.dtype.type(self.l1) * np.sign(w)
        if self.l2:
            g += w.dtype.type(2 * self.l2) * w
        return g


class L1(L1L2, aliases=("l1",)):
    """``l1 * sum(|w|)``.

    Args:
        l1: default 0.01 (Keras' default).
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2, aliases=("l2",)):
    """``l2 * sum(w ** 2)``.

    Args:
        l2: default 0.01 (Keras' default).
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def get_regularizer(spec, argument: str = "regularizer") -> Regularizer | None:
    """A regularizer from None, a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a config dict or an instance.

    Raises:
        ValueError: an unknown name; the message names ``argument`` and lists the known names.
        TypeError: anything else.
    """
    if spec is None:
        return None
    if isinstance(spec, str) and spec.lower().replace("-", "").replace("_", "") == "l1l2":
        return L1L2(0.01, 0.01)
    try:
        return REGULARIZERS.create(spec, base=Regularizer)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{argument}: {e}") from None


def regularizer_config(reg: Regularizer | None):
    """The JSON form a layer's ``get_config`` stores (None stays None)."""
    return None if reg is None else serialize(reg, REGULARIZERS)

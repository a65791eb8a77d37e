"""Finite-difference check of a layer's second-order backward (the Hessian diagonal SDLM uses), as
:mod:`nnscratch.gradcheck` checks ``backward``.

For a layer ``y = F(x, w)`` and a random ``d2y > 0``, :meth:`~nnscratch.layers.Layer.backward_second_order`
must return ``d2x_i = sum_j (dy_j/dx_i)**2 d2y_j`` and fill ``h(w_k) = sum_j (dy_j/dw_k)**2 d2y_j`` (see
:mod:`nnscratch.layers.second_order`). The check builds each column ``dy/dv`` of the Jacobian by central
differences of ``forward`` in float64, one input element or weight at a time, and compares with the relative
error ``|a - n| / max(|a|, |n|, tiny)`` per element. Layers are small here, so the loop over elements is
cheap; a failure names the layer, the tensor, the worst index and both values.

Example:
    >>> from nnscratch.layers import Dense
    >>> check_second_order(Dense(3), (4,)).ok
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gradcheck import central_differences
from .layers.base import Layer

#: central-difference step; the forward is evaluated in float64
STEP = 1e-5
#: largest relative error accepted per element
TOLERANCE = 1e-5
#: denominators below this count as zero (both sides near zero agree)
TINY = 1e-7


@dataclass
class SecondOrderResult:
    """What :func:`check_second_order` found: the worst relative error per tensor (``"input"`` and each
    weight name), and a readable message."""

    layer: str
    errors: dict
    worst: tuple | None  # (tensor, index, analytic, numeric)
    tolerance: float

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    @property
    def message(self) -> str:
        lines = [f"{self.layer}: second-order backward vs finite differences (tolerance {self.tolerance:g})"]
        lines += [f"  {name}: max relative error {err:.2e}" + ("  FAILED" if err > self.tolerance else "")
                  for name, err in self.errors.items()]
        if self.worst is not None and not self.ok:
            tensor, index, a, n = self.worst
            lines.append(f"  worst: {tensor}{list(index)} analytic {a:.8g}, finite differences {n:.8g}")
        return "\n".join(lines)


def _relative(a, n):
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), TINY)


def _squared_jacobian_sum(run, array, d2y, step):
    """``sum_j (dy_j / d array_i)**2 d2y_j`` for every element ``i`` of ``array`` (changed in place and
    restored), with ``run()`` returning ``y``."""
    out = np.zeros(array.shape)
    for i, column in enumerate(central_differences(run, array, range(array.size), step)):
        out.reshape(-1)[i] = np.sum(column * column * d2y)
    return out


def check_second_order(layer, input_shape, *, batch=2, seed=0, tolerance=TOLERANCE, step=STEP) -> SecondOrderResult:
    """Compares ``layer.backward_second_order`` with finite differences, in float64, in inference mode.

    Args:
        layer: a :class:`~nnscratch.layers.Layer` instance (built here, in float64, for ``input_shape``).
        input_shape: one sample's shape, without the batch axis.
        batch: samples in the batch, default 2.
        seed: seeds the weights, the input and ``d2y``; default 0.
        tolerance: default :data:`TOLERANCE`.
        step: finite-difference step, default :data:`STEP`.

    Returns:
        A :class:`SecondOrderResult`; ``.ok`` says whether every tensor passed, ``.message`` says where not.

    Raises:
        SecondOrderNotImplemented: the layer has no second-order backward.
        TypeError: ``layer`` is not a Layer.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"check_second_order takes a Layer instance, got {type(layer).__name__}")
    rng = np.random.default_rng(seed)
    layer.initialize(tuple(input_shape), "float64", rng=np.random.default_rng(seed))
    if layer.multiple_inputs:
        x = [np.asarray(a, dtype=np.float64) for a in layer.gradcheck_input([(batch,) + tuple(s) for s in input_shape],
                                                                            rng)]
    else:
        x = np.array(layer.gradcheck_input((batch,) + tuple(input_shape), rng), dtype=np.float64)
    y = layer.forward(x, training=False)
    d2y = rng.uniform(0.5, 1.5, size=np.shape(y))
    d2x = layer.backward_second_order(x, d2y)
    if layer.multiple_inputs:
        raise TypeError(f"{layer.describe()} takes several inputs; check_second_order checks single-input layers only")
    analytic = {"input": d2x} if d2x is not None else {}
    hessian = dict(getattr(layer, "hessian_diagonal", {}) or {})
    missing = sorted(set(layer.params) - set(hessian))
    if missing:
        raise ValueError(f"{layer.describe()}.backward_second_order filled hessian_diagonal with "
                         f"{sorted(hessian)} but the layer trains {sorted(layer.params)}; it must fill every "
                         f"trainable weight (missing: {missing})")
    analytic.update({name: hessian[name] for name in layer.params})

    def run():
        return np.array(layer.forward(x, training=False), dtype=np.float64)

    numeric = {}
    if "input" in analytic:
        numeric["input"] = _squared_jacobian_sum(run, x, d2y, step)
    for name, value in layer.params.items():
        numeric[name] = _squared_jacobian_sum(run, value, d2y, step)
    errors, worst, worst_error = {}, None, -1.0
    for name, a in analytic.items():
        a = np.asarray(a, dtype=np.float64)
        n = numeric[name]
        if a.shape != n.shape:
            errors[name] = np.inf
            worst = (f"{name} (shape {a.shape}, expected {n.shape})", (), np.nan, np.nan)
            continue
        rel = _relative(a, n) if a.size else np.zeros(0)
        errors[name] = float(rel.max()) if rel.size else 0.0
        if rel.size and errors[name] > worst_error:
            index = np.unravel_index(int(rel.argmax()), rel.shape)
            worst_error, worst = errors[name], (name, tuple(int(i) for i in index), float(a[index]), float(n[index]))
    return SecondOrderResult(layer.describe(), errors, worst, tolerance)

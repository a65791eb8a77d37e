"""Finite-difference gradient checks for any layer or whole model (Caffe's GradientChecker, cs231n).

Everything runs in float64. The layer output is projected on a fixed random upstream gradient ``g``,
``f(x) = sum(layer(x) * g)``, so one scalar function checks the whole Jacobian-vector product that
``backward(g)`` computes. Each element of the input and of every parameter is perturbed by ``+-eps``
(central differences) and compared with the analytic value by the relative error
``|a - n| / max(|a|, |n|, floor)``, where the floor is ``tiny`` or :data:`RELATIVE_FLOOR` times the
largest gradient of the check, whichever is larger: central differences carry an absolute error of about
``1e-11`` for functions of order 1, which would swamp the relative error of elements many orders of
magnitude below the largest (a wrong backward is wrong at every scale). Inputs come from ``layer.gradcheck_input``, which keeps them away
from kinks (ReLU at 0, ties in max pooling); stochastic layers replay the same random draws for every
evaluation.

Example:
    >>> from nnscratch.layers import Dense
    >>> report = check_layer(Dense(3), input_shape=(4,))
    >>> report.ok, report.max_error < 1e-7
    (True, True)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .engine.penalties import add_penalty_gradients, total_penalty
from .layers.base import Layer
from .layers.context import BatchContext, installed

#: default pass threshold on the maximum relative error
TOLERANCE = 1e-6
#: elements far below a tensor's largest gradient are compared against this fraction of it
RELATIVE_FLOOR = 1e-4


class GradientCheckError(AssertionError):
    """A backward pass disagrees with finite differences; the message shows the worst element."""


@dataclass
class TensorCheck:
    """The result for one tensor (the input ``x`` or a parameter)."""

    layer: str
    tensor: str
    shape: tuple
    max_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    checked: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.max_error <= self.tolerance)

    def row(self):
        return [self.layer, self.tensor, "x".join(map(str, self.shape)) or "()", self.checked,
                f"{self.max_error:.2e}", str(self.worst_index), f"{self.analytic:.6e}", f"{self.numeric:.6e}",
                "ok" if self.ok else "FAIL"]


HEADERS = ["layer", "tensor", "shape", "checked", "max rel error", "worst index", "analytic", "numeric", "status"]


@dataclass
class GradcheckReport:
    """All tensor checks of one layer or model. ``ok`` is True when every tensor passed."""

    checks: list[TensorCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def max_error(self) -> float:
        return max((c.max_error for c in self.checks), default=0.0)

    @property
    def failures(self) -> list[TensorCheck]:
        return [c for c in self.checks if not c.ok]

    def table(self, tablefmt="simple") -> str:
        """The checks as a tabulate table."""
        from tabulate import tabulate
        return tabulate([c.row() for c in self.checks], headers=HEADERS, tablefmt=tablefmt, disable_numparse=True)

    def raise_if_failed(self) -> "GradcheckReport":
        if not self.ok:
            lines = [f"{c.layer}: d/d{c.tensor} max relative error {c.max_error:.3e} > {c.tolerance:g} at index "
                     f"{c.worst_index}: analytic {c.analytic:.8e}, numeric {c.numeric:.8e}" for c in self.failures]
            raise GradientCheckError("gradient check failed:\n  " + "\n  ".join(lines))
        return self

    def __str__(self):
        return self.table()


def relative_error(analytic: np.ndarray, numeric: np.ndarray, tiny: float = 1e-8) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, tiny)`` element-wise."""
    return np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), tiny)


def _floor(tiny, gradients) -> float:
    """The relative error's denominator floor: ``tiny``, or :data:`RELATIVE_FLOOR` times the largest analytic
    gradient of the whole check, whichever is larger (a tensor whose true gradient is zero, a bias before a
    normalisation, then compares finite-difference noise against the check's scale, not against itself)."""
    largest = max((float(np.abs(g).max()) for g in gradients if g is not None and np.size(g)), default=0.0)
    return max(tiny, RELATIVE_FLOOR * largest)


def _compare(layer_name, tensor_name, analytic, numeric, indices, tolerance, tiny, shape):
    err = relative_error(analytic, numeric, tiny)
    if not err.size:  # an empty tensor: nothing to compare
        return TensorCheck(layer_name, tensor_name, tuple(shape), 0.0, (), 0.0, 0.0, 0, tolerance)
    worst = int(np.argmax(err))
    return TensorCheck(layer_name, tensor_name, tuple(shape), float(err[worst]),
                       tuple(int(i) for i in np.unravel_index(indices[worst], shape)),
                       float(analytic[worst]), float(numeric[worst]), int(err.size), tolerance)


def central_differences(f, array, indices, eps):
    """Yields ``(f() at +eps - f() at -eps) / (2 eps)`` for each element ``array.flat[i]``, ``i`` in ``indices``,
    perturbed in place and restored; ``f()`` may return a scalar or an array (a Jacobian column)."""
    flat = array.reshape(-1)  # a view: writes reach the array the layer reads
    for i in indices:
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        yield (plus - minus) / (2 * eps)


def _numeric_gradient(f, array, indices, eps):
    """Central differences of scalar ``f()`` w.r.t. ``array.flat[indices]`` (perturbed in place, restored)."""
    out = np.empty(len(indices))
    for j, difference in enumerate(central_differences(f, array, indices, eps)):
        out[j] = difference
    return out


def _pick(size, max_elements, rng):
    if max_elements is None or size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, max_elements, replace=False))


def _tensor_list(x, multiple):
    return [np.array(a, dtype=np.float64) for a in x] if multiple else [np.array(x, dtype=np.float64)]


def check_layer(layer: Layer, input_shape, batch_size: int = 2, seed: int = 0, eps: float = 1e-5,
                tolerance: float = TOLERANCE, tiny: float = 1e-8, training: bool = True,
                max_elements: int | None = None, x=None, raise_on_failure: bool = False) -> GradcheckReport:
    """Checks ``layer.backward`` against central differences, for the input and every parameter.

    The layer is (re)built in float64 for ``input_shape`` with weights drawn from ``seed``. Parameters of
    layers held inside it (sublayers) are checked too, under their path (``"conv/kernel"``).

    Args:
        layer: an unbuilt or built layer; it is rebuilt in float64 (pass a copy to keep yours).
        input_shape: one sample's shape, without the batch axis, e.g. ``(8, 8, 3)``; a list of shapes for a
            layer with several inputs.
        batch_size: default 2 (a batch > 1 catches gradients that forget to sum over samples).
        seed: seeds weights, input and upstream gradient; default 0.
        eps: finite-difference step, default 1e-5 (float64 round-off and truncation
            errors balance near there).
        tolerance: maximum relative error that passes, default 1e-6.
        tiny: floor of the relative error's denominator, default 1e-8 (raised to :data:`RELATIVE_FLOOR` times
            the largest gradient of the check).
        training: call ``forward(x, training=training)``, default True (the mode backward serves).
        max_elements: check at most this many randomly chosen elements per tensor; default None (all).
        x: a specific float64 input ``(batch, *input_shape)`` (a list for several inputs) instead of
            ``layer.gradcheck_input``.
        raise_on_failure: raise :class:`GradientCheckError` instead of returning a failing report.

    Returns:
        A :class:`GradcheckReport` with one :class:`TensorCheck` per tensor (``x`` first; ``x0``, ``x1``...
        for several inputs).
    """
    rng = np.random.default_rng(seed)
    multiple = layer.multiple_inputs
    input_shape = [tuple(s) for s in input_shape] if multiple else tuple(input_shape)
    layer.input_grad_needed = True
    layer.initialize(input_shape, "float64", np.random.default_rng(rng.integers(2**32)))
    if x is None:
        shapes = [(batch_size,) + s for s in input_shape] if multiple else (batch_size,) + input_shape
        x = layer.gradcheck_input(shapes, rng)
    xs = _tensor_list(x, multiple)
    names = [f"x{i}" for i in range(len(xs))] if multiple else ["x"]
    state = copy.deepcopy(layer.state)
    rng_state = copy.deepcopy(layer.rng.bit_generator.state)

    def run():
        # the same random draws and the same state (moving averages) for every evaluation
        layer.rng.bit_generator.state = copy.deepcopy(rng_state)
        for k, v in state.items():
            layer.state[k][...] = v
        return layer.forward(xs if multiple else xs[0], training=training)

    out = run()
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g.copy())
    dxs = list(dx) if multiple else [dx]
    params = {f"{path}{k}": (sub.params[k], sub.grads[k]) for path, sub in layer.walk() for k in sub.params}
    analytic = {n: np.array(d, dtype=np.float64) for n, d in zip(names, dxs)}
    analytic.update({k: np.array(gr, dtype=np.float64) for k, (_, gr) in params.items()})
    name = layer.describe()
    for n, a in zip(names, xs):
        if analytic[n].shape != a.shape:
            raise GradientCheckError(f"{name}: backward returned d{n} of shape {analytic[n].shape}, expected the "
                                     f"input's shape {a.shape}")

    def f():
        return float(np.sum(run() * g))

    tiny = _floor(tiny, analytic.values())
    report = GradcheckReport()
    for tensor_name, array in list(zip(names, xs)) + [(k, p) for k, (p, _) in params.items()]:
        if analytic[tensor_name].shape != array.shape:
            raise GradientCheckError(f"{name}: grads[{tensor_name!r}] has shape {analytic[tensor_name].shape}, "
                                     f"params has {array.shape}")
        idx = _pick(array.size, max_elements, rng)
        numeric = _numeric_gradient(f, array, idx, eps)
        report.checks.append(_compare(name, tensor_name, analytic[tensor_name].reshape(-1)[idx], numeric, idx,
                                      tolerance, tiny, array.shape))
    return report.raise_if_failed() if raise_on_failure else report


def float64_copy(model):
    """A float64 copy of a finalized model (the model itself is left untouched), every gradient computed.

    A deep copy rather than a rebuild from the config: unregistered layers (a user's draft) work too.
    """
    model._require_finalized("check_model")
    clone = copy.deepcopy(model)
    clone.dtype = np.dtype(np.float64)
    for layer in clone.layers:
        layer.astype(np.float64)
    for instance in clone.plan.instances:
        if instance is not None:
            instance.astype(np.float64)
    clone.plan._mark_gradients(need_input_grad=True)
    return clone


def check_model(model, x, y, eps: float = 1e-5, tolerance: float = TOLERANCE, tiny: float = 1e-8,
                max_elements: int | None = 200, seed: int = 0, training: bool = True,
                raise_on_failure: bool = False) -> GradcheckReport:
    """Checks the whole model's backward (loss w.r.t. every parameter and the input) in float64; the loss includes
    the weight regularizers' penalties, as in training.

    A float64 copy of ``model`` is checked, so the model itself is left untouched. Random draws
    (dropout) and state (moving averages) are replayed, so every evaluation sees the same function.

    Args:
        model: a finalized :class:`~nnscratch.Model` (sequential or graph).
        x, y: a small batch of inputs and targets (lists for several inputs or outputs).
        max_elements: elements checked per tensor (randomly chosen), default 200; None checks all.
        training: check the training-mode function (default) or the inference one.

    Returns:
        A :class:`GradcheckReport` (tensor ``x`` for the input, ``x0``, ``x1``... for several, then
        ``layer/param``).
    """
    clone = float64_copy(model)
    xs, ys = clone._check_xy(x, y)
    xs = [a.copy() for a in xs]
    state = [(sub.state, k, v.copy()) for layer in clone.layers for _, sub in layer.walk() for k, v in sub.state.items()]

    def loss():
        for store, k, value in state:  # moving averages move with every training forward: put them back
            store[k][...] = value
        with installed(BatchContext(0, len(xs[0]), (seed, 0, 0))):
            outputs, logits = clone.plan.forward(xs, training)
        return outputs, logits, clone.plan.total_loss(clone.plan.losses_of(outputs, logits, ys)) + total_penalty(clone)

    outputs, logits, _ = loss()
    dxs = clone.plan.backward(outputs, logits, ys)
    if clone.plan.needs_collecting:
        clone.plan.collect_grads([clone.plan.instances])
    add_penalty_gradients(clone)
    params = [(layer.describe(), f"{path}{k}", sub.params[k], sub.grads[k].copy())
              for layer in clone.layers for path, sub in layer.walk() for k in sub.params]
    rng = np.random.default_rng(seed)
    report = GradcheckReport()
    tiny = _floor(tiny, list(dxs) + [g for *_, g in params])
    names = [f"x{i}" for i in range(len(xs))] if len(xs) > 1 else ["x"]
    for n, a, d in zip(names, xs, dxs):
        idx = _pick(a.size, max_elements, rng)
        numeric = _numeric_gradient(lambda: loss()[2], a, idx, eps)
        report.checks.append(_compare(clone.name, n, d.reshape(-1)[idx], numeric, idx, tolerance, tiny, a.shape))
    for layer_name, tensor, p, g in params:
        idx = _pick(p.size, max_elements, rng)
        numeric = _numeric_gradient(lambda: loss()[2], p, idx, eps)
        report.checks.append(_compare(layer_name, tensor, g.reshape(-1)[idx], numeric, idx, tolerance, tiny, p.shape))
    return report.raise_if_failed() if raise_on_failure else report

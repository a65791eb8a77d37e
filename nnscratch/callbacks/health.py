"""Per-layer training health, sampled every few steps: gradient norms, update/weight ratios, dead ReLUs,
saturated tanh/sigmoid units and BatchNormalization drift.

A run that goes wrong usually goes wrong in one layer first: its gradient norm jumps, its updates grow
to a sizeable fraction of its weights, its ReLUs die, its tanh units pin at +-1, or its BatchNormalization
statistics swing. :class:`LayerHealth` records these per layer into the model's history
(``model.history.meta["layer_health"]``, saved with the model and in the history JSON), ``nnscratch plot
HISTORY.json --health`` draws them, and :class:`~nnscratch.callbacks.DivergenceGuard` names the layer
where a blow-up started when the record shows one (:func:`blowup_origin`).

What is read, after the step (``on_batch_end``), from the layers themselves:

* ``grad_norm``: the L2 norm of the layer's gradients (all its arrays together) for the whole batch —
  with ``Model(threads=...)`` the threads' (or worker processes') gradients are summed into the layer's
  ``grads`` before the update, so this is the batch's gradient whatever the thread count;
* ``update_ratio``: ``||w_after - w_before|| / ||w_before||`` for the step (the weights are copied just
  before a sampled step; around 1e-3 is the classic healthy value for SGD, cs231n);
* ``dead_fraction`` (ReLU, LeakyReLU): the fraction of units (channels of a feature map) that output 0
  for every sample and position the layer saw in the step — with several threads or processes, the first
  chunk of the batch (the calling thread's, in this process), which each layer keeps for its backward;
* ``saturated_fraction`` (Tanh, ScaledTanh, Sigmoid): the fraction of outputs within ``1 - saturation``
  of the bounds, where the derivative has all but vanished;
* ``bn_mean_drift`` and ``bn_var_drift`` (BatchNormalization): how far the moving statistics moved since
  the previous sample: ``mean_c |dmean_c| / sqrt(var_c)`` and ``mean_c |log(var_c / var_c_before)|``.

Example:
    >>> import numpy as np
    >>> from nnscratch import Model
    >>> from nnscratch.layers import Dense, ReLU, Softmax
    >>> model = Model([Dense(8, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=0)
    >>> model.set(loss="categorical_crossentropy", optimizer="sgd")
    >>> model.finalize()
    >>> x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    >>> _ = model.fit(x, (x[:, 0] > 0).astype(int), epochs=2, batch_size=8, verbose=0,
    ...               callbacks=[LayerHealth(every=4)])
    >>> record = model.history.meta["layer_health"]
    >>> len(record["x"]), sorted(record["layers"]["dense_1"]), sorted(record["layers"]["re_lu_1"])
    (4, ['grad_norm', 'type', 'update_ratio'], ['dead_fraction', 'type'])
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .base import Callback

#: the key of the record in ``History.meta``
META_KEY = "layer_health"
#: the quantities, with what they are called in plots
METRICS = {"grad_norm": "gradient norm", "update_ratio": "update / weight", "dead_fraction": "dead ReLU units",
           "saturated_fraction": "saturated units", "bn_mean_drift": "BN mean drift",
           "bn_var_drift": "BN variance drift"}
#: an update ratio below this is no blow-up however much it grew (cs231n: ~1e-3 is healthy for SGD)
MIN_UPDATE_RATIO = 1e-2
_RELU_LIKE = ("ReLU", "LeakyReLU")
_SQUASHING = ("Tanh", "ScaledTanh", "Sigmoid")


def _norm(arrays) -> float:
    total = 0.0
    for a in arrays:
        a = a.reshape(-1)
        total += float(np.dot(a, a))  # one BLAS call per array, no temporary
    return math.sqrt(total) if math.isfinite(total) else float("nan")


class LayerHealth(Callback):
    """Records per-layer health every ``every`` training steps into ``model.history.meta["layer_health"]``.

    Args:
        every: sample every this many steps (counted across epochs), default 20: on LeNet-5 with batches of
            64 that cost under 0.5 % of the epoch time (docs/visualize.md has the measurement).
        layers: names of the layers to watch, default None (every layer with something to report).
        saturation: a tanh/sigmoid output counts as saturated within ``1 - saturation`` of its bound,
            default 0.95 (tanh's derivative is then below 0.1).

    With a :class:`~nnscratch.callbacks.DivergenceGuard`, put LayerHealth first in the callbacks list: the
    guard then sees the step that gave the divergence away in the record, and LayerHealth never measures an
    update the guard has already rolled back.

    The record (JSON-able, extended by every ``fit``)::

        {"every": 20, "x": [fractional epochs], "epoch": [...], "step": [...], "loss": [batch losses],
         "layers": {"conv2d_1": {"type": "Conv2D", "grad_norm": [...], "update_ratio": [...]}, ...}}

    Attributes:
        record: the same dict.
    """

    def __init__(self, every=20, layers=None, saturation=0.95):
        super().__init__()
        self.every = _checks.positive_int("LayerHealth: every", every)
        if layers is not None and (isinstance(layers, str) or not all(isinstance(n, str) for n in layers)):
            raise TypeError(f"LayerHealth: layers must be a list of layer names, got {layers!r}")
        self.layers = None if layers is None else list(layers)
        self.saturation = _checks.number("LayerHealth: saturation", saturation, low=0, high=1, low_open=True,
                                         high_open=True)
        self.record = None
        self._count = 0
        self._before = None

    def on_train_begin(self, logs=None):
        model = self.model
        by_name = {layer.name: layer for layer in model.layers}
        if self.layers is not None:
            unknown = [n for n in self.layers if n not in by_name]
            if unknown:
                raise ValueError(f"LayerHealth: the model has no layer named {', '.join(map(repr, unknown))}; its "
                                 f"layers are: {', '.join(by_name)}")
            chosen = [by_name[n] for n in self.layers]
        else:
            chosen = list(model.layers)
        self._watch = []
        for layer in chosen:
            kind = type(layer).__name__
            weights = [(sub, k) for path, sub, trainable in layer._walk_trainable() if trainable for k in sub.params]
            metrics = []
            if weights:
                metrics += ["grad_norm", "update_ratio"]
            if kind in _RELU_LIKE:
                metrics.append("dead_fraction")
            if kind in _SQUASHING:
                metrics.append("saturated_fraction")
            if "moving_variance" in layer.state:
                metrics += ["bn_mean_drift", "bn_var_drift"]
            if metrics:
                self._watch.append((layer, kind, weights, metrics))
        history = model.history
        record = history.meta.get(META_KEY)
        if not isinstance(record, dict) or record.get("every") != self.every:
            record = {"every": self.every, "x": [], "epoch": [], "step": [], "loss": [], "layers": {}}
        n = len(record["x"])
        for layer, kind, _, metrics in self._watch:
            entry = record["layers"].setdefault(layer.name, {"type": kind})
            for m in metrics:
                entry.setdefault(m, [None] * n)
        history.meta[META_KEY] = record
        self.record = record
        self._steps = (logs or {}).get("steps") or 1
        self._count = 0
        self._bn_before = {}
        self._epoch = model.epochs_trained

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_begin(self, batch, logs=None):
        # the weights before a sampled step, for its update ratio (a copy only every `every` steps)
        if self._count % self.every == 0:
            self._before = {layer.name: [sub.params[k].copy() for sub, k in weights]
                            for layer, _, weights, metrics in self._watch if "update_ratio" in metrics}
        else:
            self._before = None

    def on_batch_end(self, batch, logs=None):
        self._count += 1
        if self._before is None:
            return
        before, self._before = self._before, None
        record = self.record
        record["x"].append(self._epoch + (batch + 1) / self._steps)
        record["epoch"].append(int(self._epoch))
        record["step"].append(int(batch))
        loss = (logs or {}).get("loss")
        record["loss"].append(None if loss is None or not math.isfinite(loss) else float(loss))
        width = len(record["x"])
        with np.errstate(all="ignore"):
            for layer, kind, weights, metrics in self._watch:
                values = self._measure(layer, kind, weights, metrics, before.get(layer.name))
                entry = record["layers"][layer.name]
                for m in metrics:
                    v = values.get(m)
                    entry[m].append(None if v is None or not math.isfinite(v) else float(v))
                    if m == "grad_norm" and v is not None and not math.isfinite(v):
                        entry[m][-1] = float("inf")  # a non-finite gradient is the loudest sign there is
        for entry in record["layers"].values():  # layers not watched in this fit keep their lists aligned
            for key, series in entry.items():
                if key != "type" and len(series) < width:
                    series.extend([None] * (width - len(series)))

    def _measure(self, layer, kind, weights, metrics, before) -> dict:
        out = {}
        if "grad_norm" in metrics:
            out["grad_norm"] = _norm(sub.grads[k] for sub, k in weights)
            if before is not None:
                w0 = _norm(before)
                out["update_ratio"] = (_norm(sub.params[k] - b for (sub, k), b in zip(weights, before)) / w0
                                       if w0 > 0 else None)
        y = getattr(layer, "_y", None)  # what the activations keep for their backward: this step's outputs
        if "dead_fraction" in metrics and isinstance(y, np.ndarray) and y.size:
            alive = (y > 0).reshape(-1, y.shape[-1]).any(axis=0)
            out["dead_fraction"] = 1.0 - float(alive.mean())
        if "saturated_fraction" in metrics and isinstance(y, np.ndarray) and y.size:
            if kind == "Sigmoid":
                sat = (y < 1 - self.saturation) | (y > self.saturation)
            else:
                t = getattr(layer, "_t", None) if kind == "ScaledTanh" else y  # ScaledTanh keeps tanh itself
                sat = np.abs(t) > self.saturation if isinstance(t, np.ndarray) else None
            if sat is not None:
                out["saturated_fraction"] = float(sat.mean())
        if "bn_mean_drift" in metrics:
            mean = np.array(layer.state["moving_mean"], dtype=np.float64)
            var = np.array(layer.state["moving_variance"], dtype=np.float64)
            prev = self._bn_before.get(layer.name)
            if prev is not None:
                m0, v0 = prev
                eps = float(getattr(layer, "epsilon", 1e-3))
                out["bn_mean_drift"] = float(np.mean(np.abs(mean - m0) / np.sqrt(var + eps)))
                out["bn_var_drift"] = float(np.mean(np.abs(np.log((var + eps) / (v0 + eps)))))
            self._bn_before[layer.name] = (mean, var)
        return out


def blowup_origin(record, since=None, factor=10.0, baseline_samples=5):
    """The layer where a blow-up started, from a LayerHealth record, or None when it shows none.

    For each layer, the gradient norm and the update ratio of the samples after ``since`` are compared
    with their median over the ``baseline_samples`` samples before it (or over all samples before it, when
    that is higher); the first sample that is
    non-finite or more than ``factor`` times that level marks the layer (an update ratio must also exceed
    :data:`MIN_UPDATE_RATIO`). The earliest mark wins; among marks in the same sample, the largest jump (a
    non-finite value is the largest). A blow-up from the first steps is judged against the first sample.

    Args:
        record: ``history.meta["layer_health"]``.
        since: ``(epoch, step)``: judge only the samples after it (the state a rollback returns to),
            default None (the baseline is then the first samples of the record).
        factor: default 10.

    Returns:
        ``{"layer", "metric", "before", "after", "epoch", "step", "text"}`` or None.
    """
    if not isinstance(record, dict) or not record.get("x"):
        return None
    points = list(zip(record["epoch"], record["step"]))
    if since is None:
        start = min(baseline_samples, len(points) - 1)
    else:
        start = next((i for i, p in enumerate(points) if p > tuple(since)), len(points))
    if start == 0:
        start = 1  # a blow-up from the very first steps: the first sample is the only yardstick there is
    if start >= len(points):
        return None
    best = None
    for name, entry in record.get("layers", {}).items():
        for metric in ("grad_norm", "update_ratio"):
            series = entry.get(metric)
            if not series:
                continue
            base = [v for v in series[max(0, start - baseline_samples):start] if v is not None and math.isfinite(v)]
            if not base:
                continue
            # the recent level, or the layer's typical one when that is higher: after a collapse (dead ReLUs,
            # gradients near 0) a return to ordinary values is no blow-up
            typical = [v for v in series[:start] if v is not None and math.isfinite(v)]
            level = max(float(np.median(base)), float(np.median(typical)))
            for i in range(start, len(series)):
                v = series[i]
                if v is None:
                    continue
                jump = math.inf if not math.isfinite(v) else (v / level if level > 0 else (math.inf if v > 0 else 0))
                if metric == "update_ratio" and math.isfinite(v) and v < MIN_UPDATE_RATIO:
                    continue  # a converged layer's tiny updates growing back to ordinary ones is no blow-up
                if jump > factor:
                    if best is None or i < best[0] or (i == best[0] and jump > best[1]):
                        best = (i, jump, name, metric, level, v)
                    break
    if best is None:
        return None
    i, jump, name, metric, level, v = best
    epoch, step = points[i]
    label = METRICS[metric]
    size = "became non-finite" if not math.isfinite(v) else f"rose from {level:.3g} to {v:.3g} (x{jump:.3g})"
    text = f"the layer health record points at {name}: its {label} {size} at epoch {epoch + 1}, batch {step + 1}"
    return {"layer": name, "metric": metric, "before": level, "after": v, "epoch": epoch, "step": step,
            "text": text}

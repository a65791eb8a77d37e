"""Accuracy metrics: ``metric(y_pred, y_true) -> fraction correct``.

``check_targets`` is shared with the loss (the model validates targets once); ``prepare`` lets a metric
look at the training targets first (RegressionAccuracy derives its tolerance from them).

Example:
    >>> import numpy as np
    >>> CategoricalAccuracy()(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .losses import labels_or_one_hot, matching_targets
from .registry import Configurable, Registry

METRICS = Registry("accuracy", case_insensitive=True)


class Accuracy(Configurable):
    """Base class; subclasses land in ``METRICS``. ``name`` is the key used in logs and history."""

    registry = METRICS

    name = "accuracy"

    def prepare(self, y_true) -> None:
        """Called with the training targets before training."""

    def __call__(self, y_pred, y_true) -> float:
        raise NotImplementedError

def _class_targets(y_true, y_pred, who):
    """Integer labels ``(N,)`` from labels ``(N,)``/``(N, 1)`` or from ``(N, K)`` rows with one largest entry.

    Decided by shape, as the losses do: a 2-D ``(N, K)`` target names the class by its single largest
    entry (a one-hot row, or the +1/-1 style codes an MSE-trained classifier learns); a row without one
    (all zeros, a tie) names no class and is refused instead of being counted as class 0.
    """
    y_pred = np.asarray(y_pred)
    if y_pred.ndim != 2:
        raise ValueError(f"{who} needs predictions of shape (N, classes), got {y_pred.shape}")
    n, k = y_pred.shape
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == k and k > 1:
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: (N, {k}) targets must be numeric, got dtype {y.dtype}")
        top = y.max(axis=1, keepdims=True)
        ties = (y == top).sum(axis=1) != 1
        if ties.any():
            row = int(np.argmax(ties))
            raise ValueError(f"{who}: target row {row} ({y[row].tolist()}) has no single largest entry, so it "
                             "names no class; pass one-hot rows or integer labels")
        labels = y.argmax(axis=1)
    else:
        labels = labels_or_one_hot(y, k, who)
    if len(labels) != n:
        raise ValueError(f"{who}: {n} predictions but {len(labels)} targets")
    return labels


class CategoricalAccuracy(Accuracy, aliases=("categorical_accuracy", "categorical")):
    """Fraction of samples whose highest output ``(N, K)`` is the target class.

    Targets are integer labels ``(N,)`` (or ``(N, 1)``) in ``[0, K)``, or ``(N, K)`` rows whose single
    largest entry marks the class (one-hot rows, or codes such as +1/-1); told apart by shape, whatever
    their dtype, so an integer one-hot matrix with ``N == K`` is read as one-hot.

    Args:
        lower_is_better: pick the *lowest* output instead (for distance outputs such as LeNet-5's RBF
            layer), default False.

    Example:
        >>> p = np.array([[0.1, 0.9], [0.8, 0.2]])
        >>> CategoricalAccuracy()(p, np.array([[0, 1], [0, 1]]))
        0.5
    """

    def __init__(self, lower_is_better=False):
        self.lower_is_better = bool(lower_is_better)

    def get_config(self):
        return {"lower_is_better": self.lower_is_better}

    def __call__(self, y_pred, y_true):
        labels = _class_targets(y_true, y_pred, "CategoricalAccuracy")
        pred = y_pred.argmin(axis=1) if self.lower_is_better else y_pred.argmax(axis=1)
        return float(np.mean(pred == labels))


class BinaryAccuracy(Accuracy, aliases=("binary_accuracy", "binary")):
    """Fraction of outputs on the right side of ``threshold``, over samples and outputs.

    An output counts as right when ``(y_pred > threshold) == (y_true > 0.5)``. Targets (0/1) have the
    predictions' shape, or ``(N,)`` for ``(N, 1)`` predictions; nothing is broadcast.

    Args:
        threshold: default 0.5.

    Example:
        >>> BinaryAccuracy()(np.array([[0.6], [0.4]]), np.array([1, 1]))
        0.5
    """

    def __init__(self, threshold=0.5):
        self.threshold = _checks.number("threshold", threshold)

    def get_config(self):
        return {"threshold": self.threshold}

    def __call__(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "BinaryAccuracy")
        return float(np.mean((y_pred > self.threshold) == (y_true > 0.5)))


class RegressionAccuracy(Accuracy, aliases=("regression_accuracy", "regression")):
    """Fraction of outputs within ``precision`` of the target (``|y_pred - y_true| < precision``).

    Targets have the predictions' shape, or ``(N,)`` for ``(N, 1)`` predictions; nothing is broadcast.

    Args:
        precision: absolute tolerance; default None derives it from the training targets as
            ``std(y_true) / precision_divisor`` when training starts.
        precision_divisor: default 250.
    """

    def __init__(self, precision=None, precision_divisor=250):
        self.precision = None if precision is None else _checks.number("precision", precision, low=0,
                                                                        low_open=True)
        self.precision_divisor = _checks.number("precision_divisor", precision_divisor, low=0, low_open=True)

    def get_config(self):
        return {"precision": self.precision, "precision_divisor": self.precision_divisor}

    def prepare(self, y_true):
        if self.precision is None:
            std = float(np.std(np.asarray(y_true, dtype=np.float64)))
            self.precision = std / self.precision_divisor if std > 0 else 1e-7

    def __call__(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "RegressionAccuracy")
        if self.precision is None:
            self.prepare(y_true)
        return float(np.mean(np.abs(y_pred - y_true) < self.precision))


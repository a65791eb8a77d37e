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

def _as_labels(y_true, num_classes):
    if y_true.ndim == 2 and y_true.shape[1] == num_classes and num_classes > 1:
        return y_true.argmax(axis=1)
    return y_true.reshape(len(y_true))


class CategoricalAccuracy(Accuracy, aliases=("categorical_accuracy", "categorical")):
    """Fraction of samples whose highest output is the label (integer labels or one-hot).

    Args:
        lower_is_better: pick the *lowest* output instead (for distance outputs such as LeNet-5's RBF
            layer), default False.
    """

    def __init__(self, lower_is_better=False):
        self.lower_is_better = bool(lower_is_better)

    def get_config(self):
        return {"lower_is_better": self.lower_is_better}

    def __call__(self, y_pred, y_true):
        labels = _as_labels(np.asarray(y_true), y_pred.shape[1])
        pred = y_pred.argmin(axis=1) if self.lower_is_better else y_pred.argmax(axis=1)
        return float(np.mean(pred == labels))


class BinaryAccuracy(Accuracy, aliases=("binary_accuracy", "binary")):
    """Fraction of outputs on the right side of ``threshold`` (default 0.5), over samples and outputs."""

    def __init__(self, threshold=0.5):
        self.threshold = _checks.number("threshold", threshold)

    def get_config(self):
        return {"threshold": self.threshold}

    def __call__(self, y_pred, y_true):
        y_true = np.asarray(y_true).reshape(y_pred.shape)
        return float(np.mean((y_pred > self.threshold) == (y_true > 0.5)))


class RegressionAccuracy(Accuracy, aliases=("regression_accuracy", "regression")):
    """Fraction of outputs within ``precision`` of the target.

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
        if self.precision is None:
            self.prepare(y_true)
        y_true = np.asarray(y_true).reshape(y_pred.shape)
        return float(np.mean(np.abs(y_pred - y_true) < self.precision))


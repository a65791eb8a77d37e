"""Metrics: accuracies, top-k accuracy, precision / recall / F1 (per class and averaged), binary AUC, and the
confusion matrix.

Every metric is ``metric(y_pred, y_true) -> value`` on one batch, and, for a whole epoch or test set, a sum of
per-batch statistics: ``batch_state(y_pred, y_true)`` returns an array that adds up over batches (and over
the chunks of a batch that threads compute), and ``result(state)`` turns the total into the value. So
precision or AUC over an epoch are the epoch's, not an average of per-batch values. A result is a float, or
a dict ``{suffix: float}`` that logs show as ``name_suffix`` (per-class values).

``prepare`` lets a metric look at the training targets first (RegressionAccuracy derives its tolerance
from them). :class:`LogTally` adds up a run's batch logs; :func:`get_metric` resolves Keras' names
(``"accuracy"`` by the loss, ``"top_k_categorical_accuracy"``, ``"precision"``, ``"recall"``,
``"f1_score"``, ``"auc"``).

Example:
    >>> import numpy as np
    >>> CategoricalAccuracy()(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.3, 0.5]])
    >>> round(F1Score()(p, np.array([0, 2, 2])), 4)     # macro: classes 0, 1, 2 score 1, 0, 2/3
    0.5556
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .losses import labels_or_one_hot, matching_targets
from .registry import Configurable, Registry

METRICS = Registry("metric", case_insensitive=True)


class Metric(Configurable):
    """Base class of every metric; subclasses land in ``METRICS``. ``name`` is the key used in logs and history.

    Subclasses define ``batch_state(y_pred, y_true) -> np.ndarray`` (statistics that add up over batches) and
    ``result(state) -> float | dict``.
    """

    registry = METRICS

    name = "metric"

    def prepare(self, y_true) -> None:
        """Called with the training targets before training."""

    def build(self, output_shape) -> None:
        """Called by the model at ``finalize`` with one sample's output shape."""

    def batch_state(self, y_pred, y_true) -> np.ndarray:
        raise NotImplementedError

    def result(self, state):
        raise NotImplementedError

    def __call__(self, y_pred, y_true):
        return self.result(self.batch_state(y_pred, y_true))


class Accuracy(Metric):
    """Base of the metrics that are a mean over samples: ``__call__`` gives a batch's mean, and the state is
    ``[mean * n, n]`` so an epoch's value is the mean over all its samples."""

    name = "accuracy"

    def __call__(self, y_pred, y_true) -> float:
        raise NotImplementedError

    def batch_state(self, y_pred, y_true):
        n = len(y_pred)
        return np.array([self(y_pred, y_true) * n, n], dtype=np.float64)

    def result(self, state):
        return float(state[0] / state[1]) if state[1] else 0.0

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



class TopKCategoricalAccuracy(Accuracy, aliases=("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
                                                "top_k")):
    """Fraction of samples whose target class is among the ``k`` highest outputs (TensorFlow's ``in_top_k``:
    a target tied with the k-th highest counts as in).

    Targets as :class:`CategoricalAccuracy`'s (labels or one-hot rows).

    Args:
        k: default 5.

    Example:
        >>> p = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
        >>> TopKCategoricalAccuracy(k=2)(p, np.array([1, 0]))
        0.5
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5):
        self.k = _checks.positive_int("k", k)

    def get_config(self):
        return {"k": self.k}

    def __call__(self, y_pred, y_true):
        labels = _class_targets(y_true, y_pred, "TopKCategoricalAccuracy")
        target = y_pred[np.arange(len(labels)), labels][:, None]
        return float(np.mean((y_pred > target).sum(axis=1) < self.k))


AVERAGES = ("auto", "macro", "micro", "weighted", "binary", None)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None, threshold: float = 0.5) -> np.ndarray:
    """Counts ``(true class, predicted class)`` pairs: ``matrix[i, j]`` samples of class ``i`` predicted ``j``.

    Args:
        y_true: integer labels ``(N,)`` or one-hot rows ``(N, K)`` (0/1 targets for a one-output binary model).
        y_pred: model outputs ``(N, K)`` (the highest wins) or ``(N, 1)`` / ``(N,)`` probabilities of class 1
            (class 1 when above ``threshold``).
        num_classes: ``K``, default from ``y_pred`` (2 for one output).
        threshold: for one-output binary models, default 0.5.

    Returns:
        int64 ``(K, K)``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]))
        array([[1, 0],
               [1, 1]])
    """
    labels, predicted, k = _labels_and_predictions(y_true, y_pred, threshold, "confusion_matrix")
    k = k if num_classes is None else _checks.positive_int("num_classes", num_classes)
    if k < max(int(labels.max(initial=0)), int(predicted.max(initial=0))) + 1:
        raise ValueError(f"confusion_matrix: num_classes={k} is smaller than the classes the data holds")
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def _labels_and_predictions(y_true, y_pred, threshold, who):
    """``(true labels, predicted labels, K)`` for a classifier's outputs ``(N, K)`` or a binary one's ``(N, 1)``."""
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_pred.ndim != 2:
        raise ValueError(f"{who} needs outputs of shape (N, classes) or (N, 1), got {y_pred.shape}")
    if y_pred.shape[1] == 1:
        y = matching_targets(y_true, y_pred, who)
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{who}: a one-output (binary) model needs targets that are 0 or 1")
        return y[:, 0].astype(np.int64), (y_pred[:, 0] > threshold).astype(np.int64), 2
    return _class_targets(y_true, y_pred, who), y_pred.argmax(axis=1), y_pred.shape[1]


class _ConfusionMetric(Metric):
    """Precision, recall and F1 from the confusion matrix of the argmax predictions (or ``p > threshold`` for
    one-output binary models), which adds up exactly over batches.

    Args:
        average: ``"macro"`` (the mean over all classes), ``"micro"`` (over all samples; equals the accuracy
            for single-label problems), ``"weighted"`` (by each class's count in the targets), ``"binary"``
            (class 1 only), None (one value per class, logged as ``name_0``, ``name_1``...), or ``"auto"``
            (default): ``"binary"`` for one-output models, ``"macro"`` otherwise.
        threshold: for one-output binary models, default 0.5.
        name: the log key, default the metric's (``"precision"``, ``"recall"``, ``"f1_score"``).
        num_classes: the size of the state, default None (the outputs' width, 2 for one output).

    A class that is never predicted has precision 0, one that never occurs recall 0 (as Keras and
    scikit-learn's ``zero_division=0``).
    """

    def __init__(self, average="auto", threshold=0.5, name=None, num_classes=None):
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {', '.join(map(repr, AVERAGES))}, got {average!r}")
        self.average = average
        self.threshold = _checks.number("threshold", threshold, low=0, high=1)
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"name must be a non-empty string, got {name!r}")
            self.name = name
        self.num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)

    def get_config(self):
        return {"average": self.average, "threshold": self.threshold, "name": self.name,
                "num_classes": self.num_classes}

    def batch_state(self, y_pred, y_true):
        return confusion_matrix(y_true, y_pred, self.num_classes, self.threshold).astype(np.float64).ravel()

    def _per_class(self, matrix):
        raise NotImplementedError

    def result(self, state):
        k = int(round(np.sqrt(len(state))))
        matrix = np.asarray(state).reshape(k, k)
        average = self.average
        if average == "auto":
            average = "binary" if k == 2 and self._one_output else "macro"
        per_class = self._per_class(matrix)
        if average is None:
            return {str(c): float(v) for c, v in enumerate(per_class)}
        if average == "binary":
            return float(per_class[1]) if k > 1 else 0.0
        if average == "macro":
            return float(per_class.mean())
        if average == "weighted":
            support = matrix.sum(axis=1)
            return float((per_class * support).sum() / support.sum()) if support.sum() else 0.0
        total = matrix.sum()
        return float(np.trace(matrix) / total) if total else 0.0       # micro

    #: whether the model has one (sigmoid) output, which ``average="auto"`` reads as a binary problem
    _one_output = False

    def build(self, output_shape):
        self._one_output = tuple(output_shape) == (1,)

    def __call__(self, y_pred, y_true):
        self.build(np.shape(y_pred)[1:] or (1,))
        return self.result(self.batch_state(y_pred, y_true))


def _divide(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


class Precision(_ConfusionMetric, aliases=("precision",)):
    """Of the samples predicted as a class, the fraction that are (see :class:`_ConfusionMetric`).

    Example:
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> Precision(average=None)(p, np.array([0, 1, 1]))
        {'0': 0.5, '1': 1.0}
    """

    name = "precision"

    def _per_class(self, matrix):
        return _divide(np.diag(matrix), matrix.sum(axis=0))


class Recall(_ConfusionMetric, aliases=("recall",)):
    """Of the samples of a class, the fraction predicted as it (see :class:`_ConfusionMetric`)."""

    name = "recall"

    def _per_class(self, matrix):
        return _divide(np.diag(matrix), matrix.sum(axis=1))


class F1Score(_ConfusionMetric, aliases=("f1_score", "f1")):
    """The harmonic mean of precision and recall, per class, then averaged (see :class:`_ConfusionMetric`);
    ``"micro"`` is the F1 of the pooled counts."""

    name = "f1_score"

    def _per_class(self, matrix):
        tp = np.diag(matrix)
        return _divide(2 * tp, matrix.sum(axis=0) + matrix.sum(axis=1))


class AUC(Metric, aliases=("auc",)):
    """Area under the ROC curve of a binary classifier: the probability that a random positive sample scores
    higher than a random negative one (ties count half).

    Scores are probabilities of class 1: a one-output model's ``(N, 1)`` output, or column 1 of a two-class
    softmax ``(N, 2)``. Like Keras' AUC, scores are bucketed into ``num_thresholds - 1`` equal bins of
    ``[0, 1]`` so the state adds up over batches; the result is the trapezoidal area over those thresholds
    (exact when no two samples of different classes share a bin).

    Args:
        num_thresholds: default 200 (Keras' default).
        name: default ``"auc"``.

    Example:
        >>> AUC()(np.array([[0.1], [0.4], [0.35], [0.8]]), np.array([0, 0, 1, 1]))
        0.75
    """

    name = "auc"

    def __init__(self, num_thresholds=200, name=None):
        self.num_thresholds = _checks.positive_int("num_thresholds", num_thresholds)
        if self.num_thresholds < 2:
            raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
        if name is not None:
            self.name = name

    def get_config(self):
        return {"num_thresholds": self.num_thresholds, "name": self.name}

    def batch_state(self, y_pred, y_true):
        y_pred = np.asarray(y_pred)
        if y_pred.ndim == 2 and y_pred.shape[1] == 2:
            labels = _class_targets(y_true, y_pred, "AUC")
            scores = y_pred[:, 1]
        elif y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1):
            scores = y_pred.reshape(-1)
            y = matching_targets(y_true, scores, "AUC")
            if not np.isin(y, (0, 1)).all():
                raise ValueError("AUC needs targets that are 0 or 1")
            labels = y.astype(np.int64)
        else:
            raise ValueError(f"AUC is for binary problems (one sigmoid output or a two-class softmax); the model "
                             f"outputs {y_pred.shape[1:]} per sample. Use Precision, Recall or F1Score for several "
                             "classes")
        bins = self.num_thresholds - 1
        index = np.clip((np.clip(scores, 0.0, 1.0) * bins).astype(np.int64), 0, bins - 1)
        return np.bincount(labels * bins + index, minlength=2 * bins).astype(np.float64)

    def result(self, state):
        negatives, positives = np.asarray(state).reshape(2, -1)
        n_neg, n_pos = negatives.sum(), positives.sum()
        if not n_neg or not n_pos:
            return 0.0
        below = np.cumsum(negatives) - negatives             # negatives in lower bins
        return float((positives * (below + 0.5 * negatives)).sum() / (n_pos * n_neg))


def get_metric(spec, loss=None, output_shape=None) -> Metric:
    """A metric from a name, a config dict or an instance. ``"accuracy"`` / ``"acc"`` follow the loss and the
    output as Keras does: binary accuracy for a binary cross-entropy (or one output), categorical otherwise.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if isinstance(spec, str) and spec.lower() in ("accuracy", "acc"):
        one_output = output_shape is not None and tuple(output_shape)[-1:] == (1,)
        if type(loss).__name__ == "BinaryCrossEntropy" or one_output:
            return BinaryAccuracy()
        return CategoricalAccuracy(lower_is_better=type(loss).__name__ == "LeNetRBFLoss")
    return METRICS.create(spec, base=Metric)


class LogTally:
    """Adds up a run's batch logs: floats as means weighted by batch size, metric states (``logs["_states"]``,
    ``{key: state}``) by summing them.

    Args:
        metrics: ``{log key: Metric}`` for the states.
    """

    def __init__(self, metrics: dict):
        self.metrics = metrics
        self.totals: dict[str, float] = {}
        self.states: dict[str, np.ndarray] = {}
        self.seen = 0

    def _expand(self, key, value, out):
        if isinstance(value, dict):
            for suffix, v in value.items():
                out[f"{key}_{suffix}"] = v
        else:
            out[key] = value

    def add(self, logs: dict, m: int) -> dict:
        """Adds one batch of ``m`` samples; returns its logs as floats (states turned into values)."""
        self.seen += m
        out = {}
        for k, v in logs.items():
            if k == "_states":
                continue
            self.totals[k] = self.totals.get(k, 0.0) + v * m
            out[k] = v
        for k, state in logs.get("_states", {}).items():
            self.states[k] = state if k not in self.states else self.states[k] + state
            self._expand(k, self.metrics[k].result(state), out)
        return out

    def result(self) -> dict:
        """The means and metric values of everything added so far."""
        out = {k: v / max(self.seen, 1) for k, v in self.totals.items()}
        for k, state in self.states.items():
            self._expand(k, self.metrics[k].result(state), out)
        return out

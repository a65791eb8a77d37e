"""Losses: ``forward(y_pred, y_true) -> mean loss`` and ``backward(y_pred, y_true) -> dL/dy_pred``.

Every loss averages over the batch, so its gradient carries the ``1/N``. ``check_targets`` validates a
whole target array once (at ``fit``/``validate``), so the per-batch calls stay cheap.

Example:
    >>> import numpy as np
    >>> loss = CategoricalCrossEntropy()
    >>> p = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> round(loss.forward(p, np.array([0, 0])), 4)
    0.3993
"""
from __future__ import annotations

import numpy as np

from .registry import Configurable, Registry

LOSSES = Registry("loss", case_insensitive=True)

#: probabilities are clipped into [EPS, 1 - EPS] before a log
EPS = 1e-7


class Loss(Configurable):
    """Base class of losses; subclasses land in ``LOSSES`` under their class name and aliases."""

    registry = LOSSES

    def forward(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_targets(self, y_true, output_shape: tuple[int, ...]) -> np.ndarray:
        """Validates targets for outputs of shape ``(N, *output_shape)``; returns them as an array.

        Default: float targets of exactly the output's shape.
        """
        return _float_targets(y_true, output_shape, type(self).__name__)

def _float_targets(y, output_shape, who):
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{who} needs numeric targets, got dtype {y.dtype}")
    if y.ndim == 1 and tuple(output_shape) == (1,):
        y = y[:, None]
    if tuple(y.shape[1:]) != tuple(output_shape):
        raise ValueError(f"{who} needs targets of shape (N, {', '.join(map(str, output_shape))}) to match the "
                         f"model's output, got {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{who}: targets contain NaN/inf")
    return y

def labels_or_one_hot(y, num_classes: int, who: str) -> np.ndarray:
    """Checks class targets: integer labels ``(N,)`` in ``[0, num_classes)`` or one-hot ``(N, num_classes)``.

    Returns integer labels ``(N,)`` as int64 (one-hot rows are converted with argmax).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == num_classes:
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: one-hot targets must be numeric, got dtype {y.dtype}")
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(f"{who}: 2-D targets must be one-hot rows (a single 1 per row, zeros elsewhere) "
                             f"of width {num_classes}; pass integer labels of shape (N,) otherwise")
        return y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{who} needs integer labels of shape (N,) or one-hot targets of shape "
                         f"(N, {num_classes}), got shape {y.shape}")
    if y.dtype.kind == "f":
        raise TypeError(f"{who} needs integer class labels, got float dtype {y.dtype}; "
                        "convert with y.astype(int) if they are whole numbers")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{who} needs integer class labels, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ValueError(f"{who}: labels must lie in [0, {num_classes - 1}] for a model with {num_classes} "
                         f"outputs, got label {int(bad)}; check num_classes or the last layer's units")
    return y.astype(np.int64, copy=False)


class CategoricalCrossEntropy(Loss, aliases=("categorical_crossentropy", "sparse_categorical_crossentropy",
                                              "cross_entropy", "crossentropy")):
    """``-mean(log p[label])`` for probabilities ``y_pred`` ``(N, K)``.

    Targets are integer labels ``(N,)`` or one-hot ``(N, K)``. When the model ends with ``Softmax`` the
    model uses :meth:`from_logits` and :meth:`fused_gradient` instead: ``log_softmax`` without ever
    taking the log of a rounded-to-zero probability, and the gradient ``(p - y) / N``.
    """

    def check_targets(self, y_true, output_shape):
        if len(output_shape) != 1:
            raise ValueError(f"CategoricalCrossEntropy needs outputs of shape (N, classes), "
                             f"the model gives (N, {', '.join(map(str, output_shape))})")
        return labels_or_one_hot(y_true, output_shape[0], "CategoricalCrossEntropy")

    def forward(self, y_pred, y_true):
        p = y_pred[np.arange(len(y_true)), y_true]
        return float(-np.mean(np.log(np.clip(p, EPS, 1.0))))

    def backward(self, y_pred, y_true):
        n = len(y_true)
        grad = np.zeros_like(y_pred)
        rows = np.arange(n)
        grad[rows, y_true] = -1.0 / (np.clip(y_pred[rows, y_true], EPS, 1.0) * n)
        return grad

    @staticmethod
    def from_logits(logits, y_true) -> float:
        """The loss of ``softmax(logits)``, through a shifted log-sum-exp."""
        z = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(y_true)), y_true]))

    @staticmethod
    def fused_gradient(probs, y_true) -> np.ndarray:
        """``dL/dlogits = (softmax - one_hot) / N`` given the softmax output ``probs``."""
        n = len(y_true)
        grad = probs.copy()
        grad[np.arange(n), y_true] -= 1
        grad /= n
        return grad


class BinaryCrossEntropy(Loss, aliases=("binary_crossentropy", "bce")):
    """``-mean(y log p + (1 - y) log(1 - p))`` over samples and outputs; targets 0/1 of the output's shape."""

    def check_targets(self, y_true, output_shape):
        y = _float_targets(y_true, output_shape, "BinaryCrossEntropy")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("BinaryCrossEntropy needs targets that are 0 or 1")
        return y

    def forward(self, y_pred, y_true):
        p = np.clip(y_pred, EPS, 1 - EPS)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))

    def backward(self, y_pred, y_true):
        p = np.clip(y_pred, EPS, 1 - EPS)
        return ((p - y_true) / (p * (1 - p)) / y_pred.size).astype(y_pred.dtype, copy=False)


class MeanSquaredError(Loss, aliases=("mean_squared_error", "mse")):
    """``mean((y_pred - y_true)**2)`` over samples and outputs (Keras' MSE)."""

    def forward(self, y_pred, y_true):
        return float(np.mean((y_pred - y_true) ** 2))

    def backward(self, y_pred, y_true):
        return (2.0 / y_pred.size * (y_pred - y_true)).astype(y_pred.dtype, copy=False)


class SumSquaredError(Loss, aliases=("sum_squared_error", "sse")):
    """``mean over samples of sum over outputs of (y_pred - y_true)**2`` (the per-pattern squared error)."""

    def forward(self, y_pred, y_true):
        return float(np.sum((y_pred - y_true) ** 2) / len(y_pred))

    def backward(self, y_pred, y_true):
        return (2.0 / len(y_pred) * (y_pred - y_true)).astype(y_pred.dtype, copy=False)

"""Losses: ``forward(y_pred, y_true) -> mean loss`` and ``backward(y_pred, y_true) -> dL/dy_pred``.

Every loss averages over the batch, so its gradient carries the ``1/N``. ``check_targets`` validates a
whole target array once (at ``fit``/``validate``); the per-batch calls accept every target format their
docstring names, tell the formats apart by shape (never by dtype), and refuse the rest, while staying cheap
for the prepared targets training passes (a label range check, a shape comparison).

Example:
    >>> import numpy as np
    >>> loss = CategoricalCrossEntropy()
    >>> p = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> round(loss.forward(p, np.array([0, 0])), 4)
    0.3993
"""
from __future__ import annotations

import numpy as np

from .errors import SecondOrderNotImplemented
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

    def second_derivative(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        """``d2L/dy_pred**2``, the diagonal of the loss's Hessian (or of its Gauss-Newton part), ``>= 0`` and
        shaped like ``y_pred``: where SDLM's second-order backward starts. Losses that want SDLM define it."""
        raise SecondOrderNotImplemented(
            f"the loss {type(self).__name__} has no second_derivative(y_pred, y_true), which SDLM needs; use "
            "another optimizer or a loss that has it (MeanSquaredError, SumSquaredError, LeNetRBFLoss)")

    def check_targets(self, y_true, output_shape: tuple[int, ...]) -> np.ndarray:
        """Validates targets for outputs of shape ``(N, *output_shape)``; returns them as an array.

        Default: float targets of exactly the output's shape.
        """
        return _float_targets(y_true, output_shape, type(self).__name__)

    def sample_losses(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        """Each sample's loss ``(N,)``, whose mean is ``forward``: what sample weights scale.

        A loss of your own that is a mean of per-sample terms can define it to take ``sample_weight`` and
        ``class_weight`` (its ``backward`` rows are then scaled by the weights).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define sample_losses(y_pred, y_true), so it cannot "
                                  "take sample_weight or class_weight")

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


def class_labels(y_true, y_pred: np.ndarray, who: str) -> np.ndarray:
    """The integer labels ``(N,)`` that ``y_true`` stands for, checked against predictions ``(N, K)``.

    The format is decided by shape alone: a 2-D ``(N, K)`` target is one-hot (any dtype; each row must hold
    a single 1), a 1-D ``(N,)`` or ``(N, 1)`` target holds integer labels in ``[0, K)``. Labels are never
    used as indices before that check, so neither an integer one-hot matrix with ``N == K`` nor a negative
    label can pick the wrong entries.

    Args:
        y_true: integer labels ``(N,)``/``(N, 1)`` or one-hot ``(N, K)``.
        y_pred: the predictions ``(N, K)`` the targets belong to.
        who: the caller's name, for error messages.

    Returns:
        int labels ``(N,)`` (the array itself when it already is one).

    Raises:
        ValueError: wrong shape, a row that is not one-hot, a label out of range, or ``N`` differs.
        TypeError: non-numeric targets, or float labels.

    Example:
        >>> p = np.full((2, 2), 0.5)
        >>> class_labels(np.array([[0, 1], [1, 0]]), p, "demo").tolist()
        [1, 0]
    """
    y_pred = np.asarray(y_pred)
    if y_pred.ndim != 2:
        raise ValueError(f"{who} needs predictions of shape (N, classes), got {y_pred.shape}")
    n, k = y_pred.shape
    y = np.asarray(y_true)
    if y.ndim == 1 and y.dtype.kind in "iu":
        # the prepared labels every training step passes: two cheap reductions instead of the full check
        if y.size and (y.min() < 0 or y.max() >= k):
            bad = y[(y < 0) | (y >= k)][0]
            raise ValueError(f"{who}: labels must lie in [0, {k - 1}] for predictions with {k} classes, "
                             f"got label {int(bad)}")
    else:
        y = labels_or_one_hot(y, k, who)
    if len(y) != n:
        raise ValueError(f"{who}: {n} predictions but {len(y)} targets; pass one label or one-hot row per sample")
    return y


def matching_targets(y_true, y_pred: np.ndarray, who: str) -> np.ndarray:
    """``y_true`` as an array of exactly ``y_pred``'s shape; never broadcast.

    Broadcasting ``(N, 1)`` predictions against ``(N,)`` targets would silently compare every sample with
    every target (an ``(N, N)`` matrix), so only the same shape is accepted, or a shape that differs from
    it by one trailing axis of length 1 (``(N,)`` targets for ``(N, 1)`` predictions and the reverse).

    Example:
        >>> matching_targets([1.0, 0.0], np.zeros((2, 1)), "demo").shape
        (2, 1)
    """
    y = np.asarray(y_true)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{who} needs numeric targets, got dtype {y.dtype}")
    shape = np.shape(y_pred)
    if y.shape == shape:
        return y
    if y.shape + (1,) == shape or y.shape == shape + (1,):
        return y.reshape(shape)
    raise ValueError(f"{who} needs targets of the predictions' shape {shape}, got {y.shape}; targets are not "
                     "broadcast (an (N, 1) output against (N,) targets is the one reshape done for you)")


class CategoricalCrossEntropy(Loss, aliases=("categorical_crossentropy", "sparse_categorical_crossentropy",
                                              "cross_entropy", "crossentropy")):
    """``-mean(log p[label])`` for probabilities ``y_pred`` ``(N, K)`` (clipped into ``[EPS, 1]`` first).

    Targets are integer labels ``(N,)`` (or ``(N, 1)``) or one-hot rows ``(N, K)``, told apart by their
    shape, whatever their dtype (see :func:`class_labels`); every method below accepts both. Soft targets
    (label smoothing) are refused rather than reduced to their largest entry. When the model ends with
    ``Softmax`` the model uses :meth:`from_logits` and :meth:`fused_gradient` instead: ``log_softmax``
    without ever taking the log of a rounded-to-zero probability, and the gradient ``(p - y) / N``.

    Example:
        >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
        >>> cce = CategoricalCrossEntropy()
        >>> cce.forward(p, np.array([0, 2, 1])) == cce.forward(p, np.eye(3, dtype=int)[[0, 2, 1]])
        True
    """

    def check_targets(self, y_true, output_shape):
        if len(output_shape) != 1:
            raise ValueError(f"CategoricalCrossEntropy needs outputs of shape (N, classes), "
                             f"the model gives (N, {', '.join(map(str, output_shape))})")
        return labels_or_one_hot(y_true, output_shape[0], "CategoricalCrossEntropy")

    def forward(self, y_pred, y_true):
        """Mean loss (a float) of probabilities ``(N, K)`` against labels ``(N,)`` or one-hot ``(N, K)``."""
        y = class_labels(y_true, y_pred, "CategoricalCrossEntropy.forward")
        p = y_pred[np.arange(len(y)), y]
        return float(-np.mean(np.log(np.clip(p, EPS, 1.0))))

    def sample_losses(self, y_pred, y_true):
        y = class_labels(y_true, y_pred, "CategoricalCrossEntropy.sample_losses")
        return -np.log(np.clip(y_pred[np.arange(len(y)), y], EPS, 1.0))

    @staticmethod
    def sample_losses_from_logits(logits, y_true) -> np.ndarray:
        """Each sample's loss ``(N,)`` for ``softmax(logits)``."""
        y = class_labels(y_true, logits, "CategoricalCrossEntropy.sample_losses_from_logits")
        z = logits - logits.max(axis=1, keepdims=True)
        return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]

    def backward(self, y_pred, y_true):
        """``dL/dy_pred`` ``(N, K)``: ``-1 / (N p[label])`` at each label, zero elsewhere."""
        y = class_labels(y_true, y_pred, "CategoricalCrossEntropy.backward")
        n = len(y)
        grad = np.zeros_like(y_pred)
        rows = np.arange(n)
        grad[rows, y] = -1.0 / (np.clip(y_pred[rows, y], EPS, 1.0) * n)
        return grad

    @staticmethod
    def from_logits(logits, y_true) -> float:
        """The loss of ``softmax(logits)`` (logits ``(N, K)``; labels or one-hot), through a shifted log-sum-exp."""
        y = class_labels(y_true, logits, "CategoricalCrossEntropy.from_logits")
        z = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(y)), y]))

    @staticmethod
    def fused_gradient(probs, y_true) -> np.ndarray:
        """``dL/dlogits = (softmax - one_hot) / N`` ``(N, K)`` given the softmax output ``probs``."""
        y = class_labels(y_true, probs, "CategoricalCrossEntropy.fused_gradient")
        n = len(y)
        grad = probs.copy()
        grad[np.arange(n), y] -= 1
        grad /= n
        return grad


class BinaryCrossEntropy(Loss, aliases=("binary_crossentropy", "bce")):
    """``-mean(y log p + (1 - y) log(1 - p))`` over samples and outputs, ``p`` clipped into ``[EPS, 1 - EPS]``.

    Targets have the predictions' shape (``(N,)`` also for ``(N, 1)`` predictions; nothing else is
    broadcast). Training insists on targets that are 0 or 1 (:meth:`check_targets`); ``forward`` and
    ``backward`` compute the same formula for any target in ``[0, 1]``.

    Example:
        >>> round(BinaryCrossEntropy().forward(np.array([[0.8], [0.4]]), np.array([1, 0])), 4)
        0.367
    """

    def check_targets(self, y_true, output_shape):
        y = _float_targets(y_true, output_shape, "BinaryCrossEntropy")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("BinaryCrossEntropy needs targets that are 0 or 1")
        return y

    def forward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "BinaryCrossEntropy.forward")
        p = np.clip(y_pred, EPS, 1 - EPS)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))

    def sample_losses(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "BinaryCrossEntropy.sample_losses")
        p = np.clip(y_pred, EPS, 1 - EPS)
        return -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).reshape(len(p), -1).mean(axis=1)

    def backward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "BinaryCrossEntropy.backward")
        p = np.clip(y_pred, EPS, 1 - EPS)
        return ((p - y_true) / (p * (1 - p)) / y_pred.size).astype(y_pred.dtype, copy=False)


class MeanSquaredError(Loss, aliases=("mean_squared_error", "mse")):
    """``mean((y_pred - y_true)**2)`` over samples and outputs (Keras' MSE).

    Targets have the predictions' shape (``(N,)`` also for ``(N, 1)`` predictions; nothing else is broadcast).

    Example:
        >>> MeanSquaredError().forward(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]))
        2.5
    """

    def forward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "MeanSquaredError.forward")
        return float(np.mean((y_pred - y_true) ** 2))

    def sample_losses(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "MeanSquaredError.sample_losses")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).mean(axis=1)

    def backward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "MeanSquaredError.backward")
        return (2.0 / y_pred.size * (y_pred - y_true)).astype(y_pred.dtype, copy=False)

    def second_derivative(self, y_pred, y_true):
        matching_targets(y_true, y_pred, "MeanSquaredError.second_derivative")
        return np.full_like(y_pred, 2.0 / y_pred.size)


class SumSquaredError(Loss, aliases=("sum_squared_error", "sse")):
    """``mean over samples of sum over outputs of (y_pred - y_true)**2`` (the per-pattern squared error).

    Targets have the predictions' shape (``(N,)`` also for ``(N, 1)`` predictions; nothing else is broadcast).

    Example:
        >>> SumSquaredError().forward(np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros((2, 2)))
        2.5
    """

    def forward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "SumSquaredError.forward")
        return float(np.sum((y_pred - y_true) ** 2) / len(y_pred))

    def sample_losses(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "SumSquaredError.sample_losses")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(axis=1)

    def backward(self, y_pred, y_true):
        y_true = matching_targets(y_true, y_pred, "SumSquaredError.backward")
        return (2.0 / len(y_pred) * (y_pred - y_true)).astype(y_pred.dtype, copy=False)

    def second_derivative(self, y_pred, y_true):
        matching_targets(y_true, y_pred, "SumSquaredError.second_derivative")
        return np.full_like(y_pred, 2.0 / len(y_pred))


def weighted_mean(losses: np.ndarray, weights: np.ndarray | None) -> float:
    """``mean(weights * losses)`` over the batch: Keras' ``sum_over_batch_size`` reduction (the sum of the
    weighted losses divided by the batch size, not by the sum of the weights)."""
    if weights is None:
        return float(np.mean(losses))
    # in the losses' dtype: weights of 1 then give the unweighted mean bit for bit
    return float(np.mean(weights.astype(losses.dtype, copy=False) * losses))


def weight_rows(grad: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``grad`` ``(N, ...)`` with row ``i`` scaled by ``weights[i]`` (the gradient of a weighted mean of
    per-sample losses)."""
    if weights is None:
        return grad
    return grad * weights.astype(grad.dtype, copy=False).reshape((-1,) + (1,) * (grad.ndim - 1))

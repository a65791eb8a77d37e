"""Sample weights and class weights: per-sample factors on the loss (Keras' ``sample_weight`` and
``class_weight``).

A weighted batch loss is ``sum(w_i * loss_i) / N`` (Keras' ``sum_over_batch_size``), so weights of 1 give
exactly the unweighted training, and the gradient of sample ``i`` is scaled by ``w_i``. Metrics are not
weighted. ``class_weight`` ``{class: weight}`` turns each sample's class into its weight (times its
``sample_weight`` when both are given); it needs class targets and a model with one output.

Example:
    >>> import numpy as np
    >>> check_sample_weight(np.ones(3), 3).tolist()
    [1.0, 1.0, 1.0]
"""
from __future__ import annotations

import numbers

import numpy as np


def check_sample_weight(w, n: int, what: str = "sample_weight") -> np.ndarray:
    """``w`` as float64 ``(N,)``: one finite, non-negative weight per sample (``(N, 1)`` is flattened)."""
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numbers, one per sample; got {type(w).__name__}") from None
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{what} must hold one weight per sample, shape ({n},); got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = w[~np.isfinite(w) | (w < 0)][0]
        raise ValueError(f"{what} must be finite and non-negative, got {bad}")
    return w


def split_per_output(model, sample_weight, n: int, what: str = "sample_weight") -> list:
    """Per model output, the checked weights (one array for a model with one output, or applied to every
    output; a list or a dict by output name gives each output its own, None for none)."""
    outputs = model.output_names
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(outputs))
        if unknown:
            raise ValueError(f"{what} names outputs {unknown}; the model's outputs are {outputs}")
        items = [sample_weight.get(name) for name in outputs]
    elif isinstance(sample_weight, (list, tuple)) and len(outputs) > 1:
        if len(sample_weight) != len(outputs):
            raise ValueError(f"{what} has {len(sample_weight)} entries for a model with {len(outputs)} outputs")
        items = list(sample_weight)
    else:
        items = [sample_weight] * len(outputs)
    return [None if w is None else check_sample_weight(w, n, what if len(outputs) == 1 else f"{what} of {name}")
            for w, name in zip(items, outputs)]


def _class_labels(model, y, what):
    """The class of each sample of checked targets ``y`` of a one-output model."""
    shape = tuple(model.output_shape)
    if y.ndim == 1 and y.dtype.kind in "iu":
        return y, max(shape[-1], 2)
    if y.ndim == 2 and y.shape[1] > 1:
        ties = (y == y.max(axis=1, keepdims=True)).sum(axis=1) != 1
        if ties.any():
            raise ValueError(f"class_weight needs class targets: row {int(np.argmax(ties))} of the targets of {what} "
                             "has no single largest entry, so it names no class")
        return y.argmax(axis=1), y.shape[1]
    flat = y.reshape(len(y), -1)
    if flat.shape[1] == 1 and np.isin(flat, (0, 1)).all():
        return flat[:, 0].astype(np.int64), 2
    raise ValueError(f"class_weight needs class targets (integer labels, one-hot rows, or 0/1 for one output); the "
                     f"targets of {what} have shape {y.shape}")


def class_sample_weights(model, class_weight, y, what: str = "y") -> np.ndarray:
    """Per-sample weights ``(N,)`` from ``class_weight`` ``{class: weight}`` and the checked targets ``y``.

    Raises:
        ValueError: several outputs; a class the model cannot output; a class of the data without a weight;
            a weight that is not a finite non-negative number.
        TypeError: not a dict.
    """
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}")
    if len(model.output_names) != 1:
        raise ValueError("class_weight is for models with one output; give several outputs sample_weight instead")
    labels, k = _class_labels(model, y, what)
    table = np.full(k, np.nan)
    for key, weight in class_weight.items():
        if not isinstance(key, numbers.Integral) or isinstance(key, bool) or not 0 <= key < k:
            raise ValueError(f"class_weight has a weight for class {key!r}, but the model's classes are 0..{k - 1} "
                             f"(the labels its targets can have)")
        if not isinstance(weight, numbers.Real) or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"class_weight[{key}] must be a finite non-negative number, got {weight!r}")
        table[int(key)] = float(weight)
    missing = np.unique(labels[np.isnan(table[labels])])
    if missing.size:
        raise ValueError(f"class_weight has no weight for class(es) {missing.tolist()}, which the targets of {what} "
                         f"hold; give every class a weight (classes missing from the dict are not taken as 1)")
    return table[labels]

"""Weight regularizers and constraints at training time: what happens around each optimizer step.

Layers declare them per weight (``layer.weight_regularizers`` and ``layer.weight_constraints``,
``{weight name: object}``, see :mod:`nnscratch.layers.options`). Once per step, for the whole batch (never
per chunk, so the thread count does not matter):

1. every penalty is added to the batch's reported ``loss`` and its gradient to the weight's gradient
   (trainable weights only: a frozen weight's penalty is a constant);
2. the optimizer steps;
3. every constraint projects its weight in place (trainable weights only).

``evaluate``/``validate`` report the loss with the penalties too, as Keras does, and the whole-model
gradient check (:func:`nnscratch.gradcheck.check_model`) checks their gradients with the rest.

Example:
    >>> import numpy as np, nnscratch
    >>> from nnscratch.layers import Dense
    >>> model = nnscratch.Model([Dense(1, kernel_regularizer="l2", use_bias=False, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> model.layers[0].params["kernel"][...] = [[1.0], [2.0]]
    >>> round(total_penalty(model), 6)          # 0.01 * (1 + 4)
    0.05
"""
from __future__ import annotations


def _declared(model):
    """``(regularizers, constraints)``: ``[(layer, sublayer, weight name, object)]`` of the model, found once per
    plan (walking every layer each step cost ~0.1 ms, a few per cent of a LeNet-5 step)."""
    cache = getattr(model, "_penalty_entries", None)
    if cache is None or cache[0] is not model.plan:
        regularizers, constraints = [], []
        for layer in model.layers:
            for _, sub in layer.walk():
                regularizers += [(layer, sub, k, r) for k, r in getattr(sub, "weight_regularizers", {}).items()]
                constraints += [(layer, sub, k, c) for k, c in getattr(sub, "weight_constraints", {}).items()]
        cache = model._penalty_entries = (model.plan, regularizers, constraints)
    return cache[1], cache[2]


def _trainable(entries):
    """``[(sublayer, name, object, trainable)]``: whether each weight's layer and its parents are trainable now."""
    flags = {}
    for layer, *_ in entries:
        if id(layer) not in flags:
            flags[id(layer)] = {id(sub): t for _, sub, t in layer._walk_trainable()}
    return [(sub, name, obj, flags[id(layer)][id(sub)]) for layer, sub, name, obj in entries if name in sub.params]


def has_penalties(model) -> bool:
    """Whether any weight of the model declares a regularizer (whose gradient must join the batch's summed
    gradient before the optimizer step)."""
    return bool(_declared(model)[0])


def total_penalty(model) -> float:
    """The sum of every weight regularizer's penalty (0.0 without any)."""
    regularizers, _ = _declared(model)
    return float(sum(reg.penalty(sub.params[name]) for _, sub, name, reg in regularizers if name in sub.params))


def add_penalty_gradients(model) -> float:
    """Adds each penalty's gradient to its (trainable) weight's gradient in the layers' own ``grads``; returns
    the total penalty."""
    regularizers, _ = _declared(model)
    total = 0.0
    for sub, name, reg, trainable in _trainable(regularizers):
        w = sub.params[name]
        total += reg.penalty(w)
        if trainable:
            sub.grads[name] += reg.gradient(w)
    return float(total)


def apply_constraints(model) -> None:
    """Projects every constrained trainable weight in place."""
    _, constraints = _declared(model)
    for sub, name, constraint, trainable in _trainable(constraints):
        if trainable:
            constraint(sub.params[name])


def optimizer_step(model, logs: dict, split=None) -> dict:
    """Penalties into the gradients and ``logs["loss"]``, one optimizer step, then the constraints.

    Called once per training step by the model's train step (one thread or several) after the chunks'
    gradients have been collected into the layers. ``split``: ``(parts, run)`` to spread an element-wise
    optimizer's update over threads (see :meth:`nnscratch.optimizers.Optimizer.step`), default None.
    """
    penalty = add_penalty_gradients(model)
    if penalty and "loss" in logs:
        logs["loss"] += penalty
    if split is not None and model.optimizer.elementwise:
        model.optimizer.step(model.trainable_params(), split=split)
    else:  # a user's optimizer may override step without the split argument
        model.optimizer.step(model.trainable_params())
    apply_constraints(model)
    return logs

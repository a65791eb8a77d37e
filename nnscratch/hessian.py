"""The diagonal Gauss-Newton Hessian of a model's loss, back-propagated layer by layer (LeCun et al. 1998,
Appendix C): what :class:`nnscratch.sdlm.SDLM` divides its steps by.

A forward pass in inference mode keeps every layer's input; the loss gives ``d2L/dy**2`` of each output
(``Loss.second_derivative``); a reverse walk then calls each layer's ``backward_second_order`` (see
:mod:`nnscratch.layers.second_order`), adding up what several readers of one tensor send back, and the
per-weight diagonals of every call of a layer. The loss is the mean over the samples, so the result is
the mean of the per-sample diagonals, on the scale of the mean gradient the optimizer steps with.

Example:
    >>> import numpy as np
    >>> from nnscratch import Model
    >>> from nnscratch.layers import Dense
    >>> model = Model([Dense(1, use_bias=False, input_shape=(2,))], seed=0)
    >>> model.set(loss="sse", optimizer="sgd")
    >>> model.finalize()
    >>> h = hessian_diagonal(model, np.array([[1.0, 2.0], [3.0, 0.0]]), np.zeros((2, 1)))
    >>> h["dense_1/kernel"][:, 0].tolist()      # mean of 2 x**2: (2 + 18) / 2 and (8 + 0) / 2
    [10.0, 4.0]
"""
from __future__ import annotations

import numpy as np

from .errors import SecondOrderNotImplemented
from .layers.base import Layer
from .losses import Loss


def _steps_needing_second_order(plan):
    """The steps the reverse walk goes through: those with something trainable at or before them."""
    return [s for s, step in enumerate(plan.steps) if not step.feed and plan.needs_grad[step.output]]


def check_second_order_support(model) -> None:
    """Raises :class:`~nnscratch.errors.SecondOrderNotImplemented` naming the first layer (or loss) of
    ``model`` that SDLM would need a second-order backward from and that has none.

    Layers before every trainable one (an augmentation layer on the input) need none. A softmax fused with
    the cross-entropy has none yet.
    """
    plan = model.plan
    for k, fused in enumerate(plan.fused):
        if fused is not None:
            raise SecondOrderNotImplemented(
                f"{plan.steps[fused].layer.describe()} ends the model with a softmax trained with the cross-entropy, "
                "which has no second-order backward yet; SDLM needs a loss with second_derivative (LeNetRBFLoss, "
                "MeanSquaredError, SumSquaredError), or train with another optimizer")
    for loss in plan.losses:
        if type(loss).second_derivative is Loss.second_derivative:
            loss.second_derivative(None, None)  # the default: raises, naming the loss
    for s in _steps_needing_second_order(plan):
        for _, sub in plan.steps[s].layer.walk():
            if type(sub).backward_second_order is Layer.backward_second_order or (
                    hasattr(sub, "second_order_by_squares") and not sub.second_order_by_squares):
                sub.backward_second_order(None, None)  # the default: raises, naming the layer


def hessian_diagonal(model, xs, ys) -> dict[str, np.ndarray]:
    """The mean over ``(xs, ys)`` of each trainable weight's diagonal Gauss-Newton second derivative.

    Args:
        model: a finalized model with a loss.
        xs: its input (a list of arrays for several inputs), prepared in the model dtype.
        ys: the targets, as the loss takes them (a list for several outputs).

    Returns:
        ``{key: array}`` with the keys and shapes of ``model.trainable_params()``.

    Raises:
        SecondOrderNotImplemented: a layer or loss on the way has no second-order backward.
    """
    check_second_order_support(model)
    plan = model.plan
    xs = list(xs) if model._multi_in else [xs]
    ys = list(ys) if model._multi_out else [ys]
    instances = plan.instances
    values = dict(zip(plan.input_ids, xs))
    for s, step in enumerate(plan.steps):
        if step.feed:
            continue
        args = [values[t] for t in step.inputs]
        out = instances[s].forward(args if step.takes_list else args[0], training=False)
        if step.relu_after is not None:  # a ReLU the plan runs after this max pooling
            out = instances[step.relu_after].apply(out)
        values[step.output] = out
    d2, d1 = {}, {}
    for k, (loss, t, y) in enumerate(zip(plan.losses, plan.output_ids, ys)):
        g = np.asarray(loss.second_derivative(values[t], y)) * plan.loss_weights[k]
        d2[t] = d2[t] + g if t in d2 else g
        g = np.asarray(loss.backward(values[t], y)) * plan.loss_weights[k]
        d1[t] = d1[t] + g if t in d1 else g
    needs = plan.needs_grad
    hessians = {}
    for s in reversed(_steps_needing_second_order(plan)):
        step = plan.steps[s]
        g = d2.pop(step.output, None)
        if g is None:
            continue
        if step.relu_after is not None:
            g = instances[step.relu_after].backward_second_order(None, g)
        args = [values[t] for t in step.inputs]
        instance = instances[s]
        d2x = instance.backward_second_order(args if step.takes_list else args[0], g)
        if step.output in d1 and d2x is not None and hasattr(instance, "output_curvature"):
            # an output layer curved in its input (RBFOutput) adds the term Gauss-Newton leaves out
            d2x = d2x + instance.output_curvature(args[0], d1[step.output])
        for path, sub in instance.walk():
            for name, h in sub.hessian_diagonal.items():
                key = (id(step.layer), path, name)
                hessians[key] = hessians[key] + h if key in hessians else np.array(h, copy=True)
        if d2x is None:
            continue
        for t, d in (zip(step.inputs, d2x) if step.takes_list else ((step.inputs[0], d2x),)):
            if d is None or not needs[t]:
                continue
            d2[t] = d2[t] + d if t in d2 else d
    result = {}
    for layer in model.layers:
        for path, sub, trainable in layer._walk_trainable():
            if not trainable:
                continue
            for name, param in sub.params.items():
                h = hessians.get((id(layer), path, name))
                result[f"{layer.name}/{path}{name}"] = (np.zeros_like(param) if h is None
                                                        else np.asarray(h, dtype=param.dtype).reshape(param.shape))
    return result

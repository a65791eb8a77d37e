"""The second-order backward a layer implements to be trained by SDLM (:class:`nnscratch.sdlm.SDLM`).

LeCun et al. 1998 (Appendix C) and "Efficient BackProp" (section 9.1) back-propagate the diagonal of the
Gauss-Newton approximation of the Hessian as the first derivatives are back-propagated, with squares in
place of the factors:

* for ``y = f(x)`` element-wise: ``d2x = f'(x)**2 * d2y``;
* for ``y_j = sum_i w_ji x_i + b_j``: ``d2x_i = sum_j w_ji**2 d2y_j``, ``h(w_ji) = sum x_i**2 d2y_j``,
  ``h(b_j) = sum d2y_j`` (sums over the batch and, for shared weights, over the positions that share them).

In general, for a layer ``y = F(x, w)`` and a second derivative ``d2y >= 0`` of the loss with respect to
each output (only the diagonal), the contract is

    ``d2x_i = sum_j (dy_j / dx_i)**2 d2y_j``,   ``h(w_k) = sum_j (dy_j / dw_k)**2 d2y_j``,

sums over every output of every sample. This is exact for the Gauss-Newton matrix restricted to diagonal
``d2y``, and it is what ``nnscratch.hessian_check`` compares against finite differences.

A layer opts in by overriding :meth:`nnscratch.layers.Layer.backward_second_order`; one that does not raises
:class:`SecondOrderNotImplemented`, naming itself.
"""
from __future__ import annotations

import numpy as np

from ..errors import SecondOrderNotImplemented

__all__ = ["SecondOrderNotImplemented", "squared_weights_backward"]


def squared_weights_backward(layer, x: np.ndarray, d2z: np.ndarray):
    """The second-order backward of a layer whose output is a sum of ``weight * input`` products, each
    weight appearing at most once per output (dense and convolution layers): its own linear backward run on
    a twin whose weights and input are squared.

    Args:
        layer: a layer with ``_forward_linear(x, training)`` and ``_backward_linear(dz)`` (see
            :mod:`nnscratch.layers.options`).
        x: the input of its last forward, ``(N, *input_shape)``.
        d2z: second derivatives with respect to its linear output (before any activation), ``z``'s shape.

    Returns:
        ``(d2x, {weight name: h})``: ``d2x`` like ``x`` (None when the layer needs no input gradient) and
        the Hessian diagonal of every weight, shaped like it.

    Example:
        >>> from nnscratch.layers import Dense
        >>> d = Dense(2, use_bias=False)
        >>> d.initialize((3,), "float64")
        (2,)
        >>> d.params["kernel"][...] = [[1.0, -2.0], [0.0, 3.0], [1.0, 1.0]]
        >>> d2x, h = squared_weights_backward(d, np.array([[1.0, 2.0, -1.0]]), np.array([[1.0, 0.5]]))
        >>> d2x.tolist(), h["kernel"].tolist()
        ([[3.0, 4.5, 1.5]], [[1.0, 0.5], [4.0, 2.0], [1.0, 0.5]])
    """
    twin = layer.replicate()
    twin.params = {name: value * value for name, value in layer.params.items()}
    x = np.asarray(x)
    twin._forward_linear(x * x, True)
    d2x = twin._backward_linear(d2z)
    return d2x, {name: grad.copy() for name, grad in twin.grads.items()}

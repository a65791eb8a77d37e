"""BatchNormalization and LayerNormalization, with Keras' arguments, defaults and weight names.

BatchNormalization couples the samples of a batch in training: each feature is normalised with the mean and
variance of the **whole** batch, even when the engine cuts the batch into chunks that run in several
threads: the chunks exchange their partial sums (``Layer.batch_sum``), so the statistics, the moving
averages and the gradients are those of one thread with the whole batch.

Example:
    >>> import numpy as np
    >>> bn = BatchNormalization()
    >>> y = bn(np.random.default_rng(0).normal(3.0, 2.0, (256, 4)), training=True)
    >>> bool(abs(y.mean()) < 1e-6), bool(abs(y.std() - 1) < 1e-3)
    (True, True)
    >>> bn.count_params(), bn.count_non_trainable_params()
    (16, 8)
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _checks
from ..initializers import check_name
from .base import Layer


def _axes(name: str, axis) -> tuple[int, ...]:
    """``axis`` (an int or a list of ints, Keras style: counted with the batch axis) validated and as a tuple."""
    items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not items or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in items):
        raise ValueError(f"{name} must be an integer or a list of integers, got {axis!r}")
    if 0 in items:
        raise ValueError(f"{name} cannot include 0, the batch axis; use -1 for channels (the default)")
    if len(set(items)) != len(items):
        raise ValueError(f"{name} lists an axis twice: {axis!r}")
    return tuple(int(a) for a in items)


def _sample_axes(layer, axes, rank) -> tuple[int, ...]:
    """``axes`` (Keras style) as positions within a sample of ``rank`` axes, sorted."""
    out = []
    for a in axes:
        pos = a - 1 if a > 0 else rank + a
        if not 0 <= pos < rank:
            raise ValueError(f"{layer.describe()}: axis {a} is out of range for inputs with {rank} axes per sample "
                             f"(valid: 1..{rank} or -{rank}..-1)")
        out.append(pos)
    if len(set(out)) != len(out):
        raise ValueError(f"{layer.describe()}: axis {list(axes)} names one axis twice")
    return tuple(sorted(out))


class _Normalization(Layer, register=False):
    """Shared arguments: the normalised axes, epsilon, and the optional gamma (scale) and beta (center)."""

    def count_macs(self):
        """One per value: at inference a normalization is a scale and a shift of every value."""
        return int(np.prod(self.built_input_shape))

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self._axes = _axes("axis", axis)
        self.axis = axis if isinstance(axis, numbers.Integral) else list(self._axes)
        self.epsilon = _checks.number("epsilon", epsilon, low=0, low_open=True)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = check_name("beta_initializer", beta_initializer)
        self.gamma_initializer = check_name("gamma_initializer", gamma_initializer)

    def _param_shape(self, input_shape):
        feature = _sample_axes(self, self._axes, len(input_shape))
        return feature, tuple(input_shape[a] for a in feature)

    def _broadcast(self, v, rank):
        """A per-feature vector ``(*feature dims)`` shaped to broadcast against a batch ``(N, *sample)``."""
        shape = [1] * (rank + 1)
        for a, d in zip(self._feature, v.shape):
            shape[a + 1] = d
        return v.reshape(shape)

    def _add_affine(self, shape):
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer)

    def _affine(self, xhat):
        """``xhat * gamma + beta`` in a new array (``xhat`` is kept for the backward), one temporary fewer
        than two binary operations, the same bits."""
        if self.scale:
            out = xhat * self._broadcast(self.params["gamma"], xhat.ndim - 1)
            if self.center:
                out += self._broadcast(self.params["beta"], xhat.ndim - 1)
            return out
        if self.center:
            return xhat + self._broadcast(self.params["beta"], xhat.ndim - 1)
        return xhat.copy()


class BatchNormalization(_Normalization):
    """Normalises each feature with the batch's statistics in training and moving averages in inference.

    Training: ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and (biased) variance
    of the whole batch over every axis but ``axis``, and ``moving = momentum * moving + (1 - momentum) *
    batch value`` for both statistics (Keras' rule, biased variance included). Inference, and training while
    the layer is frozen (``trainable = False``, as Keras 3 does for fine-tuning), use the moving ones.

    Args:
        axis: the feature axis (or list of axes), counted with the batch axis as in Keras; default -1.
        momentum: of the moving averages, default 0.99.
        epsilon: added to the variance, default 1e-3.
        center: learn ``beta``, default True.
        scale: learn ``gamma``, default True.
        beta_initializer, gamma_initializer: default ``"zeros"`` and ``"ones"``.
        moving_mean_initializer, moving_variance_initializer: default ``"zeros"`` and ``"ones"``.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        any ``(N, ..., C)`` -> the same; ``gamma``, ``beta`` (trainable), ``moving_mean``,
        ``moving_variance`` (state) of shape ``(C,)``: ``4 * C`` parameters, ``2 * C`` non-trainable.

    Example:
        >>> from nnscratch import Input
        >>> from nnscratch.layers import Conv2D
        >>> BatchNormalization()(Conv2D(16, 3)(Input((8, 8, 3)))).shape
        (None, 6, 6, 16)
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)
        self.momentum = _checks.number("momentum", momentum, low=0, high=1)
        self.moving_mean_initializer = check_name("moving_mean_initializer", moving_mean_initializer)
        self.moving_variance_initializer = check_name("moving_variance_initializer", moving_variance_initializer)

    def compute_output_shape(self, input_shape):
        self._param_shape(input_shape)  # validates the axes
        return tuple(input_shape)

    def build(self, input_shape):
        self._feature, shape = self._param_shape(input_shape)
        self._add_affine(shape)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer, trainable=False)

    def _reduced(self, rank):
        return tuple(a for a in range(rank + 1) if a - 1 not in self._feature)

    def forward(self, x, training=False):
        rank = x.ndim - 1
        self._batch_mode = bool(training and self.trainable)
        if not self._batch_mode:
            inv_std = 1.0 / np.sqrt(self.state["moving_variance"] + self.dtype.type(self.epsilon))
            self._inv_std = inv_std
            xhat = x - self._broadcast(self.state["moving_mean"], rank)
            xhat *= self._broadcast(inv_std, rank)
            self._xhat = xhat
            return self._affine(xhat)
        axes = self._reduced(rank)
        count = x.size // int(np.prod(self.state["moving_mean"].shape))
        # two exchanges, each a sum over every chunk of the batch: the mean first, then the squared
        # deviations from it (the two-pass variance, exact in float32 where E[x^2] - E[x]^2 is not)
        total = self.batch_sum(np.concatenate([x.sum(axis=axes).reshape(-1), [count]]))
        n = total[-1]
        mean = (total[:-1] / n).reshape(self.state["moving_mean"].shape).astype(self.dtype, copy=False)
        xc = x - self._broadcast(mean, rank)
        var = (self.batch_sum(np.einsum(_einsum_spec(rank + 1, axes), xc, xc).reshape(-1)) / n)
        var = var.reshape(mean.shape).astype(self.dtype, copy=False)
        inv_std = 1.0 / np.sqrt(var + self.dtype.type(self.epsilon))
        self._inv_std = inv_std
        self._n = n
        xc *= self._broadcast(inv_std, rank)
        self._xhat = xc
        m = self.dtype.type(self.momentum)
        for key, value in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.state[key]
            moving *= m
            moving += (1 - m) * value
        return self._affine(xc)

    def backward(self, dout):
        rank = dout.ndim - 1
        axes = self._reduced(rank)
        xhat = self._xhat
        dbeta = dout.sum(axis=axes)
        dgamma = np.einsum(_einsum_spec(rank + 1, axes), dout, xhat)
        if self.center:
            self.grads["beta"][...] = dbeta
        if self.scale:
            self.grads["gamma"][...] = dgamma
        gamma = self.params["gamma"] if self.scale else np.ones_like(self._inv_std)
        scale = self._broadcast(gamma * self._inv_std, rank)
        if not self._batch_mode:
            return dout * scale
        # the whole batch's sums, so each chunk's dx is that of one thread computing the whole batch
        sums = self.batch_sum(np.concatenate([dbeta.reshape(-1), dgamma.reshape(-1)]))
        k = dbeta.size
        mean_dout = (sums[:k] / self._n).reshape(dbeta.shape).astype(self.dtype, copy=False)
        mean_dxhat = (sums[k:] / self._n).reshape(dbeta.shape).astype(self.dtype, copy=False)
        dx = dout - self._broadcast(mean_dout, rank)
        dx -= xhat * self._broadcast(mean_dxhat, rank)
        dx *= scale
        return dx


class LayerNormalization(_Normalization):
    """Normalises each sample over ``axis`` with its own mean and variance (Ba et al. 2016), then scales and
    shifts per feature: ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``. The same in training and
    inference; samples never interact.

    Args:
        axis: the axis (or list of axes) to normalise over, counted with the batch axis; default -1.
        epsilon: default 1e-3.
        center, scale: learn ``beta`` / ``gamma``, default True.
        beta_initializer, gamma_initializer: default ``"zeros"`` and ``"ones"``.
        **kwargs: ``input_shape``, ``name``.

    Shapes:
        any ``(N, ...)`` -> the same; ``gamma`` and ``beta`` have the shape of the normalised axes.

    Example:
        >>> import numpy as np
        >>> ln = LayerNormalization()
        >>> y = ln(np.arange(8.0).reshape(2, 4))
        >>> np.round(y.mean(axis=-1), 6).tolist()
        [0.0, 0.0]
    """

    def compute_output_shape(self, input_shape):
        self._param_shape(input_shape)
        return tuple(input_shape)

    def build(self, input_shape):
        self._feature, shape = self._param_shape(input_shape)
        self._add_affine(shape)

    def forward(self, x, training=False):
        axes = tuple(a + 1 for a in self._feature)
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        self._inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        xc *= self._inv_std
        self._xhat = xc
        return self._affine(xc)

    def backward(self, dout):
        rank = dout.ndim - 1
        norm_axes = tuple(a + 1 for a in self._feature)
        other = tuple(a for a in range(rank + 1) if a not in norm_axes)
        xhat = self._xhat
        if self.center:
            self.grads["beta"][...] = dout.sum(axis=other).reshape(self.grads["beta"].shape)
        if self.scale:
            self.grads["gamma"][...] = (dout * xhat).sum(axis=other).reshape(self.grads["gamma"].shape)
            dxhat = dout * self._broadcast(self.params["gamma"], rank)
        else:
            dxhat = dout
        dx = dxhat - dxhat.mean(axis=norm_axes, keepdims=True)
        dx -= xhat * (dxhat * xhat).mean(axis=norm_axes, keepdims=True)
        dx *= self._inv_std
        return dx


def _einsum_spec(ndim: int, reduced: tuple[int, ...]) -> str:
    """``"abcd,abcd->d"``: the product of two arrays summed over ``reduced`` axes, without a temporary."""
    letters = "abcdefghijklmnop"[:ndim]
    kept = "".join(letters[i] for i in range(ndim) if i not in reduced)
    return f"{letters},{letters}->{kept}"

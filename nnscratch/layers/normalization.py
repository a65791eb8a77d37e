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
            # y = x * a + b: two passes; a backward (a frozen layer, a check in inference mode) rebuilds
            # xhat from x. Inside an inference plan (a SharedWorkspace) no backward follows, and keeping x
            # would hold every BatchNormalization's input alive: ~250 MB for ResNet-20 predicting.
            inv_std = 1.0 / np.sqrt(self.state["moving_variance"] + self.dtype.type(self.epsilon))
            self._inv_std = inv_std
            self._x = x if self.keeps_for_backward else None
            a, b = self._scale_shift(inv_std, self.state["moving_mean"])
            out = x * self._broadcast(a, rank)
            out += self._broadcast(b, rank)
            return out
        shape = self.state["moving_mean"].shape
        rows = _Rows(x, tuple(a + 1 for a in self._feature))
        x2 = rows.of(x)
        count = x2.shape[1]
        # Each chunk centres on a cheap estimate ``c`` of its mean (that of its first values), so its
        # deviations are small and their sums as exact as a two-pass variance's, and both sums cross the
        # chunks in ONE exchange (one barrier, not two): ``sum(x) = count c + sum(x - c)`` and
        # ``r = sum((x - c)^2) + 2 c sum(x - c) + count c^2 = sum(x^2)`` add up over the chunks, and the
        # batch's ``sum((x - mean)^2) = sum(r) - n mean^2`` is taken in float64. Every sum is of centred
        # values: a sum of the raw x, rounded in float32, would leak its error into the variance wherever
        # the chunks' means differ.
        centre = x2[:, :_CENTRE_SAMPLE].mean(axis=1)
        xc2 = x2 - centre[:, None]
        offsets = _row_sums(xc2)
        squares = _row_dots(xc2, xc2)
        c64, t64 = centre.astype(np.float64), offsets.astype(np.float64)
        s64 = count * c64 + t64
        r = squares.astype(np.float64) + 2.0 * c64 * t64 + count * c64 * c64
        total = self.batch_sum(np.concatenate([s64, r, [count]]))
        k = s64.size
        n = total[-1]
        mean64 = total[:k] / n
        var64 = np.maximum(total[k:2 * k] / n - mean64 * mean64, 0.0)
        mean = mean64.astype(self.dtype).reshape(shape)
        var = var64.astype(self.dtype).reshape(shape)
        inv_std = 1.0 / np.sqrt(var + self.dtype.type(self.epsilon))
        self._inv_std = inv_std
        self._n = n
        self._rows, self._xc2 = rows, xc2
        self._shift = (mean64 - c64).astype(self.dtype)  # mean - centre, per row
        m = self.dtype.type(self.momentum)
        for key, value in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.state[key]
            moving *= m
            moving += (1 - m) * value
        a, b = self._scale_shift(inv_std.reshape(-1), self._shift)
        out = xc2 * a[:, None]
        out += b[:, None]
        return rows.back(out)

    def _scale_shift(self, inv_std, shift):
        """``(a, b)`` with ``((x - shift) * inv_std) * gamma + beta == x * a + b`` per feature."""
        gamma = self.params["gamma"].reshape(inv_std.shape) if self.scale else 1
        a = gamma * inv_std
        b = -shift * a
        if self.center:
            b += self.params["beta"].reshape(b.shape)
        return a.astype(self.dtype, copy=False), b.astype(self.dtype, copy=False)

    def backward(self, dout):
        rank = dout.ndim - 1
        gamma = self.params["gamma"] if self.scale else np.ones_like(self._inv_std)
        scale = gamma * self._inv_std
        if not self._batch_mode:
            if self._x is None:
                raise RuntimeError(f"{self.describe()}: backward after a forward inside predict/evaluate, which "
                                   "keeps nothing for a backward; call forward (or fit) outside them first")
            axes = self._reduced(rank)
            xhat = self._x - self._broadcast(self.state["moving_mean"], rank)
            xhat *= self._broadcast(self._inv_std, rank)
            if self.center:
                self.grads["beta"][...] = dout.sum(axis=axes)
            if self.scale:
                self.grads["gamma"][...] = np.einsum(_einsum_spec(rank + 1, axes), dout, xhat)
            return dout * self._broadcast(scale, rank)
        # xhat = (xc - shift) * inv_std is never built: its sums and dx come from xc and per-feature numbers
        rows, xc2, shift = self._rows, self._xc2, self._shift
        inv_std, scale = self._inv_std.reshape(-1), scale.reshape(-1)
        d2 = rows.of(dout)
        dbeta = _row_sums(d2)
        dgamma = inv_std * (_row_dots(d2, xc2) - shift * dbeta)
        if self.center:
            self.grads["beta"][...] = dbeta.reshape(self.grads["beta"].shape)
        if self.scale:
            self.grads["gamma"][...] = dgamma.reshape(self.grads["gamma"].shape)
        # the whole batch's sums, so each chunk's dx is that of one thread computing the whole batch
        sums = self.batch_sum(np.concatenate([dbeta, dgamma]))
        k = dbeta.size
        mean_dout, mean_dxhat = sums[:k] / self._n, sums[k:] / self._n
        # dx = scale * (dout - mean_dout - xhat * mean_dxhat) = dout * scale + xc * b + c per feature
        b = (-scale * inv_std * mean_dxhat).astype(self.dtype, copy=False)
        c = (scale * (shift * inv_std * mean_dxhat - mean_dout)).astype(self.dtype, copy=False)
        dx = d2 * scale[:, None]
        dx += xc2 * b[:, None]
        dx += c[:, None]
        return rows.back(dx)


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
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        xc *= inv_std
        keep = self.keeps_for_backward
        self._inv_std, self._xhat = (inv_std, xc) if keep else (None, None)
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


#: how many values of each feature estimate a chunk's centre (any centre is exact; a near one keeps the
#: float64 cancellation and the float32 sums small)
_CENTRE_SAMPLE = 1024


class _Rows:
    """A batch ``(N, ...)`` seen as a C-contiguous ``(features, values per feature)`` matrix, and back.

    BatchNormalization's reductions are then GEMVs and row-wise dots, 2.5x faster than ``sum`` or ``einsum``
    over the axes of a 4-D array (0.05 against 0.13 ms for 64 images of 32x32x16, one thread), and its
    element-wise passes run over long rows. The rows follow the memory order of the array the layer was
    first given, so a convolution's CHWN-stored output is read without a copy; an array stored otherwise
    is copied once.
    """

    __slots__ = ("perm", "shape", "inverse", "features")

    def __init__(self, x: np.ndarray, feature_axes: tuple[int, ...]):
        other = sorted((a for a in range(x.ndim) if a not in feature_axes), key=lambda a: -x.strides[a])
        self.perm = tuple(feature_axes) + tuple(other)
        self.shape = tuple(x.shape[a] for a in self.perm)
        self.inverse = tuple(int(i) for i in np.argsort(self.perm))
        self.features = int(np.prod(self.shape[:len(feature_axes)]))

    def of(self, a: np.ndarray) -> np.ndarray:
        """``a`` (shaped like the batch) as the ``(features, values)`` matrix, copying only if it must."""
        return np.ascontiguousarray(a.transpose(self.perm)).reshape(self.features, -1)

    def back(self, m: np.ndarray) -> np.ndarray:
        """The batch-shaped view of a ``(features, values)`` matrix (no copy)."""
        return m.reshape(self.shape).transpose(self.inverse)


def _row_sums(m: np.ndarray) -> np.ndarray:
    """``m.sum(axis=1)`` as a GEMV (BLAS reads the rows once, with no pairwise-summation bookkeeping)."""
    return m @ np.ones(m.shape[1], m.dtype)


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=1)`` for two ``(K, M)`` matrices, as K BLAS dot products and no temporary."""
    return (a[:, None, :] @ b[:, :, None]).reshape(len(a))

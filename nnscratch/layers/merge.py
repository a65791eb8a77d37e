"""Layers that merge several tensors into one: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

Each is called on a list of tensors, ``Add()([a, b])``. The element-wise merges follow Keras: per-sample
shapes must be equal, or 1 where they differ (that input is then broadcast along the axis, and its
gradient summed back over it). Concatenate joins along one axis, all other axes equal.

Example:
    >>> import numpy as np
    >>> Add()([np.ones((2, 3)), np.full((2, 3), 2.0)]).tolist()
    [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]]
"""
from __future__ import annotations

import numbers

import numpy as np

from .base import Layer


def _unbroadcast(grad: np.ndarray, shape) -> np.ndarray:
    """``grad`` (of the broadcast output) summed back to a per-sample ``shape`` that had 1s where it was broadcast."""
    axes = tuple(i + 1 for i, (g, s) in enumerate(zip(grad.shape[1:], shape)) if s == 1 and g != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class _Merge(Layer, register=False):
    """Element-wise merge of two or more tensors of broadcast-compatible shapes.

    Subclasses define ``_merge(arrays)`` and ``_grads(dout, arrays, out)`` (one gradient per input, of the
    broadcast output's shape).
    """

    multiple_inputs = True
    #: exactly this many inputs, or None for two or more
    arity: int | None = None

    def compute_output_shape(self, input_shapes):
        n = len(input_shapes)
        if (self.arity is not None and n != self.arity) or n < 2:
            wanted = f"exactly {self.arity}" if self.arity is not None else "at least 2"
            raise ValueError(f"{type(self).__name__} merges {wanted} tensors, got {n}")
        ranks = {len(s) for s in input_shapes}
        if len(ranks) != 1:
            raise ValueError(f"{type(self).__name__} needs inputs of one rank, got shapes "
                             f"{[(None,) + tuple(s) for s in input_shapes]}")
        out = []
        for axis, dims in enumerate(zip(*input_shapes)):
            big = {d for d in dims if d != 1}
            if len(big) > 1:
                raise ValueError(f"{type(self).__name__} cannot merge shapes {[(None,) + tuple(s) for s in input_shapes]}:"
                                 f" axis {axis + 1} has sizes {list(dims)}; make them equal (or 1 to broadcast), e.g. "
                                 "with a 1x1 Conv2D that matches the channels")
            out.append(big.pop() if big else 1)
        return tuple(out)

    def forward(self, x, training=False):
        self._shapes = [a.shape[1:] for a in x]
        out = self._merge(x)
        keep = self.keeps_for_backward
        self._inputs, self._out = (x, out) if keep else (None, None)
        return out

    def backward(self, dout):
        grads = self._grads(dout, self._inputs, self._out)
        return [_unbroadcast(g, s) for g, s in zip(grads, self._shapes)]


class Add(_Merge):
    """Sum of its inputs. Shapes: ``[(N, *s), (N, *s), ...]`` -> ``(N, *s)``.

    Example:
        >>> from nnscratch import Input
        >>> a, b = Input((8, 8, 16)), Input((8, 8, 16))
        >>> Add()([a, b]).shape
        (None, 8, 8, 16)
    """

    def _merge(self, x):
        out = x[0] + x[1]
        for a in x[2:]:
            out += a
        return out

    def _grads(self, dout, x, out):
        return [dout] * len(x)


class Subtract(_Merge):
    """``x[0] - x[1]`` (exactly two inputs)."""

    arity = 2

    def _merge(self, x):
        return x[0] - x[1]

    def _grads(self, dout, x, out):
        return [dout, -dout]


class Multiply(_Merge):
    """Element-wise product of its inputs."""

    def _merge(self, x):
        out = x[0] * x[1]
        for a in x[2:]:
            out = out * a
        return out

    def _grads(self, dout, x, out):
        grads = []
        for i in range(len(x)):
            g = dout
            for j, a in enumerate(x):
                if j != i:
                    g = g * a
            grads.append(g)
        return grads


class Average(_Merge):
    """Element-wise mean of its inputs."""

    def _merge(self, x):
        out = x[0] + x[1]
        for a in x[2:]:
            out += a
        out *= out.dtype.type(1.0 / len(x))
        return out

    def _grads(self, dout, x, out):
        return [dout * dout.dtype.type(1.0 / len(x))] * len(x)


class Maximum(_Merge):
    """Element-wise maximum; the gradient goes to the first input that holds the maximum."""

    _pick = staticmethod(np.maximum)

    def _merge(self, x):
        out = self._pick(x[0], x[1])
        for a in x[2:]:
            out = self._pick(out, a)
        return out

    def _grads(self, dout, x, out):
        taken = np.zeros(out.shape, dtype=bool)
        grads = []
        for a in x:
            wins = (np.broadcast_to(a, out.shape) == out) & ~taken
            taken |= wins
            grads.append(dout * wins)
        return grads

    def gradcheck_input(self, shape, rng):
        # inputs 0.5 apart everywhere (plus jitter well below that), so no finite-difference step changes which
        # one is the largest, and values near zero, so the layers after it stay in their gentle range
        # one distinct value per element of every input, so broadcast inputs of other shapes keep the gap too
        sizes = [int(np.prod(s)) for s in shape]
        values = (rng.permutation(sum(sizes)) - sum(sizes) / 2) * 0.5
        ends = np.cumsum(sizes)
        return [values[end - size:end].reshape(s) + rng.uniform(-0.1, 0.1, size=s)
                for s, size, end in zip(shape, sizes, ends)]


class Minimum(Maximum):
    """Element-wise minimum; the gradient goes to the first input that holds the minimum."""

    _pick = staticmethod(np.minimum)


class Concatenate(Layer):
    """Joins its inputs along ``axis``; every other axis must match.

    Args:
        axis: the axis to join along, counted as in Keras (with the batch axis: ``-1`` is channels, ``1``
            the first axis of a sample); not the batch axis. Default -1.
        **kwargs: ``name``.

    Shapes: ``[(N, H, W, C1), (N, H, W, C2)]`` -> ``(N, H, W, C1 + C2)`` for ``axis=-1``.

    Example:
        >>> from nnscratch import Input
        >>> Concatenate()([Input((4, 4, 3)), Input((4, 4, 5))]).shape
        (None, 4, 4, 8)
    """

    multiple_inputs = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"axis must be an integer, got {axis!r}")
        if axis == 0:
            raise ValueError("Concatenate cannot join along axis 0, the batch axis; use axis=-1 (channels) or 1.. "
                             "(a sample's axes)")
        self.axis = int(axis)

    def _sample_axis(self, rank):
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"axis={self.axis} is out of range for inputs with {rank} axes per sample "
                             f"(valid: 1..{rank} or -{rank}..-1)")
        return axis

    def compute_output_shape(self, input_shapes):
        if len(input_shapes) < 2:
            raise ValueError(f"Concatenate joins at least 2 tensors, got {len(input_shapes)}")
        ranks = {len(s) for s in input_shapes}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate needs inputs of one rank, got {[(None,) + tuple(s) for s in input_shapes]}")
        axis = self._sample_axis(ranks.pop())
        for i in range(len(input_shapes[0])):
            sizes = [s[i] for s in input_shapes]
            if i != axis and len(set(sizes)) != 1:
                raise ValueError(f"Concatenate(axis={self.axis}) needs all other axes equal, but axis {i + 1} has sizes "
                                 f"{sizes} in {[(None,) + tuple(s) for s in input_shapes]}")
        out = list(input_shapes[0])
        out[axis] = sum(s[axis] for s in input_shapes)
        return tuple(out)

    def forward(self, x, training=False):
        axis = self._sample_axis(x[0].ndim - 1) + 1
        self._edges = np.cumsum([a.shape[axis] for a in x])[:-1]
        self._axis = axis
        return np.concatenate(x, axis=axis)

    def backward(self, dout):
        return np.split(dout, self._edges, axis=self._axis)

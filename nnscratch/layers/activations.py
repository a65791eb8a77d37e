"""Element-wise activations and Softmax.

Each keeps only what its backward needs (usually its output) and works in the input's dtype.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import SecondOrderNotImplemented
from ..ops.elementwise import positive_part
from .base import Layer


class _Elementwise(Layer, register=False):
    """Shape-preserving activation; subclasses define ``_forward`` and ``_backward``, and name in ``keeps`` which
    of the input (``"x"``) and the output (``"y"``) their ``_backward`` reads as ``self._x`` / ``self._y``."""

    #: what ``_backward`` reads; only these are kept until the next call. Keeping the input of a ReLU that reads
    #: only its output held the layer below's whole output alive (ResNet-20: ~70 MB per thread in training)
    keeps: tuple[str, ...] = ("x", "y")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a subclass with its own backward (a user's Sigmoid variant) may read either: both, unless it says
        if "_backward" in cls.__dict__ and "keeps" not in cls.__dict__:
            cls.keeps = ("x", "y")

    def forward(self, x, training=False):
        return self.apply(x)

    def apply(self, x):
        """``forward`` without the input-shape check: an element-wise function takes any shape. The model
        uses it to run a ReLU after the max pooling that follows it (see ``Model.finalize``)."""
        y = self._forward(x)
        keeps = self.keeps if self.keeps_for_backward else ()
        self._x = x if "x" in keeps else None
        self._y = y if "y" in keeps else None
        return y

    def backward(self, dout):
        return self._backward(dout)

    def backward_second_order(self, x, d2out):
        # _backward multiplies by f'(x) from this forward's cache, so twice gives f'(x)**2 * d2out
        return self._backward(self._backward(d2out))


class _Kinked(_Elementwise, register=False):
    """Activations with a kink at 0: the gradient checker must not step across it."""

    def gradcheck_input(self, shape, rng):
        magnitude = rng.uniform(0.1, 1.5, size=shape)
        return magnitude * rng.choice([-1.0, 1.0], size=shape)


class ReLU(_Kinked):
    """``max(x, 0)``. Shapes: any ``(N, ...)`` -> same.

    Example:
        >>> import numpy as np
        >>> ReLU().forward(np.array([[-1.0, 2.0]])).tolist()
        [[0.0, 2.0]]
    """

    keeps = ("y",)

    def _forward(self, x):
        return positive_part(x)  # np.maximum(x, 0)'s bits, 3x as fast on large arrays (ops.elementwise)

    def _backward(self, dout):
        return dout * (self._y > 0)


class LeakyReLU(_Kinked):
    """``x`` for ``x > 0``, ``alpha * x`` otherwise.

    Args:
        alpha: slope for negative inputs, default 0.01.
    """

    keeps = ("x",)

    def __init__(self, alpha=0.01, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _checks.number("alpha", alpha, low=0)

    def _forward(self, x):
        # the larger (alpha <= 1) or smaller of x and alpha * x is the same value np.where picks, without its
        # branch per element: np.where over a mask of mixed signs took 6.4 ms per million values here, this 0.2
        y = x * self.alpha
        return (np.maximum if self.alpha <= 1 else np.minimum)(y, x, out=y)

    def _backward(self, dout):
        # each element's slope, 1 or alpha exactly (np.where's choice), from a mask by max: ufuncs keep the
        # batch's memory order (CHWN after a convolution), where a lookup with np.take, in C order, made the
        # product 4x slower
        positive = self._x > 0
        if self.alpha <= 1:
            slope = np.maximum(positive, dout.dtype.type(self.alpha))
        else:
            slope = np.multiply(np.logical_not(positive), dout.dtype.type(self.alpha))
            np.maximum(slope, 1, out=slope)
        slope *= dout
        return slope


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``.

    The derivative is taken from the *output*: ``y * (1 - y)``.
    """

    keeps = ("y",)

    def _forward(self, x):
        # exp of a non-positive number never overflows
        return _logistic(x)

    def _backward(self, dout):
        return dout * self._y * (1 - self._y)


def _logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in ``x``'s dtype, as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` below, with
    ``e = exp(-|x|)`` (never overflows). The numerator, 1 or ``e``, is ``max(e, x >= 0)``: the same bits as
    choosing between the two quotients with np.where, whose branch per element over a mask of mixed signs made
    it 9.4 ms per million values here instead of 0.8.

    Example:
        >>> _logistic(np.array([-800.0, 0.0, 2.0])).round(4).tolist()
        [0.0, 0.5, 0.8808]
    """
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    numerator = np.maximum(e, x >= 0)
    e += 1
    numerator /= e
    return numerator


class Tanh(_Elementwise):
    """Hyperbolic tangent; derivative ``1 - y**2``."""

    keeps = ("y",)

    def _forward(self, x):
        return np.tanh(x)

    def _backward(self, dout):
        return dout * (1 - self._y * self._y)


class ScaledTanh(_Elementwise):
    """LeCun's squashing function ``A * tanh(S * x)`` with ``A = 1.7159``, ``S = 2/3`` (LeCun 1998, App. A).

    Args:
        amplitude: A, default 1.7159.
        slope: S, default 2/3.
    """

    keeps = ()

    def __init__(self, amplitude=1.7159, slope=2.0 / 3.0, **kwargs):
        super().__init__(**kwargs)
        self.amplitude = _checks.number("amplitude", amplitude, low=0, low_open=True)
        self.slope = _checks.number("slope", slope, low=0, low_open=True)

    def _forward(self, x):
        # NumPy 2 keeps float32 arrays float32 when multiplied by a Python float
        t = np.tanh(x * self.slope)
        self._t = t if self.keeps_for_backward else None
        return t * self.amplitude

    def _backward(self, dout):
        return dout * (self.amplitude * self.slope) * (1 - self._t * self._t)


class Swish(_Elementwise):
    """``x * sigmoid(beta * x)`` (Ramachandran et al. 2017).

    Args:
        beta: default 1.0.
    """

    keeps = ("x",)

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = _checks.number("beta", beta)

    def _forward(self, x):
        z = self.beta * x
        s = _logistic(z)
        self._s = s if self.keeps_for_backward else None
        return x * s

    def _backward(self, dout):
        s = self._s
        return dout * (s + self.beta * self._x * s * (1 - s))


class Softmax(Layer):
    """Softmax over the last axis, shifted by the row maximum so ``exp`` never overflows.

    When it is a model's last layer and the loss is ``CategoricalCrossEntropy``, ``Model.finalize``
    fuses the two: the gradient ``(p - y) / N`` goes straight to the logits and this backward is skipped.

    Shapes: ``(N, K)`` -> ``(N, K)``, rows sum to 1.
    """

    def forward(self, x, training=False):
        z = x - x.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        self._y = z if self.keeps_for_backward else None
        return z

    def backward(self, dout):
        y = self._y
        # Jacobian-vector product without forming the K x K Jacobian per sample.
        return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


#: the activation names that ``activation=`` (on Dense and every convolution) and :class:`Activation` take,
#: Keras' names: ``name -> (layer class, arguments)``; ``"linear"`` (or None) is the identity. Keras'
#: ``"leaky_relu"`` has a negative slope of 0.2 (the LeakyReLU layer's own default is 0.01).
ACTIVATIONS = {
    "relu": (ReLU, {}),
    "leaky_relu": (LeakyReLU, {"alpha": 0.2}),
    "sigmoid": (Sigmoid, {}),
    "tanh": (Tanh, {}),
    "softmax": (Softmax, {}),
    "swish": (Swish, {}),
    "silu": (Swish, {}),
    "scaled_tanh": (ScaledTanh, {}),
    "linear": None,
}

#: activations after which He initialisation is the better default
RELU_LIKE_ACTIVATIONS = {"relu", "leaky_relu", "swish", "silu"}


def check_activation(argument: str, activation) -> str | None:
    """The activation name, lower-cased (None for none), or a ValueError naming ``argument`` and listing the
    known names.

    Example:
        >>> check_activation("activation", "ReLU")
        'relu'
        >>> check_activation("activation", "rleu")
        Traceback (most recent call last):
        ...
        ValueError: activation: unknown activation 'rleu'; known: leaky_relu, linear, relu, scaled_tanh, sigmoid, silu, softmax, swish, tanh (or None)
    """
    if activation is None:
        return None
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return activation.lower()
    raise ValueError(f"{argument}: unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))} "
                     "(or None)")


def make_activation(name: str | None) -> Layer | None:
    """A new activation layer for a name checked by :func:`check_activation` (None for the identity)."""
    entry = ACTIVATIONS[name] if name is not None else None
    if entry is None:
        return None
    cls, kwargs = entry
    return cls(**kwargs)


class Activation(Layer):
    """Applies an activation function by name, as Keras' ``Activation("relu")``.

    Args:
        activation: one of :data:`ACTIVATIONS` (``"relu"``, ``"softmax"``, ``"tanh"``, ``"sigmoid"``,
            ``"swish"``, ``"leaky_relu"``, ``"linear"``...).
        **kwargs: ``input_shape``, ``name``.

    Shapes: any ``(N, ...)`` -> same (softmax over the last axis).

    Example:
        >>> import numpy as np
        >>> Activation("relu")(np.array([[-1.0, 2.0]])).tolist()
        [[0.0, 2.0]]
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        if activation is None:
            raise ValueError("activation: Activation needs a name, e.g. Activation('relu'); got None")
        self.activation = check_activation("activation", activation)
        self.function = make_activation(self.activation)

    def forward(self, x, training=False):
        return x if self.function is None else self.function.forward(x, training=training)

    def apply(self, x):
        """``forward`` of an element-wise activation, which the model uses to run a ReLU after the max pooling
        that follows it."""
        return self.function.apply(x)

    def backward(self, dout):
        return dout if self.function is None else self.function.backward(dout)

    def backward_second_order(self, x, d2out):
        if self.function is None:
            return d2out
        if type(self.function).backward_second_order is Layer.backward_second_order:
            raise SecondOrderNotImplemented(
                f"{self.describe()}: the activation {self.activation!r} has no second-order backward, which SDLM "
                "needs; use an activation such as 'tanh' or 'relu', or another optimizer")
        return self.function.backward_second_order(x, d2out)

    def gradcheck_input(self, shape, rng):
        if self.function is None:
            return super().gradcheck_input(shape, rng)
        return self.function.gradcheck_input(shape, rng)

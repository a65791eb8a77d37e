"""The layer contract every layer follows, and the registry that knows every layer class.

Contract (see docs/writing-a-layer.md):

* ``__init__`` validates and stores its arguments only; errors name the argument and the value.
* ``build(input_shape)`` creates ``self.params`` (name -> array, dtype ``self.dtype``); shapes exclude
  the batch axis. ``compute_output_shape(input_shape)`` returns the output shape without the batch axis.
* ``forward(x, training=False)`` returns the output and keeps what ``backward`` needs.
* ``backward(dout)`` returns ``dx`` and fills ``self.grads`` with the same keys as ``self.params``.
* ``get_config()`` returns exactly the ``__init__`` arguments, so ``cls(**config)`` rebuilds the layer.

Subclasses register themselves by class name; ``LAYERS.get(name)`` finds them, and the common tests and
``nnscratch gradcheck`` walk ``LAYERS`` so a new layer is checked without new test code.

Data is channels-last ``(N, H, W, C)`` (convolution and pooling return such arrays as views of batch-innermost
storage, see :mod:`nnscratch.ops.layout`); float32 by default, float64 works everywhere.
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import _checks
from ..registry import Registry

LAYERS = Registry("layer")


class Layer:
    """Base class of all layers.

    Args:
        input_shape: shape of one sample, without the batch axis (needed on a model's first layer only),
            default None.
        name: a readable name, unique within a model; default None (the model assigns ``dense_1`` etc.).

    Attributes:
        params: dict of trainable arrays, filled by ``build``.
        grads: dict of gradients with the same keys, filled by ``backward``.
        constants: dict of fixed arrays that are part of the layer's state but never trained
            (counted as non-trainable parameters and saved with the weights).
        trainable: set to False to freeze ``params`` (the optimizer skips them).
        rng: the ``np.random.Generator`` of stochastic layers (dropout); the model seeds it.
        dtype: the floating dtype of params and computations.
        workspace: dict of scratch arrays a layer may keep between calls (see
            :func:`nnscratch.ops.workspace.scratch`); never part of the layer's state, and every
            thread replica gets its own.

    Example:
        >>> import numpy as np
        >>> class Double(Layer):
        ...     def forward(self, x, training=False):
        ...         return 2 * x
        ...     def backward(self, dout):
        ...         return 2 * dout
        >>> layer = Double()
        >>> layer.build((3,))
        >>> layer.forward(np.ones((2, 3))).tolist()
        [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    #: True for layers whose forward differs between training and inference (dropout).
    stochastic = False

    def __init_subclass__(cls, register: bool = True, registry_name: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if register:
            LAYERS.register(cls, registry_name)

    def __init__(self, input_shape=None, name: str | None = None):
        self.input_shape = None if input_shape is None else _checks.shape_tuple("input_shape", input_shape)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.trainable = True
        #: False on a model's first layer: backward may then skip computing dx (and return None),
        #: which saves a whole col2im for a first convolution.
        self.input_grad_needed = True
        self.built = False
        self.dtype = np.dtype(np.float32)
        self.rng = np.random.default_rng()
        self.built_input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.workspace: dict = {}

    # -- shapes and weights -------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...]) -> None:
        """Creates ``self.params`` for inputs of shape ``(N, *input_shape)``. Default: no parameters."""

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape (without batch axis) for ``input_shape``. Default: unchanged."""
        return tuple(input_shape)

    def initialize(self, input_shape, dtype="float32", rng: np.random.Generator | None = None) -> tuple[int, ...]:
        """Checks ``input_shape``, builds the params in ``dtype`` and returns the output shape.

        Called by ``Model.finalize`` and by the gradient checker. ``rng`` seeds weight initialisation
        and, for stochastic layers, the layer's own generator.
        """
        input_shape = _checks.shape_tuple(f"input shape of {self.describe()}", input_shape)
        self.dtype = _checks.float_dtype(dtype)
        if rng is not None:
            self.rng = rng
        output_shape = tuple(int(d) for d in self.compute_output_shape(input_shape))
        self.build(input_shape)
        self.params = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in self.params.items()}
        self.constants = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in self.constants.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.built = True
        self.built_input_shape = input_shape
        self.output_shape = output_shape
        return output_shape

    def astype(self, dtype) -> "Layer":
        """Casts params, grads and constants to ``dtype`` in place of the old arrays; returns self."""
        self.dtype = _checks.float_dtype(dtype)
        for store in (self.params, self.grads, self.constants):
            for k in store:
                store[k] = np.ascontiguousarray(store[k], dtype=self.dtype)
        return self

    def weight_count(self, name: str, array: np.ndarray) -> int:
        """How many free numbers ``params[name]`` holds (a connection table counts only linked weights)."""
        return int(array.size)

    def count_trainable_params(self) -> int:
        if not self.trainable:
            return 0
        return sum(self.weight_count(k, v) for k, v in self.params.items())

    def count_non_trainable_params(self) -> int:
        frozen = 0 if self.trainable else sum(self.weight_count(k, v) for k, v in self.params.items())
        return frozen + sum(int(v.size) for v in self.constants.values())

    def count_params(self) -> int:
        """Total parameter count (trainable + non-trainable), like Keras' ``count_params``."""
        return self.count_trainable_params() + self.count_non_trainable_params()

    # -- computation --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Output for a batch ``x`` of shape ``(N, *input_shape)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, training=False)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Given ``dL/dout`` (shape of the last output), fills ``self.grads`` and returns ``dL/dx``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def __call__(self, x, training: bool = False):
        return self.forward(x, training=training)

    def gradcheck_input(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """A float64 input of ``shape`` (with batch axis) at which the layer is smooth.

        The gradient checker calls this; layers with kinks override it (ReLU keeps values away
        from 0, max pooling keeps values of a window apart).
        """
        return rng.standard_normal(shape)

    # -- configuration ------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The ``__init__`` arguments; by default read from attributes of the same names."""
        config = {}
        for pname, p in inspect.signature(type(self).__init__).parameters.items():
            if pname == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(self, pname, p.default)
            if isinstance(value, tuple):
                value = list(value)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            config[pname] = value
        # Subclasses pass these through **kwargs, so the signature above does not show them.
        config.setdefault("input_shape", list(self.input_shape) if self.input_shape else None)
        config.setdefault("name", self.name)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """Rebuilds a layer from ``get_config()``'s dict."""
        return cls(**config)

    def describe(self) -> str:
        """``"name (ClassName)"`` for messages and summaries."""
        return f"{self.name} ({type(self).__name__})" if self.name else type(self).__name__

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"


def check_input(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Refuses an input whose per-sample shape differs from what ``layer`` was built for.

    Cheap (a shape comparison), so layers call it at the top of ``forward``.
    """
    expected = layer.built_input_shape
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if expected is not None and tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"{layer.describe()} expects input of shape (batch, {', '.join(map(str, expected))}), "
            f"got {tuple(x.shape)}; reshape the data or rebuild the model for this input shape"
        )
    return x

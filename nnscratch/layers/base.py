"""The layer contract every layer follows, and the registry that knows every layer class.

Contract (see docs/writing-a-layer.md):

* ``__init__`` validates and stores its arguments only; errors name the argument and the value.
* ``build(input_shape)`` declares the layer's arrays with :meth:`Layer.add_weight`, each trainable (in
  ``self.params``) or not (in ``self.state``: moving statistics, fixed codes); shapes exclude the batch
  axis. ``compute_output_shape(input_shape)`` returns the output shape without the batch axis.
* ``forward(x, training=False)`` returns the output and keeps what ``backward`` needs on ``self``.
* ``backward(dout)`` returns ``dx`` and fills ``self.grads`` (the keys of ``self.params``).
* ``get_config()`` returns exactly the ``__init__`` arguments, so ``cls(**config)`` rebuilds the layer.

The framework does the rest: it checks input shapes before a layer sees them, gives every thread and
every call of a shared layer its own copy of the layer (sharing the weights, with its own ``grads``,
attributes and ``workspace``), keeps ``self.state`` consistent across those copies, and offers whole-batch
sums and random draws (:meth:`Layer.batch_sum`, :meth:`Layer.batch_uniform`) for layers that need them.

Subclasses register themselves by class name; ``LAYERS.get(name)`` finds them, and the common contract
check (:mod:`nnscratch.testing`) and ``nnscratch gradcheck`` walk ``LAYERS``, so a new layer is checked
without new test code.

Data is channels-last ``(N, H, W, C)`` (convolution and pooling return such arrays as views of batch-innermost
storage, see :mod:`nnscratch.ops.layout`); float32 by default, float64 works everywhere.
"""
from __future__ import annotations

import copy
import inspect
import numbers

import numpy as np

from .. import _checks
from ..initializers import get_initializer
from ..registry import Registry
from . import context as _context
from ..errors import SecondOrderNotImplemented
from ..ops.workspace import backward_follows

LAYERS = Registry("layer")

#: the largest weight (in elements) a layer may declare, and the largest sample (in elements) a layer may
#: take or give: 2**31 float32 values are 8 GiB. A saved model whose configuration asks for more is refused
#: before anything is allocated; raise these for a truly larger network.
MAX_WEIGHT_ELEMENTS = 2**31
MAX_SAMPLE_ELEMENTS = 2**31


class SizeLimitError(ValueError):
    """A layer would declare a weight, or produce a sample, beyond :data:`MAX_WEIGHT_ELEMENTS` /
    :data:`MAX_SAMPLE_ELEMENTS`: refused before anything of that size is allocated."""


class WeightShapeError(ValueError):
    """A layer declares a weight of another shape than the saved file being loaded holds for it.

    Attributes:
        layer: the layer's description; name: the weight; declared: its shape; in_file: the file's shape.
    """

    def __init__(self, layer: str, name: str, declared: tuple, in_file: tuple):
        self.layer, self.name, self.declared, self.in_file = layer, name, tuple(declared), tuple(in_file)
        super().__init__(f"{layer} declares weight {name!r} of shape {self.declared}, but the file holds "
                         f"{self.in_file}; its configuration and its weights disagree")


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fans of a weight: ``(in, out)`` for a matrix, ``(kh*kw*c_in, kh*kw*c_out)`` for a kernel.

    Example:
        >>> compute_fans((784, 10)), compute_fans((5, 5, 1, 6)), compute_fans((8,))
        ((784, 10), (25, 150), (8, 8))
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Layer:
    """Base class of all layers.

    Args:
        input_shape: shape of one sample, without the batch axis (needed on a sequential model's first
            layer only), default None.
        name: a readable name, unique within a model; default None (the model assigns ``dense_1`` etc.).

    Attributes:
        params: dict of trainable arrays, declared by ``build`` with :meth:`add_weight`.
        state: dict of non-trainable arrays (moving averages, fixed codes): saved, loaded, counted as
            non-trainable, restored by rollbacks; ``forward`` may update them in place in training.
        grads: dict of gradients with the keys of ``params``, filled by ``backward``.
        hessian_diagonal: dict of diagonal Gauss-Newton second derivatives with the keys of ``params``, filled by
            :meth:`backward_second_order` (layers that SDLM trains; see :mod:`nnscratch.layers.second_order`).
        trainable: set to False to freeze ``params`` (the optimizer skips them).
        rng: the ``np.random.Generator`` for weight initialisation and, outside a model, random draws.
        dtype: the floating dtype of params and computations.
        workspace: dict of scratch arrays a layer may keep between calls (see
            :func:`nnscratch.ops.workspace.scratch`); never part of the layer's state, every copy of the
            layer gets its own.

    Example:
        >>> import numpy as np
        >>> class Double(Layer):
        ...     def forward(self, x, training=False):
        ...         return 2 * x
        ...     def backward(self, dout):
        ...         return 2 * dout
        >>> Double()(np.ones((2, 3))).tolist()
        [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    #: True for layers whose training forward draws random numbers (dropout, augmentation)
    stochastic = False
    #: True for layers that take a list of inputs (Add, Concatenate): ``forward`` gets a list of arrays,
    #: ``backward`` returns a list of gradients, shapes are lists of shapes
    multiple_inputs = False

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
        #: the Gauss-Newton Hessian diagonal of each trainable array, filled by backward_second_order
        self.hessian_diagonal: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.trainable = True
        #: False when nothing before this layer needs a gradient: backward may then skip computing dx (and
        #: return None), which saves a whole col2im for a first convolution.
        self.input_grad_needed = True
        self.built = False
        self.dtype = np.dtype(np.float32)
        self.rng = np.random.default_rng()
        self.built_input_shape = None
        self.output_shape: tuple[int, ...] | None = None
        self.workspace: dict = {}
        #: set by the model loader: {weight name: shape} that the file holds, checked before allocating
        self._expected_shapes: dict | None = None

    @property
    def constants(self) -> dict[str, np.ndarray]:
        """The former name of :attr:`state` (non-trainable arrays), kept so older layer code runs."""
        return self.state

    # -- shapes and weights -------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Declares the layer's arrays for inputs of shape ``(N, *input_shape)``. Default: none."""

    def compute_output_shape(self, input_shape):
        """Output shape (without batch axis) for ``input_shape``. Default: unchanged."""
        return tuple(input_shape)

    def add_weight(self, name: str, shape, initializer="zeros", trainable: bool = True, fan_in=None,
                   fan_out=None) -> np.ndarray:
        """Declares an array of the layer and returns it (call it from ``build``).

        Args:
            name: key in ``self.params`` (trainable) or ``self.state`` (not trainable), e.g. ``"kernel"``.
            shape: its shape, e.g. ``(in_features, units)``; ``()`` for a scalar.
            initializer: an initialiser name (``"glorot_uniform"``, ``"zeros"``...), a function
                ``(shape, fan_in, fan_out, rng, dtype) -> array``, or an array-like of the shape;
                default ``"zeros"``.
            trainable: True (default) for a weight the optimizer trains, False for state such as a moving
                average (``forward`` may update it in place in training; the framework keeps it consistent
                across threads and saves it).
            fan_in, fan_out: for scaled initialisers; default: Keras' rule from the shape
                (:func:`compute_fans`).

        Returns:
            The new array, in ``self.dtype``. Read it back through ``self.params[name]`` or
            ``self.state[name]``: a later dtype change replaces the array (attributes that point at the old
            one are updated too).

        Raises:
            ValueError: a name declared twice, a shape that is not a tuple of non-negative integers or that
                is larger than :data:`MAX_WEIGHT_ELEMENTS`, or one that differs from the saved file being
                loaded.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.describe()}: add_weight needs a non-empty string name, got {name!r}")
        if name in self.params or name in self.state:
            raise ValueError(f"{self.describe()}: a weight named {name!r} is already declared; names must be unique "
                             "within a layer")
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)):
            raise ValueError(f"{self.describe()}: weight {name!r} needs a shape tuple, got {shape!r}")
        shape = tuple(_checks.positive_int(f"{self.describe()}: shape of {name!r}", d, allow_zero=True)
                      for d in shape)
        expected = None if self._expected_shapes is None else self._expected_shapes.get(name)
        if expected is not None and tuple(expected) != shape:
            raise WeightShapeError(self.describe(), name, shape, expected)
        size = int(np.prod(shape, dtype=object))
        if size > MAX_WEIGHT_ELEMENTS:
            raise SizeLimitError(f"{self.describe()}: weight {name!r} of shape {shape} would hold {size:,} values, more "
                             f"than the limit of {MAX_WEIGHT_ELEMENTS:,} (nnscratch.layers.base.MAX_WEIGHT_ELEMENTS); "
                             "check the layer's arguments, or raise the limit if you really mean it")
        if fan_in is None or fan_out is None:
            default_in, default_out = compute_fans(shape)
            fan_in = default_in if fan_in is None else fan_in
            fan_out = default_out if fan_out is None else fan_out
        if isinstance(initializer, str) or callable(initializer):
            value = get_initializer(initializer)(shape, fan_in, fan_out, self.rng, self.dtype)
        else:
            value = np.asarray(initializer)
            if value.shape != shape:
                try:
                    value = np.broadcast_to(value, shape)
                except ValueError:
                    raise ValueError(f"{self.describe()}: the initial value of {name!r} has shape {value.shape}, "
                                     f"expected {shape}") from None
        array = np.array(value, dtype=self.dtype, order="C")
        (self.params if trainable else self.state)[name] = array
        return array

    def initialize(self, input_shape, dtype="float32", rng: np.random.Generator | None = None):
        """Checks ``input_shape``, builds the arrays in ``dtype`` and returns the output shape.

        Called by ``Model.finalize``, by the gradient checker, by a layer that owns other layers (from its
        own ``build``) and on a layer's first call. ``rng`` seeds weight initialisation.
        """
        input_shape = self._check_shape_argument(input_shape)
        self.dtype = _checks.float_dtype(dtype)
        if rng is not None:
            self.rng = rng
        self.params, self.state, self.grads = {}, {}, {}
        output_shape = self.compute_output_shape(input_shape)
        output_shape = tuple(int(d) for d in output_shape)
        if int(np.prod(output_shape, dtype=object)) > MAX_SAMPLE_ELEMENTS:
            raise SizeLimitError(f"{self.describe()} would output {output_shape} per sample, more than "
                             f"{MAX_SAMPLE_ELEMENTS:,} values (nnscratch.layers.base.MAX_SAMPLE_ELEMENTS)")
        self.build(input_shape)
        # a layer may also have filled the dicts directly; every array ends up C-ordered in the layer's dtype
        self.params = {k: np.asarray(v, dtype=self.dtype, order="C") for k, v in self.params.items()}
        self.state = {k: np.asarray(v, dtype=self.dtype, order="C") for k, v in self.state.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.built = True
        self.built_input_shape = input_shape
        self.output_shape = output_shape
        return output_shape

    def _check_shape_argument(self, input_shape):
        if self.multiple_inputs:
            if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 1 or not all(
                    isinstance(s, (list, tuple)) for s in input_shape):
                raise ValueError(f"{self.describe()} takes a list of inputs, so its input shape is a list of shapes, "
                                 f"got {input_shape!r}")
            return [_checks.shape_tuple(f"input shape {i} of {self.describe()}", s) for i, s in enumerate(input_shape)]
        return _checks.shape_tuple(f"input shape of {self.describe()}", input_shape)

    def astype(self, dtype) -> "Layer":
        """Casts every array (this layer's and its sublayers') to ``dtype`` in place of the old ones.

        Attributes that pointed at a replaced array are pointed at the new one. Returns self.
        """
        dtype = _checks.float_dtype(dtype)
        for _, layer in self.walk():
            layer.dtype = dtype
            replaced = {}
            for store in (layer.params, layer.grads, layer.state):
                for k, old in store.items():
                    store[k] = np.asarray(old, dtype=dtype, order="C")  # keeps 0-d arrays 0-d
                    replaced[id(old)] = store[k]
            for attr, value in vars(layer).items():
                if isinstance(value, np.ndarray) and id(value) in replaced:
                    setattr(layer, attr, replaced[id(value)])
        return self

    def weight_count(self, name: str, array: np.ndarray) -> int:
        """How many free numbers ``params[name]`` holds (a connection table counts only linked weights)."""
        return int(array.size)

    def count_trainable_params(self) -> int:
        """Trainable numbers of this layer and its sublayers (0 when frozen)."""
        return sum(layer.weight_count(k, v) for _, layer, trainable in self._walk_trainable() if trainable
                   for k, v in layer.params.items())

    def count_non_trainable_params(self) -> int:
        """Frozen weights plus every state array, this layer's and its sublayers'."""
        frozen = sum(layer.weight_count(k, v) for _, layer, trainable in self._walk_trainable() if not trainable
                     for k, v in layer.params.items())
        return frozen + sum(int(v.size) for _, layer in self.walk() for v in layer.state.values())

    def count_params(self) -> int:
        """Total parameter count (trainable + non-trainable), like Keras' ``count_params``."""
        return self.count_trainable_params() + self.count_non_trainable_params()

    def count_macs(self) -> int:
        """Multiply-adds of one call on one sample, for the shapes the layer was built for (``model.summary(
        flops=True)`` shows them).

        A bias counts as one multiply-add (a weight on an input fixed at 1), so a layer's count is LeCun's
        "connections". Default: the sum over the sublayers, 0 for a layer without any: element-wise layers
        (activations, merges, dropout, reshapes) and comparisons (max pooling) count nothing.
        """
        return sum(sub.count_macs() for _, sub in self.sublayers())

    # -- layers inside layers -------------------------------------------------------------------
    def sublayers(self) -> list[tuple[str, "Layer"]]:
        """``[(attribute path, layer)]`` of the layers this one holds in its attributes (directly, or in a
        list, tuple or dict), in attribute order: ``"conv"``, ``"blocks.0"``..."""
        found = []
        for attr, value in vars(self).items():
            if isinstance(value, Layer):
                found.append((attr, value))
            elif isinstance(value, (list, tuple)):
                found += [(f"{attr}.{i}", v) for i, v in enumerate(value) if isinstance(v, Layer)]
            elif isinstance(value, dict) and attr not in ("params", "grads", "state", "workspace"):
                found += [(f"{attr}.{k}", v) for k, v in value.items() if isinstance(v, Layer)]
        return found

    def walk(self, prefix: str = ""):
        """Yields ``(path, layer)`` for this layer (path ``prefix``) and, depth first, every sublayer
        (path ``prefix + "conv/"`` and so on): the prefix of their weights' keys."""
        yield prefix, self
        for attr, sub in self.sublayers():
            yield from sub.walk(f"{prefix}{attr}/")

    def _walk_trainable(self, prefix: str = "", parent_trainable: bool = True):
        trainable = parent_trainable and self.trainable
        yield prefix, self, trainable
        for attr, sub in self.sublayers():
            yield from sub._walk_trainable(f"{prefix}{attr}/", trainable)

    def weights(self) -> dict[str, np.ndarray]:
        """Every array of the layer and its sublayers, trainable and state alike, keyed ``path + name``."""
        return {f"{path}{k}": v for path, layer in self.walk() for store in (layer.params, layer.state)
                for k, v in store.items()}

    def replicate(self, own_state: bool = False) -> "Layer":
        """A twin that computes with the same weights but keeps its own forward caches, ``grads`` and
        ``workspace`` (its sublayers are twinned too).

        The engine makes one twin per thread and per extra call of a shared layer, so that what
        ``backward`` needs from ``forward`` is never overwritten by another chunk or another call.

        Args:
            own_state: give the twin copies of the state arrays (a thread's twin, so that updates made
                while several threads run never race); False shares them (another call in the same thread,
                whose updates must follow each other).
        """
        twin = copy.copy(self)
        twin.grads = {k: np.zeros_like(v) for k, v in self.grads.items()}
        twin.workspace = {}
        if own_state:
            twin.state = {k: v.copy() for k, v in self.state.items()}
        for attr, value in vars(self).items():
            if isinstance(value, Layer):
                setattr(twin, attr, value.replicate(own_state))
            elif isinstance(value, (list, tuple)) and any(isinstance(v, Layer) for v in value):
                setattr(twin, attr, type(value)(v.replicate(own_state) if isinstance(v, Layer) else v for v in value))
            elif isinstance(value, dict) and any(isinstance(v, Layer) for v in value.values()):
                setattr(twin, attr, {k: v.replicate(own_state) if isinstance(v, Layer) else v
                                     for k, v in value.items()})
        return twin

    # -- computation --------------------------------------------------------------------------
    @property
    def keeps_for_backward(self) -> bool:
        """Whether this forward must keep what backward reads (its input, output, masks): False inside an
        inference plan (``predict``, ``evaluate``, validation in ``fit``), where no backward follows. A layer
        that keeps activations there holds them until its next call: ResNet-20's ReLUs and Adds held ~180 MB
        per thread through and after ``predict`` in pieces of 128.

        Example:
            >>> from nnscratch.ops.workspace import SharedWorkspace
            >>> layer = Layer()
            >>> before = layer.keeps_for_backward
            >>> layer.workspace = SharedWorkspace({}, {})
            >>> before, layer.keeps_for_backward
            (True, False)
        """
        return backward_follows(self.workspace)

    def forward(self, x, training: bool = False):
        """Output for a batch ``x`` of shape ``(N, *input_shape)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, training=False)")

    def backward(self, dout):
        """Given ``dL/dout`` (shape of the last output), fills ``self.grads`` and returns ``dL/dx``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def backward_second_order(self, x, d2out):
        """Back-propagates diagonal second derivatives of the loss (SDLM, see
        :mod:`nnscratch.layers.second_order`); called right after ``forward(x, training=False)``.

        Args:
            x: the input of that forward call (a list for several inputs).
            d2out: ``d2L/dout**2 >= 0``, shaped like the output.

        Returns:
            ``d2L/dx**2`` (Gauss-Newton, diagonal) shaped like ``x``, or None when ``input_grad_needed`` is
            False; fills :attr:`hessian_diagonal` with one array per trainable weight.

        Only layers that want to be trained by SDLM implement it; this default refuses, naming the layer.
        """
        raise SecondOrderNotImplemented(
            f"{self.describe()} has no second-order backward (backward_second_order), which SDLM needs for every "
            "layer it trains through; train this model with another optimizer, or implement it (see "
            "docs/writing-a-layer.md)")

    def __call__(self, inputs, training: bool = False):
        """On symbolic tensors (from :func:`nnscratch.Input`), adds this layer to a graph and returns its
        symbolic output; on arrays, checks their shape and runs ``forward`` (building the layer first if it
        is not built yet, in the arrays' float dtype)."""
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        symbolic = [getattr(t, "is_symbolic_tensor", False) for t in items]
        if any(symbolic):
            if not all(symbolic):
                raise TypeError(f"{self.describe()} was called on a mix of symbolic tensors and other values "
                                f"({', '.join(type(t).__name__ for t in items)}); call it on the outputs of "
                                "nnscratch.Input(...) or of other layers only")
            return items[0].call_layer(self, inputs)
        if self.multiple_inputs:
            if not isinstance(inputs, (list, tuple)) or not inputs:
                raise TypeError(f"{self.describe()} takes a list of inputs, got {type(inputs).__name__}")
            arrays = [self._as_array(a) for a in inputs]
            shapes = [a.shape[1:] for a in arrays]
        else:
            if isinstance(inputs, (list, tuple)):
                raise TypeError(f"{self.describe()} takes one input, got a {type(inputs).__name__} of "
                                f"{len(inputs)}; merge them first (e.g. Concatenate()) or call it on one")
            arrays = self._as_array(inputs)
            shapes = arrays.shape[1:]
        if not self.built:
            sample = arrays[0] if self.multiple_inputs else arrays
            self.initialize(shapes, sample.dtype if sample.dtype.kind == "f" else "float32")
        self.check_input_shape(arrays)
        return self.forward(arrays, training=training)

    def _as_array(self, x):
        if isinstance(x, np.ndarray):
            array = x
        else:
            try:
                array = np.asarray(x)
            except (TypeError, ValueError):
                array = None
            if array is None or array.dtype.kind not in "biuf" or array.ndim == 0:
                raise TypeError(f"{self.describe()} expects a symbolic tensor (from nnscratch.Input(...) or another "
                                f"layer) or a NumPy array with a batch axis, got {type(x).__name__} ({x!r:.60})")
        if array.ndim < 1:
            raise ValueError(f"{self.describe()} expects an array with a batch axis, got a scalar")
        return array

    def check_input_shape(self, x) -> None:
        """Refuses an input whose per-sample shape differs from the one the layer was built for.

        The framework calls it (a layer's own ``forward`` never needs to); the message says what was
        expected, what arrived and how to fix it.
        """
        expected = self.built_input_shape
        if expected is None:
            return
        if self.multiple_inputs:
            got = [tuple(a.shape[1:]) for a in x]
            if len(got) != len(expected) or any(g != tuple(e) for g, e in zip(got, expected)):
                raise ValueError(f"{self.describe()} expects inputs of shapes "
                                 f"{[(None,) + tuple(e) for e in expected]}, got "
                                 f"{[tuple(a.shape) for a in x]}")
            return
        if tuple(x.shape[1:]) != tuple(expected):
            raise ValueError(
                f"{self.describe()} expects input of shape (batch, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}; reshape the data or rebuild the model for this input shape"
            )

    def gradcheck_input(self, shape, rng: np.random.Generator):
        """A float64 input of ``shape`` (with batch axis; a list of shapes for several inputs) at which the
        layer is smooth.

        The gradient checker calls this; layers with kinks override it (ReLU keeps values away
        from 0, max pooling keeps values of a window apart).
        """
        if self.multiple_inputs:
            return [rng.standard_normal(s) for s in shape]
        return rng.standard_normal(shape)

    # -- the batch this call is part of -------------------------------------------------------
    def batch_gather(self, array: np.ndarray) -> list[np.ndarray]:
        """This chunk's ``array`` and every other chunk's, in batch order (see :mod:`.context`)."""
        return _context.gather(array)

    def batch_sum(self, array: np.ndarray) -> np.ndarray:
        """The sum of ``array`` over every chunk of the batch being trained (itself alone when the batch is
        not split). Layers whose training forward couples samples (batch statistics) use it."""
        return _context.batch_sum(array)

    def batch_uniform(self, shape) -> np.ndarray:
        """Uniform float64 draws in ``[0, 1)``, ``shape[0]`` being this chunk's samples: this chunk's rows of
        one draw for the whole batch, so results do not depend on how the batch is cut into chunks."""
        return _context.uniform(self.rng, shape)

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
    """``x`` as an array, refused when its per-sample shape differs from what ``layer`` was built for.

    The framework already checks every input it hands a layer (``Layer.__call__`` and the model's own
    entry); this remains for layer code written before it did.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    layer.check_input_shape(x)
    return x

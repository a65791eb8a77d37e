"""The pieces every ONNX exporter shares: the opset, the registry of exporters by layer class name, and
:class:`GraphBuilder`, the graph an exporter adds its nodes and weights to.

The built-in exporters are in :mod:`nnscratch.io.onnx_layers`; :mod:`nnscratch.io.onnx_export` walks a model
and writes the file.
"""
from __future__ import annotations

import numpy as np

from ..errors import MissingDependencyError, require

#: the ONNX operator set the files are written for (onnxruntime runs it; its ops used here are stable)
OPSET = 17
INSTALL_HINT = 'pip install "nnscratch[onnx]"'
_TO_NCHW = [0, 3, 1, 2]
_TO_NHWC = [0, 2, 3, 1]


class MissingONNXError(MissingDependencyError):
    """The optional ``onnx`` (or ``onnxruntime``) package is not installed; the message says how to get it."""


class UnsupportedLayerError(ValueError):
    """A layer of the model has no ONNX exporter."""


def require_onnx():
    """The ``onnx`` module, or :class:`MissingONNXError` with the install command."""
    return require(["onnx", "onnx.helper", "onnx.numpy_helper"], "the onnx package", "ONNX export", INSTALL_HINT,
                   MissingONNXError)


#: ``{layer class name: exporter}``; an exporter is ``fn(layer, inputs, output, graph)`` that adds to
#: ``graph`` (a :class:`GraphBuilder`) the nodes computing ``output`` (a tensor name) from ``inputs`` (a list
#: of tensor names, channels-last like nnscratch's arrays)
EXPORTERS: dict = {}


#: the class names in :data:`EXPORTERS` whose exporter also serves subclasses that have none of their own
FOR_SUBCLASSES: set = set()


def register_exporter(class_name: str, subclasses: bool = False):
    """Decorator registering ``fn(layer, inputs, output, graph)`` as the exporter of layers of ``class_name``.

    Args:
        class_name: the layer's class name (``type(layer).__name__``).
        subclasses: also export subclasses without an exporter of their own this way; default False, because
            a subclass that changes ``forward`` would otherwise be exported with its parent's arithmetic.

    Example:
        >>> @register_exporter("Double")
        ... def _double(layer, inputs, output, graph):
        ...     graph.node("Mul", [inputs[0], graph.constant(f"{layer.name}/two", np.float32(2))], output)
        >>> "Double" in EXPORTERS
        True
        >>> del EXPORTERS["Double"]
    """
    if not isinstance(class_name, str) or not class_name:
        raise TypeError(f"register_exporter takes a layer class name (a string), got {class_name!r}")

    def decorate(fn):
        EXPORTERS[class_name] = fn
        if subclasses:
            FOR_SUBCLASSES.add(class_name)
        else:
            FOR_SUBCLASSES.discard(class_name)
        return fn
    return decorate


def exporter_for(layer):
    """The exporter of ``layer``'s class, else of its nearest base class registered with ``subclasses=True``;
    None when there is neither."""
    name = type(layer).__name__
    if name in EXPORTERS:
        return EXPORTERS[name]
    for cls in type(layer).__mro__[1:]:
        if cls.__name__ in FOR_SUBCLASSES and cls.__name__ in EXPORTERS:
            return EXPORTERS[cls.__name__]
    return None


class GraphBuilder:
    """The nodes and initializers of the ONNX graph being written; what an exporter adds to.

    Tensor names are unique: :meth:`fresh` makes one from a readable base.
    """

    def __init__(self):
        onnx = require_onnx()
        self._helper, self._numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes = []
        self.initializers = {}
        self._taken = set()

    def fresh(self, base: str) -> str:
        """A tensor name not used yet: ``base``, else ``base_2``, ``base_3``..."""
        name, k = base, 1
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def claim(self, name: str) -> str:
        """Reserves ``name`` (a layer's output) exactly; a clash is a programming error of an exporter."""
        if name in self._taken:
            raise ValueError(f"the tensor name {name!r} is used twice in the ONNX graph; layer names must be "
                             "unique and distinct from input names")
        self._taken.add(name)
        return name

    def constant(self, name: str, array, dtype=np.float32) -> str:
        """An initializer holding ``array`` (cast to ``dtype``), added once per name; returns its name."""
        if name not in self.initializers:
            self.claim(name)
            value = np.ascontiguousarray(np.asarray(array, dtype=dtype))
            self.initializers[name] = self._numpy_helper.from_array(value, name)
        return name

    def node(self, op: str, inputs, output: str | None = None, **attributes) -> str:
        """Adds ``op(inputs)``; returns its output's name (``output``, or a fresh one from the op's name)."""
        output = output if output is not None else self.fresh(f"{inputs[0]}/{op}")
        self.nodes.append(self._helper.make_node(op, list(inputs), [output], name=f"{output}/{op}", **attributes))
        return output

    def to_nchw(self, x: str) -> str:
        return self.node("Transpose", [x], self.fresh(f"{x}/nchw"), perm=_TO_NCHW)

    def to_nhwc(self, x: str, output: str | None = None) -> str:
        return self.node("Transpose", [x], output, perm=_TO_NHWC)

    def scalar(self, name: str, value) -> str:
        return self.constant(name, np.float32(value))

"""Symbolic tensors and the graph of layer calls they record: Keras' functional API.

``x = Input(shape=(28, 28, 1))`` gives a symbolic tensor; calling a layer on symbolic tensors records a
:class:`Node` (the call) and returns the node's output tensor. A model is then any directed acyclic graph
of such calls from its inputs to its outputs: branches, merges (``Add``, ``Concatenate``), several inputs
and outputs, and layers called more than once (which share their weights). A sequential model is the same
graph with one call per layer, one after the other.

Shapes are checked when a layer is called, so a mistake shows where it is made.

Example:
    >>> from nnscratch.layers import Add, Dense, ReLU
    >>> x = Input(shape=(8,), name="features")
    >>> h = Dense(8)(x)
    >>> y = Add()([x, ReLU()(h)])
    >>> y
    <SymbolicTensor shape=(None, 8) from Add>
    >>> [node.layer.describe() for node in topological_order([x], [y])]
    ['features (InputLayer)', 'Dense', 'ReLU', 'Add']
"""
from __future__ import annotations

import itertools
import warnings

from . import _checks
from .layers.base import Layer

_serials = itertools.count()


class SymbolicTensor:
    """The output of a layer call in a graph under construction; it holds a shape, never data.

    Attributes:
        shape: ``(None, *sample_shape)`` — the batch axis is unknown, as in Keras.
        node: the :class:`Node` (layer call) that produces it.
    """

    is_symbolic_tensor = True

    def __init__(self, sample_shape, node: "Node"):
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.node = node

    @property
    def shape(self):
        return (None,) + self.sample_shape

    def call_layer(self, layer: Layer, inputs) -> "SymbolicTensor":
        """Records ``layer(inputs)`` (the ``Layer.__call__`` of symbolic tensors) and returns its output."""
        return Node(layer, inputs).output

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from {self.node.layer.describe()}>"

    # Keras lets tensors be combined with operators; each builds the merge layer of the same name.
    def __add__(self, other):
        from .layers.merge import Add
        return Add()([self, other])

    def __sub__(self, other):
        from .layers.merge import Subtract
        return Subtract()([self, other])

    def __mul__(self, other):
        from .layers.merge import Multiply
        return Multiply()([self, other])


class Node:
    """One call of a layer: its inbound tensors and its output tensor.

    Attributes:
        layer: the layer called.
        inbound: the input tensors, in call order (empty for an input).
        output: the :class:`SymbolicTensor` it produces.
        takes_list: whether the layer was called on a list (layers with several inputs).
        serial: creation order, which breaks ties in :func:`topological_order` so graphs run and print in
            the order they were written.
    """

    def __init__(self, layer: Layer, inputs=None):
        self.layer = layer
        self.serial = next(_serials)
        if inputs is None:  # an InputLayer's own node
            self.inbound, self.takes_list = [], False
            self.output = SymbolicTensor(layer.input_shape, self)
            _nodes_of(layer).append(self)
            return
        if isinstance(layer, InputLayer):
            raise TypeError(f"{layer.describe()} starts a graph and cannot be called on a tensor; use the tensor itself")
        self.takes_list = isinstance(inputs, (list, tuple))
        self.inbound = list(inputs) if self.takes_list else [inputs]
        for t in self.inbound:
            if not getattr(t, "is_symbolic_tensor", False):
                raise TypeError(f"{layer.describe()} was called on a {type(t).__name__}; in a graph, call layers on "
                                "tensors from nnscratch.Input(...) or from other layers")
        if layer.multiple_inputs and not self.takes_list:
            raise TypeError(f"{layer.describe()} merges several tensors: call it on a list, e.g. "
                            f"{type(layer).__name__}()([a, b])")
        if not layer.multiple_inputs and self.takes_list:
            raise TypeError(f"{layer.describe()} takes one tensor, got a list of {len(self.inbound)}; merge them "
                            "first (Add, Concatenate...) or call it on one")
        shapes = [t.sample_shape for t in self.inbound] if self.takes_list else self.inbound[0].sample_shape
        previous = _nodes_of(layer)
        if previous:
            first = previous[0]
            first_shapes = ([t.sample_shape for t in first.inbound] if first.takes_list
                            else first.inbound[0].sample_shape if first.inbound else first.output.sample_shape)
            if first_shapes != shapes:
                raise ValueError(f"{layer.describe()} was first called on input of shape {_show(first_shapes)} and "
                                 f"now on {_show(shapes)}; a layer called again shares its weights, so its input "
                                 "shape must stay the same (create a new layer instead)")
        if not self.takes_list and layer.input_shape is not None and layer.input_shape != shapes:
            raise ValueError(f"{layer.describe()} declares input_shape={layer.input_shape} but is called on a tensor "
                             f"of shape {_show(shapes)}")
        try:
            checked = layer._check_shape_argument(shapes)
            output_shape = tuple(int(d) for d in layer.compute_output_shape(checked))
        except ValueError as e:
            raise ValueError(f"{layer.describe()} cannot take input of shape {_show(shapes)}: {e}") from e
        self.output = SymbolicTensor(output_shape, self)
        previous.append(self)

    @property
    def input_shapes(self):
        """The layer's input shape for this call: a shape, or a list of shapes for a list call."""
        shapes = [t.sample_shape for t in self.inbound]
        return shapes if self.takes_list else shapes[0]

    def __repr__(self):
        return f"<Node {self.layer.describe()} of {len(self.inbound)} input(s)>"


def _show(shapes):
    if isinstance(shapes, list):
        return "[" + ", ".join(_show(s) for s in shapes) + "]"
    return str((None,) + tuple(shapes))


def _nodes_of(layer: Layer) -> list:
    """The calls of ``layer`` recorded so far (kept on the layer, as Keras keeps its inbound nodes)."""
    nodes = layer.__dict__.get("_graph_nodes")
    if nodes is None:
        nodes = layer._graph_nodes = []
    return nodes


class InputLayer(Layer):
    """The start of a graph: passes its input on. Made by :func:`Input`; shows in graph models' summaries.

    Args:
        shape: one sample's shape, without the batch axis, e.g. ``(28, 28, 1)``.
        **kwargs: ``name``.
    """

    def __init__(self, shape=None, input_shape=None, name=None):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs shape=..., one sample's shape without the batch axis, e.g. (28, 28, 1)")
        super().__init__(input_shape=shape, name=name)
        self.shape = self.input_shape

    def get_config(self):
        return {"shape": list(self.shape), "name": self.name}

    def forward(self, x, training=False):
        return x

    def backward(self, dout):
        return dout


def Input(shape, name: str | None = None) -> SymbolicTensor:  # noqa: N802 (Keras' spelling)
    """A symbolic input of samples of ``shape`` (without the batch axis), the start of a graph model.

    Args:
        shape: e.g. ``(32, 32, 3)`` or ``(784,)``; an int ``n`` means ``(n,)``.
        name: the input layer's name, default None (``input_layer_1``...).

    Returns:
        A :class:`SymbolicTensor` of shape ``(None, *shape)``.

    Example:
        >>> Input(shape=(28, 28, 1)).shape
        (None, 28, 28, 1)
    """
    shape = _checks.shape_tuple("Input shape", shape)
    return Node(InputLayer(shape=shape, name=name)).output


def as_tensor_list(what: str, tensors) -> list[SymbolicTensor]:
    """``tensors`` (one or a list/tuple) as a list of symbolic tensors, or a TypeError saying what arrived."""
    items = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if not items:
        raise ValueError(f"Model({what}=...) needs at least one tensor")
    for t in items:
        if not getattr(t, "is_symbolic_tensor", False):
            raise TypeError(f"Model({what}=...) takes tensors from nnscratch.Input(...) and layer calls, got "
                            f"{type(t).__name__} ({t!r:.60})")
    if len({id(t) for t in items}) != len(items):
        raise ValueError(f"Model({what}=...) lists the same tensor twice")
    return items


def topological_order(inputs, outputs) -> list[Node]:
    """The calls needed to compute ``outputs`` from ``inputs``, each after the calls it reads from.

    Among calls that are ready at the same time, the one created first comes first, so a graph runs (and
    prints) in the order it was written.

    Raises:
        ValueError: an output depends on an input that is not in ``inputs`` (a disconnected output), or on
            nothing at all.
    """
    input_nodes = {id(t.node) for t in inputs}
    needed: dict[int, Node] = {}
    stack = [t.node for t in outputs]
    while stack:
        node = stack.pop()
        if id(node) in needed:
            continue
        needed[id(node)] = node
        if not node.inbound and id(node) not in input_nodes:
            reached = [t for t in outputs if _depends_on(t.node, node)]
            raise ValueError(f"the model's output {reached[0]!r} depends on the input "
                             f"{node.layer.describe()}, which is not among the model's inputs; pass it in "
                             "Model(inputs=[...]) or build the output from the given inputs")
        if id(node) not in input_nodes:
            stack.extend(t.node for t in node.inbound)
    unused = [t for t in inputs if id(t.node) not in needed]
    if unused:
        warnings.warn(f"the model's input(s) {[t.node.layer.describe() for t in unused]} are not used by any of its "
                      "outputs", UserWarning, stacklevel=3)
        for t in unused:
            needed[id(t.node)] = t.node
    consumers: dict[int, list[Node]] = {k: [] for k in needed}
    waiting = {}
    for key, node in needed.items():
        sources = [] if key in input_nodes else [t.node for t in node.inbound]
        waiting[key] = len({id(s) for s in sources})
        for s in {id(s): s for s in sources}.values():
            consumers[id(s)].append(node)
    ready = sorted((n for k, n in needed.items() if waiting[k] == 0), key=lambda n: n.serial)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for c in consumers[id(node)]:
            waiting[id(c)] -= 1
            if waiting[id(c)] == 0:
                ready.append(c)
                ready.sort(key=lambda n: n.serial)
    if len(order) != len(needed):  # only a hand-edited graph can get here
        stuck = [n.layer.describe() for k, n in needed.items() if waiting[k] > 0]
        raise ValueError(f"the layer graph has a cycle through {stuck}; a layer cannot depend on its own output")
    return order


def _depends_on(node: Node, target: Node) -> bool:
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n is target:
            return True
        if id(n) not in seen:
            seen.add(id(n))
            stack.extend(t.node for t in n.inbound)
    return False


def graph_config(nodes: list[Node], inputs, outputs, layer_name) -> dict:
    """The graph as Keras 2 writes it: per layer its inbound calls ``[[layer, call index, 0], ...]``.

    Args:
        nodes: the calls in topological order.
        inputs, outputs: the model's tensors.
        layer_name: ``layer -> name`` in this model.

    Returns:
        ``{"layers": [{"class_name", "name", "config", "inbound_nodes"}], "input_layers", "output_layers"}``;
        the caller fills in ``config``.
    """
    call_index = {}
    per_layer: dict[int, list] = {}
    for node in nodes:
        calls = per_layer.setdefault(id(node.layer), [])
        call_index[id(node)] = len(calls)
        calls.append(node)
    layers = []
    seen = set()
    for node in nodes:
        if id(node.layer) in seen:
            continue
        seen.add(id(node.layer))
        inbound = [[_ref(t, call_index, layer_name) for t in n.inbound] + ([{"list": True}] if n.takes_list else [])
                   for n in per_layer[id(node.layer)] if n.inbound]
        layers.append({"layer": node.layer, "name": layer_name(node.layer), "inbound_nodes": inbound})
    return {"layers": layers,
            "input_layers": [_ref(t, call_index, layer_name) for t in inputs],
            "output_layers": [_ref(t, call_index, layer_name) for t in outputs]}


def _ref(tensor, call_index, layer_name):
    return [layer_name(tensor.node.layer), call_index[id(tensor.node)], 0]


def graph_from_config(specs: list[dict], input_refs, output_refs, make_layer):
    """Rebuilds the graph that :func:`graph_config` described: ``(inputs, outputs)`` tensors.

    Args:
        specs: ``[{"name", "inbound_nodes", ...}]`` in the saved order.
        input_refs, output_refs: ``[[layer name, call index, 0], ...]``.
        make_layer: ``spec -> Layer`` (builds the layer object from the spec's class name and config).

    Raises:
        ValueError: references to unknown layers or calls, or a cycle.
    """
    if not isinstance(specs, list) or not specs:
        raise ValueError("a graph model's config needs a non-empty 'layers' list")
    layers, calls, pending = {}, {}, []
    for spec in specs:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or name in layers:
            raise ValueError(f"every layer of a graph needs a unique 'name', found {name!r}")
        layer = make_layer(spec)
        layers[name] = layer
        calls[name] = []
        inbound = spec.get("inbound_nodes", [])
        if not isinstance(inbound, list):
            raise ValueError(f"layer {name!r}: inbound_nodes must be a list, found {inbound!r:.80}")
        if isinstance(layer, InputLayer):
            if inbound:
                raise ValueError(f"input layer {name!r} cannot have inbound calls")
            calls[name].append(Node(layer).output)
            continue
        if not inbound:
            raise ValueError(f"layer {name!r} has no inbound calls: it is not connected to the graph")
        pending += [(name, i, call) for i, call in enumerate(inbound)]

    def resolve(ref):
        if (not isinstance(ref, list) or len(ref) < 2 or not isinstance(ref[0], str) or ref[0] not in layers
                or not isinstance(ref[1], int)):
            raise ValueError(f"a graph reference must be [layer name, call index, 0] naming a layer of the model, "
                             f"found {ref!r:.80}")
        done = calls[ref[0]]
        return done[ref[1]] if ref[1] < len(done) else None

    while pending:
        progress = []
        for item in pending:
            name, index, call = item
            if len(calls[name]) != index:
                continue  # a layer's calls are rebuilt in their own order
            if not isinstance(call, list) or not call:
                raise ValueError(f"layer {name!r}: each inbound call must be a non-empty list of references")
            takes_list = isinstance(call[-1], dict) and call[-1].get("list") is True
            refs = call[:-1] if takes_list else call
            tensors = [resolve(ref) for ref in refs]
            if any(t is None for t in tensors):
                continue
            if not takes_list and len(tensors) != 1:
                raise ValueError(f"layer {name!r} is called on {len(tensors)} tensors without taking a list")
            calls[name].append(layers[name](tensors if takes_list else tensors[0]))
            progress.append(item)
        if not progress:
            stuck = sorted({name for name, _, _ in pending})
            raise ValueError(f"the saved graph cannot be rebuilt: the calls of {stuck} wait on each other (a cycle) "
                             "or on calls that do not exist")
        pending = [p for p in pending if p not in progress]

    def tensor(ref):
        t = resolve(ref)
        if t is None:
            raise ValueError(f"the graph reference {ref!r} names a call that does not exist")
        return t

    if not isinstance(input_refs, list) or not isinstance(output_refs, list) or not input_refs or not output_refs:
        raise ValueError("a graph model's config needs non-empty 'input_layers' and 'output_layers' lists")
    return [tensor(r) for r in input_refs], [tensor(r) for r in output_refs]


__all__ = ["Input", "InputLayer", "Node", "SymbolicTensor", "topological_order", "graph_config", "graph_from_config"]

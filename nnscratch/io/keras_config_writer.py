"""nnscratch model configurations -> Keras 3 model configurations: pure dict translation, no files, no Keras.

:func:`to_keras` turns an nnscratch ``Model.get_config()`` into the description Keras 3's ``model.get_config()``
gives for the same network, with its layers in the order Keras rebuilds them (:func:`keras_layer_order`), which
is the order Keras pairs a file's weights with. A layer or option Keras lacks is a
:class:`~nnscratch.io.keras_config.KerasConfigError` naming it. The reading side and the layer mapping both use
are in :mod:`nnscratch.io.keras_config`.

Example:
    >>> nn = {"name": "s", "layers": [{"class_name": "Dense", "config": {
    ...     "name": "d", "units": 3, "activation": "softmax", "input_shape": (4,)}}]}
    >>> keras = to_keras(nn, {"d": True}, {"d": (3,)})
    >>> keras["class_name"], [layer["class_name"] for layer in keras["config"]["layers"]]
    ('Sequential', ['InputLayer', 'Dense'])
"""
from __future__ import annotations

from ..constraints import get_constraint
from ..regularizers import get_regularizer
from .keras_config import _REGULARIZERS, KERAS_TO_NNSCRATCH, KerasConfigError, _rule

__all__ = ["to_keras", "layer_to_keras", "keras_class_of", "keras_layer_order"]

_NN_TO_KERAS = {"MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D", "MaxPool1D": "MaxPooling1D",
                "AvgPool1D": "AveragePooling1D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
                "GlobalMaxPool2D": "GlobalMaxPooling2D", "ZeroPad2D": "ZeroPadding2D"}
_SAME_NAME = {rule["class"] for rule in KERAS_TO_NNSCRATCH.values()}
#: nnscratch layers Keras spells as an Activation layer
_AS_ACTIVATION = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Swish": "swish"}


def keras_class_of(nn_class: str) -> str:
    """The Keras class an nnscratch layer class is written as.

    Raises:
        KerasConfigError: Keras has no such layer (nnscratch's own LeNet layers, augmentation...).
    """
    if nn_class in _AS_ACTIVATION:
        return "Activation"
    if nn_class in _NN_TO_KERAS:
        return _NN_TO_KERAS[nn_class]
    if nn_class in _SAME_NAME or nn_class == "InputLayer":
        return nn_class
    raise KerasConfigError(f"nnscratch's {nn_class} has no Keras equivalent, so a model with it cannot be written "
                           f"as a Keras file; layers Keras reads: "
                           f"{', '.join(sorted(_SAME_NAME | set(_AS_ACTIVATION) | {'InputLayer'}))}")


def _keras_object(value, kind):
    """nnscratch's regularizer/constraint (a name, a config or an object) in Keras 3's spelling: the class names
    and arguments are Keras' own."""
    obj = (get_constraint(value) if kind == "constraints" else get_regularizer(value))
    if obj is None:
        return None
    return {"module": f"keras.{kind}", "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def layer_to_keras(nn_class: str, nn_config: dict, name: str, trainable: bool) -> dict:
    """One nnscratch layer (class name and ``get_config()``) as a Keras 3 layer spec ``{"class_name", "config"}``.

    Raises:
        KerasConfigError: Keras has no such layer, or an option Keras lacks (Conv2D's ``connections``).
    """
    keras_class = keras_class_of(nn_class)
    label = f"layer {name!r} ({nn_class})"
    config = {"name": name, "trainable": bool(trainable), "dtype": "float32"}
    if nn_class == "Swish" and nn_config.get("beta", 1.0) != 1.0:
        raise KerasConfigError(f"{label}: Keras' swish has beta 1, this one {nn_config['beta']}; Keras has no "
                               "equivalent")
    if nn_class in _AS_ACTIVATION:
        config["activation"] = _AS_ACTIVATION[nn_class]
        return {"class_name": "Activation", "config": config}
    if nn_class == "LeakyReLU":
        config["negative_slope"] = nn_config["alpha"]
        return {"class_name": keras_class, "config": config}
    if nn_config.get("connections") is not None:
        raise KerasConfigError(f"{label}: a partially connected convolution (connections=) has no Keras equivalent")
    rule = KERAS_TO_NNSCRATCH[keras_class] if keras_class in KERAS_TO_NNSCRATCH else _rule(nn_class)
    inverse = {v: k for k, v in rule["rename"].items()}
    for key, value in nn_config.items():
        if key in ("name", "input_shape"):
            continue
        keras_key = inverse.get(key, key)
        if keras_key not in rule["keep"]:
            if key.endswith("_initializer") or value is None:
                continue  # the weights are written; Keras uses its default initializers
            raise KerasConfigError(f"{label}: option {key}={value!r:.60} has no Keras equivalent")
        if keras_key == "activation":
            value = "linear" if value is None else value
        elif keras_key in _REGULARIZERS:
            value = _keras_object(value, "constraints" if "constraint" in keras_key else "regularizers")
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        config[keras_key] = value
    if "data_format" in rule["fixed"]:
        config["data_format"] = "channels_last"
    return {"class_name": keras_class, "config": config}


def _keras_tensor(ref, shape):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *shape], "dtype": "float32", "keras_history": list(ref[:3])}}


def keras_layer_order(nn_config: dict) -> list[str]:
    """The layer names of an nnscratch graph config in the order Keras 3 rebuilds that graph's ``model.layers``.

    Keras pairs a file's weights with its layers by this order (the legacy ``.h5`` by position in
    ``layer_names``, ``.keras`` by numbering ``conv2d``, ``conv2d_1``... in it), whatever order the config lists
    them in, so a file written for Keras must list its layers this way. Keras' rule (``ops.function.map_graph``):
    a depth-first walk from the outputs numbers the layers; each call's depth is the longest path from it to an
    output; layers go deepest first, ties in walk order; an input no output uses comes first among depth 0.

    Example:
        >>> config = {"layers": [
        ...     {"name": "x", "inbound_nodes": []},
        ...     {"name": "a", "inbound_nodes": [[["x", 0, 0]]]},
        ...     {"name": "b", "inbound_nodes": [[["x", 0, 0]]]},
        ...     {"name": "deep", "inbound_nodes": [[["b", 0, 0]]]},
        ...     {"name": "add", "inbound_nodes": [[["a", 0, 0], ["deep", 0, 0], {"list": True}]]}],
        ...     "input_layers": ["x", 0, 0], "output_layers": ["add", 0, 0]}
        >>> keras_layer_order(config)
        ['x', 'b', 'a', 'deep', 'add']
    """
    def parents(node):
        name, call = node
        refs = calls[name][call] if call < len(calls[name]) else []
        return [(ref[0], ref[1]) for ref in refs if isinstance(ref, list)]

    def refs(value):
        return [value] if value and isinstance(value[0], str) else list(value or [])

    calls = {spec["name"]: spec.get("inbound_nodes") or [] for spec in nn_config["layers"]}
    finished, post_order, walk_index = set(), [], {}

    def visit(node):
        if node in finished:
            return
        walk_index.setdefault(node[0], len(walk_index))
        for parent in parents(node):
            visit(parent)
        finished.add(node)
        post_order.append(node)

    for ref in refs(nn_config["output_layers"]):
        visit((ref[0], ref[1]))
    node_depth, layer_depth = {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node[0], 0))
        layer_depth[node[0]] = node_depth[node] = depth
        for parent in parents(node):
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for ref in refs(nn_config["input_layers"]):
        if ref[0] not in layer_depth:
            layer_depth[ref[0]], walk_index[ref[0]] = 0, -1
    return sorted(layer_depth, key=lambda name: (-layer_depth[name], walk_index[name]))


def to_keras(nn_config: dict, trainable: dict, shapes: dict, input_shape=None) -> dict:
    """A Keras 3 model config from an nnscratch ``Model.get_config()``.

    Args:
        nn_config: the nnscratch model config.
        trainable: ``{layer name: bool}``.
        shapes: ``{layer name: output sample shape}`` (Keras records each tensor's shape in the graph).
        input_shape: a sequential model's sample shape (default: its first layer's ``input_shape``).

    Returns:
        ``{"class_name": "Sequential" | "Functional", "config": {...}}``, what Keras 3's ``model.get_config()``
        gives for the same network.

    Raises:
        KerasConfigError: a layer or option Keras lacks.
    """
    name = nn_config.get("name", "model")
    specs = nn_config["layers"]
    if "input_layers" not in nn_config:
        shape = tuple(input_shape or specs[0]["config"].get("input_shape"))
        layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, *shape], "dtype": "float32",
                                                          "name": f"{name}_input"}}]
        layers += [layer_to_keras(s["class_name"], s["config"], s["config"]["name"],
                                  trainable.get(s["config"]["name"], True)) for s in specs]
        return {"class_name": "Sequential", "config": {"name": name, "trainable": True, "layers": layers,
                                                       "build_input_shape": [None, *shape]}}
    layers = []
    by_name = {spec["name"]: spec for spec in specs}
    for layer_name in keras_layer_order(nn_config):
        spec = by_name[layer_name]
        if spec["class_name"] == "InputLayer":
            shape = spec["config"].get("shape") or spec["config"].get("input_shape")
            layers.append({"class_name": "InputLayer", "config": {"batch_shape": [None, *shape], "dtype": "float32",
                                                                  "name": layer_name},
                           "name": layer_name, "inbound_nodes": []})
            continue
        keras = layer_to_keras(spec["class_name"], spec["config"], layer_name, trainable.get(layer_name, True))
        nodes = []
        for call in spec["inbound_nodes"]:
            takes_list = isinstance(call[-1], dict) and call[-1].get("list") is True
            refs = call[:-1] if takes_list else call
            tensors = [_keras_tensor(ref, shapes[ref[0]]) for ref in refs]
            nodes.append({"args": [tensors if takes_list else tensors[0]], "kwargs": {}})
        keras.update(name=layer_name, inbound_nodes=nodes)
        layers.append(keras)
    return {"class_name": "Functional", "config": {
        "name": name, "trainable": True, "layers": layers,
        "input_layers": nn_config["input_layers"], "output_layers": nn_config["output_layers"]}}

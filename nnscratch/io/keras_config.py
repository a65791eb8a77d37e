"""Keras model configurations -> nnscratch model configurations: pure dict translation, no files, no Keras.

Keras describes a model as JSON (``model.get_config()`` wrapped in ``{"class_name", "config"}``); this module
turns that description into the dict :meth:`nnscratch.Model.from_config` takes (:func:`from_keras`), and holds
the layer mapping both directions share (:data:`KERAS_TO_NNSCRATCH`, :func:`weight_keys`); the other direction
is :mod:`nnscratch.io.keras_config_writer`. Both Keras 2 (``batch_input_shape``,
inbound nodes as ``[[name, 0, 0, {}]]``) and Keras 3 (``batch_shape``, ``{"args", "kwargs"}`` nodes,
``module``/``registered_name``) configurations are read.

Nothing here imports or runs anything the configuration names: a Lambda layer, a custom object (a ``module``
or ``registered_name`` outside Keras) or a layer nnscratch lacks is a :class:`KerasConfigError` naming it. An
option nnscratch does not implement (``data_format="channels_first"``, BatchNormalization's ``renorm``...) is
refused too, rather than silently ignored: the loaded model would predict something else.

Both sides list a layer's weights in the same order (trainable first, then non-trainable, in the order the
layer creates them), which :func:`weight_keys` gives for each class.

Example:
    >>> keras = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
    ...     {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax"}}]}}
    >>> config, trainable = from_keras(keras)
    >>> config["layers"][0]["class_name"], config["layers"][0]["config"]["input_shape"], trainable
    ('Dense', (4,), {'d': True})
    >>> weight_keys("Dense", config["layers"][0]["config"])
    [('params', 'kernel'), ('params', 'bias')]
"""
from __future__ import annotations

import re


__all__ = ["KerasConfigError", "from_keras", "weight_keys", "snake_case", "KERAS_TO_NNSCRATCH"]


class KerasConfigError(ValueError):
    """A Keras configuration nnscratch cannot (or will not) build: the message names the layer and the reason."""


#: Keras activation names nnscratch's ``activation=`` and ``Activation`` implement ("linear" is the identity)
_ACTIVATIONS = {"relu", "sigmoid", "tanh", "softmax", "swish", "silu", "leaky_relu", "linear"}

#: options every Keras layer has that carry nothing nnscratch needs: the weights come from the file, and
#: nnscratch keeps one dtype per model
_COMMON_IGNORED = {"name", "trainable", "dtype", "autocast", "batch_size", "input_dtype"}
_INITIALIZERS = {"kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
                 "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer"}
_REGULARIZERS = {"kernel_regularizer", "bias_regularizer", "depthwise_regularizer", "pointwise_regularizer",
                 "kernel_constraint", "bias_constraint", "depthwise_constraint", "pointwise_constraint"}
_CONV = {"filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias"}


def _rule(nn_class, keep=(), fixed=None, ignored=(), rename=None, weights=()):
    return {"class": nn_class, "keep": set(keep), "fixed": dict(fixed or {}), "ignored": set(ignored),
            "rename": dict(rename or {}), "weights": list(weights)}


_CHANNELS_LAST = {"data_format": ("channels_last", None)}
_BIAS = [("params", "kernel"), ("params", "bias")]

#: Keras class -> how it becomes an nnscratch layer: the options kept (``rename``d where nnscratch spells them
#: differently), the options that must hold one of the listed values, those dropped, and the weights in
#: Keras' order as ``(store, key)``
KERAS_TO_NNSCRATCH = {
    "Dense": _rule("Dense", {"units", "activation", "use_bias"} | _REGULARIZERS, ignored=_INITIALIZERS,
                   fixed={"activity_regularizer": (None,), "lora_rank": (None,), "quantization_config": (None,)},
                   weights=_BIAS),
    "Conv2D": _rule("Conv2D", _CONV | _REGULARIZERS, _CHANNELS_LAST | {"activity_regularizer": (None,),
                    "lora_rank": (None,)}, _INITIALIZERS, weights=_BIAS),
    "Conv1D": _rule("Conv1D", _CONV | _REGULARIZERS, _CHANNELS_LAST | {"activity_regularizer": (None,)},
                    _INITIALIZERS, weights=_BIAS),
    "DepthwiseConv2D": _rule("DepthwiseConv2D", {"kernel_size", "strides", "padding", "depth_multiplier",
                             "dilation_rate", "activation", "use_bias"} | _REGULARIZERS,
                             _CHANNELS_LAST | {"activity_regularizer": (None,)}, _INITIALIZERS,
                             weights=[("params", "depthwise_kernel"), ("params", "bias")]),
    "SeparableConv2D": _rule("SeparableConv2D", _CONV - {"groups"} | {"depth_multiplier"} | _REGULARIZERS,
                             _CHANNELS_LAST | {"activity_regularizer": (None,)}, _INITIALIZERS,
                             weights=[("params", "depthwise_kernel"), ("params", "pointwise_kernel"),
                                      ("params", "bias")]),
    "Conv2DTranspose": _rule("Conv2DTranspose", _CONV - {"groups"} | {"output_padding"} | _REGULARIZERS,
                             _CHANNELS_LAST | {"activity_regularizer": (None,), "groups": (1, None)},
                             _INITIALIZERS, weights=_BIAS),
    "MaxPooling2D": _rule("MaxPool2D", {"pool_size", "strides", "padding"}, _CHANNELS_LAST),
    "AveragePooling2D": _rule("AvgPool2D", {"pool_size", "strides", "padding"}, _CHANNELS_LAST),
    "MaxPooling1D": _rule("MaxPool1D", {"pool_size", "strides", "padding"}, _CHANNELS_LAST),
    "AveragePooling1D": _rule("AvgPool1D", {"pool_size", "strides", "padding"}, _CHANNELS_LAST),
    "GlobalAveragePooling2D": _rule("GlobalAvgPool2D", fixed=_CHANNELS_LAST | {"keepdims": (False, None)}),
    "GlobalMaxPooling2D": _rule("GlobalMaxPool2D", {"keepdims"}, _CHANNELS_LAST),
    "Flatten": _rule("Flatten", fixed=_CHANNELS_LAST),
    "Reshape": _rule("Reshape", {"target_shape"}),
    "Dropout": _rule("Dropout", {"rate"}, {"noise_shape": (None,)}, {"seed"}),
    "Activation": _rule("Activation", {"activation"}),
    "ReLU": _rule("ReLU", fixed={"max_value": (None,), "negative_slope": (0, 0.0, None), "threshold": (0, 0.0, None)}),
    "LeakyReLU": _rule("LeakyReLU", {"alpha", "negative_slope"}, rename={"negative_slope": "alpha"}),
    "Softmax": _rule("Softmax", fixed={"axis": (-1, None)}),
    "BatchNormalization": _rule("BatchNormalization", {"axis", "momentum", "epsilon", "center", "scale"},
                                {"renorm": (False, None), "renorm_clipping": (None,), "virtual_batch_size": (None,),
                                 "adjustment": (None,), "beta_regularizer": (None,), "gamma_regularizer": (None,),
                                 "beta_constraint": (None,), "gamma_constraint": (None,)},
                                _INITIALIZERS | {"synchronized", "renorm_momentum", "fused"}),
    "LayerNormalization": _rule("LayerNormalization", {"axis", "epsilon", "center", "scale"},
                                {"rms_scaling": (False, None), "beta_regularizer": (None,),
                                 "gamma_regularizer": (None,), "beta_constraint": (None,),
                                 "gamma_constraint": (None,)}, _INITIALIZERS),
    "Add": _rule("Add"), "Subtract": _rule("Subtract"), "Multiply": _rule("Multiply"),
    "Average": _rule("Average"), "Maximum": _rule("Maximum"), "Minimum": _rule("Minimum"),
    "Concatenate": _rule("Concatenate", {"axis"}),
    "UpSampling2D": _rule("UpSampling2D", {"size", "interpolation"}, _CHANNELS_LAST),
    "Cropping2D": _rule("Cropping2D", {"cropping"}, _CHANNELS_LAST),
    "ZeroPadding2D": _rule("ZeroPad2D", {"padding"}, _CHANNELS_LAST),
}
for _name, _spec in (("Convolution2D", "Conv2D"), ("Convolution1D", "Conv1D"), ("MaxPool2D", "MaxPooling2D"),
                     ("AvgPool2D", "AveragePooling2D"), ("MaxPool1D", "MaxPooling1D"),
                     ("AvgPool1D", "AveragePooling1D"), ("GlobalAvgPool2D", "GlobalAveragePooling2D"),
                     ("GlobalMaxPool2D", "GlobalMaxPooling2D"), ("Conv2DTranspose", "Conv2DTranspose"),
                     ("SeparableConvolution2D", "SeparableConv2D"), ("Convolution2DTranspose", "Conv2DTranspose")):
    KERAS_TO_NNSCRATCH.setdefault(_name, KERAS_TO_NNSCRATCH[_spec])

#: Keras classes that run Python code stored in the file (or call TensorFlow ops by name)
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
_MODELS = {"Sequential", "Functional", "Model"}


def snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: how Keras 3 names a layer's group in ``model.weights.h5``.

    Example:
        >>> snake_case("Conv2D"), snake_case("BatchNormalization"), snake_case("GlobalAveragePooling2D")
        ('conv2d', 'batch_normalization', 'global_average_pooling2d')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# -- refusing code and custom objects -----------------------------------------------------------------------
def _check_no_code(value, where: str) -> None:
    """Refuses any object in the config that names code outside Keras (walks nested dicts and lists)."""
    if isinstance(value, dict):
        module = value.get("module")
        registered = value.get("registered_name")
        cls = value.get("class_name")
        if isinstance(cls, str) and cls in _CODE_LAYERS:
            raise KerasConfigError(f"{where} is a {cls} layer, which runs Python code stored in the file; nnscratch "
                                   "never executes code from a file. Rewrite it as built-in layers, or rebuild the "
                                   "model in nnscratch and load the other layers' weights")
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            raise KerasConfigError(f"{where} names {cls!r} from module {module!r}, a custom object outside Keras; "
                                   "nnscratch imports nothing a file names. Replace it by a built-in Keras layer")
        if registered is not None and registered != cls:
            raise KerasConfigError(f"{where} names the custom object {registered!r} (registered_name); nnscratch "
                                   "loads built-in Keras layers only and imports nothing a file names")
        if cls == "function" or value.get("function_type") is not None:
            raise KerasConfigError(f"{where} holds a Python function ({str(value.get('config'))[:60]!r}); nnscratch "
                                   "never executes code from a file")
        for key, item in value.items():
            if key != "inbound_nodes":
                _check_no_code(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_no_code(item, where)


# -- Keras -> nnscratch --------------------------------------------------------------------------------------
def _shape_tuple(value, where):
    if isinstance(value, list) and all(isinstance(d, int) or d is None for d in value):
        return tuple(value)
    raise KerasConfigError(f"{where}: expected a shape like [null, 28, 28, 1], found {value!r:.80}")


def _input_shape(config: dict, where: str):
    """The sample shape (without the batch axis) a Keras InputLayer or first layer declares, or None."""
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            shape = _shape_tuple(config[key], f"{where} {key}")
            if any(d is None for d in shape[1:]):
                raise KerasConfigError(f"{where}: input shape {list(shape)} has unknown sizes besides the batch; "
                                       "nnscratch models take inputs of fixed size")
            return shape[1:]
    value = config.get("input_shape")
    if value is not None:
        return _shape_tuple(list(value) if isinstance(value, tuple) else value, f"{where} input_shape")
    return None


def _activation(value, where):
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in _ACTIVATIONS:
        return None if value.lower() == "linear" else value.lower()
    raise KerasConfigError(f"{where}: activation {value!r:.80} is not one nnscratch has; known: "
                           f"{', '.join(sorted(_ACTIVATIONS))}")


def _plain(value):
    """Keras lists (kernel_size [3, 3]) as the tuples nnscratch's arguments take."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _object(value, kind):
    """A Keras regularizer or constraint as nnscratch's ``{"class_name", "config"}`` (same names, same maths)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        return {"class_name": value["class_name"], "config": dict(value.get("config") or {})}
    raise KerasConfigError(f"a {kind} should be a name or {{'class_name', 'config'}}, found {value!r:.80}")


def layer_from_keras(spec: dict, where: str) -> dict:
    """One Keras layer spec ``{"class_name", "config"}`` as an nnscratch spec (without graph links).

    Raises:
        KerasConfigError: a layer or an option nnscratch lacks; the message names the layer.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
            or not isinstance(spec.get("config", {}), dict):
        raise KerasConfigError(f"{where}: a layer must be {{'class_name': str, 'config': dict}}, found {spec!r:.120}")
    cls = spec["class_name"]
    config = spec.get("config", {})
    name = config.get("name", spec.get("name"))
    label = f"{where} {name!r} ({cls})"
    _check_no_code(spec, label)
    if not isinstance(name, str) or not name:
        raise KerasConfigError(f"{label}: every layer needs a name (its weights are found by it), found {name!r}")
    if cls in _MODELS:
        raise KerasConfigError(f"{label} is a model nested inside the model; nnscratch loads flat models only. "
                               "Rebuild it with the inner model's layers inlined")
    rule = KERAS_TO_NNSCRATCH.get(cls)
    if rule is None:
        raise KerasConfigError(f"{label}: nnscratch has no layer like Keras' {cls}. Layers it reads: "
                               f"{', '.join(sorted(KERAS_TO_NNSCRATCH))}")
    out = {}
    for key, value in config.items():
        if key in _COMMON_IGNORED or key in rule["ignored"] or key in ("batch_shape", "batch_input_shape",
                                                                       "input_shape"):
            continue
        if key in rule["fixed"]:
            if value not in rule["fixed"][key] and not (isinstance(value, list) and value == [-1] and -1 in
                                                         rule["fixed"][key]):
                raise KerasConfigError(f"{label}: {key}={value!r:.80} is not supported by nnscratch (it supports "
                                       f"{' or '.join(repr(v) for v in rule['fixed'][key])})"
                                       + ("; nnscratch is channels-last throughout: convert the model in Keras "
                                          "first" if key == "data_format" else ""))
            continue
        if key not in rule["keep"]:
            if value is None or value is False:  # a newer Keras' option left at its off default
                continue
            raise KerasConfigError(f"{label}: option {key}={value!r:.80} has no equivalent in nnscratch")
        if key == "activation":
            value = _activation(value, label)
        elif key in _REGULARIZERS:
            value = _object(value, key)
        elif key == "axis" and isinstance(value, list) and len(value) == 1:
            value = value[0]
        else:
            value = _plain(value)
        out[rule["rename"].get(key, key)] = value
    if cls == "Activation" and out.get("activation") is None:
        return {"class_name": "Activation", "config": {"activation": "linear", "name": name}}
    if name is not None:
        out["name"] = name
    return {"class_name": rule["class"], "config": out}


def _no_call_arguments(kwargs: dict, where: str) -> None:
    """Refuses keyword arguments of a call (``mask=None`` is how Keras records none)."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    if given:
        hint = (" (training=... fixes a layer's mode; nnscratch sets it from fit/predict, and freezes a "
                "BatchNormalization with layer.trainable = False)" if "training" in given else "")
        raise KerasConfigError(f"{where} is called with keyword arguments {given!r:.120}, which nnscratch layers do "
                               f"not take{hint}")


def _keras_refs(node, where):
    """A Keras 3 inbound node ``{"args", "kwargs"}`` or a Keras 2 node ``[[name, i, j, kwargs], ...]`` as
    nnscratch's call ``[[name, i, j], ...]`` (a trailing ``{"list": True}`` when the layer takes a list)."""
    if isinstance(node, dict):  # Keras 3
        args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
        _no_call_arguments(kwargs, where)
        if not isinstance(args, list) or len(args) != 1:
            raise KerasConfigError(f"{where}: expected one positional argument per call, found {args!r:.120}")
        arg = args[0]
        tensors = arg if isinstance(arg, list) else [arg]
        refs = []
        for tensor in tensors:
            history = tensor.get("config", {}).get("keras_history") if isinstance(tensor, dict) else None
            if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
                raise KerasConfigError(f"{where}: an input should be a Keras tensor with a keras_history, found "
                                       f"{tensor!r:.120}")
            refs.append(list(history))
        return refs + [{"list": True}] if isinstance(arg, list) else refs
    if isinstance(node, list) and node:  # Keras 2
        refs = []
        for ref in node:
            if not (isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str)):
                raise KerasConfigError(f"{where}: an inbound reference should be [layer, node, tensor, kwargs], "
                                       f"found {ref!r:.120}")
            _no_call_arguments(ref[3] if len(ref) > 3 and isinstance(ref[3], dict) else {}, where)
            refs.append(list(ref[:3]))
        return refs + [{"list": True}] if len(refs) > 1 else refs
    raise KerasConfigError(f"{where}: unreadable inbound node {node!r:.120}")


def _io_refs(value, where):
    """Keras' ``input_layers``/``output_layers``: one ``[name, i, j]`` or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(v, list) and len(v) == 3 and isinstance(v[0], str)
                                                 for v in value):
        return [list(v) for v in value] if len(value) > 1 else list(value[0])
    raise KerasConfigError(f"{where}: expected [layer, 0, 0] or a list of them, found {value!r:.120}")


def _sequential_layers(config: dict, specs: list) -> tuple[list, dict]:
    """A Keras Sequential's layers as nnscratch's, the input shape (an InputLayer's, the first layer's
    ``batch_input_shape`` in Keras 2, or ``build_input_shape``) given to the first layer."""
    layers, trainable = [], {}
    shape = _input_shape({"batch_shape": config.get("build_input_shape")}, "build_input_shape")
    for i, spec in enumerate(specs):
        spec_config = (spec.get("config") or {}) if isinstance(spec, dict) else {}
        if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
            _check_no_code(spec, f"layer {i}")
            shape = _input_shape(spec_config, f"layer {i} (InputLayer)") or shape
            continue
        nn_spec = layer_from_keras(spec, f"layer {i}")
        if not layers:
            shape = _input_shape(spec_config, f"layer {i}") or shape
            if shape is None:
                raise KerasConfigError("the Sequential model declares no input shape (it was never built); build "
                                       "it in Keras (model.build or an Input) before saving")
            nn_spec["config"]["input_shape"] = shape
        trainable[nn_spec["config"]["name"]] = spec_config.get("trainable", True) is not False
        layers.append(nn_spec)
    if not layers:
        raise KerasConfigError("the Sequential model has no layers besides its input")
    return layers, trainable


def _functional_layers(specs: list) -> tuple[list, dict]:
    """A Keras functional model's layers as nnscratch's graph specs, with their inbound calls."""
    layers, trainable = [], {}
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise KerasConfigError(f"layer {i} should be a dict, found {type(spec).__name__}")
        name = spec.get("name") or (spec.get("config") or {}).get("name")
        if spec.get("class_name") == "InputLayer":
            _check_no_code(spec, f"layer {i} {name!r}")
            shape = _input_shape(spec.get("config") or {}, f"layer {i} {name!r} (InputLayer)")
            if shape is None:
                raise KerasConfigError(f"input layer {name!r} declares no shape")
            nn_spec = {"class_name": "InputLayer", "config": {"shape": shape, "name": name}}
        else:
            nn_spec = layer_from_keras(spec, f"layer {i}")
            trainable[name] = (spec.get("config") or {}).get("trainable", True) is not False
        nodes = spec.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise KerasConfigError(f"layer {name!r}: inbound_nodes should be a list, found {nodes!r:.80}")
        nn_spec["name"] = name
        nn_spec["inbound_nodes"] = [_keras_refs(node, f"layer {name!r}") for node in nodes]
        layers.append(nn_spec)
    return layers, trainable


def from_keras(keras_config) -> tuple[dict, dict]:
    """An nnscratch model config (what :meth:`nnscratch.Model.from_config` takes) from a Keras model config.

    Args:
        keras_config: ``{"class_name": "Sequential" | "Functional" | "Model", "config": {...}}``, as in a Keras
            file's ``model_config`` attribute or ``config.json``.

    Returns:
        ``(config, trainable)``: ``{"name", "dtype", "layers": [...]}`` (a graph model's also
        ``input_layers``/``output_layers``), each layer keeping its Keras name; and ``{layer name: bool}``,
        Keras' ``trainable`` flag of every layer.

    Raises:
        KerasConfigError: not a model config, a layer or option nnscratch lacks, code or custom objects.
    """
    if not isinstance(keras_config, dict) or keras_config.get("class_name") not in _MODELS \
            or not isinstance(keras_config.get("config"), dict):
        found = keras_config.get("class_name") if isinstance(keras_config, dict) else type(keras_config).__name__
        raise KerasConfigError(f"expected a Keras model config {{'class_name': 'Sequential' or 'Functional', "
                               f"'config': {{...}}}}, found {found!r:.80}; nnscratch reads Sequential and "
                               "functional models (subclassed models have no config to read)")
    _check_no_code({k: v for k, v in keras_config.items() if k != "config"}, "the model")
    config = keras_config["config"]
    specs = config.get("layers")
    if not isinstance(specs, list) or not specs:
        raise KerasConfigError(f"the model config has no 'layers' list (found {type(specs).__name__})")
    out = {"name": config.get("name") if isinstance(config.get("name"), str) else "model", "dtype": "float32"}
    if keras_config["class_name"] == "Sequential":
        out["layers"], trainable = _sequential_layers(config, specs)
    else:
        out["layers"], trainable = _functional_layers(specs)
        out["input_layers"] = _io_refs(config.get("input_layers"), "input_layers")
        out["output_layers"] = _io_refs(config.get("output_layers"), "output_layers")
    return out, trainable


def weight_keys(nn_class: str, nn_config: dict) -> list[tuple[str, str]]:
    """The ``(store, key)`` of an nnscratch layer's arrays in the order Keras lists that layer's weights.

    ``store`` is ``"params"`` (trainable) or ``"state"`` (BatchNormalization's moving statistics).

    Example:
        >>> weight_keys("BatchNormalization", {"center": False})
        [('params', 'gamma'), ('state', 'moving_mean'), ('state', 'moving_variance')]
    """
    if nn_class == "BatchNormalization":
        keys = [("params", "gamma")] if nn_config.get("scale", True) else []
        keys += [("params", "beta")] if nn_config.get("center", True) else []
        return keys + [("state", "moving_mean"), ("state", "moving_variance")]
    if nn_class == "LayerNormalization":
        return ([("params", "gamma")] if nn_config.get("scale", True) else []) \
            + ([("params", "beta")] if nn_config.get("center", True) else [])
    rule = next((r for r in KERAS_TO_NNSCRATCH.values() if r["class"] == nn_class), None)
    keys = list(rule["weights"]) if rule else []
    if not nn_config.get("use_bias", True):
        keys = [k for k in keys if k[1] != "bias"]
    return keys

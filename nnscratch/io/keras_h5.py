"""Keras' legacy HDF5 files (``model.save("m.h5")`` of Keras 2.x and 3.x) read into, and written from, nnscratch.

Layout (Keras' ``legacy_h5_format``): root attributes ``model_config`` and ``training_config`` (JSON text),
``keras_version`` and ``backend``; the weights under ``model_weights/<layer>/``, whose attribute
``weight_names`` lists the layer's datasets in Keras' order (``conv2d/kernel:0`` in Keras 2, a path such as
``sequential/conv2d/kernel`` in Keras 3), ``model_weights`` listing the layers in ``layer_names``. A name list
longer than an HDF5 object header holds is split into ``layer_names0``, ``layer_names1``... A Keras 2
``save_weights`` file has the same groups at its root.

Reading uses nnscratch's own protections (:mod:`nnscratch.io._h5`): links are refused without being followed,
storage that reads other files or inflates is refused, each weight's declared shape is checked before its data
is read, and a configuration asking for absurd sizes fails when its layer declares them. Keras itself is never
imported, and nothing the file names is executed (:mod:`nnscratch.io.keras_config` refuses Lambda layers and
custom objects).

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import nnscratch
    >>> from nnscratch.layers import Dense
    >>> model = nnscratch.Model([Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    >>> model.finalize()
    >>> path = os.path.join(tempfile.mkdtemp(), "keras.h5")
    >>> save_keras_h5(model, path)
    >>> again = load_keras_h5(path)
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.array_equal(again.predict(x), model.predict(x)))
    True
"""
from __future__ import annotations

import json
import warnings

import h5py
import numpy as np

from .._version import __version__
from ..engine.distributed import is_writer
from ..layers.base import LAYERS, SizeLimitError, WeightShapeError
from ..model import Model
from .atomic import atomic_write
from .hdf5 import ModelFileError, _child, _open, _reading, _require_savable, _user_stacklevel, _warn_non_finite
from ._h5 import read_array
from .keras_config import KerasConfigError, from_keras, weight_keys
from .keras_config_writer import keras_layer_order, to_keras
from .keras_training import KERAS_LOSS_KEY, training_from_keras, training_to_keras

__all__ = ["is_keras_h5", "load_keras_h5", "load_keras_h5_weights", "save_keras_h5", "KERAS_FORMAT_VERSION"]

#: the ``keras_version`` written: the configuration layout is Keras 3's (Keras 2 cannot read it)
KERAS_FORMAT_VERSION = "3.0.0"
#: Keras' ``HDF5_OBJECT_HEADER_LIMIT``: a name list whose bytes exceed this is split over several attributes
HEADER_LIMIT = 64512
#: a name list split into more attributes than this is refused (a layer_names of 100 000 parts is no model)
MAX_NAME_PARTS = 10000


def is_keras_h5(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a Keras legacy model or weights file (and not an nnscratch file)."""
    attrs = f.attrs
    return "format" not in attrs and ("model_config" in attrs or "keras_version" in attrs
                                      or "layer_names" in attrs or "layer_names0" in attrs)


# -- attributes ---------------------------------------------------------------------------------------------
def _text(value, what: str) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} should be text, found {type(value).__name__}")


def read_text_attr(path, obj, name: str) -> str | None:
    """A string attribute (Keras writes ``str`` or UTF-8 ``bytes``), None when absent."""
    if name not in obj.attrs:
        return None
    with _reading(path, f"attribute {name!r} of {obj.name}"):
        return _text(obj.attrs[name], f"attribute {name!r} of {obj.name}")


def read_json_attr(path, obj, name: str):
    """A JSON attribute (``model_config``, ``training_config``), None when absent."""
    text = read_text_attr(path, obj, name)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelFileError(path, f"attribute {name!r} should hold JSON text, but it does not parse ({e}); the file "
                                   "is damaged or was edited") from e


def read_name_list(path, obj, name: str) -> list[str]:
    """A list of names stored as ``name`` or split into ``name0``, ``name1``... (Keras' long-attribute scheme)."""
    parts = [name] if name in obj.attrs else []
    while not parts or parts[0] != name:
        part = f"{name}{len(parts)}"
        if part not in obj.attrs:
            break
        if len(parts) >= MAX_NAME_PARTS:
            raise ModelFileError(path, f"attribute {name!r} of {obj.name} is split into more than {MAX_NAME_PARTS} "
                                       "parts; no Keras file is that large, it was edited")
        parts.append(part)
    names = []
    for part in parts:
        with _reading(path, f"attribute {part!r} of {obj.name}"):
            value = obj.attrs[part]
            values = value.reshape(-1).tolist() if isinstance(value, np.ndarray) else [value]
            if isinstance(value, np.ndarray) and value.size == 0:
                values = []
            names += [_text(v, f"each entry of attribute {part!r} of {obj.name}") for v in values]
    return names


def _write_name_list(obj, name: str, names: list[str]) -> None:
    """Keras' ``save_attributes_to_hdf5_group``: split into ``name0, name1...`` past HEADER_LIMIT bytes."""
    data = np.asarray([n.encode("utf-8") for n in names])
    chunks = 1
    while any(part.nbytes > HEADER_LIMIT for part in np.array_split(data, chunks)):
        chunks += 1
    if chunks == 1:
        obj.attrs[name] = data
    else:
        for i, part in enumerate(np.array_split(data, chunks)):
            obj.attrs[f"{name}{i}"] = part


# -- the weights ----------------------------------------------------------------------------------------------
def _dataset_at(path, group, name: str) -> h5py.Dataset:
    """The dataset at ``name`` (a relative path), every step checked to be a hard link to the right kind."""
    parts = [p for p in name.split("/") if p]
    if not parts:
        raise ModelFileError(path, f"{group.name}: empty weight name {name!r}")
    for part in parts[:-1]:
        group = _child(path, group, part)
    return _child(path, group, parts[-1], h5py.Dataset)


def legacy_weights(path, group) -> dict[str, list[tuple[str, h5py.Dataset]]]:
    """``{layer name: [(weight name, dataset)]}`` of a legacy weights group, declarations only (no data read)."""
    layers = {}
    with _reading(path, f"the weights under {group.name}"):
        for layer_name in read_name_list(path, group, "layer_names"):
            if layer_name not in group:
                raise ModelFileError(path, f"layer {layer_name!r} is listed in layer_names of {group.name} but has no "
                                           "group; the file is incomplete or was edited")
            layer_group = _child(path, group, layer_name)
            names = read_name_list(path, layer_group, "weight_names")
            layers[layer_name] = [(n, _dataset_at(path, layer_group, n)) for n in names]
        top = "top_level_model_weights"
        if top in group and read_name_list(path, _child(path, group, top), "weight_names"):
            raise ModelFileError(path, f"{group.name}/{top} holds weights of the model itself, outside its layers "
                                       "(a subclassed Keras model's own variables); nnscratch models keep every "
                                       "weight in a layer")
    return layers


def _keys_of(layer) -> list[tuple[str, str]]:
    return weight_keys(LAYERS.name_of(type(layer)), layer.get_config())


def expect_shapes(path, model, weights: dict) -> None:
    """Tells each layer the shapes the file holds for it, so a configuration asking for other sizes is refused
    when the layer declares them, before anything is allocated (see :meth:`Layer.add_weight`)."""
    for layer in model.layers:
        keys = _keys_of(layer)
        found = weights.get(layer.name, [])
        if len(found) == len(keys):
            layer._expected_shapes = {key: tuple(dataset.shape) for (_, key), (_, dataset) in zip(keys, found)}


def assign_weights(path, model, weights: dict, target: str) -> None:
    """Checks every weight of the file against ``model`` (names, counts, shapes), reads them, then assigns them.

    Nothing is assigned unless everything fits, so on an error the model is unchanged.
    """
    assignments = []
    expected = {layer.name: layer for layer in model.layers if _keys_of(layer)}
    unexpected = sorted(name for name, found in weights.items() if found and name not in expected)
    missing = sorted(name for name in expected if not weights.get(name))
    if missing or unexpected:
        raise ModelFileError(path, f"the layers with weights do not match {target} (layers are matched by name): "
                                   f"the file lacks weights for {missing or 'nothing'} and has weights for "
                                   f"{unexpected or 'nothing'} that {target} lacks")
    for name, layer in expected.items():
        keys, found = _keys_of(layer), weights[name]
        if len(keys) != len(found):
            raise ModelFileError(path, f"layer {layer.describe()}: the file has {len(found)} weight(s) "
                                       f"{[n for n, _ in found]} but {target} has {len(keys)} "
                                       f"{[k for _, k in keys]}")
        for (store, key), (weight_name, dataset) in zip(keys, found):
            array = getattr(layer, store)[key]
            with _reading(path, f"weight {weight_name!r} of layer {name!r}"):
                if tuple(dataset.shape) != array.shape:
                    raise ModelFileError(path, f"layer {layer.describe()}: weight {weight_name!r} has shape "
                                               f"{tuple(dataset.shape)} in the file but {key!r} has {array.shape} in "
                                               f"{target}")
                if dataset.dtype.kind != "f":
                    raise ModelFileError(path, f"layer {layer.describe()}: weight {weight_name!r} is "
                                               f"{dataset.dtype}, expected floating point")
                value = read_array(dataset)
            _warn_non_finite(path, f"layer {layer.describe()}: weight {weight_name!r}", value)
            assignments.append((array, value))
    for array, value in assignments:
        array[...] = value


# -- building -------------------------------------------------------------------------------------------------
def build_model(path, keras_config, weights: dict, training=None):
    """A finalized nnscratch model from a Keras model config, its layers told the file's weight shapes.

    ``training`` (Keras' training configuration) compiles the model when nnscratch has the equivalent loss
    and optimizer; otherwise a warning says how to compile it.
    """
    try:
        config, trainable = from_keras(keras_config)
    except KerasConfigError as e:
        raise ModelFileError(path, str(e)) from e
    except RecursionError as e:
        raise ModelFileError(path, "the model configuration is nested too deeply to be a Keras model") from e
    compiled, why = training_from_keras(training) if training is not None else (None, None)
    try:
        model = Model.from_config(config, compiled)
    except (TypeError, ValueError, KeyError) as e:
        raise ModelFileError(path, f"the Keras model cannot be rebuilt in nnscratch: {e}") from e
    expect_shapes(path, model, weights)
    try:
        model.finalize()
    except WeightShapeError as e:
        raise ModelFileError(path, f"layer {e.layer}: weight {e.name!r} has shape {e.in_file} in the file but "
                                   f"{e.declared} in the model's configuration; the file was edited or is "
                                   "damaged") from e
    except (SizeLimitError, ValueError) as e:
        raise ModelFileError(path, f"the Keras model does not build in nnscratch: {e}") from e
    finally:
        for layer in model.layers:
            layer._expected_shapes = None
    for layer in model.layers:
        layer.trainable = trainable.get(layer.name, True)
    if compiled is not None:
        model.metadata[KERAS_LOSS_KEY] = compiled["loss"]  # "sparse_" or not, for writing it back
    if why is not None:
        warnings.warn(f"{path}: the model is loaded uncompiled because {why}; before fit, call "
                      "model.set(loss=..., optimizer=...) and model.finalize() (e.g. optimizer="
                      "nnscratch.optimizers.Adam(convention='keras') for Keras' update rule)", RuntimeWarning,
                      stacklevel=_user_stacklevel())
    return model


def load_keras_h5(path):
    """Loads a Keras legacy HDF5 model (``model.save("m.h5")`` of Keras 2 or 3) as a finalized nnscratch model.

    Weights, BatchNormalization's moving statistics and each layer's ``trainable`` flag are carried over; the
    loss and optimizer too when nnscratch has them (Keras' optimizer update rule, ``convention="keras"``).

    Raises:
        ModelFileError: no model in the file, a layer or option nnscratch lacks (named), code or custom objects,
            weights missing, extra or of the wrong shape, or a damaged file.
    """
    with _open(path) as f:
        keras_config = read_json_attr(path, f, "model_config")
        if keras_config is None:
            raise ModelFileError(path, "a Keras weights file (no model_config attribute): build the same model in "
                                       "nnscratch, finalize it and call model.load_weights(path)")
        training = read_json_attr(path, f, "training_config")
        weights = legacy_weights(path, _child(path, f, "model_weights"))
        model = build_model(path, keras_config, weights, training)
        assign_weights(path, model, weights, "the model's configuration")
        model.metadata["converted_from"] = {"format": "keras_h5",
                                            "keras_version": read_text_attr(path, f, "keras_version"),
                                            "backend": read_text_attr(path, f, "backend")}
    return model


def load_keras_h5_weights(model, path) -> None:
    """Loads the weights of a Keras legacy HDF5 file (model or ``save_weights``) into a matching nnscratch model.

    Layers are matched by name, weights within a layer in Keras' order, every shape checked before anything is
    assigned.
    """
    _require_savable(model, "model.load_weights()")
    with _open(path) as f:
        group = _child(path, f, "model_weights") if "model_weights" in f else f
        weights = legacy_weights(path, group)
        assign_weights(path, model, weights, "this model")


# -- writing --------------------------------------------------------------------------------------------------
def output_shapes(model) -> dict:
    """``{layer name: output sample shape}`` of a finalized graph model (Keras records them in its config)."""
    shapes = {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            shapes[layer.name] = tuple(layer.get_config().get("shape") or ())
        else:
            shapes[layer.name] = tuple(layer.compute_output_shape(layer.built_input_shape))
    return shapes


def keras_model_config(model) -> dict:
    """The Keras 3 model config of a finalized nnscratch model (see :func:`~nnscratch.io.keras_config_writer.to_keras`)."""
    return to_keras(model.get_config(), {layer.name: layer.trainable for layer in model.layers},
                    output_shapes(model) if model.is_graph else {}, model.input_shape if not model.is_graph else None)


def keras_weights(model) -> list[tuple[object, list[tuple[str, np.ndarray]]]]:
    """``[(layer, [(key, array)])]`` in Keras' layer order (see
    :func:`~nnscratch.io.keras_config_writer.keras_layer_order`) and weight order."""
    layers = model.layers
    if model.is_graph:
        by_name = {layer.name: layer for layer in layers}
        layers = [by_name[name] for name in keras_layer_order(model.get_config())]
    return [(layer, [(key, getattr(layer, store)[key]) for store, key in _keys_of(layer)]) for layer in layers]


def keras_training(model, path) -> dict | None:
    """The model's loss, optimizer and accuracy as Keras' compile arguments
    (:func:`~nnscratch.io.keras_training.training_to_keras`), or None with a warning saying why Keras will load
    the file uncompiled."""
    training, why = training_to_keras(model)
    if why is not None:
        warnings.warn(f"{path}: written without a training configuration because {why}; Keras loads it "
                      "uncompiled (compile it there before fit)", UserWarning, stacklevel=_user_stacklevel())
    return training


def save_keras_h5(model, path) -> None:
    """Writes a finalized model as a Keras legacy HDF5 file that ``keras.models.load_model`` opens, atomically.

    The architecture is written as Keras 3 describes it (``keras_version`` ``3.0.0``; Keras 2 cannot read it),
    the weights in float32 under ``model_weights``, and the loss, optimizer and accuracy as
    ``training_config`` when Keras has their equivalents (Keras then loads the model compiled; a warning says
    when it has not, see :func:`keras_training`). The optimizer's state is not written: training in Keras
    starts with fresh moments. Root attribute ``nnscratch_version`` names the writer.

    Raises:
        RuntimeError: the model is not finalized.
        ValueError: a layer or option Keras lacks (named).
    """
    _require_savable(model, "model.save(format='keras_h5')")
    config_json = json.dumps(keras_model_config(model))
    training = keras_training(model, path)
    if training is not None:
        training = {**training, "optimizer_config": training.pop("optimizer")}  # the legacy file's spelling
    if not is_writer():
        return
    layers = keras_weights(model)
    names = [layer.name for layer, _ in layers]  # a graph's InputLayers too, as Keras lists a functional model's
    with atomic_write(path, defer_sigint=True) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["backend"] = "numpy"
            f.attrs["keras_version"] = KERAS_FORMAT_VERSION
            f.attrs["model_config"] = config_json
            if training is not None:
                f.attrs["training_config"] = json.dumps(training)
            f.attrs["nnscratch_version"] = __version__
            group = f.create_group("model_weights")
            _write_name_list(group, "layer_names", names)
            group.attrs["backend"] = "numpy"
            group.attrs["keras_version"] = KERAS_FORMAT_VERSION
            for layer, arrays in sorted(layers, key=lambda item: item[0].name):
                layer_group = group.create_group(layer.name)
                weight_names = [f"{layer.name}/{key}" for key, _ in arrays]
                _write_name_list(layer_group, "weight_names", weight_names)
                for weight_name, (_, value) in zip(weight_names, arrays):
                    layer_group.create_dataset(weight_name, data=np.asarray(value, np.float32))
            _write_name_list(group.create_group("top_level_model_weights"), "weight_names", [])

"""Keras 3's ``.keras`` files (a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``) and its
``.weights.h5`` files, read into and written from nnscratch.

``model.weights.h5`` keeps each layer's weights under ``layers/<name>/vars/0, 1, ...`` where ``<name>`` is the
layer's class in snake case, numbered ``_1``, ``_2``... among layers of the same class in the model's layer
order (``conv2d``, ``conv2d_1``); the ``vars`` group's attribute ``name`` holds the layer's name. A Sequential
model's layers exclude its InputLayer, a functional model's include them.

Before anything is read, each member's declared size is checked against a limit and against what its
compressed size can hold (a zip bomb is refused on its header), encrypted members and unexpected weight
formats are refused, and the weights file is then read with the checks of :mod:`nnscratch.io.keras_h5`.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import nnscratch
    >>> from nnscratch.layers import Dense
    >>> model = nnscratch.Model([Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    >>> model.finalize()
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> save_keras_zip(model, path)
    >>> again = load_keras_zip(path)
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.array_equal(again.predict(x), model.predict(x)))
    True
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import tempfile
import zipfile

import h5py
import numpy as np

from .._version import __version__
from ..engine.distributed import is_writer
from ..layers.base import LAYERS, MAX_WEIGHT_ELEMENTS
from .atomic import atomic_write
from .hdf5 import ModelFileError, _child, _open, _reading, _require_savable
from .keras_config import KerasConfigError, snake_case
from .keras_config_writer import keras_class_of
from .keras_h5 import (KERAS_FORMAT_VERSION, assign_weights, build_model, keras_model_config, keras_training,
                       keras_weights)

__all__ = ["load_keras_zip", "load_keras_zip_weights", "load_keras_vars_weights", "save_keras_zip", "is_keras_vars_h5", "MAX_CONFIG_BYTES",
           "MAX_WEIGHTS_BYTES", "MAX_MEMBERS"]

#: the largest ``config.json``/``metadata.json`` read (a model description of 64 MiB is no real model)
MAX_CONFIG_BYTES = 64 << 20
#: the largest ``model.weights.h5`` read: MAX_WEIGHT_ELEMENTS float32 values and room for the HDF5 structure
MAX_WEIGHTS_BYTES = 4 * MAX_WEIGHT_ELEMENTS + (64 << 20)
#: the most members a ``.keras`` file may have (Keras writes three, plus assets)
MAX_MEMBERS = 10000
#: deflate cannot shrink data by more than about 1032:1; a header claiming more lies about its size
MAX_DEFLATE_RATIO = 1032

_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


def is_keras_vars_h5(f: h5py.File) -> bool:
    """Whether an open HDF5 file has Keras 3's ``layers/<name>/vars`` layout (``save_weights`` or a ``.keras``'s
    weights)."""
    return "format" not in f.attrs and "layers" in f and "layer_names" not in f.attrs


def _member(path, archive: zipfile.ZipFile, name: str, limit: int) -> zipfile.ZipInfo:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError(path, f"the .keras archive has no {name!r} (members: {archive.namelist()[:20]}); it is "
                                   "not a Keras 3 model file or is incomplete") from None
    if info.flag_bits & 0x1:
        raise ModelFileError(path, f"{name} is encrypted; Keras never encrypts its files")
    if info.file_size > limit:
        raise ModelFileError(path, f"{name} declares {info.file_size:,} bytes, more than the limit of {limit:,}; "
                                   "refusing to read it (raise nnscratch.io.keras_zip's limits if the model is "
                                   "really that large)")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
        raise ModelFileError(path, f"{name} declares {info.file_size:,} bytes from {info.compress_size:,} compressed "
                                   f"bytes, a ratio above {MAX_DEFLATE_RATIO}:1 that no real file reaches (a zip "
                                   "bomb); refusing to read it")
    return info


def _read_json(path, archive, name: str):
    _member(path, archive, name, MAX_CONFIG_BYTES)
    with _reading(path, name):
        data = archive.read(name)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(path, f"{name} is not JSON text ({type(e).__name__}: {str(e)[:100]}); the file is "
                                   "damaged or was edited") from e


def _open_archive(path) -> zipfile.ZipFile:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelFileError(path, f"not a readable .keras (zip) file ({e}); it is truncated or damaged, copy it "
                                   "again from its source") from e
    if len(archive.infolist()) > MAX_MEMBERS:
        archive.close()
        raise ModelFileError(path, f"the archive has {len(archive.infolist())} members, more than {MAX_MEMBERS}; "
                                   "not a Keras model file")
    return archive


def _keras_layer_order(keras_config) -> list[tuple[str, str]]:
    """``[(Keras class, layer name)]`` in the order Keras 3 saves layers (Sequential: without its InputLayer)."""
    specs = keras_config["config"]["layers"]
    sequential = keras_config.get("class_name") == "Sequential"
    return [(s["class_name"], s.get("name") or s["config"].get("name")) for s in specs
            if not (sequential and s["class_name"] == "InputLayer")]


def vars_weights(path, f: h5py.File, order: list[tuple[str, str]]) -> dict:
    """``{layer name: [(weight path, dataset)]}`` of a ``layers/<name>/vars`` file, declarations only."""
    weights, used = {}, {}
    with _reading(path, "the weights (model.weights.h5)"):
        layers = _child(path, f, "layers")
        for keras_class, name in order:
            base = snake_case(keras_class)
            used[base] = used.get(base, -1) + 1
            link = base if used[base] == 0 else f"{base}_{used[base]}"
            if link not in layers:
                weights[name] = []
                continue
            group = _child(path, _child(path, layers, link), "vars")
            saved = group.attrs.get("name")
            saved = saved.decode("utf-8") if isinstance(saved, bytes) else saved
            if isinstance(saved, str) and saved != name and len(group):  # weightless layers' names do not matter
                raise ModelFileError(path, f"layers/{link} holds the weights of layer {saved!r}, but the model's "
                                           f"layer in that place is {name!r}; the weights belong to another model")
            count = len(group)
            if sorted(group) != sorted(str(i) for i in range(count)):
                raise ModelFileError(path, f"layers/{link}/vars should hold datasets 0..{count - 1}, found "
                                           f"{sorted(group)[:10]}")
            weights[name] = [(f"layers/{link}/vars/{i}", _child(path, group, str(i), h5py.Dataset))
                             for i in range(count)]
    return weights


def load_keras_zip(path):
    """Loads a Keras 3 ``.keras`` model as a finalized nnscratch model (see
    :func:`~nnscratch.io.keras_h5.load_keras_h5` for what is carried over).

    Raises:
        ModelFileError: not a zip, a member missing, too large or a zip bomb, config.json not JSON, a layer or
            option nnscratch lacks, code or custom objects, weights missing or of the wrong shape.
    """
    with _open_archive(path) as archive:
        keras_config = _read_json(path, archive, _CONFIG)
        metadata = _read_json(path, archive, _METADATA) if _METADATA in archive.namelist() else None
        if any(n.startswith("assets/") for n in archive.namelist()):
            raise ModelFileError(path, "the model has assets (files of layers such as text vectorizers); nnscratch "
                                       "has no such layers")
        if _WEIGHTS not in archive.namelist() and any(n.endswith(".npz") or n.endswith(".json") and "shard" in n
                                                      for n in archive.namelist()):
            raise ModelFileError(path, "the weights are stored as .npz or in shards; nnscratch reads "
                                       "model.weights.h5 only (save the model with Keras' default options)")
        info = _member(path, archive, _WEIGHTS, MAX_WEIGHTS_BYTES)
        if not isinstance(keras_config, dict) or not isinstance(keras_config.get("config"), dict) \
                or not isinstance(keras_config["config"].get("layers"), list):
            raise ModelFileError(path, f"{_CONFIG} should describe a Sequential or functional model, found "
                                       f"{str(keras_config)[:100]}")
        try:
            order = _keras_layer_order(keras_config)
        except (KeyError, TypeError, AttributeError) as e:
            raise ModelFileError(path, f"{_CONFIG} lists layers without class_name or name ({e})") from e
        with _weights_file(path, archive, info) as f:
            weights = vars_weights(path, f, order)
            model = build_model(path, keras_config, weights, keras_config.get("compile_config"))
            assign_weights(path, model, weights, "the model's configuration")
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        model.metadata["converted_from"] = {"format": "keras", "keras_version": version if isinstance(version, str)
                                            else None}
    return model


@contextlib.contextmanager
def _weights_file(path, archive, info):
    """``model.weights.h5`` copied out of the archive (its size was checked) and opened read-only."""
    with tempfile.TemporaryDirectory(prefix="nnscratch-keras-") as folder:
        weights_path = os.path.join(folder, _WEIGHTS)
        with _reading(path, _WEIGHTS), archive.open(info) as source, open(weights_path, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)  # zipfile stops at the declared size, checked before
        try:
            f = h5py.File(weights_path, "r")
        except OSError as e:
            raise ModelFileError(path, f"{_WEIGHTS} is not a readable HDF5 file ({e}); the file is damaged") from e
        with f:
            yield f


def _model_order(path, model) -> list[tuple[str, str]]:
    """``[(Keras class, layer name)]`` of an nnscratch model, in the order Keras 3 saves its layers."""
    try:
        return [(keras_class_of(LAYERS.name_of(type(layer))), layer.name) for layer, _ in keras_weights(model)]
    except KerasConfigError as e:
        raise ModelFileError(path, str(e)) from e


def load_keras_zip_weights(model, path) -> None:
    """Loads the weights of a ``.keras`` file into a matching nnscratch model (layers matched by place and name)."""
    _require_savable(model, "model.load_weights()")
    order = _model_order(path, model)
    with _open_archive(path) as archive:
        info = _member(path, archive, _WEIGHTS, MAX_WEIGHTS_BYTES)
        with _weights_file(path, archive, info) as f:
            assign_weights(path, model, vars_weights(path, f, order), "this model")


def load_keras_vars_weights(model, path) -> None:
    """Loads a Keras 3 ``.weights.h5`` file (``model.save_weights``) into a matching nnscratch model."""
    _require_savable(model, "model.load_weights()")
    order = _model_order(path, model)
    with _open(path) as f:
        weights = vars_weights(path, f, order)
        assign_weights(path, model, weights, "this model")


def _serialized(keras_config) -> dict:
    """The model config as Keras 3's ``serialize_keras_object`` spells it in config.json (with modules)."""
    config = dict(keras_config["config"])
    config["layers"] = [{"module": "keras.layers", **layer, "registered_name": None} for layer in config["layers"]]
    module = "keras" if keras_config["class_name"] == "Sequential" else "keras.src.models.functional"
    return {"module": module, "class_name": keras_config["class_name"], "config": config, "registered_name": None}


def save_keras_zip(model, path) -> None:
    """Writes a finalized model as a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens, atomically.

    Holds the architecture, the weights in float32, and the loss, optimizer and accuracy as ``compile_config``
    when Keras has their equivalents (Keras then loads the model compiled; a warning says when it has not); the
    optimizer's state is not written. ``metadata.json`` names nnscratch as the writer.

    Raises:
        RuntimeError: the model is not finalized.
        ValueError: a layer or option Keras lacks (named).
    """
    _require_savable(model, "model.save('*.keras')")
    keras_config = keras_model_config(model)
    serialized = _serialized(keras_config)
    training = keras_training(model, path)
    if training is not None:
        optimizer = training.pop("optimizer")
        serialized["compile_config"] = {"optimizer": {"module": "keras.optimizers", **optimizer,
                                                      "registered_name": None}, **training}
    config_json = json.dumps(serialized)
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "nnscratch_version": __version__,
                "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S")}
    if not is_writer():
        return
    arrays = dict((layer.name, values) for layer, values in keras_weights(model))
    order = _keras_layer_order(keras_config)
    with tempfile.TemporaryDirectory(prefix="nnscratch-keras-") as folder:
        weights_path = os.path.join(folder, _WEIGHTS)
        with h5py.File(weights_path, "w") as f:
            layers, used = f.create_group("layers"), {}
            for keras_class, name in order:
                base = snake_case(keras_class)
                used[base] = used.get(base, -1) + 1
                group = layers.create_group(base if used[base] == 0 else f"{base}_{used[base]}").create_group("vars")
                group.attrs["name"] = name
                for i, (_, value) in enumerate(arrays.get(name, [])):
                    group.create_dataset(str(i), data=np.asarray(value, np.float32))
            f.create_group("vars").attrs["name"] = model.name
        with atomic_write(path, defer_sigint=True) as tmp:
            with zipfile.ZipFile(tmp, "w") as archive:
                archive.writestr(_METADATA, json.dumps(metadata))
                archive.writestr(_CONFIG, config_json)
                archive.write(weights_path, _WEIGHTS)

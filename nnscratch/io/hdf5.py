"""HDF5 model files: a whole model that resumes training exactly, or its weights only.

:func:`save_model` writes the architecture, the training configuration (loss, optimizer with its
schedule, accuracy), every parameter and constant, the optimizer's state, the model's seed, the number
of epochs trained and the training history. :func:`load_model` rebuilds the model from those, so
training 2 epochs, saving, loading and training 1 more gives the same weights, bit for bit, as training
3 epochs in one go. The layout is documented in ``docs/file-format.md``.

Files are safe to open from anyone: they hold numeric arrays and JSON text only (no pickle), and
loading builds only classes found in nnscratch's registries. Every byte is checksummed (see
:mod:`nnscratch.io._h5`), so a corrupted file fails to load instead of loading different numbers.
Saving is atomic (see :mod:`nnscratch.io.atomic`): a crash mid-save leaves the previous file intact.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import nnscratch
    >>> from nnscratch.layers import Dense, Softmax
    >>> model = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()], seed=0)
    >>> model.set(loss="categorical_crossentropy", optimizer="adam")
    >>> model.finalize()
    >>> path = os.path.join(tempfile.mkdtemp(), "model.h5")
    >>> model.save(path)
    >>> again = nnscratch.load_model(path)
    >>> bool(np.array_equal(again.layers[0].params["kernel"], model.layers[0].params["kernel"]))
    True
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings

import h5py
import numpy as np

from .._version import __version__
from ..callbacks.base import History
from ..engine.distributed import is_writer
from ..layers.base import LAYERS, WeightShapeError
from ..model import Model
from ..optimizers import OPTIMIZERS
from ._h5 import (LIBVER, FileContentError, check_link, from_h5_name, get_bool, get_float, get_int, get_text, h5_name,
                  read_array, read_json, set_text, to_json, write_array, write_json)
from .atomic import atomic_write

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "save_model", "load_model", "save_weights",
           "load_weights", "read_header"]

#: the ``format`` attribute of every nnscratch file
FORMAT_NAME = "nnscratch"
#: the layout version written; files with a higher version are refused (a newer nnscratch wrote them).
#: 2: graph models (each layer's inbound calls), non-trainable state in /state, sublayers' arrays by path;
#: 1: sequential models with /constants, still read.
FORMAT_VERSION = 2

_CUSTOM_LAYER_HINT = ("A custom layer is registered by defining its class (a subclass of nnscratch.layers.Layer): "
                      "import or define it before calling load_model.")


class ModelFileError(ValueError):
    """A model or weights file that cannot be loaded: corrupted, truncated, not an nnscratch file, written
    by a newer nnscratch, or whose contents do not fit the architecture.

    Attributes:
        path: the file.
        reason: the message without the path.
    """

    def __init__(self, path, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across processes despite the two-argument constructor
        return type(self), (self.path, self.reason)


# -- writing --------------------------------------------------------------------------------------------
def _require_savable(model, what: str) -> None:
    if not getattr(model, "finalized", False):
        raise RuntimeError(f"call model.finalize() before {what}: the weights exist only once the layers are built "
                           "(finalize again after add/set changes; built layers keep their weights)")


def _encode(path, what: str, value) -> str:
    try:
        return to_json(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"cannot save {os.fspath(path)!r}: the {what} is not plain JSON ({e}); keep it to numbers, "
                        "strings, booleans, None, lists and dicts") from e


def _write_header(f: h5py.File, contents: str) -> None:
    set_text(f, "format", FORMAT_NAME)
    f.attrs["format_version"] = np.int64(FORMAT_VERSION)
    set_text(f, "nnscratch_version", __version__)
    set_text(f, "contents", contents)


def _arrays(layer, store: str) -> list[tuple[str, np.ndarray]]:
    """``[(key, array)]`` of a layer's ``params`` or ``state``, its sublayers' under their path (``conv/kernel``)."""
    return [(f"{path}{key}", value) for path, sub in layer.walk() for key, value in getattr(sub, store).items()]


def _write_layer_arrays(f: h5py.File, model) -> None:
    weights = f.create_group("weights", track_order=True)
    state = f.create_group("state", track_order=True)
    for layer in model.layers:
        group = weights.create_group(h5_name(layer.name), track_order=True)
        set_text(group, "class_name", LAYERS.name_of(type(layer)))
        group.attrs["trainable"] = np.bool_(layer.trainable)
        for key, value in _arrays(layer, "params"):
            write_array(group, h5_name(key), value)
        arrays = _arrays(layer, "state")
        if arrays:
            group = state.create_group(h5_name(layer.name), track_order=True)
            for key, value in arrays:
                write_array(group, h5_name(key), value)


def _write_optimizer(f: h5py.File, model, extra_json: str | None) -> None:
    optimizer = model.optimizer
    state = optimizer.get_state()
    group = f.create_group("optimizer", track_order=True)
    set_text(group, "class_name", OPTIMIZERS.name_of(type(optimizer)))
    group.attrs["iterations"] = np.int64(state["iterations"])
    group.attrs["lr_multiplier"] = np.float64(state["lr_multiplier"])
    if extra_json is not None:
        write_json(group, "extra_state", extra_json)
    slots = group.create_group("slots", track_order=True)
    all_slots = state["slots"]
    # Walk the model, not the slot dict: the file then names every slot by layer and parameter, and
    # slots of parameters the model no longer has (a layer list edited by hand) cannot affect training.
    for layer in model.layers:
        layer_group = None
        for key, _ in _arrays(layer, "params"):
            param_slots = all_slots.get(f"{layer.name}/{key}")
            if param_slots is None:
                continue
            if layer_group is None:
                layer_group = slots.create_group(h5_name(layer.name), track_order=True)
            param_group = layer_group.create_group(h5_name(key), track_order=True)
            for slot, value in param_slots.items():
                write_array(param_group, h5_name(slot), value)


def _history_document(history) -> dict:
    doc = {"history": history.history, "epoch": history.epoch, "events": history.events}
    meta = getattr(history, "meta", None)
    if meta:
        doc["meta"] = meta
    return doc


def save_model(model, path, *, history=None) -> None:
    """Saves everything needed to resume training exactly (and ``model.metadata``), atomically.

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        path: destination file (str or ``os.PathLike``), conventionally ``*.h5``; its folder must exist.
            An existing file is replaced only once the new one is complete.
        history: the :class:`~nnscratch.callbacks.History` to record instead of ``model.history``,
            default None. :class:`~nnscratch.io.checkpoint.ModelCheckpoint` passes one that includes the
            epoch being finished.

    Raises:
        RuntimeError: the model is not finalized.
        TypeError: a config or the history holds something that is not plain JSON.
        FileNotFoundError: the folder does not exist.

    Example:
        >>> # model.save("lenet5.h5"); model = nnscratch.load_model("lenet5.h5")
    """
    _require_savable(model, "model.save()")
    if model.optimizer is None:
        raise RuntimeError("the model has no optimizer; call model.set(optimizer=...) and model.finalize() first")
    # Encode every JSON document before touching the disk: a bad value fails fast and writes nothing.
    config_json = _encode(path, "architecture (model.get_config())", model.get_config())
    training_json = _encode(path, "training configuration (model.get_training_config())",
                            model.get_training_config())
    history_json = _encode(path, "training history", _history_document(model.history if history is None else history))
    metadata_json = _encode(path, "metadata (model.metadata)", dict(getattr(model, "metadata", None) or {}))
    extra = {k: v for k, v in model.optimizer.get_state().items() if k not in ("iterations", "lr_multiplier", "slots")}
    extra_json = _encode(path, "optimizer state", extra) if extra else None
    if not is_writer():  # a distributed run: rank 0 writes the file, the other ranks hold the same model
        return
    with atomic_write(path, defer_sigint=True) as tmp:  # Ctrl-C: finish or roll back, then raise
        with h5py.File(tmp, "w", libver=LIBVER, track_order=True) as f:
            _write_header(f, "model")
            f.attrs["seed"] = np.int64(model.seed)
            f.attrs["epochs_trained"] = np.int64(model.epochs_trained)
            write_json(f, "model_config", config_json)
            write_json(f, "training_config", training_json)
            write_json(f, "history", history_json)
            write_json(f, "metadata", metadata_json)
            _write_layer_arrays(f, model)
            _write_optimizer(f, model, extra_json)


def save_weights(model, path) -> None:
    """Saves the parameters and constants only (no architecture, optimizer or history), atomically.

    Load them into a model of the same architecture with :func:`load_weights`.

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        path: destination file; its folder must exist.

    Raises:
        RuntimeError: the model is not finalized.
    """
    _require_savable(model, "model.save_weights()")
    if not is_writer():  # a distributed run: rank 0 writes
        return
    with atomic_write(path, defer_sigint=True) as tmp:  # Ctrl-C: finish or roll back, then raise
        with h5py.File(tmp, "w", libver=LIBVER, track_order=True) as f:
            _write_header(f, "weights")
            _write_layer_arrays(f, model)


# -- reading --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _reading(path, what: str):
    """Turns h5py's low-level failures (checksum mismatch, missing object, bad type) into ModelFileError."""
    try:
        yield
    except ModelFileError:
        raise
    except FileContentError as e:  # its message already names the object and says what is wrong
        raise ModelFileError(path, str(e)) from e
    except (OSError, KeyError, RuntimeError, TypeError, ValueError, RecursionError) as e:
        detail = f"{type(e).__name__}: {e}"
        if "filter returned failure" in str(e) or "checksum" in str(e):
            detail = f"checksum mismatch, the stored bytes have changed; {detail}"
        raise ModelFileError(path, f"cannot read {what} ({detail}); the file is truncated, corrupted or was "
                                   "edited") from e


@contextlib.contextmanager
def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder; give the path of a model file saved by model.save()")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ModelFileError(path, _open_failure(e)) from e
    with f:
        yield f


def _open_failure(error: OSError) -> str:
    """Why HDF5 could not open a file, told from its message (HDF5 gives no error codes for most causes)."""
    text = str(error)
    # HDF5 says "unable to lock file" (errno EAGAIN/EWOULDBLOCK when another process holds the lock,
    # ENOSYS/ENOLCK where the file system has none); a bare "lock" would also match "superblock"/"sblock".
    if isinstance(error, BlockingIOError) or re.search(r"\bunable to lock file\b", text):
        return (f"cannot open it ({text}): another program has it open for writing (HDF5 file locking); close it "
                "there, or set HDF5_USE_FILE_LOCKING=FALSE on file systems without locks")
    cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if cut:
        return (f"the file is truncated: it has {cut.group(1)} bytes but its HDF5 header says {cut.group(2)} "
                f"({text}); the copy or download was interrupted, copy it again from its source")
    return f"not a readable HDF5 file ({text}); it is truncated, corrupted, or not a file saved by nnscratch"


def _child(path, group, name: str, kind=h5py.Group):
    if name not in group:
        raise ModelFileError(path, f"{group.name.rstrip('/')}/{name} is missing; the file is incomplete or was edited")
    check_link(group, name)  # before group[name], which would follow an external link into another file
    obj = group[name]
    if not isinstance(obj, kind):
        raise ModelFileError(path, f"{obj.name} should be a {kind.__name__}, found a {type(obj).__name__}")
    return obj


def _check_header(path, f: h5py.File, want: str | None) -> dict:
    with _reading(path, "the file header"):
        if "format" not in f.attrs:
            hint = ""
            if "keras_version" in f.attrs or "backend" in f.attrs:
                hint = (" It looks like a Keras file: load it with nnscratch.load_model (or model.load_weights), "
                        "which read Keras files")
            raise ModelFileError(path, "an HDF5 file, but not an nnscratch model file (it has no 'format' "
                                       f"attribute).{hint}")
        fmt = get_text(f, "format")
        if fmt != FORMAT_NAME:
            raise ModelFileError(path, f"the file's format is {fmt!r}, expected {FORMAT_NAME!r}; not an nnscratch "
                                       "model file")
        version = get_int(f, "format_version")
        writer = get_text(f, "nnscratch_version") if "nnscratch_version" in f.attrs else "unknown"
        if version > FORMAT_VERSION:
            raise ModelFileError(path, f"written in file format version {version} by nnscratch {writer}; this "
                                       f"nnscratch ({__version__}) reads format versions up to {FORMAT_VERSION}. "
                                       "Upgrade nnscratch (pip install --upgrade nnscratch) to load it")
        if version < 1:
            raise ModelFileError(path, f"format_version is {version}; valid versions start at 1")
        contents = get_text(f, "contents")
    if contents not in ("model", "weights"):
        raise ModelFileError(path, f"contents is {contents!r}, expected 'model' or 'weights'")
    if want == "model" and contents != "model":
        raise ModelFileError(path, "holds weights only (written by save_weights), without an architecture; build "
                                   "the same model in code, finalize it and call model.load_weights(path)")
    return {"format": fmt, "format_version": version, "nnscratch_version": writer, "contents": contents}


def read_header(path) -> dict:
    """The header of an nnscratch file without loading it.

    Returns:
        ``{"format", "format_version", "nnscratch_version", "contents"}``; contents is ``"model"`` or
        ``"weights"``.

    Raises:
        ModelFileError: not an nnscratch file, or written by a newer nnscratch.
    """
    with _open(path) as f:
        return _check_header(path, f, None)


def _check_specs(path, config, training) -> None:
    """Refuses malformed configs and unknown layer classes before anything is built."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ModelFileError(path, "model_config must be an object with a non-empty 'layers' list, found "
                                   f"{type(config).__name__}")
    for i, spec in enumerate(config["layers"]):
        if (not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str)
                or not isinstance(spec.get("config", {}), dict)):
            raise ModelFileError(path, f"model_config layer {i} must be {{'class_name': str, 'config': dict}}, found "
                                       f"{spec!r:.200}")
        name = spec["class_name"]
        try:
            LAYERS.get(name)
        except ValueError:
            raise ModelFileError(path, f"layer {i} ({spec.get('config', {}).get('name') or 'unnamed'}) is of class "
                                       f"{name!r}, which is not a registered layer. Known layers: "
                                       f"{', '.join(LAYERS.names())}. {_CUSTOM_LAYER_HINT}") from None
    if not isinstance(training, dict):
        raise ModelFileError(path, f"training_config must be an object, found {type(training).__name__}")
    unknown = sorted(set(training) - {"loss", "optimizer", "accuracy", "loss_weights", "metrics"})
    if unknown:
        raise ModelFileError(path, f"training_config has unknown keys {unknown}; expected loss, optimizer, accuracy, "
                                   "loss_weights, metrics")
    for key in ("loss", "optimizer"):
        value = training.get(key)
        # several outputs may have one loss each: a list of them
        if not (isinstance(value, dict) or key == "loss" and isinstance(value, list) and value
                and all(isinstance(v, dict) for v in value)):
            raise ModelFileError(path, f"training_config has no {key}; a saved model always has a loss and an "
                                       "optimizer")


def _rebuild(path, f, config, training, seed, state_group):
    _check_specs(path, config, training)
    try:
        model = Model.from_config(config, training)
    except (TypeError, ValueError, KeyError) as e:
        raise ModelFileError(path, f"the saved model cannot be rebuilt from its configuration: {e}") from e
    model.seed = seed
    _expect_file_shapes(path, f, model, state_group)
    try:
        model.finalize()
    except WeightShapeError as e:  # refused on declaration, before the layer allocated anything
        raise ModelFileError(path, f"layer {e.layer}: weight {e.name!r} has shape {e.in_file} in the file but "
                                   f"{e.declared} in the saved architecture; the file's weights do not fit its own "
                                   "architecture; it was edited or written by a broken writer") from e
    except ValueError as e:
        raise ModelFileError(path, f"the saved architecture does not finalize: {e}") from e
    finally:
        for layer in model.layers:
            for _, sub in layer.walk():
                sub._expected_shapes = None
    return model


def _expect_file_shapes(path, f, model, state_group):
    """Tells every layer the shapes of the arrays the file holds for it, so that a configuration asking for
    other (or absurd) sizes is refused when the layer declares them, before anything is allocated.

    Only declarations are read, and every object through ``_child``, which refuses links without following
    them; a missing group is left for the reader's own, more specific errors."""
    with _reading(path, "the weights' shapes"):
        groups = [_child(path, f, name) for name in ("weights", state_group) if name in f]
        for layer in model.layers:
            link = h5_name(layer.name)
            shapes = {}
            for group in groups:
                if link not in group:
                    continue
                layer_group = _child(path, group, link)
                for name in layer_group:
                    shapes[from_h5_name(name)] = tuple(_child(path, layer_group, name, h5py.Dataset).shape)
            for prefix, sub in layer.walk():
                sub._expected_shapes = {k[len(prefix):]: v for k, v in shapes.items()
                                        if k.startswith(prefix) and "/" not in k[len(prefix):]}


def _match_arrays(path, layer, group, store: dict, kind: str, target: str, hint: str, same_dtype: bool):
    """Reads ``group``'s datasets for ``store``'s keys, checking names, shapes (and dtypes)."""
    links = list(group) if group is not None else []
    expected = {h5_name(k): k for k in store}
    if set(links) != set(expected):
        in_file = sorted(from_h5_name(n) for n in links)
        raise ModelFileError(path, f"layer {layer.describe()}: the file has {kind}s {in_file} but {target} has "
                                   f"{sorted(store)}; {hint}")
    out = []
    for link, key in expected.items():
        want = store[key]
        with _reading(path, f"{group.name}/{link}"):
            # Shape and dtype are checked on the declaration, before reading: a dataset declared
            # (10**6, 10**6) costs nothing to refuse here, terabytes to read.
            dataset = _child(path, group, link, h5py.Dataset)
            if dataset.shape != want.shape:
                raise ModelFileError(path, f"layer {layer.describe()}: {kind} {key!r} has shape {dataset.shape} in the "
                                           f"file but {want.shape} in {target}; {hint}")
            if dataset.dtype.kind != "f" or (same_dtype and dataset.dtype != want.dtype):
                raise ModelFileError(path, f"layer {layer.describe()}: {kind} {key!r} is {dataset.dtype} in the file "
                                           f"but {want.dtype} in {target}; {hint}")
            array = read_array(dataset)
        _warn_non_finite(path, f"layer {layer.describe()}: {kind} {key!r}", array)
        out.append((store, key, array))
    return out


class _Store(dict):
    """A layer's arrays by path (``"conv/kernel"``) that writes through to the sublayer that owns each."""

    def __init__(self, layer, store):
        super().__init__()
        self._owners = {}
        for path, sub in layer.walk():
            for key, value in getattr(sub, store).items():
                self[f"{path}{key}"] = value
                self._owners[f"{path}{key}"] = (getattr(sub, store), key)

    def assign(self, key, array):
        store, own_key = self._owners[key]
        store[own_key][...] = array


def _state_group(f: h5py.File) -> str:
    """Where the non-trainable arrays live: ``/state`` from format 2 on, ``/constants`` in format 1."""
    return "state" if get_int(f, "format_version") >= 2 else "constants"


def _warn_non_finite(path, what: str, array: np.ndarray) -> None:
    """A RuntimeWarning when ``array`` holds NaN or infinities: such a model predicts NaN, silently."""
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        warnings.warn(f"{os.fspath(path)}: {what} has {bad} non-finite value(s) (NaN or infinity) out of "
                      f"{array.size}; the model was probably saved after training diverged and will predict NaN. "
                      "Load an earlier checkpoint, or retrain with a lower learning rate (DivergenceGuard stops "
                      "training when the loss diverges)", RuntimeWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside nnscratch."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _read_layer_arrays(path, f: h5py.File, model, target: str, hint: str, same_dtype: bool):
    """Every parameter and state array of ``model`` read from ``f`` and checked; nothing is assigned yet.

    Returns:
        ``(assignments, trainable)``: ``[(store, key, array)]`` and ``{layer name: bool}``.
    """
    assignments = []
    trainable = {}
    with _reading(path, "the weights"):
        weights = _child(path, f, "weights")
        constants = _child(path, f, _state_group(f))
        names = {h5_name(layer.name): layer for layer in model.layers}
        missing = [layer.name for link, layer in names.items() if link not in weights]
        unexpected = [from_h5_name(link) for link in weights if link not in names]
        unexpected_constants = [from_h5_name(link) for link in constants if link not in names]
        if missing or unexpected or unexpected_constants:
            raise ModelFileError(path, f"the layers do not match {target} (layers are matched by name): "
                                       f"{target} has {missing or 'nothing'} that the file lacks, and the file has "
                                       f"{sorted(set(unexpected + unexpected_constants)) or 'nothing'} that "
                                       f"{target} lacks. File layers: {[from_h5_name(n) for n in weights]}; "
                                       f"{target}: {[layer.name for layer in model.layers]}")
        for link, layer in names.items():
            group = _child(path, weights, link)
            saved_class = get_text(group, "class_name")
            if saved_class != LAYERS.name_of(type(layer)):
                raise ModelFileError(path, f"layer {layer.name!r} is a {saved_class} in the file but a "
                                           f"{type(layer).__name__} in {target}; {hint}")
            trainable[layer.name] = get_bool(group, "trainable")
            assignments += _match_arrays(path, layer, group, _Store(layer, "params"), "weight", target, hint,
                                         same_dtype)
            state_group = _child(path, constants, link) if link in constants else None
            assignments += _match_arrays(path, layer, state_group, _Store(layer, "state"), "state array", target,
                                         hint, same_dtype)
    return assignments, trainable


def _read_optimizer_state(path, f: h5py.File, model) -> dict:
    optimizer = model.optimizer
    with _reading(path, "the optimizer state"):
        group = _child(path, f, "optimizer")
        saved_class = get_text(group, "class_name")
        if saved_class != OPTIMIZERS.name_of(type(optimizer)):
            raise ModelFileError(path, f"the optimizer state belongs to {saved_class} but training_config names "
                                       f"{type(optimizer).__name__}")
        state = {"iterations": get_int(group, "iterations"), "lr_multiplier": get_float(group, "lr_multiplier")}
        if state["iterations"] < 0 or not np.isfinite(state["lr_multiplier"]) or state["lr_multiplier"] < 0:
            raise ModelFileError(path, f"invalid optimizer state: iterations={state['iterations']}, "
                                       f"lr_multiplier={state['lr_multiplier']}")
        if "extra_state" in group:
            extra = read_json(_child(path, group, "extra_state", h5py.Dataset))
            if not isinstance(extra, dict):
                raise ModelFileError(path, "/optimizer/extra_state must hold a JSON object")
            state.update(extra)
        params = {(h5_name(layer.name), h5_name(key)): (layer, key, value) for layer in model.layers
                  for key, value in _arrays(layer, "params")}
        slots = {}
        slots_group = _child(path, group, "slots")
        for layer_link in slots_group:
            layer_group = _child(path, slots_group, layer_link)
            for param_link in layer_group:
                target = params.get((layer_link, param_link))
                if target is None:
                    raise ModelFileError(path, f"the optimizer has state for {from_h5_name(layer_link)}/"
                                               f"{from_h5_name(param_link)}, which is not a parameter of the model")
                layer, key, param = target
                param_group = _child(path, layer_group, param_link)
                entry = {}
                for slot_link in param_group:
                    with _reading(path, f"{param_group.name}/{slot_link}"):
                        dataset = _child(path, param_group, slot_link, h5py.Dataset)
                        if dataset.shape != param.shape or dataset.dtype != param.dtype:
                            raise ModelFileError(path, f"optimizer slot {from_h5_name(slot_link)!r} of {layer.name}/"
                                                       f"{key} is {dataset.dtype} {dataset.shape} but the parameter is "
                                                       f"{param.dtype} {param.shape}")
                        array = read_array(dataset)
                    _warn_non_finite(path, f"optimizer slot {from_h5_name(slot_link)!r} of {layer.name}/{key}", array)
                    entry[from_h5_name(slot_link)] = array
                if optimizer.slot_names and set(entry) != set(optimizer.slot_names):
                    raise ModelFileError(path, f"optimizer state for {layer.name}/{key} has slots {sorted(entry)}, "
                                               f"but {type(optimizer).__name__} keeps {list(optimizer.slot_names)}")
                slots[f"{layer.name}/{key}"] = entry
        state["slots"] = slots
    return state


def _read_history(path, doc) -> History:
    ok = (isinstance(doc, dict) and isinstance(doc.get("history"), dict) and isinstance(doc.get("epoch"), list)
          and isinstance(doc.get("events"), list) and isinstance(doc.get("meta", {}), dict)
          and all(isinstance(v, list) for v in doc["history"].values()))
    if not ok:
        raise ModelFileError(path, "/history must hold {'history': {name: [values]}, 'epoch': [ints], "
                                   "'events': [dicts]}")
    history = History()
    history.history = {k: list(v) for k, v in doc["history"].items()}
    history.epoch = list(doc["epoch"])
    history.events = list(doc["events"])
    if "meta" in doc:
        history.meta = dict(doc["meta"])
    return history


def load_model(path):
    """Loads a model saved by :func:`save_model`, ready to predict or to continue training exactly.

    Restores the architecture, loss/optimizer/accuracy (with the learning-rate schedule), every
    parameter and constant (dtype included), each layer's ``trainable`` flag, the optimizer state
    (iterations, ``lr_multiplier``, slots), ``model.seed``, ``model.epochs_trained``,
    ``model.history`` and ``model.metadata``.

    Only registered classes are built (a custom layer must be defined before loading) and nothing in
    the file is executed.

    Args:
        path: a file written by ``model.save(path)``.

    Returns:
        A finalized :class:`~nnscratch.Model`.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: (a ``ValueError``) not an nnscratch model, truncated or corrupted, written by a
            newer nnscratch, an unknown layer class, or weights that do not fit the architecture; the
            message names the file.
    """
    with _open(path) as f:
        _check_header(path, f, "model")
        with _reading(path, "the model description (/model_config, /training_config, /history, /metadata, "
                            "seed, epochs_trained)"):
            config = read_json(_child(path, f, "model_config", h5py.Dataset))
            training = read_json(_child(path, f, "training_config", h5py.Dataset))
            history_doc = read_json(_child(path, f, "history", h5py.Dataset))
            metadata = read_json(_child(path, f, "metadata", h5py.Dataset))
            seed = get_int(f, "seed")
            epochs_trained = get_int(f, "epochs_trained")
        if not isinstance(metadata, dict):
            raise ModelFileError(path, f"/metadata must hold a JSON object, found {type(metadata).__name__}")
        if seed < 0 or epochs_trained < 0:
            raise ModelFileError(path, f"seed ({seed}) and epochs_trained ({epochs_trained}) must be >= 0")
        model = _rebuild(path, f, config, training, seed, _state_group(f))
        hint = "the file's weights do not fit its own architecture; it was edited or written by a broken writer"
        assignments, trainable = _read_layer_arrays(path, f, model, "the saved architecture", hint, same_dtype=True)
        state = _read_optimizer_state(path, f, model)
        history = _read_history(path, history_doc)
    for store, key, array in assignments:
        store.assign(key, array)
    for layer in model.layers:
        layer.trainable = trainable[layer.name]
    model.optimizer.set_state(state)
    model.epochs_trained = epochs_trained
    model.history = history
    model.metadata = metadata
    return model


def load_weights(model, path) -> None:
    """Loads the parameters and constants of a file from :func:`save_weights` or :func:`save_model`.

    Layers are matched by name (``dense_1``...), so build the model the same way as the saved one.
    Every name and shape is checked before anything is copied: on an error the model is unchanged.
    Values are cast to the model's dtype (a float64 file loads into a float32 model).

    Args:
        model: a finalized :class:`~nnscratch.Model` of the same architecture.
        path: the file.

    Raises:
        RuntimeError: the model is not finalized.
        FileNotFoundError: no such file.
        ModelFileError: the file is not an nnscratch file, is corrupted, or its layers, parameter names or
            shapes differ from the model's (the message names the layer and both shapes).
    """
    _require_savable(model, "model.load_weights()")
    hint = ("build the model with the same layers and sizes as the saved one (layer names are assigned in order: "
            "dense_1, dense_2...)")
    with _open(path) as f:
        _check_header(path, f, None)
        assignments, _ = _read_layer_arrays(path, f, model, "this model", hint, same_dtype=False)
    for store, key, array in assignments:
        store.assign(key, array)

"""Which reader or writer a model file takes: nnscratch's HDF5, Keras' legacy HDF5, Keras 3's ``.keras`` zip or
Keras 3's ``.weights.h5``; told from the file's contents, not its name.

Example:
    >>> import os, tempfile
    >>> import nnscratch
    >>> from nnscratch.layers import Dense
    >>> model = nnscratch.Model([Dense(2, input_shape=(3,))], seed=0)
    >>> model.finalize()
    >>> folder = tempfile.mkdtemp()
    >>> save_model(model, os.path.join(folder, "m.keras"))
    >>> save_model(model, os.path.join(folder, "m.h5"), format="keras_h5")
    >>> file_format(os.path.join(folder, "m.keras")), file_format(os.path.join(folder, "m.h5"))
    ('keras', 'keras_h5')
"""
from __future__ import annotations

import os
import zipfile

import h5py

from . import hdf5, keras_h5, keras_zip
from .keras_config import KerasConfigError

__all__ = ["FORMATS", "file_format", "load_model", "load_weights", "save_model"]

#: the formats ``save_model`` writes: nnscratch's own (the default, resumes training exactly), Keras' legacy
#: HDF5 and Keras 3's zip (the default for a ``.keras`` path)
FORMATS = ("nnscratch", "keras_h5", "keras")


def file_format(path) -> str:
    """``"nnscratch"``, ``"keras_h5"`` (Keras legacy HDF5), ``"keras_vars_h5"`` (Keras 3 ``.weights.h5``) or
    ``"keras"`` (a ``.keras`` zip). Files that are none of these are left to nnscratch's reader, whose errors
    say what is wrong."""
    path = os.fspath(path)
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        return "keras"
    if os.path.isfile(path) and h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as f:
                if keras_h5.is_keras_h5(f):
                    return "keras_h5"
                if keras_zip.is_keras_vars_h5(f):
                    return "keras_vars_h5"
        except (OSError, KeyError, RuntimeError, ValueError, TypeError):
            pass  # damaged: nnscratch's reader explains what is wrong
    return "nnscratch"


def load_model(path):
    """Loads an nnscratch, Keras legacy HDF5 or ``.keras`` model (see :func:`nnscratch.load_model`)."""
    kind = file_format(path)
    if kind == "keras":
        return keras_zip.load_keras_zip(path)
    if kind == "keras_h5":
        return keras_h5.load_keras_h5(path)
    if kind == "keras_vars_h5":
        raise hdf5.ModelFileError(path, "a Keras weights file (.weights.h5, no architecture): build the same model "
                                        "in nnscratch, finalize it and call model.load_weights(path)")
    return hdf5.load_model(path)


def load_weights(model, path) -> None:
    """Loads weights from an nnscratch file, a Keras legacy HDF5 file (model or weights) or a Keras 3
    ``.weights.h5``/``.keras`` file into a finalized model whose layers have the file's names."""
    kind = file_format(path)
    if kind == "keras_h5":
        keras_h5.load_keras_h5_weights(model, path)
    elif kind == "keras_vars_h5":
        keras_zip.load_keras_vars_weights(model, path)
    elif kind == "keras":
        keras_zip.load_keras_zip_weights(model, path)
    else:
        hdf5.load_weights(model, path)


def save_model(model, path, format=None) -> None:
    """Saves ``model`` in one of :data:`FORMATS`; default nnscratch's own, or ``"keras"`` for a ``.keras`` path.

    Raises:
        ValueError: an unknown format, or a layer Keras lacks when writing a Keras format.
    """
    if format is None:
        format = "keras" if os.fspath(path).endswith(".keras") else "nnscratch"
    if format == "nnscratch":
        hdf5.save_model(model, path)
    elif format == "keras_h5":
        try:
            keras_h5.save_keras_h5(model, path)
        except KerasConfigError as e:
            raise ValueError(f"cannot save {os.fspath(path)!r} as a Keras file: {e}") from e
    elif format == "keras":
        try:
            keras_zip.save_keras_zip(model, path)
        except KerasConfigError as e:
            raise ValueError(f"cannot save {os.fspath(path)!r} as a Keras file: {e}") from e
    else:
        raise ValueError(f"format={format!r} is not one nnscratch writes; use one of {', '.join(FORMATS)}")

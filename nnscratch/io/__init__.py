"""Files: HDF5 models and weights (:mod:`.hdf5`), Keras files (:mod:`.keras_h5`, :mod:`.keras_zip`, dispatched
by :mod:`.formats`), atomic writes (:mod:`.atomic`), ``ModelCheckpoint``, and History JSON files
(:mod:`.history_json`).

The file layout is documented in ``docs/file-format.md``.

Example:
    >>> from nnscratch.io import load_model, save_model, ModelCheckpoint  # model.save(path) also works
"""
from .atomic import atomic_write
from .checkpoint import ModelCheckpoint
from .formats import load_model, load_weights, save_model
from .hdf5 import FORMAT_NAME, FORMAT_VERSION, ModelFileError, read_header, save_weights
from .history_json import read_history_json, write_history_json

__all__ = ["atomic_write", "ModelCheckpoint", "FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "load_model",
           "load_weights", "read_header", "save_model", "save_weights", "read_history_json", "write_history_json"]

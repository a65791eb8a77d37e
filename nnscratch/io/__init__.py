"""Files: HDF5 models and weights (:mod:`.hdf5`) and atomic writes (:mod:`.atomic`).

The file layout is documented in ``docs/file-format.md``.

Example:
    >>> from nnscratch.io import load_model, save_model  # model.save(path) also works
"""
from .atomic import atomic_write
from .hdf5 import (FORMAT_NAME, FORMAT_VERSION, ModelFileError, load_model, load_weights, read_header, save_model,
                   save_weights)

__all__ = ["atomic_write", "FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "load_model",
           "load_weights", "read_header", "save_model", "save_weights"]

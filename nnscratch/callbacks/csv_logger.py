"""CSVLogger: one CSV row per epoch."""
from __future__ import annotations

import csv
import numbers
import os
import warnings

import numpy as np

from ..engine.distributed import is_writer
from .base import Callback


class CSVLogger(Callback):
    """Writes one CSV row per epoch: ``epoch`` then every epoch log, with a header line.

    Each row is flushed as soon as it is written, so a run that crashes keeps every finished epoch.
    Floats are written at full precision (``repr``), NaN as ``nan``.

    Args:
        path: the file.
        separator: one character, default ``","``.
        append: add to an existing file (keeping its columns; a missing value is left empty) instead of
            overwriting it, default False.

    Raises:
        ValueError: ``append=True`` on a file whose header does not start with ``epoch``.

    Example:
        >>> import os, tempfile
        >>> logger = CSVLogger(os.path.join(tempfile.mkdtemp(), "log.csv"))
        >>> # model.fit(x, y, epochs=5, callbacks=[logger])
    """

    def __init__(self, path, separator=",", append=False):
        super().__init__()
        self.path = os.fspath(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be a single character such as ',' or '\\t', "
                             f"got {separator!r}")
        self.separator = separator
        self.append = bool(append)
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        self._keys = None
        self._warned = set()
        if not is_writer():  # a distributed run: rank 0 writes the one log
            return
        mode = "w"
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f, delimiter=self.separator), [])
            if not header or header[0] != "epoch":
                raise ValueError(f"CSVLogger(append=True): {self.path} does not look like a CSVLogger file (its "
                                 f"first line is {self.separator.join(header)!r}, expected it to start with "
                                 "'epoch'); choose another path or append=False to overwrite it")
            self._keys = header[1:]
            mode = "a"
        self._file = open(self.path, mode, newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, delimiter=self.separator, lineterminator="\n")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:  # not the writing rank of a distributed run
            return
        if self._keys is None:
            self._keys = list(logs)
            self._writer.writerow(["epoch"] + self._keys)
        new = [k for k in logs if k not in self._keys and k not in self._warned]
        if new:
            self._warned.update(new)
            warnings.warn(f"CSVLogger: {self.path} has the columns {['epoch'] + self._keys}; the new epoch logs "
                          f"{new} are not written (start a new file to get them)", RuntimeWarning, stacklevel=2)
        self._writer.writerow([epoch] + [_csv_cell(logs.get(k)) for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)

"""``ModelCheckpoint``: save the model during training, every epoch or whenever a metric improves.

A checkpoint written by a full save resumes training exactly: loading the file written after epoch
``e`` and training on gives the same weights as never having stopped.
"""
from __future__ import annotations

import os

from .. import _checks
from ..callbacks.base import Callback, History
from ..callbacks.monitors import _Monitor
from ..engine.distributed import is_writer
from .hdf5 import save_model, save_weights

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) at the end of epochs, like Keras' ``ModelCheckpoint``.

    Args:
        path: the file to write. It may contain ``{epoch}`` (epochs completed so far, from 1, as the
            progress display counts them) and any key of the epoch logs with a format spec, e.g.
            ``"runs/lenet-{epoch:03d}-{val_loss:.3f}.h5"``. Missing folders are created.
        monitor: the epoch log that decides what "best" means, default ``"val_loss"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: ``"max"`` when the name contains ``acc``,
            such as ``"val_accuracy"``, else ``"min"``).
        save_best_only: default False saves after every epoch; True saves only when ``monitor``
            beats the best value so far (with a fixed ``path`` that file then always holds the best
            model). The best value carries over between ``fit`` calls, as in Keras.
        save_weights_only: default False writes the whole model (:func:`~nnscratch.io.hdf5.save_model`,
            resumable); True writes the weights only (:func:`~nnscratch.io.hdf5.save_weights`).
        verbose: 0 (default) is silent; 1 prints a line per epoch saying what was saved and why. The
            line is printed when the next epoch begins (or training ends), so it follows the epoch's
            own progress line, which ``fit`` prints after every callback has run.
        initial_value_threshold: with ``save_best_only``, the value the metric must beat before the
            first save, default None (any value is saved first).

    Attributes:
        best: the best monitored value so far (``inf``/``-inf`` before any).
        best_epoch: the (global, from 0) epoch of ``best``, or None.
        last_path: the file written most recently, or None.

    Raises:
        ValueError: at the end of an epoch whose logs lack ``monitor`` (with ``save_best_only``) or a
            key used in ``path``; the message lists the keys that exist.

    Example:
        >>> ckpt = ModelCheckpoint("runs/best.h5", monitor="val_accuracy", save_best_only=True)
        >>> ckpt.mode
        'max'
        >>> # model.fit(x, y, epochs=20, validation_data=(xv, yv), callbacks=[ckpt])
        >>> # model = nnscratch.load_model("runs/best.h5")
    """

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=False, save_weights_only=False,
                 verbose=0, initial_value_threshold=None):
        super().__init__()
        try:
            path = os.fspath(path)
        except TypeError:
            raise TypeError(f"ModelCheckpoint: path must be a str or os.PathLike, got {type(path).__name__} "
                            f"({path!r})") from None
        if not path:
            raise ValueError("ModelCheckpoint: path must not be empty; e.g. 'checkpoints/epoch{epoch:03d}.h5'")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, 0)
        if verbose not in (0, 1, False, True):
            raise ValueError(f"ModelCheckpoint: verbose must be 0 or 1, got {verbose!r}")
        self.path = path
        self.monitor = monitor
        self.mode = self._monitor.mode
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.verbose = int(verbose)
        self.best = (self._monitor.worst if initial_value_threshold is None
                     else _checks.number("ModelCheckpoint: initial_value_threshold", initial_value_threshold))
        self.best_epoch = None
        self.last_path = None
        self._pending = None

    def _say(self, text):
        self._flush()
        self._pending = text

    def _flush(self):
        if self._pending is not None:
            print(self._pending, flush=True)
            self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        self._flush()

    def _missing(self, key, logs):
        available = ", ".join(logs) or "none"
        hint = ""
        if key.startswith("val_") and not any(k.startswith("val_") for k in logs):
            hint = (" Validation metrics need fit(..., validation_data=(x_val, y_val)) or validation_split=0.1"
                    f"; or use a training metric such as {key[4:]!r}.")
        return ValueError(f"ModelCheckpoint needs {key!r} but the epoch logs only have: {available}.{hint}")

    def format_path(self, epoch: int, logs: dict) -> str:
        """The file name for the end of (global, from 0) ``epoch`` with ``logs``."""
        try:
            return self.path.format(**{**logs, "epoch": epoch + 1})
        except KeyError as e:
            raise self._missing(e.args[0], logs) from None
        except (ValueError, IndexError) as e:
            raise ValueError(f"ModelCheckpoint: cannot format path {self.path!r} with epoch={epoch + 1} and logs "
                             f"{sorted(logs)}: {e}") from None

    def _history_with(self, epoch: int, logs: dict) -> History:
        # fit updates model.history only after the callbacks have run, so on its own the file would miss
        # the epoch just finished while its epochs_trained counts it; a resumed run would then have one
        # history row too few. Record a copy that includes it (unless fit already did).
        history = self.model.history
        if history.epoch and history.epoch[-1] == epoch:
            return history
        copy = History()
        copy.history = {k: list(v) for k, v in history.history.items()}
        copy.epoch = list(history.epoch)
        copy.events = [dict(e) for e in history.events]
        if getattr(history, "meta", None):
            copy.meta = dict(history.meta)
        copy.on_epoch_end(epoch, logs)
        return copy

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        path = self.format_path(epoch, logs)
        note = ""
        if self.save_best_only:
            current = self._monitor.value(logs)
            if not self._monitor.improves(current, self.best):
                if self.verbose:
                    self._say(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5g}")
                return
            note = f"{self.monitor} improved from {self.best:.5g} to {current:.5g}, "
            self.best, self.best_epoch = current, epoch
        self.last_path = path
        if not is_writer():  # a distributed run: every rank tracks the best, rank 0 writes and says so
            return
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            save_weights(self.model, path)
        else:
            save_model(self.model, path, history=self._history_with(epoch, logs))
        if self.verbose:
            what = "weights" if self.save_weights_only else "model"
            self._say(f"Epoch {epoch + 1}: {note}saving {what} to {path}")

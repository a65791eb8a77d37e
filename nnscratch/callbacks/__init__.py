"""Training callbacks: hooks the model calls during ``fit``.

Ready-made: :class:`History`, :class:`EarlyStopping`, :class:`ReduceLROnPlateau`,
:class:`LearningRateScheduler`, :class:`CSVLogger`, :class:`TerminateOnNaN`, :class:`DivergenceGuard`,
:class:`LayerHealth` and :class:`ModelCheckpoint`; :func:`write_history_json` / :func:`read_history_json`
save and load a History. The protocol and events are described in :mod:`nnscratch.callbacks.base`.

Example:
    >>> from nnscratch.callbacks import EarlyStopping, ModelCheckpoint
    >>> stop = EarlyStopping(monitor="val_loss", patience=3)
"""
from .base import CALLBACKS, Callback, CallbackList, History, record_event
from .csv_logger import CSVLogger
from .divergence import DivergenceError, DivergenceGuard
from .health import LayerHealth
from .monitors import EarlyStopping, LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN
from .progress import EpochLine, ProgressBar

__all__ = ["CALLBACKS", "Callback", "CallbackList", "History", "record_event", "CSVLogger", "DivergenceError",
           "DivergenceGuard", "EarlyStopping", "LayerHealth", "LearningRateScheduler", "ReduceLROnPlateau",
           "TerminateOnNaN", "EpochLine", "ProgressBar", "ModelCheckpoint", "write_history_json", "read_history_json"]

# These live with the files they write (nnscratch.io sits above the model, the model above the callbacks),
# so they are handed out on first use instead of imported here: importing them here would make every
# model import the file layer first.
_FROM_IO = {"ModelCheckpoint": "checkpoint", "write_history_json": "history_json",
            "read_history_json": "history_json"}


def __getattr__(name):
    if name in _FROM_IO:
        import importlib
        return getattr(importlib.import_module(f"nnscratch.io.{_FROM_IO[name]}"), name)
    raise AttributeError(f"module 'nnscratch.callbacks' has no attribute {name!r}")

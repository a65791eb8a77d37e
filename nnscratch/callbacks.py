"""Training callbacks: hooks the model calls during ``fit``.

A callback overrides any of ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)`` and
``on_batch_begin/end(batch, logs)``; it reaches the model through ``self.model`` and stops training by
setting ``self.model.stop_training = True``. Callbacks run in the order given; ``fit``'s own History
runs after them (so it records what they add to the epoch logs) and the progress display runs last.

Ready-made: :class:`History`, :class:`EarlyStopping`, :class:`ReduceLROnPlateau`,
:class:`LearningRateScheduler`, :class:`CSVLogger`, :class:`TerminateOnNaN` and
:class:`~nnscratch.divergence.DivergenceGuard`. :func:`write_history_json` / :func:`read_history_json`
save and load a History.

Notable things callbacks do (an LR reduction, an early stop, a divergence rollback) are recorded as
events in ``model.history.events``: dicts with at least ``kind``, ``epoch`` (counted from 0, like
``History.epoch``), ``step`` (the batch index in that epoch, or None) and ``message`` (for people; it
counts epochs and batches from 1, as the progress display does). The progress display prints them.

Example:
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, round(logs["loss"], 3))
"""
from __future__ import annotations

import csv
import datetime
import inspect
import json
import math
import numbers
import os
import warnings

import numpy as np

from . import _checks
from .registry import Registry
from .schedules import SCHEDULES, Schedule

CALLBACKS = Registry("callback", case_insensitive=True)


class Callback:
    """Base class; every hook does nothing by default."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        CALLBACKS.register(cls)

    def __init__(self):
        self.model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_batch_begin(self, batch, logs=None): ...

    def on_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Calls a list of callbacks in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(c).__name__} ({c!r})")
            c.set_model(model)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for c in self.callbacks:
                getattr(c, hook)(*args, **kwargs)

        return call


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` is the list of per-epoch training losses.

    Every list in ``history`` has one entry per recorded epoch (``len(history.epoch)``): a key that is
    missing in some epoch (validation added in a later ``fit`` call, say) holds NaN there, so the lists
    stay aligned with ``epoch`` and plot or tabulate directly.

    Attributes:
        history: dict of metric name -> list of per-epoch values (``val_`` prefix for validation).
        epoch: the (global, from 0) epoch numbers recorded.
        events: notable events (divergence rollbacks, LR reductions...), each a dict with at least
            ``kind``, ``epoch``, ``step`` and ``message``.
        meta: free-form facts about the run (filled by :func:`read_history_json`, written by
            :func:`write_history_json`).

    Example:
        >>> h = History()
        >>> h.on_epoch_end(0, {"loss": 1.0})
        >>> h.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.7})
        >>> h.history["val_loss"]
        [nan, 0.7]
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.events: list[dict] = []
        self.meta: dict = {}
        self._events_start = None

    def on_train_begin(self, logs=None):
        # Callbacks record events in model.history (the cumulative one); the History that fit returns for
        # one call copies that call's share at the end, so it is complete on its own too.
        owner = getattr(self.model, "history", None)
        self._events_start = len(owner.events) if isinstance(owner, History) and owner is not self else None

    def on_train_end(self, logs=None):
        if self._events_start is not None:
            self.events.extend(dict(e) for e in self.model.history.events[self._events_start:])
            self._events_start = None

    def on_epoch_end(self, epoch, logs=None):
        before = len(self.epoch)
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            if k not in self.history:
                self.history[k] = [math.nan] * before
            self.history[k].append(v)
        for values in self.history.values():
            if len(values) == before:
                values.append(math.nan)

    def record_event(self, event: dict) -> None:
        self.events.append(dict(event))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)}, events={len(self.events)})"


def record_event(model, kind: str, epoch, step, message: str, **fields) -> dict:
    """Adds an event to ``model.history`` (when there is a model) and returns it.

    Args:
        model: the model being trained, or None (the event is then only returned).
        kind: short machine-readable name, e.g. ``"reduce_lr"``.
        epoch: global epoch, from 0.
        step: batch index within the epoch, or None for an epoch-level event.
        message: one line for people.
        **fields: anything JSON-able that describes the event.
    """
    event = {"kind": kind, "epoch": None if epoch is None else int(epoch),
             "step": None if step is None else int(step), "message": message, **fields}
    history = getattr(model, "history", None)
    if isinstance(history, History):
        history.record_event(event)
    return event


# -- monitoring a metric --------------------------------------------------------------------------------
class _Monitor:
    """Reads one key of the epoch logs and decides what counts as an improvement."""

    def __init__(self, who, monitor, mode, min_delta):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"{who}: monitor must be the name of an epoch log such as 'val_loss' or "
                             f"'accuracy', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            # Keras' rule: accuracies improve upwards, everything else (losses) downwards.
            mode = "max" if "acc" in monitor.removeprefix("val_") else "min"
        self.who = who
        self.monitor = monitor
        self.mode = mode
        self.min_delta = _checks.number(f"{who}: min_delta", min_delta, low=0)

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improves(self, current: float, reference: float) -> bool:
        """Whether ``current`` beats ``reference`` by more than ``min_delta`` (NaN never does)."""
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def value(self, logs) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            available = ", ".join(logs) or "none"
            if self.monitor.startswith("val_") and not any(k.startswith("val_") for k in logs):
                hint = ("validation metrics need fit(..., validation_data=(x_val, y_val)) or "
                        f"validation_split=0.1; or monitor a training metric, e.g. monitor={self.monitor[4:]!r}")
            else:
                hint = "pass one of the available keys as monitor=..."
            raise ValueError(f"{self.who} monitors {self.monitor!r}, but the epoch logs only have: {available}. "
                             f"{hint}")
        return float(logs[self.monitor])


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, numbers.Real) else str(value)


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving.

    An epoch improves when the metric beats the best so far by more than ``min_delta`` (and, with a
    ``baseline``, also beats the baseline). Training stops once ``patience`` epochs in a row have not
    improved (``patience=0`` stops at the first epoch that does not improve), as Keras does.

    Args:
        monitor: epoch log to watch, default ``"val_loss"``.
        patience: epochs without improvement to wait, default 0.
        min_delta: smallest change that counts as an improvement, default 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: ``"max"`` for accuracies, else ``"min"``).
        restore_best_weights: at the end of training, put back the weights of the best epoch (whether
            or not training stopped early), default False.
        baseline: a value the metric must reach; epochs that do not beat it count as not improving,
            default None.

    Attributes:
        best, best_epoch: the best value seen and its (global) epoch.
        stopped_epoch: the epoch at which training was stopped, or None.

    Raises:
        ValueError: at the end of the first epoch, when the logs have no ``monitor`` key (the message
            lists the keys that exist).

    Example:
        >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
        >>> # model.fit(x, y, epochs=100, validation_data=(xv, yv), callbacks=[stop])
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0, mode="auto", restore_best_weights=False,
                 baseline=None):
        super().__init__()
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor = monitor
        self.mode = self._monitor.mode
        self.min_delta = self._monitor.min_delta
        self.patience = _checks.positive_int("EarlyStopping: patience", patience, allow_zero=True)
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = None if baseline is None else _checks.number("EarlyStopping: baseline", baseline)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.best = self._monitor.worst
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self._last_epoch = None

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor.value(logs)
        self._last_epoch = epoch
        self.wait += 1
        if self._monitor.improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._monitor.improves(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.best_epoch is None:
                why = f"{self.monitor} has been {_fmt(current)} (never a usable value)"
            elif self.baseline is not None and not self._monitor.improves(self.best, self.baseline):
                why = (f"{self.monitor} has not beaten the baseline {_fmt(self.baseline)} in {self.wait} "
                       f"epoch(s); best {_fmt(self.best)} at epoch {self.best_epoch + 1}")
            else:
                why = (f"{self.monitor} has not improved for {self.wait} epoch(s); best {_fmt(self.best)} "
                       f"at epoch {self.best_epoch + 1}")
            record_event(self.model, "early_stop", epoch, None, f"early stopping after epoch {epoch + 1}: {why}",
                         monitor=self.monitor, value=current, best=self.best, best_epoch=self.best_epoch)

    def on_train_end(self, logs=None):
        if (self.restore_best_weights and self.best_weights is not None
                and self.best_epoch != self._last_epoch):
            self.model.set_weights(self.best_weights)
            record_event(self.model, "restore_best_weights", self._last_epoch, None,
                         f"restored the weights of epoch {self.best_epoch + 1}, the best "
                         f"({self.monitor} {_fmt(self.best)})",
                         monitor=self.monitor, best=self.best, best_epoch=self.best_epoch)


def _base_learning_rate(optimizer) -> float:
    """The optimizer's learning rate without ``lr_multiplier``, at its current iteration."""
    lr = optimizer.learning_rate
    return float(lr(optimizer.iterations) if isinstance(lr, Schedule) else lr)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when a metric has stopped improving.

    It lowers ``optimizer.lr_multiplier``, so it works on top of a schedule too: the schedule keeps its
    shape, scaled down. Each reduction is recorded in ``model.history.events`` (kind ``"reduce_lr"``).

    Args:
        monitor: epoch log to watch, default ``"val_loss"``.
        factor: multiplier in (0, 1), default 0.1.
        patience: epochs without improvement before a reduction, default 10.
        min_delta: smallest change that counts as an improvement, default 1e-4.
        cooldown: epochs after a reduction during which no epoch counts towards ``patience``, default 0
            (counted as Keras does: the epoch in which the cooldown runs out already counts).
        min_lr: the effective learning rate is never lowered below this, default 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: ``"max"`` for accuracies, else ``"min"``).

    Raises:
        ValueError: at the end of the first epoch, when the logs have no ``monitor`` key.

    Example:
        >>> reduce = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5)
        >>> # model.fit(x, y, epochs=50, validation_data=(xv, yv), callbacks=[reduce])
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0,
                 mode="auto"):
        super().__init__()
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.monitor = monitor
        self.mode = self._monitor.mode
        self.min_delta = self._monitor.min_delta
        self.factor = _checks.number("ReduceLROnPlateau: factor", factor, low=0, high=1, low_open=True,
                                     high_open=True)
        self.patience = _checks.positive_int("ReduceLROnPlateau: patience", patience, allow_zero=True)
        self.cooldown = _checks.positive_int("ReduceLROnPlateau: cooldown", cooldown, allow_zero=True)
        self.min_lr = _checks.number("ReduceLROnPlateau: min_lr", min_lr, low=0)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._monitor.worst

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor.value(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._monitor.improves(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        optimizer = self.model.optimizer
        old_lr = optimizer.current_learning_rate
        base = _base_learning_rate(optimizer)
        # The 1e-9 relative slack keeps float rounding from making a run at min_lr "reduce" forever.
        if base <= 0 or old_lr <= self.min_lr * (1 + 1e-9):
            return
        multiplier = max(optimizer.lr_multiplier * self.factor, self.min_lr / base)
        optimizer.lr_multiplier = multiplier
        new_lr = optimizer.current_learning_rate
        record_event(self.model, "reduce_lr", epoch, None,
                     f"epoch {epoch + 1}: {self.monitor} has not improved for {self.wait} epoch(s) "
                     f"(best {_fmt(self.best)}); learning rate {old_lr:.3g} -> {new_lr:.3g}",
                     monitor=self.monitor, value=current, best=self.best, learning_rate_before=old_lr,
                     learning_rate=new_lr, lr_multiplier=multiplier)
        self.cooldown_counter = self.cooldown
        self.wait = 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from ``schedule(epoch)``.

    Args:
        schedule: a function ``epoch -> lr`` (or ``(epoch, lr) -> lr`` as in Keras, given the current
            base rate), or a :class:`~nnscratch.schedules.Schedule` (or its config dict), which is then
            evaluated at the epoch number instead of the iteration. ``epoch`` is global and counts from
            0, so a resumed run continues the schedule.

    The rate is written to ``optimizer.learning_rate``; ``lr_multiplier`` (ReduceLROnPlateau,
    DivergenceGuard) still applies on top of it.

    Raises:
        TypeError: ``schedule`` is not callable.
        ValueError: the optimizer already follows a Schedule (pick one place for the schedule), or the
            schedule returned something other than a finite number >= 0.

    Example:
        >>> from nnscratch.schedules import StepDecay
        >>> halve_every_10 = LearningRateScheduler(StepDecay(0.1, step_size=10, gamma=0.5))
        >>> warmup = LearningRateScheduler(lambda epoch: 0.01 * min(1.0, (epoch + 1) / 5))
    """

    def __init__(self, schedule):
        super().__init__()
        if isinstance(schedule, dict):
            schedule = SCHEDULES.create(schedule)
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler needs a function epoch -> learning rate or a Schedule, got "
                            f"{type(schedule).__name__} ({schedule!r})")
        self.schedule = schedule
        self._pass_lr = False
        if not isinstance(schedule, Schedule):
            try:
                inspect.signature(schedule).bind(0, 0.1)
                self._pass_lr = True
            except (TypeError, ValueError):
                self._pass_lr = False

    def on_train_begin(self, logs=None):
        lr = self.model.optimizer.learning_rate
        if isinstance(lr, Schedule):
            raise ValueError(f"the optimizer already follows the schedule {lr!r}, and LearningRateScheduler would "
                             "replace it; give the optimizer a plain number as learning_rate, or drop the callback")

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self.schedule(epoch, float(optimizer.learning_rate)) if self._pass_lr else self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r} for epoch {epoch}; it must "
                             "return a finite number >= 0")
        optimizer.learning_rate = float(lr)


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


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite (records a ``"terminate_on_nan"`` event).

    Example:
        >>> # model.fit(x, y, epochs=10, callbacks=[TerminateOnNaN()])
    """

    def __init__(self):
        super().__init__()
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.stop_training = True
            record_event(self.model, "terminate_on_nan", self._epoch, batch,
                         f"epoch {self._epoch + 1}, batch {batch + 1}: the loss is {loss}; training stopped",
                         loss=float(loss))


# -- History files -------------------------------------------------------------------------------------
HISTORY_FORMAT = "nnscratch.history"
HISTORY_FORMAT_VERSION = 1


def _json_value(value):
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_value(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _dumps(data: dict) -> str:
    """Readable and diff-friendly: one line per metric and per event rather than one per number."""
    lines = ["{"]
    sections = list(data.items())
    for i, (key, value) in enumerate(sections):
        end = "," if i < len(sections) - 1 else ""
        if isinstance(value, dict) and value and key == "history":
            inner = [f"    {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in value.items()]
            lines.append(f"  {json.dumps(key)}: {{\n" + ",\n".join(inner) + "\n  }" + end)
        elif isinstance(value, list) and value and key == "events":
            inner = [f"    {json.dumps(v, allow_nan=False)}" for v in value]
            lines.append(f"  {json.dumps(key)}: [\n" + ",\n".join(inner) + "\n  ]" + end)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_history_json(history, path, meta=None) -> str:
    """Writes a History as JSON, atomically (a temporary file in the same folder, then ``os.replace``).

    Layout::

        {"history": {"loss": [...], "val_loss": [...], ...},   # one value per epoch, null for NaN/missing
         "epoch":   [0, 1, ...],                               # global epoch numbers, from 0
         "events":  [{"kind": ..., "epoch": ..., "step": ..., "message": ...}, ...],
         "meta":    {"format": "nnscratch.history", "format_version": 1, "nnscratch_version": ...,
                     "written_at": ISO-8601 UTC, "epochs": N, ...history.meta, ...meta}}

    Args:
        history: a :class:`History`, or a Model (its cumulative ``model.history`` is written and its
            name added to ``meta``).
        path: the ``.json`` file to write.
        meta: extra JSON-able facts to store under ``"meta"`` (dataset, command line...), default None.

    Returns:
        ``path`` as a string.

    Example:
        >>> import os, tempfile
        >>> h = History()
        >>> h.on_epoch_end(0, {"loss": 0.9, "accuracy": 0.6})
        >>> path = write_history_json(h, os.path.join(tempfile.mkdtemp(), "run.json"), meta={"lr": 0.01})
        >>> read_history_json(path).history["accuracy"]
        [0.6]
    """
    from ._version import __version__

    extra = {}
    if not isinstance(history, History) and isinstance(getattr(history, "history", None), History):
        extra["model"] = getattr(history, "name", None)
        history = history.history
    if not isinstance(history, History):
        raise TypeError(f"write_history_json needs a History (model.history, or what fit returns) or a Model, got "
                        f"{type(history).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of JSON-able facts, got {type(meta).__name__}")
    path = os.fspath(path)
    info = dict(history.meta)  # what a History read from a file carried; the fresh facts below win
    info.update(format=HISTORY_FORMAT, format_version=HISTORY_FORMAT_VERSION, nnscratch_version=__version__,
                written_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                epochs=len(history.epoch), **extra)
    info.update(meta or {})
    data = _json_value({"history": history.history, "epoch": history.epoch, "events": history.events,
                        "meta": info})
    text = _dumps(data)
    from .io.atomic import atomic_open  # late: nnscratch.io imports the model, which imports this module

    with atomic_open(path, "w") as f:
        f.write(text)
    return path


def read_history_json(path) -> History:
    """Reads a file written by :func:`write_history_json` into a :class:`History` (with ``meta``).

    A plain ``{"metric": [values...]}`` mapping, as people save Keras' ``history.history``, is accepted
    too (epochs are then numbered from 0). ``null`` values become NaN.

    Args:
        path: the JSON file.

    Returns:
        A History whose ``history``, ``epoch``, ``events`` and ``meta`` come from the file.

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not JSON, or not a history (the message says which part is wrong).
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); expected a history written by "
                             "write_history_json or `nnscratch train -o`") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with 'history' and 'epoch', got a {type(data).__name__}")
    if "history" not in data:
        if data and all(isinstance(v, list) for v in data.values()):
            data = {"history": data, "epoch": list(range(max(len(v) for v in data.values())))}
        else:
            raise ValueError(f"{path}: no 'history' key (found {sorted(data)}); expected the layout of "
                             "write_history_json: {\"history\": {...}, \"epoch\": [...], \"events\": [...], "
                             "\"meta\": {...}}")
    values, epochs = data["history"], data.get("epoch")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: 'history' must map metric names to lists, got a {type(values).__name__}")
    if epochs is None:
        epochs = list(range(max((len(v) for v in values.values() if isinstance(v, list)), default=0)))
    if not isinstance(epochs, list) or not all(isinstance(e, int) for e in epochs):
        raise ValueError(f"{path}: 'epoch' must be a list of integers, got {epochs!r:.80}")
    out = History()
    out.epoch = list(epochs)
    for key, column in values.items():
        if not isinstance(column, list):
            raise ValueError(f"{path}: history[{key!r}] must be a list, got a {type(column).__name__}")
        if len(column) != len(epochs):
            raise ValueError(f"{path}: history[{key!r}] has {len(column)} values but 'epoch' has {len(epochs)}; "
                             "every metric needs one value per epoch (null where there is none)")
        bad = [v for v in column if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real))]
        if bad:
            raise ValueError(f"{path}: history[{key!r}] must hold numbers or null, found {bad[0]!r}")
        out.history[key] = [math.nan if v is None else v for v in column]
    events = data.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError(f"{path}: 'events' must be a list of objects")
    out.events = [dict(e) for e in events]
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: 'meta' must be an object, got a {type(meta).__name__}")
    out.meta = dict(meta)
    return out


# At the end because divergence.py subclasses Callback from this module.
from .divergence import DivergenceError, DivergenceGuard  # noqa: E402
from .io.checkpoint import ModelCheckpoint  # noqa: E402,F401  (same reason: it subclasses Callback)

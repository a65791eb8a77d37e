"""Callbacks that watch the training and act on it: EarlyStopping, ReduceLROnPlateau,
LearningRateScheduler and TerminateOnNaN."""
from __future__ import annotations

import inspect
import math
import numbers

from .. import _checks
from ..schedules import SCHEDULES, Schedule
from .base import Callback, record_event


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

    Epochs are counted two ways, as everywhere in nnscratch: attributes and event fields are indices
    from 0 over the model's life, like ``History.epoch`` and Keras' ``EarlyStopping.best_epoch``, so
    ``model.history.history[monitor][best_epoch]`` is the best value; messages count from 1, like the
    progress display, so ``best_epoch == 4`` is the epoch printed as "Epoch 5/N" and reported as
    "best ... at epoch 5".

    Attributes:
        best: the best value of ``monitor`` seen in this ``fit``.
        best_epoch: the index (from 0) of the epoch that reached ``best``, or None before any.
        stopped_epoch: the index (from 0) of the epoch after which training was stopped, or None.
        wait: epochs since the last improvement.

    Raises:
        ValueError: at the end of the first epoch, when the logs have no ``monitor`` key (the message
            lists the keys that exist).

    Example:
        >>> from types import SimpleNamespace
        >>> stop = EarlyStopping(monitor="loss", patience=1)
        >>> stop.set_model(SimpleNamespace(stop_training=False, history=None))  # fit passes the model
        >>> for epoch, loss in enumerate([0.9, 0.5, 0.7]):   # what fit does after each epoch
        ...     stop.on_epoch_end(epoch, {"loss": loss})
        >>> stop.best, stop.best_epoch, stop.stopped_epoch, stop.model.stop_training
        (0.5, 1, 2, True)
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

"""The callback protocol, the list that calls callbacks in order, History, and events.

A callback overrides any of ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)`` and
``on_batch_begin/end(batch, logs)``; it reaches the model through ``self.model`` and stops training by
setting ``self.model.stop_training = True``. Callbacks run in the order given; ``fit``'s own History
runs after them (so it records what they add to the epoch logs) and the progress display runs last.

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

import math

from ..registry import Registry

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

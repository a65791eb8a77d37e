"""Training callbacks: hooks the model calls during ``fit``.

A callback overrides any of ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)`` and
``on_batch_end(batch, logs)``; it reaches the model through ``self.model`` and stops training by setting
``self.model.stop_training = True``.

Example:
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, round(logs["loss"], 3))
"""
from __future__ import annotations

from .registry import Registry

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

    Attributes:
        history: dict of metric name -> list of per-epoch values (``val_`` prefix for validation).
        epoch: the (global) epoch numbers recorded.
        events: notable events (divergence rollbacks, LR reductions...), each a dict.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.events: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def record_event(self, event: dict) -> None:
        self.events.append(dict(event))

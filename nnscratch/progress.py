"""What ``fit`` shows on screen: one line per epoch (the live bar arrives with the training-experience issue)."""
from __future__ import annotations

import sys

from .callbacks import Callback


class EpochLine(Callback):
    """Prints ``epoch i/n - loss ... - accuracy ... - val_... - 1.2s`` once per epoch."""

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._index = 0

    def on_epoch_end(self, epoch, logs=None):
        self._index += 1
        logs = logs or {}
        parts = [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch_time", "samples_per_second",
                                                                       "learning_rate")]
        print(f"epoch {self._index}/{self.epochs} (#{epoch + 1}) - " + " - ".join(parts)
              + f" - {logs.get('epoch_time', 0):.1f}s", file=self.stream, flush=True)


def progress_callback(verbose, epochs, steps, stream=None):
    """The callback ``fit`` adds for ``verbose``; None when silent."""
    if verbose in (0, False):
        return None
    if verbose not in (1, 2, True, "auto"):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return EpochLine(epochs, stream)

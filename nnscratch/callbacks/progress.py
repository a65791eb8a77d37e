"""What ``fit`` shows while it trains: a live bar per epoch (``verbose=1``) or one line per epoch (``verbose=2``).

``verbose="auto"`` (fit's default) picks the bar on a terminal (or in a Jupyter kernel, which renders
carriage returns) and lines otherwise, so CI logs stay readable. Both print the events callbacks record
in ``model.history.events`` (LR reductions, early stops, divergence rollbacks) as they happen.

The bar is tqdm's; its postfix (running loss and accuracy, learning rate, ms/step) is rebuilt at most
every 0.1 s, so a fast epoch of thousands of batches spends next to nothing on display.

Example of ``verbose=2`` output::

    Epoch 1/3 - 0.21s - 1.1ms/step - loss 0.8123 - accuracy 0.6540 - val_loss 0.5012 - val_accuracy 0.8400 - lr 0.01
"""
from __future__ import annotations

import math
import sys
import time

from .base import Callback

#: epoch-log keys shown in their own form (time, ms/step, lr) rather than as "name value"
_SPECIAL = ("epoch_time", "samples_per_second", "learning_rate", "step_time_mean", "step_time_median")
#: at most this often (seconds) the bar's postfix is rebuilt
POSTFIX_INTERVAL = 0.1


def format_value(value) -> str:
    """A metric the way the progress display shows it: 4 decimals, or scientific when tiny or huge.

    Example:
        >>> format_value(0.123456), format_value(2.5e-05), format_value(float("nan"))
        ('0.1235', '2.500e-05', 'nan')
    """
    if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def _metrics(logs) -> list[str]:
    return [f"{k} {format_value(v)}" for k, v in logs.items() if k not in _SPECIAL]


def _timing(seconds, steps) -> str:
    return f"{seconds * 1000 / steps:.1f}ms/step" if steps else "-"


class _EventPrinter(Callback):
    """Prints the events that appeared in ``model.history.events`` since it last looked."""

    def __init__(self, epochs=None, steps=None, stream=None):
        super().__init__()
        self._epochs_arg = epochs
        self._steps_arg = steps
        self._stream = stream
        self._seen = 0

    @property
    def stream(self):
        # Resolved at use, not at construction, so a redirected sys.stdout (pytest's capsys) is honoured.
        return self._stream if self._stream is not None else sys.stdout

    def on_train_begin(self, logs=None):
        logs = logs or {}
        self.epochs = logs.get("epochs", self._epochs_arg)
        self.steps = logs.get("steps", self._steps_arg)
        self._first_epoch = self.model.epochs_trained
        self._index = 0
        self._seen = len(self.model.history.events)
        if self._first_epoch:
            self.write(f"Resuming after {self._first_epoch} trained epoch(s)")

    def write(self, text):
        print(text, file=self.stream, flush=True)

    def _print_new_events(self):
        events = self.model.history.events
        if len(events) > self._seen:
            for event in events[self._seen:]:
                self.write(f"  [{event.get('kind', 'event')}] {event.get('message', event)}")
            self._seen = len(events)

    def _label(self):
        return f"Epoch {self._index}/{self.epochs}"

    def on_train_end(self, logs=None):
        self._print_new_events()


class EpochLine(_EventPrinter):
    """``verbose=2``: one line per epoch (time, ms/step, every metric, learning rate), no carriage returns.

    Args:
        epochs: epochs in this ``fit`` call (for "Epoch i/n"), used when ``on_train_begin``'s logs lack them.
        steps: batches per epoch, likewise.
        stream: where to write, default ``sys.stdout`` (looked up at each write).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._index += 1
        self._steps_done = 0

    def on_batch_end(self, batch, logs=None):
        self._steps_done = batch + 1
        self._print_new_events()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = logs.get("epoch_time", 0.0)
        parts = [self._label(), f"{seconds:.2f}s", _timing(seconds, self._steps_done)] + _metrics(logs)
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.3g}")
        self.write(" - ".join(parts))
        self._print_new_events()  # after the line: an epoch-end event (an LR cut) follows from its numbers


class ProgressBar(_EventPrinter):
    """``verbose=1``: a tqdm bar per epoch with step i/n, elapsed<remaining, ms/step, running loss and
    accuracy and the learning rate; at the epoch's end it is replaced by a full line with the validation
    metrics.

    Args:
        epochs: epochs in this ``fit`` call, used when ``on_train_begin``'s logs lack them.
        steps: batches per epoch, likewise.
        stream: where to draw, default ``sys.stdout`` (looked up when the bar is created).
    """

    BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}"

    def __init__(self, epochs=None, steps=None, stream=None):
        super().__init__(epochs, steps, stream)
        self._bar = None

    def write(self, text):
        if self._bar is not None:
            from tqdm import tqdm
            tqdm.write(text, file=self.stream)  # clears the bar, prints, redraws it
        else:
            super().write(text)

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm import tqdm

        self._index += 1
        self.close()
        self._bar = tqdm(total=self.steps, desc=self._label(), file=self.stream, leave=False,
                         bar_format=self.BAR_FORMAT, mininterval=POSTFIX_INTERVAL, miniters=1,
                         dynamic_ncols=True, ascii=None)
        self._started = time.perf_counter()
        self._last_postfix = -math.inf
        self._steps_done = 0

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self._steps_done = batch + 1
        now = time.perf_counter()
        if now - self._last_postfix >= POSTFIX_INTERVAL:
            self._last_postfix = now
            parts = [_timing(now - self._started, self._steps_done)]
            parts += [f"{k[5:]} {format_value(v)}" for k, v in logs.items() if k.startswith("mean_")]
            if "learning_rate" in logs:
                parts.append(f"lr {logs['learning_rate']:.3g}")
            self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.update(1)
        self._print_new_events()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # fit's epoch_time covers the batches only, so validation does not inflate ms/step.
        elapsed = logs.get("epoch_time", time.perf_counter() - self._started)
        bar = self._bar
        self.close()
        # tqdm trims a line to the terminal width; the final line carries the validation metrics, so it
        # is written whole (a static line may wrap, a live one may not).
        meter = bar.format_meter(self._steps_done, self.steps, elapsed, ncols=None, prefix=self._label(),
                                 bar_format="{desc} {n_fmt}/{total_fmt} |{bar:20}| {elapsed}", ascii=bar.ascii)
        parts = [meter, _timing(elapsed, self._steps_done)] + _metrics(logs)
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.3g}")
        super().write(" - ".join(parts))
        self._print_new_events()

    def on_train_end(self, logs=None):
        self.close()
        super().on_train_end(logs)

    def close(self):
        """Closes the live bar, if one is open (fit calls it on the way out, also after an exception)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"
    except Exception:  # an IPython too old or too new to ask; fall back to lines
        return False


def resolve_verbose(verbose, stream=None) -> int:
    """0, 1 or 2 for ``verbose``; ``"auto"`` is 1 on a terminal or in Jupyter and 2 otherwise.

    Raises:
        ValueError: anything other than 0, 1, 2, True, False or ``"auto"``.
    """
    if verbose == "auto" and isinstance(verbose, str):
        stream = stream if stream is not None else sys.stdout
        try:
            tty = bool(stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            tty = False
        return 1 if tty or _in_jupyter() else 2
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose in (0, 1, 2) and not isinstance(verbose, float):
        return int(verbose)
    raise ValueError(f"verbose must be 0 (silent), 1 (progress bar), 2 (one line per epoch) or 'auto' "
                     f"(bar on a terminal, lines otherwise), got {verbose!r}")


def progress_callback(verbose, epochs, steps, stream=None):
    """The callback ``fit`` adds for ``verbose``: a :class:`ProgressBar`, an :class:`EpochLine`, or None.

    Args:
        verbose: 0, 1, 2 or ``"auto"``.
        epochs: epochs in this ``fit`` call.
        steps: batches per epoch (``fit`` passes it again in ``on_train_begin``'s logs).
        stream: where to write, default ``sys.stdout``.

    Example:
        >>> type(progress_callback(2, epochs=3, steps=10)).__name__
        'EpochLine'
    """
    mode = resolve_verbose(verbose, stream)
    if mode == 0:
        return None
    return (ProgressBar if mode == 1 else EpochLine)(epochs, steps, stream)

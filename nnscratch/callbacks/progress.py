"""What ``fit`` shows while it trains: a live line per epoch (``verbose=1``) or one line per epoch (``verbose=2``).

``verbose="auto"`` (fit's default) picks the live line on a terminal (or in a Jupyter kernel, which renders
carriage returns) and plain lines otherwise, so CI logs and files get one line per epoch. Both print the
events callbacks record in ``model.history.events`` (LR reductions, early stops, divergence rollbacks) as
they happen.

Epochs are numbered over the model's whole life, from ``model.epochs_trained`` when ``fit`` starts: a
model trained for 11 epochs and fit for 2 more shows "Epoch 12/13" and "Epoch 13/13".

The live line (step i/n, a bar, elapsed<remaining, running loss and accuracy, learning rate, ms/step) is
redrawn at most every 0.1 s and always fits the terminal's width, read at each redraw: when it is narrow,
ms/step goes first, then the bar, then the elapsed time and the learning rate, then metric names are
shortened; the metrics themselves stay. At the epoch's end it is replaced by the epoch's full line, with
the validation metrics, wrapped between its parts (never cut) if the terminal is narrower than it.

The learning rate shown for an epoch is the one its first step used: a schedule lowers it during the
epoch (the live line shows the current one), and the rate after the last step of a decay to 0 would read
``lr 0`` for an epoch that did train. ``model.history`` keeps ``learning_rate`` as fit logs it, after the
epoch.

Example of ``verbose=2`` output::

    Epoch 1/3 - 0.21s - 1.1ms/step - loss 0.8123 - accuracy 0.6540 - val_loss 0.5012 - val_accuracy 0.8400 - lr 0.01
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from .base import Callback

#: epoch-log keys shown in their own form (time, ms/step, lr) rather than as "name value"
_SPECIAL = ("epoch_time", "samples_per_second", "learning_rate", "step_time_mean", "step_time_median")
#: at most this often (seconds) the live line is redrawn
POSTFIX_INTERVAL = 0.1
#: the live bar's width bounds, in characters: below the minimum it is left out
BAR_MIN, BAR_MAX = 10, 30
#: shorter names the live line falls back to when the terminal is narrow
_SHORT_NAMES = {"accuracy": "acc", "val_accuracy": "val_acc", "categorical_accuracy": "acc",
                "binary_accuracy": "acc", "rbf_accuracy": "acc"}


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


def format_lr(value) -> str:
    """A learning rate, short: two significant digits, and a bare exponent when small.

    Example:
        >>> format_lr(0.002), format_lr(4.9068e-05), format_lr(0.1), format_lr(0), format_lr(100), format_lr(0.00156)
        ('0.002', '4.9e-5', '0.1', '0', '100', '0.0016')
    """
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e5:
        return np.format_float_positional(value, precision=2, fractional=False, trim="-")
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def format_duration(seconds) -> str:
    """``m:ss`` (or ``h:mm:ss``) for the live line; ``?`` when unknown.

    Example:
        >>> format_duration(5.2), format_duration(75), format_duration(3725), format_duration(None)
        ('0:05', '1:15', '1:02:05', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _metrics(logs) -> list[str]:
    return [f"{k} {format_value(v)}" for k, v in logs.items() if k not in _SPECIAL]


def _timing(seconds, steps) -> str:
    return f"{seconds * 1000 / steps:.1f}ms/step" if steps else "-"


def terminal_width(stream, default=80) -> int:
    """Columns of the terminal ``stream`` writes to: ``$COLUMNS`` if set, else asked of the terminal,
    else ``default``."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (AttributeError, ValueError, OSError):  # no fileno, a closed stream, not a terminal
        return default


def _bar(fraction, width, unicode) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    if not unicode:
        done = int(fraction * width)
        return "#" * done + " " * (width - done)
    eighths = int(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return ("█" * full + partial).ljust(width)


def live_line(label, step, steps, elapsed, metrics, lr=None, width=80, unicode=True) -> str:
    """The live progress line, fitted into ``width`` columns (one is kept free: a line that reaches the
    last column makes some terminals wrap).

    Args:
        label: e.g. ``"Epoch 3/10"``.
        step, steps: batches done and in the epoch (``steps`` may be None).
        elapsed: seconds since the epoch began.
        metrics: ``[(name, value), ...]``, running means.
        lr: the current learning rate, or None.
        width: the terminal's columns.
        unicode: draw the bar with block characters (else ``#``).

    Returns:
        The line, at most ``width - 1`` characters.

    Example:
        >>> live_line("Epoch 3/10", 211, 422, 5.0, [("loss", 0.03124), ("accuracy", 0.99)], lr=0.002, width=100)
        'Epoch 3/10 211/422 |█████████▌         | 0:05<0:05 loss 0.0312 accuracy 0.9900 lr 0.002 23.7ms/step'
        >>> live_line("Epoch 3/10", 211, 422, 5.0, [("loss", 0.03124), ("accuracy", 0.99)], lr=0.002, width=50)
        'Epoch 3/10 211/422 <0:05 loss 0.0312 acc 0.9900'
    """
    limit = max(1, width - 1)
    counter = f"{step}/{steps}" if steps else f"{step}"
    remaining = elapsed / step * (steps - step) if steps and step else None
    speed = f"{elapsed * 1000 / step:.1f}ms/step" if step else ""
    names = [name for name, _ in metrics]
    values = [format_value(v) for _, v in metrics]
    # Each form keeps every metric; they are tried in order, so what gives way first goes first: ms/step,
    # the elapsed time (the remaining time stays), the bar, the learning rate, then the long metric names.
    forms = [dict(speed=True, elapsed=True, lr=True, bar=True, short=False),
             dict(speed=False, elapsed=True, lr=True, bar=True, short=False),
             dict(speed=False, elapsed=False, lr=True, bar=True, short=False),
             dict(speed=False, elapsed=True, lr=True, bar=False, short=False),
             dict(speed=False, elapsed=False, lr=True, bar=False, short=False),
             dict(speed=False, elapsed=False, lr=False, bar=False, short=False),
             dict(speed=False, elapsed=False, lr=False, bar=False, short=True)]
    head = f"{label} {counter}"
    for f in forms:
        timing = (f"{format_duration(elapsed)}<" if f["elapsed"] else "<") + format_duration(remaining)
        shown = [_SHORT_NAMES.get(n, n) if f["short"] else n for n in names]
        tail = [timing] + [f"{n} {v}" for n, v in zip(shown, values)]
        if f["lr"] and lr is not None:
            tail.append(f"lr {format_lr(lr)}")
        if f["speed"] and speed:
            tail.append(speed)
        rest = " ".join(tail)
        if f["bar"]:
            room = limit - len(head) - len(rest) - 4  # two spaces and the bar's two "|"
            if steps and room >= BAR_MIN:
                return f"{head} |{_bar(step / steps, min(room, BAR_MAX), unicode)}| {rest}"
        elif len(head) + 1 + len(rest) <= limit:
            return f"{head} {rest}"
    # Even the shortest form does not fit (a very narrow terminal): drop whole metrics from the end.
    line = f"{head} {rest}"
    while len(line) > limit and " " in line:
        line = line.rsplit(" ", 2)[0] if line.count(" ") >= 2 else line.rsplit(" ", 1)[0]
    return line[:limit]


def wrap_parts(parts, width, separator=" - ", indent="    ") -> str:
    """``parts`` joined by ``separator`` into lines of at most ``width - 1`` columns, broken only between
    parts (a part longer than a line gets a line of its own).

    Example:
        >>> print(wrap_parts(["Epoch 1/2", "loss 0.5000", "val_loss 0.6000"], 30))
        Epoch 1/2 - loss 0.5000
            val_loss 0.6000
    """
    limit = max(1, width - 1)
    lines, current = [], ""
    for part in parts:
        candidate = f"{current}{separator}{part}" if current else part
        if current and len(candidate) > limit:
            lines.append(current)
            current = indent + part
        else:
            current = candidate
    lines.append(current)
    return "\n".join(lines)


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"
    except Exception:  # an IPython too old or too new to ask; fall back to lines
        return False


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _EventPrinter(Callback):
    """Prints the events that appeared in ``model.history.events`` since it last looked, and numbers the
    epochs from ``model.epochs_trained`` at the start of ``fit``."""

    def __init__(self, epochs=None, steps=None, stream=None):
        super().__init__()
        self._epochs_arg = epochs
        self._steps_arg = steps
        self._stream = stream
        self._seen = 0
        self._first_epoch = 0
        self._index = 0
        self._epoch_lr = None

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

    def on_epoch_begin(self, epoch, logs=None):
        self._index += 1
        self._steps_done = 0
        # The progress display runs after every other callback, so a LearningRateScheduler has already
        # set this epoch's rate.
        optimizer = getattr(self.model, "optimizer", None)
        self._epoch_lr = getattr(optimizer, "current_learning_rate", None)

    def write(self, text):
        print(text, file=self.stream, flush=True)

    def _print_new_events(self):
        events = self.model.history.events
        if len(events) > self._seen:
            for event in events[self._seen:]:
                self.write(f"  [{event.get('kind', 'event')}] {event.get('message', event)}")
            self._seen = len(events)

    def _label(self):
        total = self._first_epoch + self.epochs if self.epochs is not None else "?"
        return f"Epoch {self._first_epoch + self._index}/{total}"

    def _epoch_parts(self, logs, seconds):
        parts = [self._label(), f"{seconds:.2f}s", _timing(seconds, self._steps_done)] + _metrics(logs)
        lr = self._epoch_lr if self._epoch_lr is not None else logs.get("learning_rate")
        if lr is not None:
            parts.append(f"lr {format_lr(lr)}")
        return parts

    def on_train_end(self, logs=None):
        self._print_new_events()


class EpochLine(_EventPrinter):
    """``verbose=2``: one line per epoch (time, ms/step, every metric, learning rate), no carriage returns,
    however long (logs are read by programs too).

    Args:
        epochs: epochs in this ``fit`` call (for "Epoch i/n"), used when ``on_train_begin``'s logs lack them.
        steps: batches per epoch, likewise.
        stream: where to write, default ``sys.stdout`` (looked up at each write).
    """

    def on_batch_end(self, batch, logs=None):
        self._steps_done = batch + 1
        self._print_new_events()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.write(" - ".join(self._epoch_parts(logs, logs.get("epoch_time", 0.0))))
        self._print_new_events()  # after the line: an epoch-end event (an LR cut) follows from its numbers


class ProgressBar(_EventPrinter):
    """``verbose=1``: a live line per epoch that fits the terminal (step i/n, a bar, elapsed<remaining,
    running loss and accuracy, learning rate, ms/step), replaced at the epoch's end by the epoch's full
    line with the validation metrics.

    When the stream is not a terminal (nor a Jupyter kernel), nothing is drawn live: each epoch is one
    line, as with ``verbose=2``, so a log file gets no carriage returns.

    Args:
        epochs: epochs in this ``fit`` call, used when ``on_train_begin``'s logs lack them.
        steps: batches per epoch, likewise.
        stream: where to draw, default ``sys.stdout`` (looked up at each write).
        width: the terminal's width in columns, default None (asked of the terminal at each redraw).
    """

    def __init__(self, epochs=None, steps=None, stream=None, width=None):
        super().__init__(epochs, steps, stream)
        self._width = width
        self._drawn = 0       # characters of the live line now on screen (0: none)
        self._live = False

    @property
    def width(self) -> int:
        return self._width or terminal_width(self.stream)

    def _clear(self):
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def write(self, text):
        self._clear()  # an event line replaces the live line; the next redraw puts it back below
        super().write(text)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._live = _is_terminal(self.stream) or _in_jupyter()
        self._unicode = "utf" in (getattr(self.stream, "encoding", None) or "").lower()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._started = time.perf_counter()
        self._last_draw = -math.inf

    def on_batch_end(self, batch, logs=None):
        self._steps_done = batch + 1
        self._print_new_events()
        if not self._live:
            return
        now = time.perf_counter()
        if now - self._last_draw < POSTFIX_INTERVAL and self._steps_done != 1:
            return
        self._last_draw = now
        logs = logs or {}
        metrics = [(k[5:], v) for k, v in logs.items() if k.startswith("mean_")]
        line = live_line(self._label(), self._steps_done, self.steps, now - self._started, metrics,
                         lr=logs.get("learning_rate"), width=self.width, unicode=self._unicode)
        self.stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
        self.stream.flush()
        self._drawn = len(line)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # fit's epoch_time covers the batches only, so validation does not inflate ms/step.
        elapsed = logs.get("epoch_time", time.perf_counter() - self._started)
        parts = self._epoch_parts(logs, elapsed)
        self._clear()
        super().write(wrap_parts(parts, self.width) if self._live else " - ".join(parts))
        self._print_new_events()

    def on_train_end(self, logs=None):
        self.close()
        super().on_train_end(logs)

    def close(self):
        """Clears the live line, if one is drawn (fit calls it on the way out, also after an exception)."""
        if self._drawn:
            self._clear()
            self.stream.flush()


def resolve_verbose(verbose, stream=None) -> int:
    """0, 1 or 2 for ``verbose``; ``"auto"`` is 1 on a terminal or in Jupyter and 2 otherwise.

    Raises:
        ValueError: anything other than 0, 1, 2, True, False or ``"auto"``.
    """
    if verbose == "auto" and isinstance(verbose, str):
        stream = stream if stream is not None else sys.stdout
        return 1 if _is_terminal(stream) or _in_jupyter() else 2
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

"""Training curves: loss and accuracy per epoch, training against validation, from a History or its JSON;
and the per-layer health that :class:`~nnscratch.callbacks.LayerHealth` records (:func:`plot_health`).

matplotlib is optional (``pip install "nnscratch[plot]"``) and imported only when a plot is drawn. The
figure is rendered with the Agg canvas directly, without pyplot, so plotting neither needs a display nor
changes the backend of a user's interactive session.

Example:
    >>> import os, tempfile
    >>> from nnscratch.callbacks import History
    >>> h = History()
    >>> for e, (l, vl) in enumerate([(1.0, 1.1), (0.6, 0.8), (0.4, 0.7)]):
    ...     h.on_epoch_end(e, {"loss": l, "val_loss": vl})
    >>> path = plot_history(h, os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> with open(path, "rb") as f:
    ...     f.read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from .callbacks.base import History
from .errors import MissingDependencyError, require
from .io.history_json import read_history_json

__all__ = ["INSTALL_HINT", "MissingDependencyError", "add_plot_arguments", "main_plot", "plot_confusion_matrix",
           "plot_health", "plot_history", "run_plot"]

INSTALL_HINT = 'pip install "nnscratch[plot]"'

#: how each kind of event is drawn: (label in the legend, line colour, line style)
EVENT_STYLES = {
    "rollback": ("divergence rollback", "tab:red", ":"),
    "divergence_stop": ("stopped: divergence", "tab:red", "-."),
    "divergence_error": ("stopped: divergence", "tab:red", "-."),
    "terminate_on_nan": ("stopped: NaN loss", "tab:red", "-."),
    "reduce_lr": ("learning rate reduced", "tab:purple", ":"),
    "early_stop": ("early stop", "tab:gray", "--"),
}


def _require_matplotlib():
    require(["matplotlib.figure", "matplotlib.backends.backend_agg"], "matplotlib", "plotting", INSTALL_HINT)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return Figure, FigureCanvasAgg


def _load(history_or_path) -> History:
    if isinstance(history_or_path, History):
        return history_or_path
    if isinstance(getattr(history_or_path, "history", None), History):  # a Model
        return history_or_path.history
    if isinstance(history_or_path, (str, os.PathLike)):
        path = os.fspath(history_or_path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such history file: {path} (`nnscratch train -o model.h5` writes "
                                    "model.history.json beside the model)")
        return read_history_json(path)
    raise TypeError(f"plot_history needs a History, a Model or the path of a history JSON, got "
                    f"{type(history_or_path).__name__}")


def _accuracy_key(keys):
    train = [k for k in keys if not k.startswith("val_")]
    if "accuracy" in train:
        return "accuracy"
    return next((k for k in train if "acc" in k), None)


def _values(history, key):
    return [math.nan if v is None else float(v) for v in history.history.get(key, [])]


def _has_data(values):
    return any(math.isfinite(v) for v in values)


def plot_history(history_or_json_path, output_path, title=None, dpi=100) -> str:
    """Draws loss (and accuracy, when recorded) per epoch, training vs validation, and saves the image.

    Epochs are numbered from 1. A loss that spans more than two decades (a divergence spike) is drawn on
    a log scale so the rest of the curve stays readable. Events (divergence rollbacks, LR reductions,
    early stops) are marked with vertical lines at their epoch. The file is written atomically.

    Args:
        history_or_json_path: a :class:`~nnscratch.callbacks.History`, a Model (its ``history``), or the
            path of a JSON written by :func:`~nnscratch.callbacks.write_history_json`.
        output_path: where to save; the extension picks the format (``.png``, ``.pdf``, ``.svg``...).
        title: figure title, default None (the model name from the JSON's meta, if any).
        dpi: resolution for raster formats, default 100 (a 11x4 inch figure: 1100x400 pixels).

    Returns:
        ``output_path`` as a string.

    Raises:
        MissingDependencyError: (an ImportError) matplotlib is not installed; the message gives the
            ``pip install`` command.
        FileNotFoundError: no such JSON file.
        ValueError: the history has no epochs or no loss, or the file is not a history, or the output
            extension is not an image format matplotlib knows.
    """
    history = _load(history_or_json_path)
    output_path = os.fspath(output_path)
    if not history.epoch:
        raise ValueError("the history has no epochs to plot; train for at least one epoch first")
    if not _has_data(_values(history, "loss")):
        raise ValueError(f"the history has no finite 'loss' values to plot (keys: {', '.join(history.history)})")
    Figure, FigureCanvasAgg = _require_matplotlib()

    fmt = os.path.splitext(output_path)[1].lstrip(".").lower() or "png"
    fig = Figure(figsize=(11, 4), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    supported = canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save a plot as .{fmt}; use one of: {', '.join('.' + f for f in sorted(supported))}")

    epochs = [e + 1 for e in history.epoch]
    acc_key = _accuracy_key(history.history)
    panels = [("loss", "Loss")]
    if acc_key and _has_data(_values(history, acc_key)):
        panels.append((acc_key, acc_key.replace("_", " ").capitalize()))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels):
        train, val = _values(history, key), _values(history, "val_" + key)
        ax.plot(epochs, train, marker="o", markersize=3, color="tab:blue", label="training")
        if _has_data(val):
            ax.plot(epochs, val, marker="o", markersize=3, color="tab:orange", linestyle="--", label="validation")
        finite = [v for v in train + val if math.isfinite(v)]
        if key == "loss" and finite and min(finite) > 0 and max(finite) / min(finite) > 100:
            ax.set_yscale("log")
            label += " (log scale)"
        seen = set()
        for event in history.events:
            style = EVENT_STYLES.get(event.get("kind"))
            if style is None or event.get("epoch") is None:
                continue
            name, color, linestyle = style
            ax.axvline(event["epoch"] + 1, color=color, linestyle=linestyle, linewidth=1, alpha=0.7,
                       label=None if name in seen else name)
            seen.add(name)
        ax.set_title(f"{label} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    title = title if title is not None else history.meta.get("model")
    if title:
        fig.suptitle(str(title))

    from .io.atomic import atomic_open

    with atomic_open(output_path, "wb") as f:
        fig.savefig(f, format=fmt)
    return output_path


_LOG_SCALE = ("grad_norm", "update_ratio", "bn_mean_drift", "bn_var_drift")


def _health_record(history):
    from .callbacks.health import META_KEY
    record = history.meta.get(META_KEY)
    if not isinstance(record, dict) or not record.get("x"):
        raise ValueError("the history has no layer health record; train with "
                         "callbacks=[nnscratch.callbacks.LayerHealth()] to record one")
    return record


def plot_health(history_or_json_path, output_path, title=None, dpi=100) -> str:
    """Draws the per-layer health that :class:`~nnscratch.callbacks.LayerHealth` recorded, against the
    (fractional) epoch: the batch loss, then one panel per quantity that was recorded (gradient norm and
    update/weight ratio on log scales, dead ReLU and saturated units as fractions, BatchNormalization
    drift), one line per layer. Events are marked as on :func:`plot_history`; non-finite gradient norms
    are marked with a red x at the top of their panel, and zeros leave gaps on the log scales.

    Args:
        history_or_json_path, output_path, title, dpi: as for :func:`plot_history`.

    Raises:
        ValueError: the history has no health record (the message says how to record one).
    """
    from .callbacks.health import METRICS

    history = _load(history_or_json_path)
    output_path = os.fspath(output_path)
    record = _health_record(history)
    Figure, FigureCanvasAgg = _require_matplotlib()
    xs = [float(v) for v in record["x"]]
    layers = record.get("layers", {})
    panels = [("loss", "batch loss")]
    for metric, label in METRICS.items():
        if any(_has_data(_values_of(entry.get(metric))) for entry in layers.values()):
            panels.append((metric, label))
    fmt = os.path.splitext(output_path)[1].lstrip(".").lower() or "png"
    cols = 2
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(14, 3.2 * rows + 0.6), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    supported = canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save a plot as .{fmt}; use one of: {', '.join('.' + f for f in sorted(supported))}")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    names = list(layers)
    palette = [f"C{i}" for i in range(10)]
    styles = ["-", "--", ":", "-."]
    handles = {}  # one legend for the figure: a layer keeps its colour and line style in every panel
    steps_per_epoch = {}
    for x, e, s in zip(xs, record["epoch"], record["step"]):
        if x > e:
            steps_per_epoch.setdefault(e, (s + 1) / (x - e))
    for ax, (metric, label) in zip(axes, panels):
        if metric == "loss":
            ax.plot(xs, _values_of(record.get("loss")), color="black", linewidth=1)
            finite = [v for v in _values_of(record.get("loss")) if math.isfinite(v)]
            if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
                ax.set_yscale("log")
        else:
            blown = []
            for i, name in enumerate(names):
                values = _values_of(layers[name].get(metric))
                if not _has_data(values) and not any(v == math.inf for v in values):
                    continue
                blown += [x for x, v in zip(xs, values) if v == math.inf]
                log = metric in _LOG_SCALE
                # on a log scale a 0 (a layer whose units all died passes no gradient) would plunge off the
                # panel; it leaves a gap instead, and the dead-units panel says why
                ax.plot(xs, [v if math.isfinite(v) and not (log and v <= 0) else math.nan for v in values],
                        color=palette[i % 10],
                        linestyle=styles[(i // 10) % 4], linewidth=1.2, label=name)
            if metric in _LOG_SCALE:
                ax.set_yscale("log")
            if metric in ("dead_fraction", "saturated_fraction"):
                ax.set_ylim(-0.02, 1.02)
            if blown:
                top = ax.get_ylim()[1]
                ax.plot(blown, [top] * len(blown), "x", color="tab:red", label="non-finite")
            if blown:
                ax.legend(handles=ax.get_lines()[-1:], fontsize="x-small", loc="lower right")
            for line in ax.get_lines():
                handles.setdefault(line.get_label(), line)
        seen = set()
        for event in history.events:
            style = EVENT_STYLES.get(event.get("kind"))
            if style is None or event.get("epoch") is None:
                continue
            event_name, color, linestyle = style
            e, step = event["epoch"], event.get("step")
            at = e + ((step + 1) / steps_per_epoch[e] if step is not None and e in steps_per_epoch else 0)
            ax.axvline(at, color=color, linestyle=linestyle, linewidth=1, alpha=0.7,
                       label=None if event_name in seen or metric != "loss" else event_name)
            seen.add(event_name)
        if metric == "loss" and seen:
            ax.legend(fontsize="x-small", loc="best")
        ax.set_title(f"{label} (every {record.get('every', '?')} steps)" if metric == "loss" else label)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    layer_handles = [handles[n] for n in names if n in handles]
    if layer_handles:
        fig.legend(layer_handles, [h.get_label() for h in layer_handles], loc="outside right upper",
                   fontsize="small", ncol=1 if len(layer_handles) <= 30 else 2)
    title = title if title is not None else history.meta.get("model")
    fig.suptitle(f"{title}: layer health" if title else "layer health")

    from .io.atomic import atomic_open

    with atomic_open(output_path, "wb") as f:
        fig.savefig(f, format=fmt)
    return output_path


def plot_confusion_matrix(matrix, output_path, class_names=None, title=None, normalize=True, dpi=100) -> str:
    """Draws a confusion matrix as a heat map (rows: true class, columns: predicted class) and saves it.

    Args:
        matrix: ``(K, K)`` counts, e.g. from :func:`nnscratch.metrics.confusion_matrix`.
        output_path: the image file; its extension picks the format. Written atomically.
        class_names: ``K`` labels, default ``0 .. K-1``.
        title: default ``"Confusion matrix"``.
        normalize: colour each row by its fraction of the class (the cells still show the counts), default True.
        dpi: default 100.

    Returns:
        ``output_path`` as a string.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = plot_confusion_matrix(np.array([[5, 1], [2, 7]]), os.path.join(tempfile.mkdtemp(), "cm.png"))
        >>> os.path.getsize(path) > 0
        True
    """
    import numpy as np

    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"a confusion matrix is square (K, K), got shape {matrix.shape}")
    k = matrix.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    output_path = os.fspath(output_path)
    Figure, FigureCanvasAgg = _require_matplotlib()
    fmt = os.path.splitext(output_path)[1].lstrip(".").lower() or "png"
    size = max(4.0, 0.6 * k + 2)
    fig = Figure(figsize=(size + 1, size), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    if fmt not in canvas.get_supported_filetypes():
        raise ValueError(f"cannot save a plot as .{fmt}")
    ax = fig.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    shade = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0) if normalize else matrix
    image = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, label="fraction of the true class" if normalize else "samples")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize="small",
                    color="white" if shade[i, j] > 0.5 * (shade.max() or 1) else "black")
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix")

    from .io.atomic import atomic_open

    with atomic_open(output_path, "wb") as f:
        fig.savefig(f, format=fmt)
    return output_path


def _values_of(series):
    return [math.nan if v is None else float(v) for v in (series or [])]


# -- command line ---------------------------------------------------------------------------------------
def add_plot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``HISTORY.json [-o OUTPUT] [--title T] [--dpi N]`` to ``parser`` (for ``nnscratch plot``)."""
    parser.add_argument("history", help="history JSON written by `nnscratch train -o` or write_history_json")
    parser.add_argument("-o", "--output", default=None, help="image path (default: the JSON's name with .png)")
    parser.add_argument("--title", default=None, help="figure title (default: the model name, if recorded)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution (default: 100)")
    parser.add_argument("--health", action="store_true",
                        help="draw the per-layer health recorded by LayerHealth instead of the curves")
    return parser


def run_plot(args) -> int:
    """Runs ``nnscratch plot`` for parsed ``args``; prints where the image went; returns the exit code."""
    health = getattr(args, "health", False)
    stem = os.path.splitext(args.history)[0]
    output = args.output or (stem.removesuffix(".history") + ".health.png" if health else stem + ".png")
    draw = plot_health if health else plot_history
    draw(args.history, output, title=getattr(args, "title", None), dpi=getattr(args, "dpi", 100))
    print(f"wrote {output}")
    return 0


def main_plot(argv=None) -> int:
    """``nnscratch plot HISTORY.json -o curves.png`` as a function: errors become a message and exit code 2.

    Example:
        >>> main_plot(["does-not-exist.json"])
        2
    """
    parser = add_plot_arguments(argparse.ArgumentParser(prog="nnscratch plot",
                                                        description="plot loss and accuracy curves"))
    args = parser.parse_args(argv)
    try:
        return run_plot(args)
    except (ImportError, OSError, ValueError, TypeError) as e:
        print(f"nnscratch plot: error: {e}", file=sys.stderr)
        return 2

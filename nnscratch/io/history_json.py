"""History files: a History (per-epoch logs, events, run facts) as a JSON document, written atomically."""
from __future__ import annotations

import datetime
import json
import math
import numbers
import os

import numpy as np

from .._version import __version__
from ..callbacks.base import History
from ..engine.distributed import is_writer
from .atomic import atomic_open

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
    if not is_writer():  # a distributed run: rank 0 writes the one history file
        return path
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
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError; absurd nesting
            problem = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
            raise ValueError(f"{path} is not valid JSON ({problem}); expected a history written by "
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

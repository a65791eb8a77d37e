"""Keras-style model summaries: one row per layer with its output shape and parameter count, then totals.

``Model.summary()`` prints what :func:`summarize` returns. Counts come from each layer's
``count_params`` / ``count_trainable_params`` / ``count_non_trainable_params``, so a convolution with a
connection table counts only the weights it connects (LeNet-5's C3: 1,516, not 2,416). Sizes are the
counts times the model dtype's item size, as Keras reports them.

``flops=True`` adds what no other framework's summary prints: each layer's multiply-adds per sample
(``Layer.count_macs``: a bias counts as one, so the numbers are LeCun's "connections"; element-wise layers
and max pooling's comparisons count 0) and the memory of its output per sample (the activations a forward
pass produces, which training keeps for backward), with totals. A layer called several times in a graph
counts once per call. LeNet-5's classic form gives the 1998 paper's connection counts (C1 122,304, S2
5,880, C3 151,600, S4 2,000, C5 48,120, F6 10,164).

Example:
    >>> import nnscratch
    >>> from nnscratch.layers import Dense, ReLU, Softmax
    >>> model = nnscratch.Model([Dense(16, input_shape=(8,)), ReLU(), Dense(3), Softmax()], name="mlp")
    >>> model.set(loss="categorical_crossentropy", optimizer="sgd")
    >>> model.finalize()
    >>> print(summarize(model))
    Model: "mlp" (input (None, 8), float32)
    +---------------------+----------------+-----------+
    | Layer (type)        | Output Shape   |   Param # |
    +=====================+================+===========+
    | dense_1 (Dense)     | (None, 16)     |       144 |
    | re_lu_1 (ReLU)      | (None, 16)     |         0 |
    | dense_2 (Dense)     | (None, 3)      |        51 |
    | softmax_1 (Softmax) | (None, 3)      |         0 |
    +---------------------+----------------+-----------+
    Total params: 195 (780.00 B)
    Trainable params: 195 (780.00 B)
    Non-trainable params: 0 (0.00 B)
"""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

__all__ = ["summarize", "readable_size", "format_shape"]


def readable_size(num_bytes: float) -> str:
    """``num_bytes`` in B/KB/MB/GB/TB (powers of 1024) with two decimals, as Keras prints it.

    Example:
        >>> readable_size(0), readable_size(61706 * 4), readable_size(3 * 1024**3)
        ('0.00 B', '241.04 KB', '3.00 GB')
    """
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _scaled(n: int) -> str:
    """``n`` in thousands, millions or billions: ``"429.51 K"``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def format_shape(shape) -> str:
    """A per-sample shape with the batch axis shown as None: ``(28, 28, 6)`` -> ``"(None, 28, 28, 6)"``."""
    return "(" + ", ".join(["None"] + [str(int(d)) for d in shape]) + ")"


def _count(n: int, itemsize: int) -> str:
    return f"{n:,} ({readable_size(n * itemsize)})"


def _connections(model) -> dict[int, str]:
    """``{id(layer): "conv2d_1[0][0], dense_1[0][0]"}``: what each layer's calls read, as Keras prints it
    (``layer[call][tensor]``, the call counted among that layer's calls in the model)."""
    calls: dict[int, int] = {}
    index_of = {}
    for step in model.plan.steps:
        index_of[id(step.node)] = calls.get(id(step.layer), 0)
        calls[id(step.layer)] = index_of[id(step.node)] + 1
    out: dict[int, list[str]] = {}
    for step in model.plan.steps:
        refs = [f"{t.node.layer.name}[{index_of[id(t.node)]}][0]" for t in step.node.inbound]
        out.setdefault(id(step.layer), []).extend(refs)
    return {k: ", ".join(v) for k, v in out.items()}


def _calls(model) -> dict[int, int]:
    """``{id(layer): how many times the plan calls it}``."""
    return {id(layer): len(steps) for layer, steps in model.plan.layer_calls}


def summarize(model, tablefmt: str = "outline", show_trainable: bool = False, flops: bool = False) -> str:
    """The summary text of a finalized model (trained or not).

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        tablefmt: any tabulate format, default ``"outline"`` (plain ASCII, safe in every terminal and log
            file); ``"simple_outline"`` draws box characters, ``"github"`` gives Markdown.
        show_trainable: add a ``Trainable`` column (Y/N per layer), default False.
        flops: add the ``MACs`` (multiply-adds per sample) and ``Activations`` (output bytes per sample)
            columns and their totals, default False.

    Returns:
        ``Model: "<name>" (input (None, ...), <dtype>)``, the table ``Layer (type) | Output Shape |
        Param #``, then ``Total params``, ``Trainable params`` and ``Non-trainable params`` lines with
        their size in bytes, and ``Optimizer params`` once the optimizer holds state (after training).

    Raises:
        RuntimeError: the model is not finalized (the output shapes are known only after
            ``model.finalize()``).
    """
    if not getattr(model, "finalized", False):
        raise RuntimeError("call model.finalize() before model.summary(): output shapes and parameter counts exist "
                           "only once the layers are built (finalize again after add/set changes)")
    itemsize = np.dtype(model.dtype).itemsize
    graph = model.is_graph
    headers = (["Layer (type)", "Output Shape", "Param #"] + (["MACs", "Activations"] if flops else [])
               + (["Connected to"] if graph else []) + (["Trainable"] if show_trainable else []))
    connections = _connections(model) if graph else {}
    calls = _calls(model)
    rows = []
    total_macs = total_bytes = 0
    for layer in model.layers:
        row = [layer.describe(), format_shape(layer.output_shape), f"{layer.count_params():,}"]
        if flops:
            n = calls.get(id(layer), 0)  # 0 for a model input: not something a layer computes
            macs = layer.count_macs() * n
            size = int(np.prod(layer.output_shape)) * itemsize * max(n, 1)
            total_macs += macs
            total_bytes += size if n else 0
            row += [f"{macs:,}", readable_size(size)]
        if graph:
            row.append(connections.get(id(layer)) or "-")
        if show_trainable:
            row.append("Y" if layer.trainable else "N")
        rows.append(row)
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True,
                     colalign=("left", "left", "right") + (("right", "right") if flops else ())
                     + (("left",) if graph else ()) + (("center",) if show_trainable else ()))
    trainable = sum(layer.count_trainable_params() for layer in model.layers)
    frozen = sum(layer.count_non_trainable_params() for layer in model.layers)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    lines = [f'Model: "{model.name}" (input {", ".join(format_shape(s) for s in shapes)}, '
             f'{np.dtype(model.dtype).name})', table,
             f"Total params: {_count(trainable + frozen, itemsize)}",
             f"Trainable params: {_count(trainable, itemsize)}",
             f"Non-trainable params: {_count(frozen, itemsize)}"]
    if flops:
        lines += [f"Multiply-adds per sample: {total_macs:,} ({_scaled(total_macs)})",
                  f"Activations per sample: {readable_size(total_bytes)} "
                  f"(every layer's output, {np.dtype(model.dtype).name})"]
    slots = [a for s in getattr(model.optimizer, "slots", {}).values() for a in s.values()]
    if slots:
        # Keras shows this line once the optimizer has built its variables; here: once it has state.
        count = sum(int(a.size) for a in slots)
        lines.append(f"Optimizer params: {count:,} ({readable_size(sum(int(a.nbytes) for a in slots))})")
    return "\n".join(lines)

"""The twin check: two files of one network (nnscratch, Keras or ONNX) run side by side on the same inputs,
compared layer by layer where both expose a layer's value, and at the outputs always.

A *runner* gives a model's inputs, the names of the values it can expose (in the order they are computed) and
runs the model keeping them: :class:`NnscratchRunner` walks a model's graph in inference mode keeping every
layer's output (a Keras file opens through :func:`nnscratch.load_model` and runs the same way);
:class:`OnnxRunner` runs a file with onnxruntime, its intermediate tensors added in memory as extra graph
outputs. Values are matched by name (nnscratch's ONNX export names each layer's output after the layer, see
:func:`nnscratch.io.onnx_export.call_names`), outputs by position.

A layer *differs* when ``max |a - b| > tolerance * max(1, max |a|)``: an absolute tolerance for values up to
1 and a relative one beyond (float32 rounding grows with the values' size). The table reports the largest
absolute difference and the relative one, ``max |a - b| / max |a|``.

Example:
    >>> import numpy as np
    >>> from nnscratch.models import mlp
    >>> a, b = mlp(hidden_units=(8,), seed=0), mlp(hidden_units=(8,), seed=0)
    >>> b.layers[1].params["kernel"][0, 0] += 1.0
    >>> report = compare(NnscratchRunner(a), NnscratchRunner(b), samples=4)
    >>> report.first_difference, b.layers[1].name
    ('dense_1', 'dense_1')
    >>> compare(NnscratchRunner(a), NnscratchRunner(a), samples=4).agree
    True
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import require
from .io.onnx_export import INSTALL_HINT, MissingONNXError, call_names
from .layers.context import BatchContext, installed

#: default tolerance of ``nnscratch verify`` and ``export --verify`` (see the module docstring)
DEFAULT_TOLERANCE = 1e-5
DEFAULT_SAMPLES = 8
DEFAULT_SEED = 0


@dataclass
class InputSpec:
    """One model input: its name, per-sample shape and dtype."""

    name: str
    shape: tuple
    dtype: np.dtype


class NnscratchRunner:
    """Runs a finalized nnscratch model in inference mode, keeping every layer's output.

    Args:
        model: a finalized :class:`~nnscratch.Model` (from ``load_model``: an nnscratch or a Keras file).
        label: how reports name it, default the model's name.
    """

    def __init__(self, model, label: str | None = None):
        if not getattr(model, "finalized", False):
            raise ValueError("the model is not finalized; call model.finalize() first")
        self.model = model
        self.label = label or model.name
        self._names = call_names(model)
        steps = model.plan.steps
        producer = {id(step.node.output): s for s, step in enumerate(steps)}
        # the graph's own edges, not the plan's rewritten ones (a ReLU deferred past its pooling)
        self._reads = [[producer[id(t)] for t in step.node.inbound] for step in steps]
        self.inputs = [InputSpec(self._names[s], tuple(steps[s].node.output.sample_shape), model.dtype)
                       for s in model.plan.input_ids]
        self.output_names = [self._names[s] for s in model.plan.output_ids]
        self.names = [n for n, step in zip(self._names, steps) if not step.feed]

    def run(self, arrays: list) -> dict:
        """``{name: value}`` of every layer call for the inputs ``arrays`` (one per input, batch first)."""
        plan = self.model.plan
        values = {s: np.asarray(a, dtype=self.model.dtype) for s, a in zip(plan.input_ids, arrays)}
        with installed(BatchContext(0, len(arrays[0]), (0, 0, 0))):
            for s, step in enumerate(plan.steps):
                if step.feed:
                    continue
                args = [values[t] for t in self._reads[s]]
                values[s] = np.array(plan.instances[s].forward(args if step.takes_list else args[0],
                                                               training=False))
        return {self._names[s]: v for s, v in values.items()}


def _require_onnxruntime():
    return require("onnxruntime", "onnxruntime", "running ONNX files", INSTALL_HINT, MissingONNXError)


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


class OnnxRunner:
    """Runs an ONNX file with onnxruntime (CPU), exposing every intermediate tensor of float type.

    Args:
        path: the ``.onnx`` file.
        label: how reports name it, default the file's name.
    """

    def __init__(self, path, label: str | None = None):
        from .io.onnx_export import require_onnx

        onnx = require_onnx()
        ort = _require_onnxruntime()
        self.label = label or os.path.basename(str(path))
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
            raise ValueError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
        graph = proto.graph
        self.output_names = [o.name for o in graph.output]
        initializers = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        produced = [out for node in graph.node for out in node.output if out]
        known = set(self.output_names) | {i.name for i in inputs}
        extra = [name for name in dict.fromkeys(produced) if name not in known]
        # every intermediate tensor becomes a graph output of unknown shape, in this in-memory copy only
        graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in extra)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # extra outputs keep the tensors; the rest of the graph is optimized as it would run
        self._session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self._fetch = [o.name for o in self._session.get_outputs()]
        self.inputs = []
        for i in self._session.get_inputs():
            if i.type not in _ONNX_DTYPES:
                raise ValueError(f"{path}: input {i.name!r} is of type {i.type}; the check feeds floating inputs")
            shape = tuple(d if isinstance(d, int) else None for d in i.shape[1:])
            if any(d is None for d in shape):
                raise ValueError(f"{path}: input {i.name!r} has shape {i.shape}; the check needs a fixed shape "
                                 "after the batch axis")
            self.inputs.append(InputSpec(i.name, shape, np.dtype(_ONNX_DTYPES[i.type])))
        self.names = [name for name in dict.fromkeys(produced) if name in set(self._fetch)]

    def run(self, arrays: list) -> dict:
        feed = {spec.name: np.asarray(a, dtype=spec.dtype) for spec, a in zip(self.inputs, arrays)}
        values = self._session.run(self._fetch, feed)
        return {name: value for name, value in zip(self._fetch, values) if isinstance(value, np.ndarray)
                and value.dtype.kind == "f"}


def open_runner(path, label: str | None = None):
    """A runner for a model file: an ``.onnx`` file runs with onnxruntime, anything else is opened by
    :func:`nnscratch.load_model` (nnscratch files, and Keras files where load_model reads them)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    if path.lower().endswith(".onnx"):
        return OnnxRunner(path, label or path)
    from . import load_model
    return NnscratchRunner(load_model(path), label or path)


@dataclass
class LayerDifference:
    """One compared value: its name (``output k`` adds the output's position), shapes and differences."""

    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    differs: bool
    note: str = ""


@dataclass
class Report:
    """What :func:`compare` found: rows in the order the first model computes them, outputs last."""

    a: str
    b: str
    tolerance: float
    samples: int
    layers: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    @property
    def first_difference(self) -> str | None:
        """The first layer (else output) whose values differ beyond the tolerance, or None."""
        for row in self.layers + self.outputs:
            if row.differs:
                return row.name
        return None

    @property
    def agree(self) -> bool:
        return self.first_difference is None

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((r.max_rel for r in self.outputs), default=0.0)

    def table(self) -> str:
        """Every compared value with its largest absolute and relative difference (tabulate)."""
        from tabulate import tabulate

        def number(v):  # not comparable (shapes, NaN in one model only): the status says why
            return f"{v:.3g}" if np.isfinite(v) else "-"

        rows = [[r.name, "x".join(map(str, r.shape)), number(r.max_abs), number(r.max_rel),
                 ("DIFFERS" if r.differs else "ok") + (f" ({r.note})" if r.note else "")]
                for r in self.layers + self.outputs]
        return tabulate(rows, headers=["layer", "shape", "max abs diff", "max rel diff", "status"],
                        disable_numparse=True, colalign=("left", "right", "right", "right", "left"))

    def verdict(self) -> str:
        """One line: where the models first differ, or that they agree."""
        first = self.first_difference
        if first is None:
            return (f"the models agree: {len(self.layers)} layer value(s) and {len(self.outputs)} output(s) within "
                    f"tolerance {self.tolerance:g} on {self.samples} sample(s) (largest output difference: abs "
                    f"{self.max_abs:.3g}, rel {self.max_rel:.3g})")
        row = next(r for r in self.layers + self.outputs if r.name == first)
        what = row.note or f"max abs diff {row.max_abs:.3g}, rel {row.max_rel:.3g} > tolerance {self.tolerance:g}"
        return f"the models differ first at layer {first!r} ({what})"


class _Tally:
    """The running comparison of one value over the chunks of a batch: the largest difference and magnitude,
    or why the value cannot be compared."""

    def __init__(self, name):
        self.name, self.shape, self.max_abs, self.scale, self.note = name, None, 0.0, 0.0, ""

    def add(self, a, b):
        if self.note:
            return
        self.shape = a.shape[1:]
        if a.shape[1:] != b.shape[1:]:
            self.note = f"shapes differ: {a.shape[1:]} vs {b.shape[1:]} per sample"
            return
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        finite = np.isfinite(a64) & np.isfinite(b64)
        if not (finite | (a64 == b64)).all():
            self.note = "NaN or infinite values in one model only"
            return
        if finite.any():
            self.max_abs = max(self.max_abs, float(np.abs(a64 - b64)[finite].max()))
            self.scale = max(self.scale, float(np.abs(a64[finite]).max()))

    def result(self, tolerance) -> LayerDifference:
        if self.note:
            return LayerDifference(self.name, self.shape, np.inf, np.inf, True, self.note)
        max_rel = self.max_abs / self.scale if self.scale > 0 else (0.0 if self.max_abs == 0 else np.inf)
        return LayerDifference(self.name, self.shape, self.max_abs, max_rel,
                               self.max_abs > tolerance * max(1.0, self.scale))


def sample_inputs(specs, samples=DEFAULT_SAMPLES, seed=DEFAULT_SEED) -> list:
    """Seeded standard-normal inputs, ``(samples, *shape)`` in each input's dtype."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((samples,) + tuple(s.shape)).astype(s.dtype) for s in specs]


def read_inputs(path, specs) -> list:
    """Inputs from a ``.npy`` file (one input) or an ``.npz`` file (one array per input name, or ``arr_0``...),
    checked against ``specs``."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        arrays = [data]
    else:
        with data:
            keys = list(data.keys())
            names = [s.name for s in specs]
            if set(names) <= set(keys):
                arrays = [data[n] for n in names]
            elif len(keys) == len(specs):
                arrays = [data[k] for k in keys]
            else:
                raise ValueError(f"{path} holds arrays {keys}; give one per model input, named "
                                 f"{', '.join(names)}")
    if len(arrays) != len(specs):
        raise ValueError(f"{path} holds {len(arrays)} array(s) but the model takes {len(specs)} inputs "
                         f"({', '.join(s.name for s in specs)}); use an .npz with one array per input")
    out = []
    for spec, array in zip(specs, arrays):
        if array.shape[1:] != tuple(spec.shape) and array.shape == tuple(spec.shape):
            array = array[None]  # one sample without its batch axis
        if array.shape[1:] != tuple(spec.shape) or array.dtype.kind not in "biuf":
            wanted = ", ".join(map(str, spec.shape))
            raise ValueError(f"{path}: input {spec.name!r} must be numbers of shape (N, {wanted}), got {array.dtype} "
                             f"of shape {array.shape}")
        out.append(array.astype(spec.dtype))
    return out


def compare(a, b, tolerance=DEFAULT_TOLERANCE, samples=DEFAULT_SAMPLES, inputs=None, seed=DEFAULT_SEED,
            layers=True, chunk=256) -> Report:
    """Runs the runners ``a`` (the reference) and ``b`` on the same inputs and compares them.

    Args:
        a, b: runners (:class:`NnscratchRunner`, :class:`OnnxRunner` or :func:`open_runner`'s).
        tolerance: see the module docstring; default :data:`DEFAULT_TOLERANCE`.
        samples: how many seeded random samples when ``inputs`` is None, default 8.
        inputs: a list of arrays, one per model input (batch first), default None (random ones).
        seed: of the random inputs, default 0.
        layers: compare the layer values both expose too, default True (else the outputs only).
        chunk: samples run at a time (the largest differences are kept over the chunks), default 256.

    Returns:
        A :class:`Report`.
    """
    if len(a.inputs) != len(b.inputs) or any(x.shape != y.shape for x, y in zip(a.inputs, b.inputs)):
        show = lambda r: ", ".join(f"{s.name} {s.shape}" for s in r.inputs)  # noqa: E731
        raise ValueError(f"the two models take different inputs, so they cannot be the same network: {a.label} "
                         f"takes {show(a)}; {b.label} takes {show(b)}")
    if len(a.output_names) != len(b.output_names):
        raise ValueError(f"{a.label} has {len(a.output_names)} output(s) but {b.label} has {len(b.output_names)}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of samples, got {chunk!r}")
    if inputs is None:
        inputs = sample_inputs(a.inputs, samples, seed)
    outputs = set(a.output_names)
    layer_pairs = [(n, n, n) for n in a.names if n not in outputs] if layers else []
    output_pairs = [(f"{na if na == nb else f'{na} / {nb}'}" + (f" (output {k})" if len(a.output_names) > 1 else ""),
                     na, nb) for k, (na, nb) in enumerate(zip(a.output_names, b.output_names))]
    tallies = {}
    # a chunk at a time: every layer's value for a whole test set at once may not fit in memory
    for start in range(0, len(inputs[0]), chunk):
        part = [x[start:start + chunk] for x in inputs]
        va, vb = a.run(part), b.run(part)
        for shown, na, nb in layer_pairs + output_pairs:
            if na in va and nb in vb:
                tallies.setdefault(shown, _Tally(shown)).add(va[na], vb[nb])
    report = Report(a.label, b.label, float(tolerance), len(inputs[0]))
    report.layers = [tallies[shown].result(tolerance) for shown, _, _ in layer_pairs if shown in tallies]
    report.outputs = [tallies[shown].result(tolerance) for shown, _, _ in output_pairs if shown in tallies]
    return report

"""The layer contract check: every promise a layer makes, checked on any layer, built-in or your own.

:func:`check_layer_contract` runs, for each configuration of a layer (the cases of
:mod:`nnscratch.layer_cases`, the class's own ``check_cases``, or the one you give):

* ``gradients``: input and weight gradients against finite differences in float64, in training and in
  inference mode;
* ``config``: ``get_config()`` is plain JSON and ``cls(**config)`` rebuilds the same layer;
* ``dtypes``: float32 and float64 agree, and a batch of one gives the rows of a bigger batch;
* ``storage``: C-ordered, batch-innermost and strided inputs give the same values and gradients;
* ``inputs_untouched``: ``forward`` and ``backward`` leave the arrays they are given unchanged (a tensor
  may feed several layers);
* ``wrong_shape``: an input of another shape is refused with a clear error by the framework;
* ``counts``: parameter counts add up, and a frozen layer counts nothing as trainable;
* ``save_load``: a one-layer model saved and loaded predicts the same and holds the same weights and state;
* ``in_a_model``: the whole-model gradient check of a small model containing the layer;
* ``threads``: that model trained for a few steps with ``threads=2`` equals ``threads=1`` (1e-9 relative in
  float64, 1e-5 in float32), and two threaded runs are equal bit for bit;
* ``processes``: the same training with two worker processes (``parallel="processes"``) equals the two
  threads bit for bit (Linux; elsewhere it passes with nothing to check).

A user runs it on their own layer (``nnscratch gradcheck --import my_module`` does too); the test suite runs
it over every registered layer.

A layer meant for SDLM (:mod:`nnscratch.sdlm`) also has a second-order backward; :func:`check_second_order`
(from :mod:`nnscratch.hessian_check`) compares it with finite differences, and the suite runs it over every
registered layer too.

Example:
    >>> import numpy as np
    >>> from nnscratch.layers import Layer
    >>> class Scale(Layer):
    ...     def build(self, input_shape):
    ...         self.add_weight("gamma", input_shape[-1:], "ones")
    ...     def forward(self, x, training=False):
    ...         self._x = x
    ...         return x * self.params["gamma"]
    ...     def backward(self, dout):
    ...         self.grads["gamma"][...] = (dout * self._x).reshape(-1, dout.shape[-1]).sum(axis=0)
    ...         return dout * self.params["gamma"]
    >>> report = check_layer_contract(Scale, (3,))
    >>> report.ok
    True
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import traceback
from dataclasses import dataclass, field

import numpy as np

from .gradcheck import TOLERANCE, check_layer, check_model
from .hessian_check import SecondOrderResult, check_second_order  # noqa: F401  (public here too)
from .layer_cases import CANNOT_CHECK, cases_for
from .layers.base import Layer

#: every check, in the order it runs
CHECKS = ("gradients", "config", "dtypes", "storage", "inputs_untouched", "wrong_shape", "counts", "save_load",
          "in_a_model", "threads", "processes")


class ContractError(AssertionError):
    """A layer breaks its contract; the message lists every failed check with its reason."""


@dataclass
class CheckResult:
    layer: str
    case: str
    check: str
    ok: bool
    message: str = ""


@dataclass
class ContractReport:
    """The outcome of every check of every case. ``ok`` is True when all passed."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def table(self, tablefmt="simple") -> str:
        from tabulate import tabulate
        rows = [[r.layer, r.case, r.check, "ok" if r.ok else "FAIL", r.message.splitlines()[0] if r.message else ""]
                for r in self.results]
        return tabulate(rows, headers=["layer", "case", "check", "status", "detail"], tablefmt=tablefmt,
                        disable_numparse=True)

    def raise_if_failed(self) -> "ContractReport":
        if not self.ok:
            lines = [f"{r.layer} {r.case}: {r.check}: {r.message}" for r in self.failures]
            raise ContractError("layer contract broken:\n  " + "\n  ".join(lines))
        return self

    def __str__(self):
        return self.table()


class _Failed(AssertionError):
    pass


def _require(condition, message):
    if not condition:
        raise _Failed(message)


def check_layer_contract(layer_or_class, input_shape=None, config: dict | None = None, *, checks=CHECKS,
                         seed: int = 0, tolerance: float | None = None,
                         raise_on_failure: bool = True) -> ContractReport:
    """Checks that a layer keeps every promise of the layer contract (see the module docstring).

    Args:
        layer_or_class: a layer class, or a layer (its class and ``get_config()`` are used; the layer
            itself is left untouched).
        input_shape: one sample's shape without the batch axis (a list of shapes for a layer with several
            inputs); default None runs every case of :func:`nnscratch.layer_cases.cases_for`.
        config: the constructor arguments for a class, default ``{}``.
        checks: the names of the checks to run, default all of :data:`CHECKS`.
        seed: seeds weights and data, default 0.
        tolerance: the largest relative error the gradient checks pass, default None (1e-6 for a layer, 1e-5
            for the whole-model check).
        raise_on_failure: raise :class:`ContractError` listing the failures (default), else return them.

    Returns:
        A :class:`ContractReport`.

    Raises:
        ContractError: a check failed (with ``raise_on_failure``).
        ValueError: an unknown check name, or a layer given without an input shape.
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    if isinstance(layer_or_class, Layer):
        cls, base = type(layer_or_class), layer_or_class.get_config()
        if input_shape is None:
            input_shape = layer_or_class.built_input_shape
            if input_shape is None:
                raise ValueError(f"give the input shape to check {layer_or_class.describe()} in, e.g. "
                                 "check_layer_contract(layer, (28, 28, 1))")
        cases = [(base, input_shape)]
    elif isinstance(layer_or_class, type) and issubclass(layer_or_class, Layer):
        cls = layer_or_class
        cases = [(dict(config or {}), input_shape)] if input_shape is not None else cases_for(cls)
    else:
        raise TypeError(f"check_layer_contract takes a Layer subclass or a layer, got {type(layer_or_class).__name__}")
    report = ContractReport()
    if cls.__name__ in CANNOT_CHECK and input_shape is None:
        return report
    for i, (case_config, shape) in enumerate(cases):
        case = f"case {i} {case_config}" if case_config else f"case {i}"
        for name in checks:
            try:
                _CHECKS[name](cls, case_config, _shape(cls, shape), _Options(seed, tolerance))
                report.results.append(CheckResult(cls.__name__, case, name, True))
            except _Failed as e:
                report.results.append(CheckResult(cls.__name__, case, name, False, str(e)))
            except Exception as e:  # noqa: BLE001 (a crash is a failed check, reported with where it happened)
                where = traceback.extract_tb(e.__traceback__)[-1]
                report.results.append(CheckResult(cls.__name__, case, name, False,
                                                  f"{type(e).__name__}: {e} (at {os.path.basename(where.filename)}:"
                                                  f"{where.lineno})"))
    return report.raise_if_failed() if raise_on_failure else report


class _Options:
    def __init__(self, seed, tolerance):
        self.seed = seed
        self.tolerance = tolerance


def _shape(cls, shape):
    if getattr(cls, "multiple_inputs", False):
        return [tuple(s) for s in shape]
    return tuple(shape)


def _make(cls, config):
    try:
        return cls(**copy.deepcopy(config))
    except TypeError as e:
        raise _Failed(f"{cls.__name__}(**{config}) failed ({e}); give the layer cases with a check_cases attribute "
                      "[(config, input_shape), ...]") from None


def _batch(shape, n):
    return [(n,) + s for s in shape] if isinstance(shape, list) else (n,) + shape


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


# -- the checks -------------------------------------------------------------------------------------------
def _gradients(cls, config, shape, options):
    seed = options.seed
    for training in (True, False):
        layer = _make(cls, config)
        report = check_layer(layer, shape, batch_size=2, seed=seed + 1, training=training,
                             tolerance=options.tolerance or TOLERANCE)
        mode = "training" if training else "inference"
        _require(report.ok, f"{mode} mode:\n" + report.table())
        expected = ({f"x{i}" for i in range(len(shape))} if isinstance(shape, list) else {"x"}) | {
            f"{path}{k}" for path, sub in layer.walk() for k in sub.params}
        _require({c.tensor for c in report.checks} == expected,
                 f"{mode} mode checked {sorted(c.tensor for c in report.checks)}, expected {sorted(expected)}")


def _config(cls, config, shape, options):
    layer = _make(cls, config)
    cfg = layer.get_config()
    try:
        text = json.dumps(cfg)
    except (TypeError, ValueError) as e:
        raise _Failed(f"get_config() is not plain JSON ({e}): {cfg!r:.200}") from None
    again = cls.from_config(json.loads(text))
    _require(again.get_config() == cfg, f"cls(**get_config()).get_config() differs: {again.get_config()} != {cfg}")
    for key, value in config.items():
        _require(key in cfg, f"get_config() lacks the constructor argument {key!r}")
        expected = json.loads(json.dumps(value))
        _require(cfg[key] == expected or cfg[key] == value, f"get_config()[{key!r}] is {cfg[key]!r}, given {value!r}")


def _dtypes(cls, config, shape, options):
    seed = options.seed
    rng = np.random.default_rng(seed)
    l32, l64 = _make(cls, config), _make(cls, config)
    out_shape = l32.initialize(shape, "float32", np.random.default_rng(3))
    l64.initialize(shape, "float64", np.random.default_rng(3))
    for k in l32.params:
        np.testing.assert_allclose(l32.params[k], l64.params[k], rtol=1e-6, atol=1e-7, err_msg=f"param {k}")
    x = l64.gradcheck_input(_batch(shape, 3), rng)
    y64 = l64.forward(x, training=False)
    x32 = [a.astype(np.float32) for a in x] if isinstance(x, list) else x.astype(np.float32)
    y32 = l32.forward(x32, training=False)
    _require(y32.dtype == np.float32 and y64.dtype == np.float64,
             f"outputs are {y32.dtype} and {y64.dtype} for float32 and float64 layers")
    _require(y64.shape == (3,) + out_shape, f"output shape {y64.shape}, compute_output_shape says {(3,) + out_shape}")
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5, err_msg="float32 vs float64 output")
    g = rng.standard_normal(y64.shape)
    d64, d32 = _as_list(l64.backward(g)), _as_list(l32.backward(g.astype(np.float32)))
    for a, b in zip(d32, d64):
        _require(a.dtype == np.float32, f"a float32 layer returned a {a.dtype} gradient")
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg="float32 vs float64 input gradient")
    for k in l64.grads:
        _require(l32.grads[k].dtype == np.float32, f"grads[{k!r}] of a float32 layer is {l32.grads[k].dtype}")
        np.testing.assert_allclose(l32.grads[k], l64.grads[k], rtol=1e-3, atol=1e-4, err_msg=f"grads[{k!r}]")
    one = l64.forward([a[:1] for a in x] if isinstance(x, list) else x[:1], training=False)
    np.testing.assert_allclose(one, y64[:1], rtol=1e-10, atol=1e-12, err_msg="a batch of one vs the first row")
    back = _as_list(l64.backward(g[:1]))
    _require(all(b.shape[0] == 1 for b in back), "the gradient of a batch of one has another batch size")


def _stored(a, order):
    if order == "chwn" and a.ndim == 4:
        return np.ascontiguousarray(a.transpose(3, 1, 2, 0)).transpose(3, 1, 2, 0)
    if order == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    return np.ascontiguousarray(a)


def _storage(cls, config, shape, options):
    seed = options.seed
    rng = np.random.default_rng(seed + 5)
    layer = _make(cls, config)
    out_shape = layer.initialize(shape, "float64", np.random.default_rng(3))
    x = layer.gradcheck_input(_batch(shape, 3), rng)
    dout = rng.standard_normal((3,) + out_shape)
    results = {}
    state = copy.deepcopy(layer.state)
    for x_order in ("c", "chwn", "strided"):
        for d_order in ("c", "chwn", "strided"):
            if layer.stochastic:
                layer.rng = np.random.default_rng(7)
            for k, v in state.items():
                layer.state[k][...] = v
            xs = [_stored(a, x_order) for a in x] if isinstance(x, list) else _stored(x, x_order)
            y = np.array(layer.forward(xs, training=True))
            dx = layer.backward(_stored(dout, d_order))
            grads = {k: g.copy() for k, g in layer.grads.items()}
            results[x_order, d_order] = (y, None if dx is None else [np.array(d) for d in _as_list(dx)], grads)
    y0, dx0, g0 = results["c", "c"]
    for key, (y, dx, g) in results.items():
        np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12, err_msg=f"output, storage {key}")
        for a, b in zip(dx or [], dx0 or []):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"input gradient, storage {key}")
        for k in g0:
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-12, atol=1e-12, err_msg=f"grads[{k!r}], storage {key}")


def _inputs_untouched(cls, config, shape, options):
    seed = options.seed
    rng = np.random.default_rng(seed + 2)
    layer = _make(cls, config)
    out_shape = layer.initialize(shape, "float64", np.random.default_rng(3))
    x = layer.gradcheck_input(_batch(shape, 2), rng)
    before = [a.copy() for a in _as_list(x)]
    layer.forward(x, training=True)
    for a, b in zip(_as_list(x), before):
        _require(np.array_equal(a, b), "forward changed its input in place (copy it before writing to it)")
    dout = rng.standard_normal((2,) + out_shape)
    saved = dout.copy()
    layer.backward(dout)
    _require(np.array_equal(dout, saved), "backward changed dout in place (another layer may read the same array)")


def _wrong_shape(cls, config, shape, options):
    layer = _make(cls, config)
    layer.initialize(shape, "float64", np.random.default_rng(0))
    if isinstance(shape, list):
        bad = [np.ones((2,) + tuple(d + 1 for d in s)) for s in shape]
    else:
        bad = np.ones((2,) + tuple(d + 1 for d in shape))
    try:
        layer(bad)
    except ValueError as e:
        _require("expects input" in str(e), f"the error does not say what was expected: {e}")
        return
    raise _Failed("an input of another shape was not refused")


def _counts(cls, config, shape, options):
    layer = _make(cls, config)
    layer.initialize(shape, "float32", np.random.default_rng(0))
    total = layer.count_params()
    _require(total == layer.count_trainable_params() + layer.count_non_trainable_params(),
             "count_params() != trainable + non-trainable")
    _require(total <= sum(v.size for v in layer.weights().values()), "more parameters counted than arrays hold")
    layer.trainable = False
    _require(layer.count_trainable_params() == 0, "a frozen layer still counts trainable parameters")


def _one_layer_model(cls, config, shape, dtype="float64", threads=1, head=False, seed=0):
    """``Input(s) -> layer [-> Flatten -> Dense(3) -> Softmax]`` with a matching loss and plain SGD."""
    from .graph import Input
    from .layers import Dense, Flatten, Softmax
    from .model import Model
    inputs = [Input(s) for s in shape] if isinstance(shape, list) else Input(shape)
    out = _make(cls, config)(inputs)
    if head:
        if len(out.sample_shape) > 1:
            out = Flatten()(out)
        out = Softmax()(Dense(3)(out))
    model = Model(inputs=inputs, outputs=out, dtype=dtype, seed=seed, threads=threads)
    model.set(loss="categorical_crossentropy" if head else "mse", optimizer={"class_name": "SGD",
                                                                              "config": {"learning_rate": 0.05}})
    model.finalize()
    return model


def _data(model, n, seed, classes=None):
    """A batch for ``model``: inputs from the tested layer's own ``gradcheck_input`` (away from its kinks) and
    class labels (``classes``) or regression targets."""
    rng = np.random.default_rng(seed)
    layer = next(step.layer for step in model.plan.steps if not step.feed)
    shapes = [t.sample_shape for t in model.inputs]
    x = layer.gradcheck_input(_batch(shapes, n) if layer.multiple_inputs else (n,) + shapes[0], rng)
    y = rng.integers(0, classes, n) if classes else rng.standard_normal((n,) + tuple(model.output_shape))
    return x, y


def _save_load(cls, config, shape, options):
    seed = options.seed
    from .io.hdf5 import load_model
    model = _one_layer_model(cls, config, shape, seed=seed)
    x, y = _data(model, 6, seed)
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)  # moves state such as moving averages off their start
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "layer.h5")
        model.save(path)
        again = load_model(path)
    a, b = model.get_weights(), again.get_weights()
    _require(sorted(a) == sorted(b), f"loaded weights {sorted(b)} differ from saved {sorted(a)}")
    for k in a:
        _require(np.array_equal(a[k], b[k]), f"{k} differs after save and load")
    np.testing.assert_array_equal(model.predict(x), again.predict(x), err_msg="predictions after save and load")


def _in_a_model(cls, config, shape, options):
    seed = options.seed
    model = _one_layer_model(cls, config, shape, head=True, seed=seed)
    x, y = _data(model, 3, seed, classes=3)
    for training in (True, False):
        # 1e-5: through a Dense and a softmax the loss curves enough for central differences to err by ~1e-11
        # in absolute terms, which is 1e-6 of the smallest gradients; a wrong backward errs by far more
        report = check_model(model, x, y, max_elements=60, seed=seed, training=training,
                             tolerance=options.tolerance or 1e-5)
        _require(report.ok, f"{'training' if training else 'inference'} mode:\n" + report.table())


def _train_split(cls, config, shape, seed, dtype, threads, parallel="threads"):
    """The weights of the one-layer model with a head after an epoch of batches of 7 split over ``threads``
    (chunks of 4 and 3), and the worker processes stopped at once."""
    from .engine.parallel import split_every_batch
    from .engine.processes import stop_workers
    model = _one_layer_model(cls, config, shape, dtype=dtype, threads=threads, head=True, seed=seed)
    model.parallel = parallel
    x, y = _data(model, 21, seed, classes=3)
    try:
        with split_every_batch():
            model.fit(x, y, epochs=1, batch_size=7, shuffle=True, verbose=0)
    finally:
        stop_workers(model)
    return model.get_weights()


def _threads(cls, config, shape, options):
    seed = options.seed
    for dtype, rtol in (("float64", 1e-9), ("float32", 1e-5)):
        one, two, again = (_train_split(cls, config, shape, seed, dtype, threads) for threads in (1, 2, 2))
        for k in one:
            _require(np.array_equal(two[k], again[k]), f"{dtype}: two runs with threads=2 differ in {k}")
            scale = max(float(np.abs(one[k]).max()), 1e-3)
            err = float(np.abs(two[k] - one[k]).max()) / scale
            _require(err <= rtol, f"{dtype}: threads=2 differs from threads=1 in {k} by {err:.2e} (relative to its "
                                  f"largest value), more than {rtol:g}; does the layer couple the samples of a batch "
                                  "(use self.batch_sum) or draw random numbers outside self.batch_uniform?")


def _processes(cls, config, shape, options):
    from .engine.processes import fork_available
    if not fork_available():
        return
    for dtype in ("float64", "float32"):
        threads, processes = (_train_split(cls, config, shape, options.seed, dtype, 2, parallel)
                              for parallel in ("threads", "processes"))
        for k in threads:
            _require(np.array_equal(threads[k], processes[k]),
                     f"{dtype}: two worker processes differ from two threads in {k}; does the layer keep something "
                     "between the chunks of a batch outside its params, state and self.batch_sum (which a worker "
                     "process does not share)? Model(parallel='threads') keeps such a layer working")


_CHECKS = {"gradients": _gradients, "config": _config, "dtypes": _dtypes, "storage": _storage,
           "inputs_untouched": _inputs_untouched, "wrong_shape": _wrong_shape, "counts": _counts,
           "save_load": _save_load, "in_a_model": _in_a_model, "threads": _threads,
           "processes": _processes}

"""One test over every registered layer (scikit-learn's estimator checks, Chainer's gradient_check).

For every layer class that nnscratch registers, in every configuration of ``nnscratch/layer_cases.py``:
the gradient check (input and every parameter, float64), the config round-trip, float32/float64
agreement, batch size 1, and a clear error for a wrongly shaped input. A new layer is covered the moment
it is registered; one that cannot take a check is listed in ``CANNOT_CHECK`` with its reason.
(The save/load round trip of every layer lives in tests/io/test_hdf5.py.)
"""
import json

import numpy as np
import pytest

import nnscratch  # noqa: F401  (registers every built-in layer)
from nnscratch.gradcheck import check_layer
from nnscratch.layers import LAYERS
from layer_configs import CANNOT_CHECK, DEFAULT_INPUT_SHAPES, LAYER_CONFIGS


def _cases():
    cases = []
    for cls in LAYERS.classes():
        if not cls.__module__.startswith("nnscratch."):
            continue
        name = cls.__name__
        if name in CANNOT_CHECK:
            continue
        configs = LAYER_CONFIGS.get(name)
        if configs is None:
            configs = [({}, shape) for shape in DEFAULT_INPUT_SHAPES]
        for i, (config, shape) in enumerate(configs):
            cases.append(pytest.param(cls, config, tuple(shape), id=f"{name}-{i}"))
    return cases


CASES = _cases()
# taken at collection: doctests run later register example layers whose module also reads "nnscratch."
BUILTIN = {c.__name__ for c in LAYERS.classes() if c.__module__.startswith("nnscratch.")}


def _make(cls, config):
    try:
        return cls(**config)
    except TypeError as e:
        pytest.fail(f"{cls.__name__}({config}) failed ({e}); give it configurations in nnscratch/layer_cases.py "
                    "or a reason in CANNOT_CHECK")


def test_every_builtin_layer_has_a_case():
    covered = {p.values[0].__name__ for p in CASES} | set(CANNOT_CHECK)
    assert BUILTIN <= covered
    assert {"Dense", "ReLU", "Softmax", "Dropout", "Conv2D", "MaxPool2D", "RBFOutput"} <= BUILTIN


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_gradient(cls, config, shape):
    layer = _make(cls, config)
    report = check_layer(layer, shape, batch_size=2, seed=1)
    assert report.ok, "\n" + report.table()
    assert {c.tensor for c in report.checks} == {"x"} | set(layer.params)


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_config_round_trip(cls, config, shape):
    layer = _make(cls, config)
    cfg = layer.get_config()
    json.dumps(cfg)  # must be plain JSON for the model file
    again = cls.from_config(json.loads(json.dumps(cfg)))
    assert again.get_config() == cfg
    for key, value in config.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert cfg[key] == expected or cfg[key] == value


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_float32_and_float64_agree_and_batch_of_one(cls, config, shape):
    rng = np.random.default_rng(0)
    l32, l64 = _make(cls, config), _make(cls, config)
    out_shape = l32.initialize(shape, "float32", np.random.default_rng(3))
    l64.initialize(shape, "float64", np.random.default_rng(3))
    for k in l32.params:
        np.testing.assert_allclose(l32.params[k], l64.params[k], rtol=1e-6, atol=1e-7)
    x = l64.gradcheck_input((3,) + shape, rng)
    y64 = l64.forward(x, training=False)
    y32 = l32.forward(x.astype(np.float32), training=False)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    assert y64.shape == (3,) + out_shape
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    g = rng.standard_normal(y64.shape)
    d64 = l64.backward(g)
    d32 = l32.backward(g.astype(np.float32))
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, d64, rtol=1e-3, atol=1e-4)
    for k in l64.grads:
        assert l32.grads[k].dtype == np.float32
        np.testing.assert_allclose(l32.grads[k], l64.grads[k], rtol=1e-3, atol=1e-4)
    one = l64.forward(x[:1], training=False)
    np.testing.assert_allclose(one, y64[:1], rtol=1e-10, atol=1e-12)
    assert l64.backward(g[:1]).shape == (1,) + shape


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_wrongly_shaped_input_is_refused_clearly(cls, config, shape):
    layer = _make(cls, config)
    layer.initialize(shape, "float64", np.random.default_rng(0))
    bad = (2,) + tuple(d + 1 for d in shape)
    with pytest.raises(ValueError, match=r"expects input of shape"):
        layer.forward(np.ones(bad), training=False)


@pytest.mark.parametrize("cls, config, shape", CASES)
def test_parameter_count_matches_params(cls, config, shape):
    layer = _make(cls, config)
    layer.initialize(shape, "float32", np.random.default_rng(0))
    assert layer.count_params() == layer.count_trainable_params() + layer.count_non_trainable_params()
    assert layer.count_params() <= sum(v.size for v in layer.params.values()) + sum(
        v.size for v in layer.constants.values())
    layer.trainable = False
    assert layer.count_trainable_params() == 0


def _stored(a, order):
    import naive_conv
    return naive_conv.stored(a, order) if a.ndim == 4 else np.ascontiguousarray(a)


#: layers that hand back an image gradient stored the way their (batch-innermost) input was
KEEPS_STORAGE = {"Conv2D", "MaxPool2D", "AvgPool2D", "Subsampling2D", "GlobalAvgPool2D", "Flatten", "Reshape",
                 "ZeroPad2D"}


@pytest.mark.parametrize("cls, config, shape", [c for c in CASES if len(c.values[2]) == 3])
def test_image_layers_compute_the_same_whatever_the_storage_order(cls, config, shape):
    # convolution and pooling hand out (N, H, W, C) views of batch-innermost arrays; every layer must
    # give the same values for them as for C-ordered arrays, and the layers that build an image
    # gradient in C order must hand it back stored like their input
    from nnscratch.ops.layout import is_chwn
    rng = np.random.default_rng(5)
    layer = _make(cls, config)
    out_shape = layer.initialize(shape, "float64", np.random.default_rng(3))
    x = layer.gradcheck_input((3,) + shape, rng)
    dout = rng.standard_normal((3,) + out_shape)
    results = {}
    for x_order in ("nhwc", "chwn", "strided"):
        for d_order in ("nhwc", "chwn"):
            if getattr(layer, "stochastic", False):
                layer.rng = np.random.default_rng(7)
            y = layer.forward(_stored(x, x_order), training=True)
            dx = layer.backward(_stored(dout, d_order))
            grads = {k: g.copy() for k, g in layer.grads.items()}
            results[x_order, d_order] = (np.array(y), None if dx is None else np.array(dx), grads)
            if x_order == "chwn" and cls.__name__ in KEEPS_STORAGE and dx is not None:
                assert is_chwn(dx), f"{cls.__name__} returned its gradient stored in C order"
    y0, dx0, g0 = results["nhwc", "nhwc"]
    for key, (y, dx, g) in results.items():
        np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12, err_msg=str(key))
        if dx0 is not None:
            np.testing.assert_allclose(dx, dx0, rtol=1e-12, atol=1e-12, err_msg=str(key))
        for k in g0:
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-12, atol=1e-12, err_msg=f"{key} {k}")

"""MaxPool2D, AvgPool2D, Subsampling2D and GlobalAvgPool2D: shapes, the loop reference, parameters, errors."""
import json

import numpy as np
import pytest

import naive_conv
from nnscratch.gradcheck import check_layer
from nnscratch.layers import (LAYERS, AvgPool1D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool1D, MaxPool2D,
                               Subsampling2D)
from nnscratch.ops.im2col import resolve_padding
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn
from nnscratch.ops.pooling import max_pool_forward


def built(layer, shape, dtype="float64", seed=0):
    layer.initialize(shape, dtype, np.random.default_rng(seed))
    return layer


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, Subsampling2D])
@pytest.mark.parametrize("kwargs, in_shape, out_shape", [
    ({}, (28, 28, 6), (14, 14, 6)),
    ({}, (5, 5, 2), (2, 2, 2)),                                   # odd sizes floor, like Keras 'valid'
    ({"pool_size": 3, "strides": 2}, (7, 7, 1), (3, 3, 1)),      # overlapping
    ({"pool_size": (2, 3)}, (6, 7, 1), (3, 2, 1)),
    ({"pool_size": 2, "padding": "same"}, (5, 5, 3), (3, 3, 3)),
    ({"pool_size": 3, "strides": 1, "padding": "same"}, (4, 5, 1), (4, 5, 1)),
    ({"pool_size": 2, "strides": (1, 2)}, (4, 4, 1), (3, 2, 1)),
])
def test_output_shapes(cls, kwargs, in_shape, out_shape):
    layer = built(cls(**kwargs), in_shape)
    assert layer.output_shape == out_shape
    assert layer.forward(np.ones((2,) + in_shape)).shape == (2,) + out_shape


CASES = [  # (kwargs, input shape)
    ({}, (4, 4, 3)),
    ({}, (5, 7, 2)),
    ({"pool_size": 3, "strides": 2}, (7, 7, 2)),
    ({"pool_size": (3, 2), "strides": 1}, (5, 4, 1)),
    ({"pool_size": 2, "padding": "same"}, (5, 5, 2)),
    ({"pool_size": 3, "strides": 1, "padding": "same"}, (4, 4, 1)),
    ({"pool_size": 2, "strides": 3}, (7, 8, 1)),
]


def _reference(layer, x):
    pads = resolve_padding(layer.padding, x.shape[1:3], layer._pool, layer._strides)
    if isinstance(layer, MaxPool2D):
        return naive_conv.max_pool(x, layer._pool, layer._strides, pads)
    return naive_conv.sum_pool(x, layer._pool, layer._strides, pads, average=isinstance(layer, AvgPool2D))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kwargs, shape", CASES)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("batch", [1, 2])
def test_max_and_average_match_loops(cls, kwargs, shape, dtype, tol, batch):
    layer = built(cls(**kwargs), shape, dtype)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch,) + shape).astype(dtype)
    out = layer.forward(x)
    ref, ref_backward = _reference(layer, x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    assert dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(dx, ref_backward(dout), rtol=tol, atol=tol)


@pytest.mark.parametrize("kwargs, shape", CASES)
def test_subsampling_is_coefficient_times_window_sum_plus_bias(kwargs, shape):
    layer = built(Subsampling2D(coefficient_initializer="lecun1998", bias_initializer="ones", **kwargs), shape)
    layer.params["bias"][...] = np.linspace(-1, 1, shape[2])
    coef, bias = layer.params["coefficient"], layer.params["bias"]
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3,) + shape)
    sums, sum_backward = _reference(layer, x)
    out = layer.forward(x)
    np.testing.assert_allclose(out, sums * coef + bias, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, sum_backward(dout * coef), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["coefficient"], (dout * sums).sum(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], dout.sum(axis=(0, 1, 2)), rtol=1e-12)


def test_subsampling_parameters():
    layer = built(Subsampling2D(), (28, 28, 6), "float32")
    assert set(layer.params) == {"coefficient", "bias"}
    assert layer.params["coefficient"].shape == layer.params["bias"].shape == (6,)
    assert layer.count_params() == 12
    np.testing.assert_array_equal(layer.params["coefficient"], 0.25)  # starts as a 2x2 average pool
    np.testing.assert_array_equal(layer.params["bias"], 0)
    x = np.random.default_rng(0).standard_normal((2, 28, 28, 6)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x), built(AvgPool2D(), (28, 28, 6), "float32").forward(x), rtol=1e-6)
    lecun = built(Subsampling2D(coefficient_initializer="lecun1998"), (10, 10, 16), seed=3)
    assert np.abs(lecun.params["coefficient"]).max() <= 2.4 / 4 and np.unique(lecun.params["coefficient"]).size == 16


def test_average_same_padding_averages_only_real_elements():
    layer = built(AvgPool2D(2, padding="same"), (3, 3, 1))
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    np.testing.assert_allclose(layer.forward(x)[0, :, :, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_max_pool_gradcheck_input_keeps_window_values_apart():
    layer = MaxPool2D(3, 1)
    x = layer.gradcheck_input((2, 6, 6, 3), np.random.default_rng(0))
    gaps = np.diff(np.sort(x.ravel()))
    assert gaps.min() > 1e-3  # orders of magnitude above the checker's 1e-5 steps
    assert np.abs(x).max() <= 1.01


@pytest.mark.parametrize("layer, shape", [
    (MaxPool2D(), (4, 4, 2)), (MaxPool2D(3, 2), (7, 7, 1)), (MaxPool2D(2, padding="same"), (3, 5, 2)),
    (AvgPool2D(3, 1, padding="same"), (4, 4, 1)), (Subsampling2D(), (4, 6, 2)), (GlobalAvgPool2D(), (3, 3, 2)),
])
def test_gradient_check(layer, shape):
    report = check_layer(layer, shape, batch_size=2, seed=2)
    assert report.ok, "\n" + report.table()


def test_a_max_pool_that_spreads_the_gradient_fails_the_gradient_check():
    class Spread(AvgPool2D, register=False):  # average-pool backward behind a max-pool forward
        def forward(self, x, training=False):
            super().forward(x, training)
            return max_pool_forward(x, self._pool, self._strides, self._pads)

    assert not check_layer(Spread(), (4, 4, 1), x=MaxPool2D().gradcheck_input((2, 4, 4, 1),
                                                                              np.random.default_rng(0))).ok


def test_global_average_pool():
    layer = built(GlobalAvgPool2D(), (3, 4, 5), "float32")
    assert layer.output_shape == (5,)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x.mean(axis=(1, 2)), rtol=1e-5)
    dx = layer.backward(np.ones((2, 5)))
    assert dx.shape == x.shape and dx.dtype == np.float32
    np.testing.assert_allclose(dx, 1 / 12)


def test_configs_round_trip_and_keras_names_resolve():
    for layer in (MaxPool2D((2, 3), strides=1, padding="same", name="p"), AvgPool2D(3),
                  Subsampling2D(2, coefficient_initializer="lecun1998"), GlobalAvgPool2D()):
        config = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(config).get_config() == config
    assert MaxPool2D((2, 3), strides=1).get_config()["pool_size"] == [2, 3]
    assert MaxPool2D().get_config()["strides"] is None
    assert LAYERS.get("MaxPooling2D") is MaxPool2D and LAYERS.get("AveragePooling2D") is AvgPool2D
    assert LAYERS.get("GlobalAveragePooling2D") is GlobalAvgPool2D


@pytest.mark.parametrize("make, message", [
    (lambda: MaxPool2D(0), r"pool_size\[0\] must be a positive integer, got 0"),
    (lambda: AvgPool2D((2, -1)), r"pool_size\[1\] must be a positive integer, got -1"),
    (lambda: MaxPool2D(2, strides=0), r"strides\[0\] must be a positive integer, got 0"),
    (lambda: MaxPool2D(2, padding="full"), r"padding must be one of 'valid', 'same'; got 'full'"),
    (lambda: AvgPool2D(2, padding=1), r"padding must be one of 'valid', 'same'; got 1"),
    (lambda: Subsampling2D(coefficient_initializer="nope"), r"unknown initializer 'nope'"),
])
def test_bad_arguments_fail_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("layer, shape, message", [
    (MaxPool2D(3), (2, 5, 1), r"pool height 3 is larger than the padded input height 2"),
    (AvgPool2D((1, 4)), (5, 3, 1), r"pool width 4 is larger than the padded input width 3"),
    (MaxPool2D(), (16,), r"expects images of shape \(height, width, channels\), got input shape \(16,\)"),
    (Subsampling2D(), (4, 4), r"expects images of shape \(height, width, channels\)"),
    (GlobalAvgPool2D(), (4, 4, 2, 1), r"expects images of shape \(height, width, channels\)"),
])
def test_bad_input_shapes_fail_at_build(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.initialize(shape)


def test_forward_refuses_another_channel_count():
    layer = built(Subsampling2D(), (4, 4, 3))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 4, 4, 3\), got \(1, 4, 4, 2\)"):
        layer(np.zeros((1, 4, 4, 2)))  # the framework checks shapes before a layer sees them


@pytest.mark.parametrize("layer", [MaxPool2D(), AvgPool2D(), Subsampling2D(), GlobalAvgPool2D()])
def test_as_a_first_layer_backward_skips_dx(layer):
    built(layer, (4, 4, 2))
    out = layer.forward(np.random.default_rng(0).standard_normal((2, 4, 4, 2)))
    layer.input_grad_needed = False
    assert layer.backward(np.ones_like(out)) is None
    for grad in layer.grads.values():  # parameter gradients are still filled (Subsampling2D)
        assert grad.any()


# found by mutation testing (docs/mutation-testing.md)

@pytest.mark.parametrize("kwargs, shape", [
    ({"pool_size": 3, "strides": 2}, (6, 6, 1)),           # the 2x2 fast path is only for 2x2 windows...
    ({"pool_size": (3, 2), "strides": 2}, (6, 4, 1)),
    ({"pool_size": (2, 3), "strides": 2}, (4, 6, 1)),
    ({"pool_size": 2, "strides": 1}, (4, 4, 1)),           # ...with strides 2...
    ({"pool_size": 2, "strides": (3, 2)}, (6, 4, 1)),
    ({"pool_size": 2, "strides": (2, 3)}, (4, 6, 1)),
    ({"pool_size": 2, "padding": "same"}, (3, 4, 1)),      # ...no padding...
    ({"pool_size": 2, "padding": "same"}, (4, 3, 1)),
    ({}, (5, 4, 3)), ({}, (4, 5, 2)), ({}, (3, 4, 2)),     # ...and even heights and widths
    ({}, (6, 6, 3)), ({}, (4, 6, 1)), ({}, (6, 4, 1)), ({}, (4, 3, 1)),
])
@pytest.mark.parametrize("training", [False, True])  # the fast path is taken in training only
def test_max_pool_matches_loops_on_both_sides_of_its_fast_paths_conditions(kwargs, shape, training):
    layer = built(MaxPool2D(**kwargs), shape)
    x = np.random.default_rng(3).standard_normal((2,) + shape)
    out = layer.forward(x, training=training)
    ref, ref_backward = _reference(layer, x)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), ref_backward(dout), rtol=1e-12)


def test_average_of_a_one_pixel_image_with_same_padding_is_the_pixel():
    # every window is partial: no window has the full area, so the scale must come from the counts
    layer = built(AvgPool2D(2, padding="same"), (1, 1, 2))
    x = np.array([[[[3.0, -1.0]]]])
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 2))), np.ones((1, 1, 1, 2)))


@pytest.mark.parametrize("layer, shape, macs", [
    (AvgPool2D((2, 3)), (4, 6, 5), 2 * 2 * 5 * 2 * 3),
    (Subsampling2D((2, 3)), (4, 6, 5), 2 * 2 * 5 * (2 * 3 + 1)),  # LeCun's count: the window and the bias
    (GlobalAvgPool2D(), (4, 6, 5), 4 * 6 * 5),
    (AvgPool1D(3), (7, 5), 2 * 5 * 3),
])
def test_count_macs(layer, shape, macs):
    assert built(layer, shape).count_macs() == macs


def test_subsampling_tells_its_initialisers_the_window_area_and_one_output():
    seen = []

    def initializer(shape, fan_in, fan_out, rng, dtype):
        seen.append((shape, fan_in, fan_out))
        return np.full(shape, 0.25, dtype)

    layer = built(Subsampling2D((2, 3), coefficient_initializer=initializer, bias_initializer=initializer), (4, 6, 5))
    assert seen == [((5,), 6, 1), ((5,), 6, 1)]
    np.testing.assert_array_equal(layer.params["bias"], np.full(5, 0.25))


@pytest.mark.parametrize("argument", ["coefficient_initializer", "bias_initializer"])
def test_subsampling_names_the_initialiser_argument_that_is_wrong(argument):
    with pytest.raises(ValueError, match=rf"^{argument}: unknown initializer 'nope'; known: "):
        Subsampling2D(**{argument: "nope"})


def test_global_max_pool_drops_the_spatial_axes_by_default():
    layer = built(GlobalMaxPool2D(), (3, 4, 2))
    assert layer.output_shape == (2,)
    assert layer.forward(np.ones((5, 3, 4, 2))).shape == (5, 2)
    assert built(GlobalMaxPool2D(keepdims=True), (3, 4, 2)).output_shape == (1, 1, 2)


def _pool1d_reference(layer, x):
    """The 2-D loop reference over a height of 1."""
    pads = resolve_padding(layer.padding, (1, x.shape[1]), layer._pool, layer._strides)
    x4 = x[:, None]
    if isinstance(layer, MaxPool1D):
        ref, _ = naive_conv.max_pool(x4, layer._pool, layer._strides, pads)
    else:
        ref, _ = naive_conv.sum_pool(x4, layer._pool, layer._strides, pads, average=True)
    return ref[:, 0]


@pytest.mark.parametrize("cls", [MaxPool1D, AvgPool1D])
@pytest.mark.parametrize("kwargs, shape, steps", [
    ({}, (7, 3), 3), ({"pool_size": (3,)}, (7, 3), 2), ({"pool_size": 3, "strides": 1}, (6, 2), 4),
    ({"pool_size": 3, "strides": (2,), "padding": "same"}, (7, 2), 4),
])
def test_1d_pools_match_the_2d_loops_over_a_height_of_one(cls, kwargs, shape, steps):
    layer = built(cls(**kwargs), shape)
    assert layer.output_shape == (steps, shape[1])
    x = np.random.default_rng(6).standard_normal((2,) + shape)
    np.testing.assert_allclose(layer.forward(x), _pool1d_reference(layer, x), rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda: MaxPool1D((2, 2)), r"^pool_size must be a positive integer, got \(2, 2\)$"),
    (lambda: AvgPool1D(2, strides=0), r"^strides must be a positive integer, got 0$"),
    (lambda: MaxPool1D(2, padding="causal"), r"^padding must be one of 'valid', 'same'; got 'causal'$"),
    (lambda: MaxPool1D(2, padding=1), r"^padding must be one of 'valid', 'same'; got 1$"),
])
def test_1d_pools_refuse_bad_arguments_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_1d_pools_refuse_images_with_the_shape_they_expect():
    with pytest.raises(ValueError, match=r"^p \(MaxPool1D\) expects sequences of shape \(steps, channels\), got input "
                                         r"shape \(4, 4, 2\)$"):
        MaxPool1D(name="p").initialize((4, 4, 2))


def test_max_pools_gradcheck_jitter_is_small_and_varied():
    shape = (2, 4, 4, 3)
    size = int(np.prod(shape))
    x = MaxPool2D().gradcheck_input(shape, np.random.default_rng(0))
    grid = np.round((x + 1.0) * size / 2.0)
    np.testing.assert_array_equal(np.sort(grid.ravel()), np.arange(size))
    jitter = x - (grid * (2.0 / size) - 1.0)
    assert np.abs(jitter).max() <= 0.2 / size
    assert len(np.unique(np.round(jitter * size, 6))) > size // 2


@pytest.mark.parametrize("layer", [AvgPool2D(2), Subsampling2D(2), GlobalAvgPool2D()])
def test_the_gradient_is_stored_batch_innermost_when_the_input_was(layer):
    built(layer, (4, 4, 3))
    x = from_chwn(to_chwn(np.random.default_rng(0).standard_normal((2, 4, 4, 3))))
    assert is_chwn(x)
    out = layer.forward(x)
    assert is_chwn(layer.backward(np.ones(out.shape)))


def test_subsampling_keeps_its_name():
    assert Subsampling2D(2, name="s2").name == "s2"


@pytest.mark.parametrize("layer, shape, message", [
    (MaxPool1D(5, name="p"), (3, 2), r"^the pool length 5 is larger than the padded input length 3 "
                                      r"\(input 3, padding 0\+0\); "
                                          r"use a smaller pool, padding='same', or a larger input$"),
    (GlobalMaxPool2D(name="g"), (4, 4), r"^g \(GlobalMaxPool2D\) expects images of shape \(height, width, channels\)"),
])
def test_too_small_or_flat_inputs_are_refused_with_the_fix(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.initialize(shape)


def test_subsampling_hands_back_the_second_derivative_of_its_input_each_window_times_its_coefficient_squared():
    # found by mutation testing with the SDLM tests selected: returning d2x only where no one needs it (and None
    # where the layer below does) passed them
    from nnscratch.layers import Subsampling2D
    layer = Subsampling2D(2)
    layer.build((4, 4, 3))
    layer.params["coefficient"][...] = [0.5, -2.0, 3.0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    d2out = rng.uniform(0.0, 1.0, (2, 2, 2, 3)).astype(np.float32)
    layer.forward(x, training=False)
    d2x = layer.backward_second_order(x, d2out)
    expected = np.repeat(np.repeat(d2out, 2, axis=1), 2, axis=2) * np.float32([0.25, 4.0, 9.0])
    np.testing.assert_allclose(d2x, expected, rtol=1e-6)

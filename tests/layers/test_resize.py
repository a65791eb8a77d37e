"""layers/resize.py: UpSampling2D's and Cropping2D's arguments, configuration, dtypes, storage order and
refusals (the values against loops and PyTorch are in test_resize_pool_variants.py)."""
import re

import numpy as np
import pytest

from nnscratch.layers import Cropping2D, UpSampling2D
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn


def built(layer, shape, dtype="float64"):
    layer.initialize(shape, dtype, np.random.default_rng(0))
    return layer


def chwn(x):
    return from_chwn(to_chwn(x))


def test_upsampling_defaults_to_twice_the_size_by_repeating_pixels():
    layer = UpSampling2D()
    assert (layer.size, layer.interpolation) == (2, "nearest")
    assert built(layer, (2, 3, 1)).output_shape == (4, 6, 1)
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    np.testing.assert_array_equal(layer.forward(x), np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))


@pytest.mark.parametrize("size, config, shape", [(3, 3, (6, 12, 2)), ((2, 4), [2, 4], (4, 16, 2)),
                                                 ([1, 3], [1, 3], (2, 12, 2))])
def test_upsampling_keeps_its_size_as_given_in_its_config_and_scales_each_axis(size, config, shape):
    layer = built(UpSampling2D(size, "bilinear"), (2, 4, 2))
    assert layer.get_config()["size"] == config and layer.get_config()["interpolation"] == "bilinear"
    assert layer.output_shape == shape
    again = built(UpSampling2D.from_config(layer.get_config()), (2, 4, 2))
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 2))
    np.testing.assert_array_equal(again.forward(x), layer.forward(x))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_counts_four_multiply_adds_per_output_value_when_bilinear(interpolation):
    layer = built(UpSampling2D((2, 3), interpolation), (3, 4, 5))
    assert layer.count_macs() == (4 * 6 * 12 * 5 if interpolation == "bilinear" else 0)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_computes_in_its_dtype(interpolation):
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 2))
    reference = built(UpSampling2D(3, interpolation), (3, 3, 2), "float64")
    layer = built(UpSampling2D(3, interpolation), (3, 3, 2), "float32")
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference.forward(x), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(2).standard_normal(out.shape)
    assert layer.backward(g).dtype == np.float32


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("start, to", [("float32", "float64"), ("float64", "float32")])
def test_upsampling_after_astype_is_a_layer_built_in_the_new_dtype(interpolation, start, to):
    # a factor of 3 makes interpolation weights (thirds) that float32 rounds: the weights must be cast too
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 2)).astype(to)
    g = np.random.default_rng(2).standard_normal((2, 9, 9, 2)).astype(to)
    reference = built(UpSampling2D(3, interpolation), (3, 3, 2), to)
    layer = built(UpSampling2D(3, interpolation), (3, 3, 2), start).astype(to)
    out, dx = layer.forward(x), layer.backward(g)
    assert out.dtype == dx.dtype == np.dtype(to)
    np.testing.assert_array_equal(out, reference.forward(x))
    np.testing.assert_array_equal(dx, reference.backward(g))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_keeps_the_gradients_storage_order_and_gives_none_when_no_input_gradient_is_needed(interpolation):
    layer = built(UpSampling2D(2, interpolation), (3, 3, 2))
    x = np.random.default_rng(3).standard_normal((2, 3, 3, 2))
    out = layer.forward(chwn(x))
    assert is_chwn(out)
    g = np.random.default_rng(4).standard_normal(out.shape)
    dx = layer.backward(chwn(g))
    assert is_chwn(dx)
    np.testing.assert_allclose(dx, layer.backward(np.ascontiguousarray(g)), rtol=1e-12)
    layer.input_grad_needed = False
    assert layer.backward(g) is None


@pytest.mark.parametrize("make, message", [
    (lambda: UpSampling2D(0), "size[0] must be a positive integer, got 0"),
    (lambda: UpSampling2D((2, 0)), "size[1] must be a positive integer, got 0"),
    (lambda: UpSampling2D("x"), "size must be an integer or a pair of integers, got 'x'"),
    (lambda: UpSampling2D((2, 2, 2)), "size must be an integer or a pair of integers, got (2, 2, 2)"),
    (lambda: UpSampling2D(2, interpolation="area"), "interpolation must be one of 'nearest', 'bilinear', got 'area'"),
] + [(lambda bad=bad: Cropping2D(bad), "cropping must be a non-negative int, a pair (symmetric_height, "
      f"symmetric_width) or ((top, bottom), (left, right)); got {bad!r}")
     for bad in (-1, True, 1.0, (1, 2, 3), (1, -1), (1, True), ((1, 2), (3,)), ((1, 2), (3, -1)), ((1, 2), 3),
                 ((1, 2), (3, False)), "2")])
def test_every_refusal_word_for_word(make, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make()


@pytest.mark.parametrize("cropping, shape, message", [
    (((2, 1), (0, 0)), (3, 4, 1), "cropping=[[2, 1], [0, 0]] removes 2 + 1 of the 3 positions along the height, "
                                  "leaving none; crop less"),
    (((0, 0), (2, 2)), (3, 4, 1), "cropping=[[0, 0], [2, 2]] removes 2 + 2 of the 4 positions along the width, "
                                  "leaving none; crop less"),
    ((0, 3), (3, 5, 1), "cropping=[0, 3] removes 3 + 3 of the 5 positions along the width, leaving none; crop less"),
    (2, (4, 9, 1), "cropping=2 removes 2 + 2 of the 4 positions along the height, leaving none; crop less"),
])
def test_cropping_everything_away_is_refused_word_for_word(cropping, shape, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        Cropping2D(cropping).initialize(shape)


@pytest.mark.parametrize("cropping, config, crops", [
    (1, 1, ((1, 1), (1, 1))), (np.int64(2), 2, ((2, 2), (2, 2))), ((1, 0), [1, 0], ((1, 1), (0, 0))),
    ([0, 2], [0, 2], ((0, 0), (2, 2))), (((2, 0), (1, 3)), [[2, 0], [1, 3]], ((2, 0), (1, 3))),
    ([[0, 1], (1, 0)], [[0, 1], [1, 0]], ((0, 1), (1, 0))), ((np.int32(1), 0), [1, 0], ((1, 1), (0, 0))),
])
def test_cropping_reads_each_form_and_removes_what_it_says(cropping, config, crops):
    layer = built(Cropping2D(cropping), (6, 7, 2))
    assert layer.get_config()["cropping"] == config
    assert repr(layer.get_config()["cropping"]) == repr(config)  # plain ints: no np.int64(2) in the config
    (t, b), (l, r) = crops
    assert layer.output_shape == (6 - t - b, 7 - l - r, 2)       # one position left is allowed
    x = np.random.default_rng(5).standard_normal((2, 6, 7, 2))
    np.testing.assert_array_equal(layer.forward(x), x[:, t:6 - b, l:7 - r])
    again = built(Cropping2D.from_config(layer.get_config()), (6, 7, 2))
    np.testing.assert_array_equal(again.forward(x), layer.forward(x))


def test_cropping_leaving_one_position_is_allowed_and_the_default_crops_nothing():
    assert built(Cropping2D(((2, 1), (0, 3))), (4, 4, 1)).output_shape == (1, 1, 1)
    layer = built(Cropping2D(), (3, 4, 1))
    assert layer.get_config()["cropping"] == [[0, 0], [0, 0]] and layer.output_shape == (3, 4, 1)


@pytest.mark.parametrize("stored_chwn", [False, True])
def test_cropping_puts_the_gradient_back_in_place_with_zeros_around_in_its_storage_order(stored_chwn):
    layer = built(Cropping2D(((1, 2), (3, 0))), (5, 6, 2))
    layer.forward(np.zeros((2, 5, 6, 2)))
    g = np.random.default_rng(6).standard_normal((2, 2, 3, 2))
    dx = layer.backward(chwn(g) if stored_chwn else g)
    expected = np.zeros((2, 5, 6, 2))
    expected[:, 1:3, 3:6] = g
    np.testing.assert_array_equal(dx, expected)
    assert is_chwn(dx) == stored_chwn
    layer.input_grad_needed = False
    assert layer.backward(g) is None


@pytest.mark.parametrize("layer, described", [(Cropping2D(1), "Cropping2D"), (UpSampling2D(), "UpSampling2D"),
                                              (Cropping2D(1, name="crop"), "crop (Cropping2D)")])
def test_flat_inputs_are_refused_naming_the_layer(layer, described):
    message = (f"{described} expects images of shape (height, width, channels), got input shape (4, 4); add "
               "Reshape((height, width, channels)) before it, e.g. Reshape((28, 28, 1))")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        layer.initialize((4, 4))

"""Dropout: inverted scaling, identity in inference, masks from the whole batch's draw."""
import numpy as np
import pytest

from nnscratch.layers import Dropout


@pytest.mark.parametrize("rate", [0.5, 0.25])
def test_kept_values_are_scaled_by_one_over_the_keep_probability(rate):
    layer = Dropout(rate)
    layer.initialize((1000,), "float64", np.random.default_rng(0))
    out = layer.forward(np.full((4, 1000), 2.0), training=True)
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 2.0 / (1 - rate))  # a rescale forgotten would leave 2.0 here
    assert abs((out == 0).mean() - rate) < 0.03
    np.testing.assert_allclose(out.mean(), 2.0, rtol=0.05)  # the expectation is kept
    np.testing.assert_array_equal(layer.backward(np.ones((4, 1000))), (out != 0) / (1 - rate))


def test_inference_is_the_identity():
    layer = Dropout(0.5)
    layer.initialize((10,))
    x = np.arange(20.0).reshape(2, 10)
    assert layer.forward(x, training=False) is x


# found by mutation testing (docs/mutation-testing.md)

@pytest.mark.parametrize("rate, message", [
    (-0.1, r"^rate must be >= 0, got -0\.1$"),
    (1, r"^rate must be < 1, got 1\.0$"),
    (1.5, r"^rate must be < 1, got 1\.5$"),
])
def test_a_rate_outside_zero_to_one_is_refused_naming_the_bound(rate, message):
    with pytest.raises(ValueError, match=message):
        Dropout(rate)


def test_inference_is_the_default_and_a_zero_rate_is_the_identity_in_training():
    x = np.arange(20.0).reshape(2, 10)
    layer = Dropout(0.5)
    layer.initialize((10,), "float64", np.random.default_rng(0))
    assert layer.forward(x) is x
    layer = Dropout(0.0)
    layer.initialize((10,), "float64", np.random.default_rng(0))
    assert layer.forward(x, training=True) is x
    dout = np.ones_like(x)
    assert layer.backward(dout) is dout


def test_float32_inputs_stay_float32():
    layer = Dropout(0.5)
    layer.initialize((10,), "float32", np.random.default_rng(0))
    x = np.ones((3, 10), np.float32)
    assert layer.forward(x, training=True).dtype == np.float32
    assert layer.backward(x).dtype == np.float32


def test_a_unit_is_kept_only_when_its_draw_is_strictly_below_the_keep_probability():
    # P(u < 1 - rate) = 1 - rate for u uniform in [0, 1): a draw equal to the keep probability drops the unit
    layer = Dropout(0.5)
    layer.initialize((4,), "float64", np.random.default_rng(0))
    layer.batch_uniform = lambda shape: np.array([[0.0, 0.49, 0.5, 0.99]])
    np.testing.assert_array_equal(layer.forward(np.ones((1, 4)), training=True), [[2.0, 2.0, 0.0, 0.0]])

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

"""Dense: arguments, weights it declares, its shape check and its MAC count.

Its forward/backward against finite differences is in the layer contract (tests/test_common.py) and the
gradient checker's tests; here are what those do not pin (found by mutation testing, docs/mutation-testing.md).
"""
import numpy as np
import pytest

from nnscratch.layers import Dense


def test_a_bias_is_declared_by_default_and_not_with_use_bias_false():
    layer = Dense(3)
    layer.initialize((4,))
    assert set(layer.params) == {"kernel", "bias"}
    layer = Dense(3, use_bias=False)
    layer.initialize((4,))
    assert set(layer.params) == {"kernel"}


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 0}, r"^units must be a positive integer, got 0$"),
    ({"units": 3, "kernel_initializer": "glorot"}, r"^kernel_initializer: unknown initializer 'glorot'; known: "),
    ({"units": 3, "bias_initializer": "zero"}, r"^bias_initializer: unknown initializer 'zero'; known: "),
])
def test_bad_arguments_are_refused_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Dense(**kwargs)


def test_inputs_that_are_not_flat_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"^d \(Dense\) expects flat inputs \(features,\), got shape \(4, 4\); "
                                         r"add a Flatten\(\) layer before it$"):
        Dense(3, name="d").initialize((4, 4))


def test_a_bias_constraint_is_kept_and_configured():
    layer = Dense(3, kernel_constraint="non_neg", bias_constraint="non_neg")
    layer.initialize((4,))
    assert set(layer.weight_constraints) == {"kernel", "bias"}
    assert layer.get_config()["bias_constraint"] == "non_neg"


def test_the_bias_initializer_is_used_and_told_the_layers_fans():
    seen = []

    def initializer(shape, fan_in, fan_out, rng, dtype):
        seen.append((shape, fan_in, fan_out))
        return np.full(shape, 0.5, dtype)

    layer = Dense(3, bias_initializer=initializer)
    layer.initialize((5,))
    assert seen == [((3,), 5, 3)]
    np.testing.assert_array_equal(layer.params["bias"], [0.5, 0.5, 0.5])


@pytest.mark.parametrize("use_bias, macs", [(True, 5 * 3 + 3), (False, 5 * 3)])
def test_count_macs_is_inputs_times_units_plus_the_bias_adds(use_bias, macs):
    layer = Dense(3, use_bias=use_bias)
    layer.initialize((5,))
    assert layer.count_macs() == macs


def test_a_first_layer_skips_the_input_gradient_and_keeps_its_weight_gradients():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    grads = []
    for needed in (True, False):
        layer = Dense(3, input_shape=(4,))
        layer.initialize((4,), "float64", np.random.default_rng(1))
        layer.input_grad_needed = needed
        layer.forward(x, training=True)
        dx = layer.backward(dout)
        assert (dx is None) == (not needed)
        grads.append({k: g.copy() for k, g in layer.grads.items()})
    np.testing.assert_allclose(grads[0]["kernel"], x.T @ dout)
    for key in grads[0]:
        np.testing.assert_array_equal(grads[0][key], grads[1][key])

"""``squared_weights_backward``: the SDLM backward of a layer whose output sums ``weight * input`` products.

Written from mutation testing (issue 21); the Gauss-Newton rule by hand on small numbers, and the layer it
is computed for left as it was (its weights, gradients and the input its own backward still needs).
"""
import numpy as np

from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.layers import Dense, second_order


def _dense():
    layer = Dense(2, name="d")
    layer.initialize((3,), "float64")
    layer.params["kernel"][...] = [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]]
    layer.params["bias"][...] = [0.5, -0.5]
    return layer


def test_the_squares_rule_by_hand_for_a_dense_layer_with_a_bias():
    layer = _dense()
    x = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])
    d2z = np.array([[1.0, 0.5], [2.0, 0.25]])
    layer.forward(x)
    d2x, h = second_order.squared_weights_backward(layer, x, d2z)
    kernel = layer.params["kernel"]
    expected_d2x = [[sum(kernel[i, j] ** 2 * d2z[n, j] for j in range(2)) for i in range(3)] for n in range(2)]
    expected_kernel = [[sum(x[n, i] ** 2 * d2z[n, j] for n in range(2)) for j in range(2)] for i in range(3)]
    np.testing.assert_allclose(d2x, expected_d2x)
    np.testing.assert_allclose(h["kernel"], expected_kernel)
    np.testing.assert_allclose(h["bias"], d2z.sum(axis=0))
    assert set(h) == {"kernel", "bias"}


def test_the_layer_keeps_its_weights_gradients_and_what_its_own_backward_needs():
    layer = _dense()
    x = np.array([[1.0, 2.0, -1.0]])
    kernel, bias = layer.params["kernel"].copy(), layer.params["bias"].copy()
    layer.forward(x)
    layer.grads["kernel"][...] = 7.0
    second_order.squared_weights_backward(layer, np.array([[3.0, 3.0, 3.0]]), np.ones((1, 2)))
    np.testing.assert_array_equal(layer.params["kernel"], kernel)
    np.testing.assert_array_equal(layer.params["bias"], bias)
    assert (layer.grads["kernel"] == 7.0).all()
    dout = np.array([[1.0, -1.0]])
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["kernel"], x.T @ dout)  # the x of the layer's forward, not the twin's


def test_the_hessian_diagonal_returned_is_not_overwritten_by_the_next_call():
    layer = _dense()
    x = np.ones((1, 3))
    layer.forward(x)
    _, first = second_order.squared_weights_backward(layer, x, np.ones((1, 2)))
    kept = {k: v.copy() for k, v in first.items()}
    second_order.squared_weights_backward(layer, 2 * x, 5 * np.ones((1, 2)))
    for k in kept:
        np.testing.assert_array_equal(first[k], kept[k])


def test_no_input_second_derivative_when_the_layer_needs_no_input_gradient():
    layer = _dense()
    layer.input_grad_needed = False
    x = np.ones((1, 3))
    layer.forward(x)
    d2x, h = second_order.squared_weights_backward(layer, x, np.ones((1, 2)))
    assert d2x is None and h["kernel"].shape == (3, 2)


def test_the_input_may_be_nested_lists():
    layer = _dense()
    layer.forward(np.array([[1.0, -2.0, 0.5]]))
    d2x, h = second_order.squared_weights_backward(layer, [[1.0, -2.0, 0.5]], np.ones((1, 2)))
    np.testing.assert_allclose(h["kernel"], [[1.0, 1.0], [4.0, 4.0], [0.25, 0.25]])


def test_the_module_exports_the_refusal_sdlm_raises():
    assert second_order.SecondOrderNotImplemented is SecondOrderNotImplemented
    assert issubclass(SecondOrderNotImplemented, NotImplementedError)
    assert sorted(second_order.__all__) == ["SecondOrderNotImplemented", "squared_weights_backward"]

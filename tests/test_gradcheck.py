import numpy as np
import pytest

import nnscratch
from nnscratch.gradcheck import GradientCheckError, check_layer, check_model, relative_error
from nnscratch.layers import Dense, Dropout, Layer, ReLU, Sigmoid, Softmax, Tanh


class SigmoidWithInputDerivative(Sigmoid, register=False):
    """A bug found in the wild: the derivative written as x * (1 - x) on the *input*, not the output."""

    def _backward(self, dout):
        return dout * self._x * (1 - self._x)


class DenseForgettingBatchSum(Dense, register=False):
    """Another classic: the bias gradient taken from the first sample only."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["bias"][...] = dout[0]
        return dx


def test_wrong_sigmoid_backward_is_caught():
    report = check_layer(SigmoidWithInputDerivative(), (6,))
    assert not report.ok
    assert report.failures[0].tensor == "x"
    with pytest.raises(GradientCheckError, match=r"d/dx max relative error .* at index \(\d+, \d+\): analytic"):
        report.raise_if_failed()


def test_bias_gradient_of_one_sample_is_caught_only_with_batch_above_one():
    report = check_layer(DenseForgettingBatchSum(3), (4,), batch_size=3)
    assert [c.tensor for c in report.failures] == ["bias"]
    assert check_layer(DenseForgettingBatchSum(3), (4,), batch_size=1).ok


def test_correct_layers_pass_well_below_tolerance():
    for layer, shape in [(Dense(5), (4,)), (Sigmoid(), (6,)), (Tanh(), (6,)), (Softmax(), (4,))]:
        report = check_layer(layer, shape)
        assert report.max_error < 1e-7, report.table()


def test_kinked_layers_get_inputs_away_from_the_kink():
    layer = ReLU()
    x = layer.gradcheck_input((50, 20), np.random.default_rng(0))
    assert np.abs(x).min() >= 0.1
    assert check_layer(layer, (20,), batch_size=5).ok


def test_report_table_names_layer_tensor_and_values():
    report = check_layer(Dense(2, name="fc"), (3,))
    table = report.table()
    for word in ("fc (Dense)", "kernel", "bias", "x", "max rel error", "ok"):
        assert word in table


def test_max_elements_samples_a_subset():
    report = check_layer(Dense(30), (40,), max_elements=25)
    assert all(c.checked <= 25 for c in report.checks)


def test_relative_error_definition():
    np.testing.assert_allclose(relative_error(np.array([1.0, 0.0, 2.0]), np.array([1.1, 0.0, -2.0])),
                               [0.1 / 1.1, 0.0, 2.0])


def test_a_users_own_layer_is_checked_like_any_other():
    class Cube(Layer):
        def forward(self, x, training=False):
            self._x = x
            return x ** 3

        def backward(self, dout):
            return 3 * self._x ** 2 * dout

    assert check_layer(Cube(), (5,)).ok


def test_check_model_covers_input_and_every_parameter_with_dropout():
    model = nnscratch.Model([Dense(6, input_shape=(3,)), Tanh(), Dropout(0.4), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    x = np.random.default_rng(0).standard_normal((4, 3))
    report = check_model(model, x, np.array([0, 1, 2, 0]))
    assert report.ok, report.table()
    assert [c.tensor for c in report.checks] == ["x", "kernel", "bias", "kernel", "bias"]
    assert model.layers[0].params["kernel"].dtype == np.float32  # the model itself was left alone


def test_check_model_catches_a_broken_layer_inside_a_model():
    model = nnscratch.Model([Dense(4, input_shape=(3,)), SigmoidWithInputDerivative(), Dense(2), Softmax()],
                            seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    report = check_model(model, np.random.default_rng(1).standard_normal((3, 3)), np.array([0, 1, 1]))
    assert {c.tensor for c in report.failures} >= {"x"}
    assert [c.layer for c in report.failures if c.tensor != "x"] == ["dense_1 (Dense)", "dense_1 (Dense)"]


def test_max_pool_inputs_have_no_ties():
    from nnscratch.layers import MaxPool2D

    x = MaxPool2D(2).gradcheck_input((2, 4, 4, 3), np.random.default_rng(0))
    assert len(np.unique(x)) == x.size

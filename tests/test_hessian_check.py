"""The Hessian-diagonal check (SDLM's second-order backward against finite differences), over every registered
layer, as tests/test_common.py runs the contract check: a layer either back-propagates second derivatives that
agree with finite differences, or refuses clearly, naming itself. Deliberately wrong ones must fail."""
import numpy as np
import pytest

import nnscratch  # noqa: F401  (registers every built-in layer)
from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.hessian_check import check_second_order
from nnscratch.layer_cases import CANNOT_CHECK, cases_for
from nnscratch.layers import LAYERS, Conv2D, Dense, ScaledTanh, Subsampling2D
from nnscratch.layers.pooling import _channel_sums
from nnscratch.testing import check_second_order as public_check


def _cases():
    cases = []
    for cls in LAYERS.classes():
        if cls.__name__ in CANNOT_CHECK or cls.multiple_inputs:
            continue
        for i, (config, shape) in enumerate(cases_for(cls)):
            cases.append(pytest.param(cls, config, shape, id=f"{cls.__name__}-{i}"))
    return cases


@pytest.mark.parametrize("cls, config, shape", _cases())
def test_second_order_backward_matches_finite_differences_or_is_refused_by_name(cls, config, shape):
    layer = cls(**config)
    try:
        result = check_second_order(layer, shape)
    except SecondOrderNotImplemented as error:
        assert cls.__name__ in str(error) or "activation" in str(error)
        return
    assert result.ok, result.message


def test_the_layers_of_the_classic_lenet5_all_have_it():
    for layer, shape in [(Conv2D(16, 5, connections=nnscratch.layers.conv.LENET5_C3_CONNECTIONS), (7, 7, 6)),
                         (Subsampling2D(2), (4, 4, 3)), (ScaledTanh(), (5,)), (nnscratch.layers.Flatten(), (2, 2, 2)),
                         (Dense(4), (6,)), (nnscratch.layers.RBFOutput(units=3, codes="random"), (5,))]:
        assert check_second_order(layer, shape).ok


class DenseForgettingTheSquares(Dense, register=False):
    """Runs the first-order backward on the second derivatives: weights and inputs not squared."""

    def backward_second_order(self, x, d2out):
        self.forward(x)
        d2x = self.backward(d2out)
        self.hessian_diagonal = {k: g.copy() for k, g in self.grads.items()}
        return d2x


class SubsamplingWithThePapersPerConnectionRule(Subsampling2D, register=False):
    """Sums the squares of each window's inputs for the coefficient, where the exact Gauss-Newton term is the
    square of their sum."""

    def backward_second_order(self, x, d2out):
        d2x = super().backward_second_order(x, d2out)
        squares = Subsampling2D(self.pool_size, self.strides, self.padding)
        squares.initialize(x.shape[1:], "float64")
        squares.params["coefficient"][...] = 1.0
        self.hessian_diagonal["coefficient"] = _channel_sums(d2out * squares.forward(x * x))
        return d2x


class ScaledTanhNotSquaringTheSlope(ScaledTanh, register=False):
    def backward_second_order(self, x, d2out):
        return self._backward(d2out)


@pytest.mark.parametrize("layer, shape, tensor", [(DenseForgettingTheSquares(3), (4,), "kernel"),
                                                  (SubsamplingWithThePapersPerConnectionRule(2), (4, 4, 2),
                                                   "coefficient"),
                                                  (ScaledTanhNotSquaringTheSlope(), (6,), "input")])
def test_a_wrong_second_order_backward_fails_and_the_message_says_where(layer, shape, tensor):
    result = public_check(layer, shape)
    assert not result.ok
    assert result.errors[tensor] > result.tolerance
    assert "FAILED" in result.message and "analytic" in result.message and "finite differences" in result.message


def test_a_layer_that_leaves_a_weight_out_is_told_which():
    class Forgetful(Dense, register=False):
        def backward_second_order(self, x, d2out):
            d2x = super().backward_second_order(x, d2out)
            del self.hessian_diagonal["bias"]
            return d2x

    with pytest.raises(ValueError, match=r"missing: \['bias'\]"):
        check_second_order(Forgetful(2), (3,))


def test_a_layer_without_it_is_refused_naming_it():
    with pytest.raises(SecondOrderNotImplemented, match=r"MaxPool2D has no second-order backward"):
        check_second_order(nnscratch.layers.MaxPool2D(2), (4, 4, 1))
    with pytest.raises(SecondOrderNotImplemented, match=r"its activation 'softmax' has no second-order backward"):
        check_second_order(Dense(3, activation="softmax"), (4,))


def test_a_users_layer_gets_the_check_for_free():
    class Cube(nnscratch.layers.Layer, register=False):
        def forward(self, x, training=False):
            self._x = x
            return x ** 3

        def backward(self, dout):
            return 3 * self._x ** 2 * dout

        def backward_second_order(self, x, d2out):
            return (3 * self._x ** 2) ** 2 * d2out

    assert public_check(Cube(), (5,)).ok
    assert np.isfinite(public_check(Cube(), (5,)).errors["input"])

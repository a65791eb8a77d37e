"""What an element-wise activation keeps between its forward and its backward."""
import gc
import weakref

import numpy as np
import pytest

from nnscratch.layers.activations import LeakyReLU, ReLU, ScaledTanh, Sigmoid, Swish, Tanh
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn

# (layer, whether its backward reads its input)
CASES = [(ReLU, False), (LeakyReLU, True), (Sigmoid, False), (Tanh, False), (ScaledTanh, False), (Swish, True)]


@pytest.mark.parametrize("cls, reads_input", CASES)
def test_the_input_is_kept_only_when_the_backward_reads_it(cls, reads_input):
    layer = cls()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    x_copy = x.copy()
    dout = np.ones_like(x)
    layer.forward(x)
    alive = weakref.ref(x)
    del x
    gc.collect()
    # a ReLU after a BatchNormalization would otherwise hold the normalization's whole output until its next call
    assert (alive() is not None) == reads_input
    reference = cls()
    reference.forward(x_copy.copy())
    np.testing.assert_array_equal(layer.backward(dout), reference.backward(dout))


def test_a_subclass_with_its_own_backward_keeps_both_unless_it_says_otherwise():
    class SigmoidOnInput(Sigmoid, register=False):  # reads the input, which Sigmoid itself does not keep
        def _backward(self, dout):
            return dout * self._x

    class Narrow(ReLU, register=False):
        keeps = ("y",)

        def _backward(self, dout):
            return dout * (self._y > 0)

    x = np.array([[0.5, -2.0]], np.float32)
    layer = SigmoidOnInput()
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), x)
    assert SigmoidOnInput.keeps == ("x", "y") and Narrow.keeps == ("y",) and Sigmoid.keeps == ("y",)


# found by mutation testing (docs/mutation-testing.md)

from nnscratch.layers import Activation  # noqa: E402
from nnscratch.layers.activations import Softmax, check_activation  # noqa: E402


def _built(layer, shape=(7,)):
    layer.initialize(shape, "float64", np.random.default_rng(0))
    return layer


def test_defaults_are_keras_and_lecuns():
    assert LeakyReLU().alpha == 0.01
    assert (ScaledTanh().amplitude, ScaledTanh().slope) == (1.7159, 2.0 / 3.0)
    assert Swish().beta == 1.0


X = np.array([[-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0]])


@pytest.mark.parametrize("layer, f", [
    (Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (Swish(), lambda x: x / (1 + np.exp(-x))),
    (Swish(beta=2.0), lambda x: x / (1 + np.exp(-2 * x))),
    (LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (ScaledTanh(), lambda x: 1.7159 * np.tanh(2 / 3 * x)),
])
def test_values_match_the_formula_on_both_sides_of_zero(layer, f):
    np.testing.assert_allclose(_built(layer).forward(X), f(X), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.01, 0.3, 1.0, 2.5])
def test_leaky_relu_gives_np_wheres_bits_both_ways_for_any_alpha(alpha, dtype):
    # the layer picks without np.where (a branch per element); the values must be the ones it would pick
    x = np.random.default_rng(2).standard_normal((4, 257)).astype(dtype)
    x[0, :3] = 0.0, -0.0, 1e-30
    dout = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    layer = _built(LeakyReLU(alpha), (257,))
    y, dx = layer.forward(x), layer.backward(dout)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * alpha))
    np.testing.assert_array_equal(dx, np.where(x > 0, dout, dout * dtype(alpha)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_gives_the_two_sided_formulas_bits(dtype):
    x = np.concatenate([np.linspace(-120, 120, 1001), [0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf]]).astype(dtype)
    e = np.exp(-np.abs(x))
    expected = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    y = _built(Sigmoid(), (x.size,)).forward(x[None])[0]
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.2), LeakyReLU(1.5), Sigmoid(), Swish(), Tanh(), ScaledTanh()],
                         ids=lambda layer: f"{type(layer).__name__}")
def test_an_activation_keeps_a_convolutions_chwn_storage_both_ways(layer):
    # what follows a convolution reads CHWN storage without a copy; an output in C order (np.take's) made the
    # next product iterate across two memory orders (LeakyReLU's backward 4x slower)
    x = from_chwn(np.random.default_rng(4).standard_normal((3, 5, 4, 6)))
    layer = _built(layer, x.shape[1:])
    y = layer.forward(x)
    assert is_chwn(y)
    assert is_chwn(layer.backward(from_chwn(np.ones(to_chwn(y).shape))))


def test_leaky_relus_slope_at_zero_is_alpha():
    layer = _built(LeakyReLU(0.2), (1,))
    layer.forward(np.zeros((1, 1)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1))), [[0.2]])


def test_softmax_normalises_the_last_axis_of_a_sequence():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer = _built(Softmax(), (3, 4))
    y = layer.forward(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)
    dout = np.random.default_rng(2).standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), y * (dout - (dout * y).sum(axis=-1, keepdims=True)), rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda: LeakyReLU(-1), r"^alpha must be >= 0, got -1\.0$"),
    (lambda: ScaledTanh(amplitude=0), r"^amplitude must be > 0, got 0\.0$"),
    (lambda: ScaledTanh(amplitude=-1), r"^amplitude must be > 0, got -1\.0$"),
    (lambda: ScaledTanh(slope=0), r"^slope must be > 0, got 0\.0$"),
    (lambda: ScaledTanh(slope=-1), r"^slope must be > 0, got -1\.0$"),
    (lambda: Swish(beta=float("nan")), r"^beta must be a finite number, got nan$"),
    (lambda: Activation(None), r"^activation: Activation needs a name, e\.g\. Activation\('relu'\); got None$"),
    (lambda: Activation("rleu"), r"^activation: unknown activation 'rleu'; known: leaky_relu, linear, relu, "
                                 r"scaled_tanh, "
                                 r"sigmoid, silu, softmax, swish, tanh \(or None\)$"),
    (lambda: check_activation("activation", 5), r"^activation: unknown activation 5; known: .* \(or None\)$"),
])
def test_bad_arguments_are_refused_with_exact_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_activation_by_name_applies_the_function():
    layer = _built(Activation("ReLU"), (2,))
    np.testing.assert_array_equal(layer.forward(np.array([[-1.0, 2.0]])), [[0.0, 2.0]])
    np.testing.assert_array_equal(layer.apply(np.array([[-3.0, 4.0]])), [[0.0, 4.0]])


def test_kinked_gradcheck_inputs_keep_off_the_kink_with_both_signs():
    x = ReLU().gradcheck_input((4, 50), np.random.default_rng(0))
    assert x.shape == (4, 50)
    assert 0.1 <= np.abs(x).min() and np.abs(x).max() <= 1.5
    assert (x > 0).any() and (x < 0).any()
    assert len(np.unique(np.abs(x))) == x.size


@pytest.mark.parametrize("cls", [LeakyReLU, ScaledTanh, Swish])
def test_the_output_is_not_kept_when_the_backward_does_not_read_it(cls):
    layer = cls()
    y = layer.forward(np.random.default_rng(0).standard_normal((4, 3)))
    alive = weakref.ref(y)
    del y
    gc.collect()
    assert alive() is None


def test_an_activation_without_a_second_order_backward_says_which_and_what_to_use_instead():
    # found by mutation testing (with tests/test_sdlm.py selected): the message's advice was unpinned
    from nnscratch.errors import SecondOrderNotImplemented
    layer = Activation("softmax")
    x = np.zeros((2, 3))
    layer.forward(x)
    with pytest.raises(SecondOrderNotImplemented) as info:
        layer.backward_second_order(x, np.ones((2, 3)))
    assert str(info.value) == (f"{layer.describe()}: the activation 'softmax' has no second-order backward, which "
                               "SDLM needs; use an activation such as 'tanh' or 'relu', or another optimizer")


@pytest.mark.parametrize("layer", [ReLU, lambda: LeakyReLU(0.1)],
                         ids=["ReLU", "LeakyReLU"])
def test_kinked_activations_give_the_checker_inputs_off_the_kink_across_0_1_to_1_5_on_both_sides(layer):
    # the finite differences (steps of 1e-5) must not cross 0; the whole range both ways still tests both slopes
    x = layer().gradcheck_input((20_000,), np.random.default_rng(0))
    magnitude = np.abs(x)
    assert magnitude.min() >= 0.1 and magnitude.max() < 1.5
    assert magnitude.min() < 0.11 and magnitude.max() > 1.49     # the whole range, not part of it
    assert 0.45 < np.mean(x > 0) < 0.55

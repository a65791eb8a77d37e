"""The Keras options weight layers share (``activation=``, regularizers, constraints) and their SDLM backward.

Written from mutation testing (issue 21): Dense and the convolutions go through these paths in every test, but
only these tests say what each option is stored as, which weights keep theirs, and what the refusals say.
"""
import numpy as np
import pytest

from nnscratch.constraints import MaxNorm, NonNeg
from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.layers import Dense, DepthwiseConv2D
from nnscratch.layers.options import KerasOptions
from nnscratch.regularizers import L1, L2


def test_each_option_is_kept_as_given_for_the_config_and_as_an_object_for_its_weight():
    as_dict = {"class_name": "NonNeg", "config": {}}
    layer = Dense(3, kernel_regularizer="l2", bias_regularizer=L1(0.5), kernel_constraint=MaxNorm(1.5),
                  bias_constraint=as_dict)
    config = layer.get_config()
    assert config["kernel_regularizer"] == "l2" and config["bias_constraint"] is as_dict
    assert config["bias_regularizer"] == {"class_name": "L1", "config": {"l1": 0.5}}
    assert config["kernel_constraint"] == {"class_name": "MaxNorm", "config": {"max_value": 1.5, "axis": 0}}
    assert set(layer.weight_regularizers) == {"kernel", "bias"} and set(layer.weight_constraints) == {"kernel", "bias"}
    assert isinstance(layer.weight_regularizers["kernel"], L2) and layer.weight_regularizers["bias"].l1 == 0.5
    assert isinstance(layer.weight_constraints["bias"], NonNeg)
    assert layer.weight_constraints["kernel"].max_value == 1.5

    plain = Dense(3, kernel_regularizer="l1")
    assert set(plain.weight_regularizers) == {"kernel"} and plain.weight_constraints == {}
    assert plain.get_config()["bias_regularizer"] is None and plain.get_config()["kernel_constraint"] is None


def test_options_of_a_weight_the_layer_did_not_declare_are_forgotten_at_build_but_kept_in_the_config():
    layer = Dense(3, use_bias=False, kernel_regularizer="l2", bias_regularizer="l2", kernel_constraint="non_neg",
                  bias_constraint="non_neg")
    layer.initialize((4,))
    assert set(layer.weight_regularizers) == {"kernel"} and set(layer.weight_constraints) == {"kernel"}
    assert layer.get_config()["bias_regularizer"] == "l2" and layer.get_config()["bias_constraint"] == "non_neg"


def test_an_option_that_is_not_a_regularizer_is_refused_naming_its_argument():
    with pytest.raises(TypeError, match=r"^bias_regularizer: expected a regularizer object"):
        Dense(2, bias_regularizer=3)
    with pytest.raises(TypeError, match=r"^kernel_constraint: expected a constraint object"):
        Dense(2, kernel_constraint=3)


def test_the_default_kernel_initializer_is_he_for_relu_like_activations_else_the_models_hint():
    class Bare(KerasOptions):
        """A class using the mixin without the model's hint attribute."""

    bare = Bare()
    bare._init_options(None)
    assert bare._default_kernel_initializer() == "glorot_uniform"
    bare.default_initializer = "zeros"
    assert bare._default_kernel_initializer() == "zeros"
    bare._init_options("relu")
    assert bare._default_kernel_initializer() == "he_uniform"


@pytest.mark.parametrize("activation, fusable", [("softmax", True), ("relu", False), (None, False)])
def test_only_a_softmax_activation_keeps_its_logits_for_the_fused_loss(activation, fusable):
    layer = Dense(3, activation=activation)
    layer.initialize((2,), "float64")
    x = np.array([[1.0, -2.0], [0.5, 0.25]])
    out = layer.forward(x)
    logits = x @ layer.params["kernel"] + layer.params["bias"]
    assert layer.fusable_softmax is fusable
    if fusable:
        np.testing.assert_allclose(layer.pre_activation, logits)
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
    else:
        assert layer.pre_activation is None


def test_backward_from_logits_is_the_linear_backward_of_the_gradient_given():
    layer = Dense(3, activation="softmax")
    layer.initialize((2,), "float64")
    layer.params["kernel"][...] = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]
    x = np.array([[1.0, -2.0]])
    layer.forward(x)
    dz = np.array([[0.5, -1.0, 2.0]])
    dx = layer.backward_from_logits(dz)
    np.testing.assert_allclose(dx, dz @ layer.params["kernel"].T)
    np.testing.assert_allclose(layer.grads["kernel"], x.T @ dz)
    np.testing.assert_allclose(layer.grads["bias"], dz[0])


def test_a_layer_whose_activation_has_no_second_order_backward_says_which_and_what_to_use():
    layer = Dense(3, activation="softmax", name="d")
    layer.initialize((2,), "float64")
    x = np.ones((1, 2))
    layer.forward(x)
    with pytest.raises(SecondOrderNotImplemented, match=(
            r"^d \(Dense\): its activation 'softmax' has no second-order backward, which SDLM needs; use an "
            r"activation such as 'tanh' or 'relu', or another optimizer$")):
        layer.backward_second_order(x, np.ones((1, 3)))


def test_a_weight_layer_without_the_squares_rule_refuses_the_second_order_backward_by_name():
    layer = DepthwiseConv2D(3, name="c")
    layer.initialize((5, 5, 2), "float64")
    x = np.ones((1, 5, 5, 2))
    layer.forward(x)
    with pytest.raises(SecondOrderNotImplemented, match=r"^c \(DepthwiseConv2D\) has no second-order backward "):
        layer.backward_second_order(x, np.ones((1, 3, 3, 2)))


def test_the_second_order_backward_through_an_activation_squares_its_slope():
    layer = Dense(2, activation="tanh", use_bias=False)
    layer.initialize((2,), "float64")
    layer.params["kernel"][...] = [[1.0, -2.0], [0.5, 3.0]]
    x = np.array([[0.5, -0.25]])
    z = x @ layer.params["kernel"]
    layer.forward(x)
    d2out = np.array([[1.0, 2.0]])
    d2z = (1 - np.tanh(z) ** 2) ** 2 * d2out
    d2x = layer.backward_second_order(x, d2out)
    np.testing.assert_allclose(d2x, d2z @ (layer.params["kernel"] ** 2).T)
    np.testing.assert_allclose(layer.hessian_diagonal["kernel"], (x ** 2).T @ d2z)


def test_a_weight_name_with_underscores_keeps_them_and_an_unknown_option_kind_is_refused():
    class Holder(KerasOptions):
        """A user's layer class using the mixin, with a weight called ``depthwise_kernel``."""

    holder = Holder()
    holder._init_options(None, depthwise_kernel_regularizer="l2", depthwise_kernel_constraint="non_neg")
    assert set(holder.weight_regularizers) == {"depthwise_kernel"} and set(holder.weight_constraints) == {
        "depthwise_kernel"}
    assert holder.depthwise_kernel_regularizer == "l2"
    with pytest.raises(TypeError, match=r"^unknown weight option 'kernel_initializer'$"):
        holder._init_options(None, kernel_initializer="zeros")


def test_an_unknown_activation_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"^activation: unknown activation 'relux'; known: .*\(or None\)$"):
        Dense(2, activation="relux")

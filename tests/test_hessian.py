"""The walk that back-propagates a model's diagonal Gauss-Newton Hessian (SDLM's curvature), against the
recursion of LeCun et al. 1998, Appendix C, written out by hand in NumPy."""
import numpy as np
import pytest

from nnscratch import Input, Model
from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.hessian import check_second_order_support, hessian_diagonal
from nnscratch.layers import Add, Dense, MaxPool2D, Conv2D, Flatten, RBFOutput, Softmax, Tanh
from nnscratch.layers.rbf import LeNetRBFLoss
from nnscratch.models import lenet5


def _mlp(loss="sse"):
    model = Model([Dense(4, input_shape=(3,)), Tanh(), Dense(2)], seed=0, dtype="float64")
    model.set(loss=loss, optimizer="sgd")
    model.finalize()
    return model


def _added():
    inputs = Input((3,))
    return Model(inputs=inputs, outputs=Dense(1)(Add()([Dense(3)(inputs), Dense(3)(inputs)])))


def test_a_two_layer_network_follows_the_papers_recursion():
    model = _mlp()
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    w1, b1 = model.layers[0].params["kernel"], model.layers[0].params["bias"]
    w2 = model.layers[2].params["kernel"]
    a1 = np.tanh(x @ w1 + b1)
    d2y = np.full((5, 2), 2.0 / 5)                  # the per-sample squared error's, over the mean
    d2z1 = (1 - a1 ** 2) ** 2 * (d2y @ (w2 ** 2).T)  # squares of the weights and of tanh's slope
    h = hessian_diagonal(model, x, y)
    np.testing.assert_allclose(h["dense_2/kernel"], (a1 ** 2).T @ d2y, rtol=1e-12)
    np.testing.assert_allclose(h["dense_2/bias"], d2y.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(h["dense_1/kernel"], (x ** 2).T @ d2z1, rtol=1e-12)
    np.testing.assert_allclose(h["dense_1/bias"], d2z1.sum(axis=0), rtol=1e-12)
    assert set(h) == {key for key, _, _ in model.trainable_params()}


def test_the_rbf_output_adds_the_curvature_of_its_squares():
    model = Model([Dense(6, input_shape=(4,)), RBFOutput(3, codes="random", seed=2)], seed=0, dtype="float64")
    model.set(loss=LeNetRBFLoss(), optimizer="sgd")
    model.finalize()
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((4, 4)), np.array([0, 2, 1, 2])
    z = x @ model.layers[0].params["kernel"] + model.layers[0].params["bias"]
    codes = model.layers[1].state["codes"]
    y = ((z[:, :, None] - codes[None]) ** 2).sum(axis=1)
    e = np.exp(-y)
    p = e / (np.exp(-1.0) + e.sum(axis=1, keepdims=True))
    d1 = (np.eye(3)[labels] - p) / 4
    d2 = p * (1 - p) / 4
    d2z = (4 * (z[:, :, None] - codes[None]) ** 2 * d2[:, None, :]).sum(axis=2)
    d2z += np.maximum(2 * d1.sum(axis=1, keepdims=True), 0)
    h = hessian_diagonal(model, x, labels)
    np.testing.assert_allclose(h["dense_1/bias"], d2z.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(h["dense_1/kernel"], (x ** 2).T @ d2z, rtol=1e-10)


def test_a_layer_called_twice_gets_the_sum_of_its_calls():
    inputs = Input((3,))
    shared = Dense(3)
    out = Dense(1, use_bias=False)(shared(Tanh()(shared(inputs))))
    model = Model(inputs=inputs, outputs=out, seed=0, dtype="float64")
    model.set(loss="sse", optimizer="sgd")
    model.finalize()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    w, b, v = shared.params["kernel"], shared.params["bias"], model.layers[-1].params["kernel"]
    a = np.tanh(x @ w + b)
    d2z2 = np.full((4, 1), 2.0 / 4) @ (v ** 2).T
    d2z1 = (1 - a ** 2) ** 2 * (d2z2 @ (w ** 2).T)
    h = hessian_diagonal(model, x, np.zeros((4, 1)))
    name = shared.name
    np.testing.assert_allclose(h[f"{name}/kernel"], (a ** 2).T @ d2z2 + (x ** 2).T @ d2z1, rtol=1e-12)
    np.testing.assert_allclose(h[f"{name}/bias"], d2z2.sum(axis=0) + d2z1.sum(axis=0), rtol=1e-12)


def test_the_classic_lenet5_with_distortions_has_a_positive_hessian_everywhere_it_trains():
    model = lenet5("classic", seed=0, distort=True)
    rng = np.random.default_rng(0)
    h = hessian_diagonal(model, rng.uniform(-0.1, 1.175, (6, 32, 32, 1)).astype(np.float32), rng.integers(0, 10, 6))
    for key, param, _ in model.trainable_params():
        assert h[key].shape == param.shape and h[key].dtype == param.dtype
        assert (h[key] >= 0).all(), key
    assert (h["C5/bias"] > 0).all() and (h["F6/kernel"] > 0).any()
    unlinked = ~np.broadcast_to(np.array(model.get_layer("C3").connections, bool), (5, 5, 6, 16))
    assert (h["C3/kernel"][unlinked] == 0).all()    # the connection table holds for the curvature too


@pytest.mark.parametrize("build, name", [
    (lambda: Model([Dense(3, input_shape=(4,)), Softmax()]), "softmax"),
    (lambda: Model([Conv2D(2, 3, input_shape=(6, 6, 1)), MaxPool2D(2), Flatten(), Dense(1)]), "MaxPool2D"),
    (lambda: _added(), "Add"),
])
def test_a_model_sdlm_cannot_train_is_refused_naming_the_layer(build, name):
    model = build()
    model.set(loss="categorical_crossentropy" if name == "softmax" else "mse", optimizer="sgd")
    model.finalize()
    with pytest.raises(SecondOrderNotImplemented, match=name):
        check_second_order_support(model)


def test_a_loss_without_a_second_derivative_is_named():
    model = Model([Dense(1, activation="sigmoid", input_shape=(2,))])
    model.set(loss="binary_crossentropy", optimizer="sgd")
    model.finalize()
    with pytest.raises(SecondOrderNotImplemented, match="BinaryCrossEntropy has no second_derivative"):
        check_second_order_support(model)

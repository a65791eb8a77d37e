"""Keras habits (issue 14): compile, a model without a loss, evaluate's return shapes, get_layer, activation=
on layers (with the fused softmax + cross-entropy), Activation, regularizers and constraints."""
import json

import numpy as np
import pytest

import nnscratch
from nnscratch import Input, Model
from nnscratch.constraints import MaxNorm, NonNeg, UnitNorm, get_constraint
from nnscratch.gradcheck import check_model
from nnscratch.layers import (Activation, Conv2D, Dense, Flatten, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Softmax, Swish,
                              Tanh)
from nnscratch.optimizers import SGD
from nnscratch.regularizers import L1, L1L2, L2, get_regularizer
from problems import blobs


def data(n=64, seed=0):
    x, y = blobs(n, classes=3, dims=4, seed=seed)
    return x, y


# -- compile, no loss, evaluate, get_layer ----------------------------------------------------------
def test_compile_is_set_and_finalize():
    model = Model([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer=SGD(0.1), loss="categorical_crossentropy", metrics=["accuracy"])
    assert model.finalized and type(model.optimizer) is SGD and model.metrics_names == ["loss", "accuracy"]
    x, y = data()
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3
    assert Model([Dense(2, input_shape=(3,))]).compile() is None  # Keras' default optimizer, no loss


def test_a_model_without_a_loss_summarizes_and_predicts_only():
    model = Model([Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    model.compile()
    assert "Total params: 15" in model.summary(print_fn=None)
    assert model.predict(np.ones((2, 4))).shape == (2, 3)
    with pytest.raises(RuntimeError, match=r"model.fit\(\) needs a loss: .*model.compile\(optimizer=..., loss=...\)"):
        model.fit(np.ones((2, 4)), np.zeros(2, int))
    with pytest.raises(RuntimeError, match=r"model.validate\(\) needs a loss"):
        model.evaluate(np.ones((2, 4)), np.zeros(2, int))


def test_evaluate_returns_keras_shapes():
    x, y = data(32)
    plain = Model([Dense(1, input_shape=(4,))], seed=0)
    plain.compile(optimizer="sgd", loss="mse")
    target = y.astype(np.float32)
    loss = plain.evaluate(x, target)
    assert isinstance(loss, float) and loss == pytest.approx(float(np.mean((plain.predict(x)[:, 0] - target) ** 2)),
                                                              rel=1e-5)
    assert plain.evaluate(x, target, return_dict=True) == {"loss": loss}
    model = Model([Dense(3, activation="softmax", input_shape=(4,))], seed=0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy", "top_k_categorical_accuracy"])
    values = model.evaluate(x, y)
    scores = model.evaluate(x, y, return_dict=True)
    assert isinstance(values, list) and values == list(scores.values())
    assert list(scores) == model.metrics_names == ["loss", "accuracy", "top_k_categorical_accuracy"]
    assert scores["top_k_categorical_accuracy"] == 1.0  # 3 classes, k = 5


def test_get_layer_by_name_and_index():
    model = Model([Dense(3, input_shape=(4,), name="hidden"), ReLU(), Dense(2)], seed=0)
    assert model.get_layer("hidden") is model.layers[0] and model.get_layer(index=-1) is model.layers[2]
    assert model.get_layer("dense_1") is model.layers[2]
    with pytest.raises(ValueError, match=r"no layer named 'hiden'; the model's layers are \['hidden', 're_lu_1'"):
        model.get_layer("hiden")
    with pytest.raises(ValueError, match="index 3 is out of range"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="a name or an index"):
        model.get_layer()


# -- activation= and Activation ---------------------------------------------------------------------
@pytest.mark.parametrize("name, cls, kwargs", [("relu", ReLU, {}), ("tanh", Tanh, {}), ("sigmoid", Sigmoid, {}),
                                               ("swish", Swish, {}), ("leaky_relu", LeakyReLU, {"alpha": 0.2}),
                                               ("softmax", Softmax, {})])
def test_activation_argument_equals_the_activation_layer(name, cls, kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 6, 2))
    inside = Conv2D(3, 3, activation=name)
    inside.initialize((6, 6, 2), "float64", np.random.default_rng(1))
    plain = Conv2D(3, 3)
    plain.initialize((6, 6, 2), "float64", np.random.default_rng(1))
    plain.params["kernel"][...] = inside.params["kernel"]
    after = cls(**kwargs)
    np.testing.assert_allclose(inside.forward(x), after.forward(plain.forward(x)), rtol=1e-12)
    g = rng.standard_normal((5, 4, 4, 3))
    np.testing.assert_allclose(inside.backward(g), plain.backward(after.backward(g)), rtol=1e-12)
    np.testing.assert_allclose(inside.grads["kernel"], plain.grads["kernel"], rtol=1e-12)
    np.testing.assert_array_equal(Activation(name).forward(x), after.forward(x))


def test_dense_softmax_output_is_fused_and_trains_like_dense_then_softmax():
    x, y = data()
    fused = Model([Dense(3, activation="softmax", input_shape=(4,))], seed=3)
    split = Model([Dense(3, input_shape=(4,)), Softmax()], seed=3)
    for model in (fused, split):
        model.compile(optimizer=SGD(0.5), loss="categorical_crossentropy")
    assert fused.plan.fused == [1] and fused.plan.fused_inside == {1} and split.plan.fused == [2]
    np.testing.assert_array_equal(fused.layers[0].params["kernel"], split.layers[0].params["kernel"])
    a = fused.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    b = split.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    assert a.history["loss"] == b.history["loss"]
    np.testing.assert_array_equal(fused.layers[0].params["kernel"], split.layers[0].params["kernel"])
    # the loss is computed from the logits: huge logits give a finite loss and gradient
    fused.layers[0].params["kernel"] *= 1e4
    assert np.isfinite(fused.evaluate(x, y)[0])
    report = check_model(fused, x[:4], y[:4])
    assert report.ok, report.table()


def test_a_softmax_inside_a_hidden_layer_is_not_fused():
    inputs = Input((4,))
    hidden = Dense(3, activation="softmax")(inputs)
    model = Model(inputs, [Dense(3, activation="softmax")(hidden), hidden], seed=0)
    model.compile(optimizer="sgd", loss=["categorical_crossentropy", "mse"])
    assert model.plan.fused[0] is not None and model.plan.fused[1] is None and len(model.plan.fused_inside) == 1
    x, y = data(8)
    assert check_model(model, x, [y, np.full((8, 3), 1 / 3)]).ok


def test_activation_relu_before_max_pooling_is_deferred_and_exact():
    def build(relu):
        m = Model([Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)), relu, MaxPool2D(), Flatten(),
                   Dense(3, activation="softmax")], seed=0, dtype="float64")
        m.compile(optimizer=SGD(0.1), loss="categorical_crossentropy")
        return m

    layer_model, activation_model = build(ReLU()), build(Activation("relu"))
    assert activation_model.plan.steps[2].skip_forward and activation_model.plan.steps[3].relu_after == 2
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 6, 6, 1)), rng.integers(0, 3, 16)
    a = layer_model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    b = activation_model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert a.history["loss"] == b.history["loss"]
    assert check_model(activation_model, x[:3], y[:3]).ok


def test_he_initialisation_for_an_own_relu_like_activation():
    assert Dense(4, activation="relu")._default_kernel_initializer() == "he_uniform"
    assert Dense(4, activation="tanh")._default_kernel_initializer() == "glorot_uniform"
    model = Model([Dense(4, input_shape=(3,)), Activation("relu"), Dense(2)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    assert model.layers[0].default_initializer == "he_uniform"


# -- regularizers -----------------------------------------------------------------------------------
def test_regularizer_names_and_objects():
    assert isinstance(get_regularizer("l2"), L2) and get_regularizer(L1(0.3)).get_config() == {"l1": 0.3}
    assert get_regularizer("l1").get_config() == {"l1": 0.01}
    assert get_regularizer("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert get_regularizer({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}}).get_config() == {"l1": 0.1,
                                                                                                     "l2": 0.2}
    w = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert L1(0.5).penalty(w) == pytest.approx(3.0) and L2(0.5).penalty(w) == pytest.approx(7.0)
    assert L1L2(0.5, 0.5).penalty(w) == pytest.approx(10.0)
    np.testing.assert_allclose(L1L2(0.5, 0.5).gradient(w), 0.5 * np.sign(w) + w)
    with pytest.raises(ValueError, match=r"kernel_regularizer: unknown regularizer 'l3'"):
        Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match=r"l2 must be"):
        L2(-1)


def test_penalty_shows_in_the_loss_and_the_gradients():
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    y = np.array([1.0, 0.0], np.float32)
    model = Model([Dense(1, kernel_regularizer=L2(0.1), bias_regularizer="l1", input_shape=(2,))], seed=0)
    model.compile(optimizer=SGD(0.05), loss="mse")
    w = model.layers[0].params["kernel"].astype(np.float64).copy()
    model.layers[0].params["bias"][...] = 0.5
    b = 0.5
    pred = x @ w[:, 0] + b
    data_loss = float(np.mean((pred - y) ** 2))
    penalty = 0.1 * float(np.sum(w ** 2)) + 0.01 * abs(b)
    assert model.evaluate(x, y) == pytest.approx(data_loss + penalty, rel=1e-6)
    logs = model.train_on_batch(x, y)
    assert logs["loss"] == pytest.approx(data_loss + penalty, rel=1e-6)
    grad_w = 2 / 2 * x.T @ (pred - y) + 2 * 0.1 * w[:, 0]
    grad_b = 2 / 2 * np.sum(pred - y) + 0.01
    np.testing.assert_allclose(model.layers[0].params["kernel"][:, 0], w[:, 0] - 0.05 * grad_w, rtol=1e-5)
    np.testing.assert_allclose(model.layers[0].params["bias"], b - 0.05 * grad_b, rtol=1e-5)


def test_regularized_model_passes_the_whole_model_gradient_check_and_threads_equal_one_thread():
    from nnscratch.engine.parallel import split_every_batch
    x, y = data(12)

    def build(threads):
        m = Model([Dense(5, activation="tanh", kernel_regularizer=L1L2(0.01, 0.05), input_shape=(4,)),
                   Dense(3, activation="softmax", bias_regularizer="l2")], seed=0, dtype="float64", threads=threads)
        m.compile(optimizer=SGD(0.1), loss="categorical_crossentropy")
        return m

    assert check_model(build(1), x[:4], y[:4]).ok
    one, two = build(1), build(2)
    one.fit(x, y, epochs=2, batch_size=6, verbose=0)
    with split_every_batch():
        two.fit(x, y, epochs=2, batch_size=6, verbose=0)
    for k, v in one.get_weights().items():
        np.testing.assert_allclose(two.get_weights()[k], v, rtol=1e-12)
    assert one.history.history["loss"] == pytest.approx(two.history.history["loss"], rel=1e-12)


# -- constraints ------------------------------------------------------------------------------------
def test_constraints_project_after_every_step_and_survive_save_and_load(tmp_path):
    x, y = data()
    model = Model([Dense(6, kernel_constraint=MaxNorm(0.5), bias_constraint="non_neg", input_shape=(4,)),
                   Dense(3, activation="softmax", kernel_constraint=UnitNorm(axis=0))], seed=0)
    model.compile(optimizer=SGD(0.5), loss="categorical_crossentropy")

    class Watch(nnscratch.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            first, second = self.model.layers
            assert np.linalg.norm(first.params["kernel"], axis=0).max() <= 0.5 + 1e-6
            assert first.params["bias"].min() >= 0
            np.testing.assert_allclose(np.linalg.norm(second.params["kernel"], axis=0), 1, rtol=1e-5)

    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Watch()])
    model.save(tmp_path / "m.h5")
    again = nnscratch.load_model(tmp_path / "m.h5")
    assert again.layers[0].weight_constraints["kernel"].get_config() == {"max_value": 0.5, "axis": 0}
    assert isinstance(again.layers[0].weight_constraints["bias"], NonNeg)
    assert json.loads(json.dumps(again.get_config())) == model.get_config()
    frozen = Model([Dense(2, kernel_constraint=NonNeg(), input_shape=(4,))], seed=0)
    frozen.layers[0].trainable = False
    frozen.compile(optimizer="sgd", loss="mse")
    frozen.layers[0].params["kernel"][0, 0] = -1.0
    frozen.fit(x, np.zeros((len(x), 2)), epochs=1, verbose=0)
    assert frozen.layers[0].params["kernel"][0, 0] == -1.0  # frozen weights are left alone


def test_constraint_definitions_follow_keras():
    w = np.array([[3.0, 0.3], [4.0, 0.4]])
    MaxNorm(1.0)(w)
    np.testing.assert_allclose(w[:, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(w[:, 1], [0.3, 0.4], rtol=1e-6)  # norm 0.5 is within the limit
    k = np.ones((2, 2, 3, 4))
    MaxNorm(1.0, axis=[0, 1, 2])(k)
    np.testing.assert_allclose(np.sqrt((k ** 2).sum(axis=(0, 1, 2))), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"kernel_constraint: unknown constraint 'max'"):
        Dense(2, kernel_constraint="max")
    assert get_constraint("unit_norm").get_config() == {"axis": 0}

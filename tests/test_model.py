import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Dense, Dropout, Flatten, ReLU, Sigmoid, Softmax, Tanh
from nnscratch.optimizers import SGD, Adam
from problems import blobs, spirals


def mlp(hidden=Sigmoid, seed=0, lr=0.02):
    model = nnscratch.Model(seed=seed)
    model.add(Dense(64, input_shape=(2,)))
    model.add(hidden())
    model.add(Dense(3))
    model.add(Softmax())
    model.set(loss="categorical_crossentropy", optimizer=Adam(lr), accuracy="categorical_accuracy")
    model.finalize()
    return model


def test_two_layer_sigmoid_mlp_learns_spirals():
    x, y = spirals(seed=0)
    x_val, y_val = spirals(seed=1)
    model = mlp()
    history = model.fit(x, y, epochs=150, batch_size=32, verbose=0, validation_data=(x_val, y_val))
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    assert model.validate(x_val, y_val)["accuracy"] > 0.95


def test_deep_relu_mlp_learns_spirals_with_one_hot_targets():
    x, y = spirals(seed=0)
    x_val, y_val = spirals(seed=1)
    model = nnscratch.Model([Dense(64, input_shape=(2,)), ReLU(), Dense(64), ReLU(), Dense(64), ReLU(),
                             Dense(3), Softmax()], seed=3)
    model.set(loss="CategoricalCrossEntropy", optimizer="adam", accuracy="categorical")
    model.finalize()
    model.fit(x, np.eye(3)[y], epochs=60, batch_size=32, verbose=0)
    assert model.validate(x_val, y_val)["accuracy"] > 0.95
    # He initialisation was picked for the layers followed by ReLU, Glorot for the last Dense
    assert [layer.default_initializer for layer in model.layers if isinstance(layer, Dense)] == [
        "he_uniform", "he_uniform", "he_uniform", "glorot_uniform"]


def test_same_seed_gives_identical_run_and_other_seed_differs():
    x, y = blobs()

    def run(seed):
        model = nnscratch.Model([Dense(8, input_shape=(4,)), Tanh(), Dropout(0.3), Dense(3), Softmax()],
                                seed=seed)
        model.set(loss="categorical_crossentropy", optimizer=SGD(0.1, momentum=0.9))
        model.finalize()
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return model.get_weights()

    a, b, c = run(5), run(5), run(6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_fit_in_two_calls_equals_one_call():
    x, y = blobs()

    def model():
        m = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dropout(0.2), Dense(3), Softmax()], seed=1)
        m.set(loss="categorical_crossentropy", optimizer="adam")
        m.finalize()
        return m

    once, twice = model(), model()
    once.fit(x, y, epochs=3, batch_size=32, verbose=0)
    twice.fit(x, y, epochs=2, batch_size=32, verbose=0)
    twice.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for k, v in once.get_weights().items():
        np.testing.assert_array_equal(v, twice.get_weights()[k])
    assert twice.epochs_trained == 3 and len(twice.history.history["loss"]) == 3


def test_predict_batches_and_shapes():
    model = mlp()
    x, _ = spirals(samples_per_class=50)
    p = model.predict(x, batch_size=7)
    assert p.shape == (150, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(p, model.predict(x, batch_size=1000), rtol=1e-6)


def test_validation_split_holds_out_the_last_samples():
    x, y = spirals()
    model = mlp()
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_split=0.25)
    assert "val_loss" in history.history and "val_accuracy" in history.history


@pytest.mark.parametrize("make_x, make_y, error, pattern", [
    (lambda: np.zeros((4, 3)), lambda: np.zeros(4, int), ValueError, r"expects x of shape \(N, 2\), got \(4, 3\)"),
    (lambda: np.zeros((4, 2)), lambda: np.zeros(5, int), ValueError, r"4 samples, 5 targets"),
    (lambda: np.zeros((4, 2)), lambda: np.array([0, 1, 2, 3]), ValueError, r"labels must lie in \[0, 2\].*3"),
    (lambda: np.zeros((4, 2)), lambda: np.array([0, 1, -1, 0]), ValueError, r"got label -1"),
    (lambda: np.zeros((4, 2)), lambda: np.array([0.0, 1.0, 1.0, 0.0]), TypeError, r"integer class labels"),
    (lambda: np.array([[0, np.nan]] * 4), lambda: np.zeros(4, int), ValueError, r"NaN/inf.*index \(0, 1\)"),
    (lambda: np.zeros((4, 2)), lambda: np.zeros((4, 5)), ValueError, r"one-hot targets of shape \(N, 3\)"),
    (lambda: np.array([["a", "b"]] * 4), lambda: np.zeros(4, int), TypeError, r"x must be an array of numbers"),
])
def test_bad_input_is_refused_with_expected_and_received(make_x, make_y, error, pattern):
    model = mlp()
    with pytest.raises(error, match=pattern):
        model.fit(make_x(), make_y(), epochs=1, verbose=0)


def test_missing_channel_axis_gets_a_hint():
    model = nnscratch.Model([Flatten(input_shape=(4, 4, 1)), Dense(2), Softmax()])
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    with pytest.raises(ValueError, match=r"x\[\.\.\., None\]"):
        model.predict(np.zeros((3, 4, 4)))


def test_fit_before_finalize_and_finalize_without_pieces():
    model = nnscratch.Model([Dense(2, input_shape=(2,)), Softmax()])
    with pytest.raises(ValueError, match="no loss set"):
        model.finalize()
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    with pytest.raises(RuntimeError, match=r"call model.finalize\(\) before model.fit"):
        model.fit(np.zeros((2, 2)), np.zeros(2, int))
    with pytest.raises(ValueError, match="needs input_shape"):
        bad = nnscratch.Model([Dense(2)])
        bad.set(loss="mse", optimizer="sgd")
        bad.finalize()


def test_unknown_names_list_the_known_ones():
    model = nnscratch.Model()
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*Adam.*SGD"):
        model.set(optimizer="adamm")
    with pytest.raises(ValueError, match=r"unknown loss 'cross'.*CategoricalCrossEntropy"):
        model.set(loss="cross")
    with pytest.raises(TypeError, match=r"Layer instance.*parentheses"):
        model.add(ReLU)


def test_incompatible_shapes_fail_at_finalize_naming_the_layer():
    model = nnscratch.Model([Flatten(input_shape=(4, 4, 1)), Dense(3), Dense(2, input_shape=(5,))])
    model.set(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match=r"dense_2 \(Dense\) declares input_shape=\(5,\).*outputs \(3,\)"):
        model.finalize()
    model = nnscratch.Model([Dense(3, input_shape=(4, 4, 1))])
    model.set(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match=r"layer 0 \(dense_1 \(Dense\)\).*add a Flatten"):
        model.finalize()


def test_regression_with_mse_and_regression_accuracy():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 1)).astype(np.float32)
    y = np.sin(3 * x)
    model = nnscratch.Model([Dense(32, input_shape=(1,)), Tanh(), Dense(32), Tanh(), Dense(1)], seed=0)
    model.set(loss="mse", optimizer=Adam(0.01), accuracy="regression")
    model.finalize()
    model.fit(x, y, epochs=150, batch_size=32, verbose=0)
    assert model.validate(x, y)["loss"] < 2e-3


def test_binary_classification_with_sigmoid_output():
    x, y = blobs(classes=2)
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(1), Sigmoid()], seed=0)
    model.set(loss="binary_crossentropy", optimizer=Adam(0.01), accuracy="binary")
    model.finalize()
    model.fit(x, y[:, None], epochs=20, batch_size=32, verbose=0)
    assert model.validate(x, y[:, None])["accuracy"] > 0.97


def test_float64_model_trains_in_float64():
    x, y = blobs()
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(3), Softmax()], dtype="float64", seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.fit(x, y, epochs=2, verbose=0)
    assert all(p.dtype == np.float64 for _, p, _ in model.trainable_params())
    assert model.predict(x).dtype == np.float64


def test_frozen_layer_is_not_updated():
    x, y = blobs()
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.layers[0].trainable = False
    before = model.layers[0].params["kernel"].copy()
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(before, model.layers[0].params["kernel"])


def test_set_weights_checks_names_and_shapes():
    model = mlp()
    weights = model.get_weights()
    weights["dense_1/kernel"] = np.zeros((3, 64))
    with pytest.raises(ValueError, match=r"dense_1 \(Dense\).*'kernel'.*\(2, 64\).*\(3, 64\)"):
        model.set_weights(weights)
    del weights["dense_1/kernel"]
    with pytest.raises(ValueError, match=r"missing \['dense_1/kernel'\]"):
        model.set_weights(weights)


def test_config_round_trip_rebuilds_the_same_network():
    model = mlp(seed=4)
    again = nnscratch.Model.from_config(model.get_config(), model.get_training_config())
    again.finalize()
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(v, again.get_weights()[k])
    assert type(again.optimizer) is Adam and again.optimizer.learning_rate == 0.02

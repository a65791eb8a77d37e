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
    model.finalize()  # no loss, no optimizer: enough to summarize and predict (issue 14)
    assert model.predict(np.zeros((3, 2))).shape == (3, 2) and "Total params: 6" in model.summary(print_fn=None)
    for call in (lambda: model.fit(np.zeros((2, 2)), np.zeros(2, int)), lambda: model.evaluate(np.zeros((2, 2)),
                                                                                             np.zeros(2, int))):
        with pytest.raises(RuntimeError, match=r"needs a loss.*model.compile\(optimizer=..., loss=...\)"):
            call()
    model.set(loss="categorical_crossentropy")
    with pytest.raises(RuntimeError, match=r"call model.finalize\(\) before model.fit"):
        model.fit(np.zeros((2, 2)), np.zeros(2, int))
    model.finalize()
    with pytest.raises(RuntimeError, match=r"model.fit\(\) needs an optimizer"):
        model.fit(np.zeros((2, 2)), np.zeros(2, int))
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


class _Wrapper(nnscratch.layers.Layer, register=False):
    """``Dense(inner(x))`` with ``inner`` a layer holding a Dense: three levels of sublayers."""

    def __init__(self, units=3, depth=2, **kwargs):
        super().__init__(**kwargs)
        self.units, self.depth = units, depth
        self.inner = _Wrapper(units, depth - 1) if depth > 1 else None
        self.dense = Dense(units)

    def build(self, input_shape):
        shape = self.inner.initialize(input_shape, self.dtype, self.rng) if self.inner else input_shape
        self.dense.initialize(shape, self.dtype, self.rng)

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def forward(self, x, training=False):
        return self.dense.forward(self.inner.forward(x, training) if self.inner else x, training)

    def backward(self, dout):
        g = self.dense.backward(dout)
        return self.inner.backward(g) if self.inner else g


def test_trainable_params_follow_a_sublayer_frozen_after_the_first_call():
    model = nnscratch.Model([_Wrapper(input_shape=(4,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()

    def walked():  # what the layers' own walk says, without the model's kept walk
        return [(f"{layer.name}/{path}{k}", p) for layer in model.layers
                for path, sub, trainable in layer._walk_trainable() if trainable for k, p in sub.params.items()]

    keys = [key for key, _, _ in model.trainable_params()]
    assert sorted(keys) == sorted(key for key, _ in walked()) and len(keys) == 4
    model.layers[0].inner.trainable = False   # freezes inner/dense/ too, two levels down
    assert [(k, id(p)) for k, p, _ in model.trainable_params()] == [(k, id(p)) for k, p in walked()]
    assert [k.split("/", 1)[1] for k, _, _ in model.trainable_params()] == ["dense/kernel", "dense/bias"]


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


# -- graph models (Keras' functional API) ----------------------------------------------------------------
def residual_mlp(seed=0, threads=1, dtype="float32", optimizer=None):
    from nnscratch import Input
    from nnscratch.layers import Add, BatchNormalization
    x = Input((4,))
    h = ReLU()(BatchNormalization()(Dense(8, use_bias=False)(x)))
    h = Add()([Dense(8)(x), Dense(8)(h)])
    out = Softmax()(Dense(3)(ReLU()(h)))
    model = nnscratch.Model(inputs=x, outputs=out, seed=seed, threads=threads, dtype=dtype)
    model.set(loss="categorical_crossentropy", optimizer=optimizer or Adam(0.01))
    model.finalize()
    return model


def test_a_graph_model_trains_predicts_and_prints_what_feeds_each_layer():
    x, y = blobs()
    model = residual_mlp()
    assert model.is_graph and [type(layer).__name__ for layer in model.layers][:3] == ["InputLayer", "Dense",
                                                                                     "BatchNormalization"]
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert model.validate(x, y)["accuracy"] > 0.95
    assert model.predict(x[:5]).shape == (5, 3)
    text = model.summary(print_fn=None)
    assert "Connected to" in text and "add_1 (Add)" in text and "dense_2[0][0], dense_3[0][0]" in text
    assert "Non-trainable params: 16 (64.00 B)" in text  # BatchNormalization's moving mean and variance


def test_positional_inputs_and_outputs_and_graph_errors():
    from nnscratch import Input
    x = Input((3,))
    y = Dense(2)(x)
    assert nnscratch.Model(x, y).is_graph
    with pytest.raises(ValueError, match=r"needs both inputs= and outputs="):
        nnscratch.Model(inputs=x)
    with pytest.raises(ValueError, match=r"either layers .* or inputs= and outputs="):
        nnscratch.Model([Dense(2)], inputs=x, outputs=y)
    with pytest.raises(TypeError, match=r"takes tensors from nnscratch.Input"):
        nnscratch.Model(inputs=np.zeros((2, 3)), outputs=y)
    with pytest.raises(ValueError, match=r"takes tensors made by nnscratch.Input"):
        nnscratch.Model(inputs=y, outputs=Dense(1)(y))
    with pytest.raises(TypeError, match=r"Model.add builds sequential models"):
        nnscratch.Model(x, y).add(Dense(1))
    from nnscratch.layers import Add
    with pytest.raises(TypeError, match=r"merges several tensors, which a stack of layers cannot express"):
        nnscratch.Model().add(Add())


def test_two_inputs_two_outputs_with_weighted_losses_and_inputs_by_name():
    from nnscratch import Input
    from nnscratch.layers import Concatenate
    a, b = Input((3,), name="left"), Input((2,), name="right")
    h = ReLU()(Dense(8)(Concatenate()([a, b])))
    cls = Softmax(name="cls")(Dense(3)(h))
    reg = Dense(1, name="reg")(h)
    model = nnscratch.Model(inputs=[a, b], outputs=[cls, reg], seed=0)
    model.set(loss=["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5], optimizer=Adam(0.01))
    model.finalize()
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((64, 3)).astype(np.float32), rng.standard_normal((64, 2)).astype(np.float32)
    labels, target = (xa[:, 0] > 0).astype(int), xb.sum(axis=1, keepdims=True)
    history = model.fit([xa, xb], [labels, target], epochs=30, batch_size=16, verbose=0)
    logs = model.validate({"left": xa, "right": xb}, {"cls": labels, "reg": target})
    assert {"loss", "cls_loss", "reg_loss", "cls_accuracy"} <= set(logs)
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + 0.5 * logs["reg_loss"], rel=1e-5)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    probs, values = model.predict([xa, xb])
    assert probs.shape == (64, 3) and values.shape == (64, 1)
    with pytest.raises(ValueError, match=r"the model has 2 inputs, so x must be a list of 2 arrays"):
        model.predict(xa)
    with pytest.raises(ValueError, match=r"missing \['right'\]"):
        model.predict({"left": xa})


def test_a_layer_called_twice_shares_its_weights_and_adds_its_gradients():
    from nnscratch import Input
    from nnscratch.gradcheck import check_model
    from nnscratch.layers import Add
    x = Input((4,))
    shared = Dense(4)
    out = Softmax()(Dense(3)(Add()([shared(x), shared(ReLU()(shared(x)))])))  # three calls, one weight
    model = nnscratch.Model(inputs=x, outputs=out, seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert sum(layer.count_params() for layer in model.layers) == 20 + 15
    xs, ys = blobs(n=6)
    report = check_model(model, xs, ys)
    assert report.ok, report.table()
    # the same network with the shared weight written out by hand: the gradients must equal the sum over calls
    w, b = shared.params["kernel"], shared.params["bias"]
    output, logits = model.forward(xs.astype(np.float32), training=True)
    model.backward(output, logits, ys)
    h1 = xs @ w + b
    head = model.layers[-2]
    p = output
    g = (p - np.eye(3)[ys]) / len(ys)
    ds = g @ head.params["kernel"].T
    dh1 = ds + (ds @ w.T) * (h1 > 0)
    expected = xs.T @ dh1 + np.maximum(h1, 0).T @ ds
    np.testing.assert_allclose(shared.grads["kernel"], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_batch_normalization_trains_the_same_with_two_threads_as_with_one(dtype, rtol):
    from nnscratch.engine.parallel import split_every_batch
    x, y = blobs(n=90)
    weights = []
    for threads in (1, 2):
        # SGD: Adam would blow rounding noise in a gradient near zero up to steps of the learning rate
        model = residual_mlp(seed=3, threads=threads, dtype=dtype, optimizer=SGD(0.1, momentum=0.9))
        with split_every_batch():
            model.fit(x, y, epochs=2, batch_size=45, verbose=0)
        weights.append(model.get_weights())
    for k in weights[0]:
        scale = max(float(np.abs(weights[0][k]).max()), 1e-3)
        assert float(np.abs(weights[1][k] - weights[0][k]).max()) <= rtol * scale, k


def test_moving_statistics_follow_the_whole_batch_whatever_the_thread_count():
    # the report behind issue 11: per-thread statistics gave a moving mean of 0.0787 instead of 0.0394
    from nnscratch import Input
    from nnscratch.engine.parallel import split_every_batch
    from nnscratch.layers import BatchNormalization
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 1)) + np.linspace(0, 2, 64)[:, None]).astype(np.float32)
    means = []
    for threads in (1, 2):
        inp = Input((1,))
        bn = BatchNormalization(momentum=0.9)
        model = nnscratch.Model(inputs=inp, outputs=Dense(1)(bn(inp)), seed=0, threads=threads)
        model.set(loss="mse", optimizer=SGD(0.0))
        model.finalize()
        with split_every_batch():
            model.fit(x, np.zeros((64, 1)), epochs=1, batch_size=16, shuffle=False, verbose=0)
        means.append(float(bn.state["moving_mean"][0]))
    expected = 0.0
    for step in range(4):
        expected = 0.9 * expected + 0.1 * float(x[16 * step:16 * (step + 1)].mean())
    assert means[0] == pytest.approx(expected, rel=1e-6) and means[1] == pytest.approx(expected, rel=1e-6)


def test_a_graph_model_saves_loads_and_predicts_the_same(tmp_path):
    x, y = blobs()
    model = residual_mlp()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "graph.h5")
    again = nnscratch.load_model(tmp_path / "graph.h5")
    assert again.is_graph and again.get_config() == model.get_config()
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(again.get_weights()[k], v)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    again.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(again.get_weights()[k], v)


def test_fit_refuses_missing_or_scalar_targets_and_takes_a_single_callback():
    from nnscratch.callbacks import History
    model = mlp()
    x, y = spirals(samples_per_class=10)
    with pytest.raises(TypeError, match=r"no targets: y is None"):
        model.fit(x, None)
    with pytest.raises(TypeError, match=r"y must be an array with one target per sample, got int"):
        model.fit(x, 3)
    with pytest.raises(TypeError, match=r"x is None"):
        model.fit(None, y)
    with pytest.raises(TypeError, match=r"callbacks must be a list of Callback objects, got str"):
        model.fit(x, y, callbacks="EarlyStopping", verbose=0)
    seen = History()
    model.fit(x, y, epochs=1, callbacks=seen, verbose=0)
    assert seen.epoch == [0]


def test_values_beyond_float32s_range_are_refused_after_the_cast():
    model = mlp()
    x = np.zeros((4, 2))
    x[1, 0] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"x holds values as large as 1e\+39, beyond float32's range"):
        model.fit(x, np.zeros(4, int), verbose=0)


def test_threads_1_gives_the_same_bits_whatever_blas_is_allowed(monkeypatch):
    # one thread means one: BLAS is held to a single thread too, so OPENBLAS_NUM_THREADS cannot change the result
    from threadpoolctl import threadpool_info
    seen = []
    model = mlp()
    original = model._train_step

    def spy(*args):
        seen.append(max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1))
        return original(*args)

    monkeypatch.setattr(model, "_train_step", spy)
    model.threads = 1
    x, y = spirals(samples_per_class=10)
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert seen and set(seen) == {1}


def test_every_epoch_has_its_own_shuffled_order(monkeypatch):
    orders = []
    model = mlp()
    original = model._train_step

    def spy(xs, ys, seed, *rest):
        orders.append(xs[0][:, 0].copy())
        return original(xs, ys, seed, *rest)

    monkeypatch.setattr(model, "_train_step", spy)
    x = np.arange(40, dtype=np.float32).repeat(2).reshape(40, 2)
    model.fit(x, np.zeros(40, int), epochs=3, batch_size=40, verbose=0)
    assert len(orders) == 3
    assert sorted(orders[0].tolist()) == list(range(40))  # every sample once
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])


def test_validation_split_takes_the_last_samples_before_shuffling():
    x, y = spirals()
    model = mlp()
    n_val = int(round(len(x) * 0.25))
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_split=0.25, shuffle=False)
    last = model.validate(x[-n_val:], y[-n_val:])
    assert history.history["val_loss"][0] == pytest.approx(last["loss"], rel=1e-6)
    assert history.history["val_loss"][0] != pytest.approx(model.validate(x[:n_val], y[:n_val])["loss"], rel=1e-3)


def test_an_interrupted_fit_still_ends_the_callbacks():
    from nnscratch.callbacks import Callback

    class Record(Callback):
        def __init__(self):
            super().__init__()
            self.begin, self.end = None, None

        def on_train_begin(self, logs=None):
            self.begin = dict(logs)

        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

        def on_train_end(self, logs=None):
            self.end = dict(logs or {})

    model = mlp()
    model.fit(*spirals(samples_per_class=10), epochs=1, batch_size=10, verbose=0)
    record = Record()
    with pytest.raises(KeyboardInterrupt):
        model.fit(*spirals(samples_per_class=10), epochs=2, batch_size=10, verbose=0, callbacks=[record])
    assert record.begin["initial_epoch"] == 1 and record.end == {"interrupted": True}

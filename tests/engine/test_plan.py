"""The execution plan: the walk over the graph and the rewrites that keep its numbers."""
import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Dense, Flatten, ReLU, Softmax


def test_fused_softmax_cross_entropy_is_used_and_stable():
    model = nnscratch.Model([Dense(3, input_shape=(2,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert model.plan.fused == [2]  # the hidden input, the Dense, the Softmax
    model.layers[0].params["kernel"][...] = [[300, -300, 0], [0, 0, 0]]  # saturates the softmax
    x = np.array([[1.0, 0.0]], np.float32)
    loss = model.validate(x, np.array([1]))["loss"]
    assert np.isfinite(loss) and loss == pytest.approx(600, rel=1e-3)



@pytest.mark.parametrize("relu", [ReLU, lambda: __import__("nnscratch").layers.Activation("relu")],
                         ids=["ReLU", "Activation relu"])
@pytest.mark.parametrize("pool", [{"pool_size": 2}, {"pool_size": 3, "strides": 2}])
def test_a_relu_before_max_pooling_runs_after_it_with_the_same_values_and_gradients(pool, relu):
    from nnscratch.layers import Conv2D, MaxPool2D
    model = nnscratch.Model(seed=0)
    model.add(Conv2D(3, 3, padding="same", input_shape=(8, 8, 2)))
    model.add(relu())
    model.add(MaxPool2D(**pool))
    model.add(Flatten())
    model.add(Dense(4))
    model.add(Softmax())
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    relu, pool = model.plan.steps[2], model.plan.steps[3]
    assert relu.skip_forward and pool.relu_after == 2 and pool.inputs == relu.inputs
    rng = np.random.default_rng(0)
    # integer-valued inputs: many windows tie, many hold only negatives
    x = rng.integers(-2, 3, (5, 8, 8, 2)).astype(np.float32)
    y = model.loss.check_targets(rng.integers(0, 4, 5), model.output_shape)
    output, logits = model.forward(x, training=True)
    model.backward(output, logits, y)
    got = {f"{l.name}/{k}": g.copy() for l in model.layers for k, g in l.grads.items()}
    # the layers in the order they were added
    h = x
    for layer in model.layers[:-1]:
        h = layer.forward(h, training=True)
    np.testing.assert_array_equal(h, logits)
    grad = model.loss.fused_gradient(model.layers[-1].forward(h), y)
    for layer in reversed(model.layers[:-1]):
        grad = layer.backward(grad)
    for layer in model.layers:
        for k, g in layer.grads.items():
            np.testing.assert_array_equal(got[f"{layer.name}/{k}"], g)


@pytest.mark.parametrize("channels", [4, 32])  # 32: the 3x3 convs after the first go through Winograd
def test_inference_layers_share_one_scratch_pool_per_thread_and_give_the_same_predictions(monkeypatch, channels):
    from nnscratch.engine import parallel
    from nnscratch.layers import Add, BatchNormalization, Conv2D, GlobalAvgPool2D

    from nnscratch.engine import plan

    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)
    monkeypatch.setattr(plan, "INFERENCE_ACTIVATIONS", 0)  # pieces of 64 even for the small 4-channel net
    x_in = nnscratch.Input((8, 8, 3))
    h = ReLU()(BatchNormalization()(Conv2D(channels, 3, padding="same")(x_in)))
    r = BatchNormalization()(Conv2D(channels, 3, padding="same")(h))
    h = ReLU()(Add()([h, r]))  # the residual: an earlier conv's output is read after later convs ran
    h = Conv2D(5, 3, strides=2, padding="same")(h)
    out = Softmax()(Dense(3)(GlobalAvgPool2D()(h)))
    model = nnscratch.Model(inputs=x_in, outputs=out, seed=0, threads=2)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8, 8, 3)).astype(np.float32)
    model.fit(x[:64], rng.integers(0, 3, 64), batch_size=32, verbose=0)  # training's own columns first
    import contextlib

    with monkeypatch.context() as patch:  # every layer on its own workspace, as in training
        patch.setattr(plan, "_shared_scratch", lambda instances, pools: contextlib.nullcontext())
        expected = model.predict(x, batch_size=300)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D) and "cols" in layer.workspace]  # im2col's
    own_columns = [layer.workspace["cols"] for layer in convs]
    for _ in range(2):  # in two threads (150 samples each: pieces of 64, 64 and 22), then in one
        np.testing.assert_array_equal(model.predict(x, batch_size=300), expected)
    model.threads = 1
    np.testing.assert_allclose(model.predict(x, batch_size=300), expected, rtol=1e-5)
    assert all(layer.workspace["cols"] is cols for layer, cols in zip(convs, own_columns))  # left as training had it
    pool = model.plan._scratch_pools[next(layer for layer in model.plan.instances if layer is not None)]
    assert pool["cols"].size >= max(c.size for c in own_columns)


def test_inference_pieces_grow_for_networks_with_few_activations_per_sample_or_many_calls(monkeypatch):
    from nnscratch.engine import plan
    from nnscratch.layers import Conv2D, MaxPool2D

    mlp = nnscratch.Model([Dense(64, input_shape=(784,)), ReLU(), Dense(10), Softmax()], seed=0, threads=1)
    cnn = nnscratch.Model([Conv2D(6, 5, padding="same", input_shape=(28, 28, 1)), ReLU(), MaxPool2D(2), Flatten(),
                           Dense(10), Softmax()], seed=0, threads=1)
    deep = nnscratch.Model([Conv2D(6, 5, padding="same", input_shape=(28, 28, 1))] +
                           [ReLU() if i % 2 else Conv2D(6, 3, padding="same") for i in range(plan.DEEP_PLAN_CALLS)] +
                           [Flatten(), Dense(10), Softmax()], seed=0, threads=1)
    sizes = []
    forward = plan.Plan.forward
    monkeypatch.setattr(plan.Plan, "forward", lambda self, xs, *args: sizes.append(len(xs[0])) or
                        forward(self, xs, *args))
    rng = np.random.default_rng(0)
    piece = plan.INFERENCE_PIECE
    for model, expected in ((mlp, [512, 512, 76]), (cnn, [piece] * (1100 // piece) + [1100 % piece]),
                            (deep, [2 * piece] * (1100 // (2 * piece)) + [1100 % (2 * piece)])):
        model.set(loss="categorical_crossentropy", optimizer="sgd")
        model.finalize()
        x = rng.standard_normal((1100,) + model.input_shape).astype(np.float32)
        sizes.clear()
        got = model.predict(x, batch_size=1100)
        assert sizes == expected
        with monkeypatch.context() as patch:
            patch.setattr(plan, "MAX_INFERENCE_PIECE", piece)
            patch.setattr(plan, "DEEP_PLAN_CALLS", 10**6)
            sizes.clear()
            np.testing.assert_allclose(model.predict(x, batch_size=1100), got, rtol=1e-5, atol=1e-7)
            assert sizes == [piece] * (1100 // piece) + [1100 % piece]


# --- found by mutation testing (docs/mutation-testing.md) ---
def _grads(model):
    return {f"{layer.name}/{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()}


def test_a_layer_called_twice_gets_the_sum_of_the_gradients_of_two_copies_of_it():
    # any correct plan: a shared layer behaves as two layers with the same weights whose gradients add up
    from nnscratch import Input
    from nnscratch.layers import Add

    def build(shared):
        x = Input((4,))
        first = Dense(4)
        second = first if shared else Dense(4)
        a = first(x)
        h = ReLU()(Add()([a, second(ReLU()(a))]))
        model = nnscratch.Model(inputs=x, outputs=Softmax()(Dense(3)(h)), seed=0)
        model.set(loss="categorical_crossentropy", optimizer="sgd")
        model.finalize()
        return model

    shared, copies = build(True), build(False)
    weights = shared.get_weights()
    dense = [layer for layer in copies.layers if isinstance(layer, Dense)]
    for layer, source in zip(dense, ["dense_1", "dense_1", "dense_2"]):   # the copies' layers: first, second, last
        layer.params["kernel"][...] = weights[f"{source}/kernel"]
        layer.params["bias"][...] = weights[f"{source}/bias"]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    outputs = []
    for model in (shared, copies):
        for layer in model.layers:
            for g in layer.grads.values():
                g[...] = 0
        out, logits = model.forward(x, training=True)
        model.backward(out, logits, model.loss.check_targets(y, model.output_shape))
        outputs.append(out)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6)
    w = {k: v.astype(np.float64) for k, v in weights.items()}   # and both equal the graph computed by hand
    a = x @ w["dense_1/kernel"] + w["dense_1/bias"]
    h = np.maximum(a + np.maximum(a, 0) @ w["dense_1/kernel"] + w["dense_1/bias"], 0)
    z = h @ w["dense_2/kernel"] + w["dense_2/bias"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(outputs[0], p / p.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    got, parts = _grads(shared), _grads(copies)
    first, second, last = [layer.name for layer in dense]
    for k in ("kernel", "bias"):
        np.testing.assert_allclose(got[f"dense_1/{k}"], parts[f"{first}/{k}"] + parts[f"{second}/{k}"],
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got[f"dense_2/{k}"], parts[f"{last}/{k}"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(shared.predict(x), outputs[0], rtol=1e-5, atol=1e-7)
    # both models run through the same plan: the finite differences check the gradients' sums themselves
    from nnscratch.gradcheck import check_model
    assert check_model(shared, x, y).ok


@pytest.mark.parametrize("layers", [lambda: [Dense(3, input_shape=(2,)), Softmax()],
                                    lambda: [Dense(3, activation="softmax", input_shape=(2,))]],
                         ids=["Softmax layer", "Dense with a softmax activation"])
def test_the_fused_loss_with_sample_weights_is_taken_from_the_logits_so_stays_exact_when_saturated(layers):
    model = nnscratch.Model(layers(), seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    model.layers[0].params["kernel"][...] = [[300, -300, 0], [0, 0, 0]]  # saturates the softmax
    x = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    out, logits = model.plan.forward([x])
    y = model.loss.check_targets(np.array([1, 0]), model.output_shape)
    weighted = model.plan.losses_of(out, logits, [y], weights=[np.array([0.5, 1.0])])[0]
    assert weighted == pytest.approx(0.5 * 600 / 2, rel=1e-3)   # the second sample's loss is 0
    assert model.plan.losses_of(out, logits, [y])[0] == pytest.approx(600 / 2, rel=1e-3)
    model.plan.backward(out, logits, [y])                 # (p - y) / N, straight to the logits
    np.testing.assert_allclose(model.layers[0].grads["bias"], [0.5, -0.5, 0.0], atol=1e-6)


@pytest.mark.parametrize("loss_weight", [1.0, 2.0, 0.5])
def test_an_unfused_loss_with_sample_weights_and_a_loss_weight_gives_its_loss_and_gradient(loss_weight):
    # mean squared error after a softmax is not fused: its loss and gradient come from the loss object
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    w = np.array([0.0, 1.0, 2.0, 0.5, 1.0])
    model = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()], seed=0, dtype="float64")
    model.set(loss="mse", optimizer="sgd", loss_weights=[loss_weight])
    model.finalize()
    out, logits = model.plan.forward([x], training=True)
    p = model.layers[-1].forward(model.layers[0].forward(x))
    per_sample = np.mean((p - y) ** 2, axis=1)
    assert model.plan.losses_of(out, logits, [y]) == [pytest.approx(per_sample.mean(), rel=1e-12)]
    assert model.plan.losses_of(out, logits, [y], weights=[w]) == [pytest.approx((w * per_sample).mean(),
                                                                                   rel=1e-12)]
    for g in model.layers[0].grads.values():
        g[...] = 0
    model.plan.backward(out, logits, [y], weights=[w])
    # by hand: d(loss_weight * mean_i w_i mean_j (p_ij - y_ij)^2)/dp, then through the softmax and the Dense
    dp = loss_weight * w[:, None] * 2 * (p - y) / (p.shape[0] * p.shape[1])
    dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))
    np.testing.assert_allclose(model.layers[0].grads["kernel"], x.T @ dz, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.layers[0].grads["bias"], dz.sum(axis=0), rtol=1e-10, atol=1e-14)


# --- the cases the plan's rewrites and instances must keep (found by mutation testing) ---
def _softmax(z):
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_an_output_that_another_layer_also_reads_is_kept_and_not_fused():
    # the softmax inside a Dense is an output and the input of a second head: its gradient from the head
    # is dL/dp, which must go through the softmax, not be taken as a gradient of the logits
    from nnscratch import Input
    from nnscratch.gradcheck import check_model

    x = Input((4,))
    probs = Dense(3, activation="softmax", name="probs")(x)
    head = Softmax(name="head")(Dense(2)(probs))
    model = nnscratch.Model(inputs=x, outputs=[probs, head], seed=0, dtype="float64")
    model.set(loss=["categorical_crossentropy", "categorical_crossentropy"], optimizer="sgd")
    model.finalize()
    assert model.plan.fused == [None, 3]
    rng = np.random.default_rng(0)
    xb, y1, y2 = rng.standard_normal((5, 4)), rng.integers(0, 3, 5), rng.integers(0, 2, 5)
    p, h = model.predict(xb)
    w = model.get_weights()
    np.testing.assert_allclose(p, _softmax(xb @ w["probs/kernel"] + w["probs/bias"]), rtol=1e-12)
    assert h.shape == (5, 2)
    assert check_model(model, xb, [y1, y2]).ok


def test_logits_that_are_an_output_too_get_their_own_loss_gradient_and_the_fused_one():
    # the fused softmax sends its gradient straight to the logits, which have a loss of their own
    from nnscratch import Input
    from nnscratch.gradcheck import check_model

    x = Input((4,))
    z = Dense(3, name="logits")(x)
    model = nnscratch.Model(inputs=x, outputs=[z, Softmax()(z)], seed=0, dtype="float64")
    model.set(loss=["mse", "categorical_crossentropy"], loss_weights=[3.0, 1.0], optimizer="sgd")
    model.finalize()
    assert model.plan.fused == [None, 2]
    rng = np.random.default_rng(1)
    xb, labels, target = rng.standard_normal((6, 4)), rng.integers(0, 3, 6), rng.standard_normal((6, 3))
    assert check_model(model, xb, [target, labels]).ok
    w = model.get_weights()
    z_value = xb @ w["logits/kernel"] + w["logits/bias"]
    y = np.eye(3)[labels]
    dz = 3.0 * 2 * (z_value - target) / z_value.size + (_softmax(z_value) - y) / 6
    out, logits = model.plan.forward([xb], training=True)
    model.plan.backward(out, logits, [target, y])
    np.testing.assert_allclose(model.layers[1].grads["kernel"], xb.T @ dz, rtol=1e-10)


def test_a_merge_whose_first_input_needs_no_gradient_still_passes_the_gradient_to_the_others():
    from nnscratch import Input
    from nnscratch.layers import Add

    def build(input_first):
        x = Input((4,))
        d = Dense(4, name="inner")(x)
        h = Add()([x, d] if input_first else [d, x])   # the model input needs no gradient in training
        model = nnscratch.Model(inputs=x, outputs=Softmax()(Dense(3, name="top")(h)), seed=0, dtype="float64")
        model.set(loss="categorical_crossentropy", optimizer="sgd")
        model.finalize()
        return model

    rng = np.random.default_rng(2)
    xb, y = rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    grads = []
    for input_first in (True, False):
        model = build(input_first)
        out, logits = model.plan.forward([xb], training=True)
        assert model.plan.backward(out, logits, [y]) == [None]     # nobody asked for the input's gradient
        grads.append(model.layers[1].grads["kernel"].copy())
    w = model.get_weights()
    h = xb + xb @ w["inner/kernel"] + w["inner/bias"]
    dh = (_softmax(h @ w["top/kernel"] + w["top/bias"]) - y) / 5 @ w["top/kernel"].T
    for g in grads:
        np.testing.assert_allclose(g, xb.T @ dh, rtol=1e-10)


def test_the_gradient_checker_gets_the_gradient_of_the_model_input():
    from nnscratch.gradcheck import check_model, float64_copy

    model = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert model.plan.needs_grad[0] is False     # training never computes it
    clone = float64_copy(model)
    rng = np.random.default_rng(3)
    xb, y = rng.standard_normal((4, 4)), np.eye(3)[rng.integers(0, 3, 4)]
    out, logits = clone.plan.forward([xb], training=True)
    (dx,) = clone.plan.backward(out, logits, [y])
    w = clone.get_weights()
    np.testing.assert_allclose(dx, (_softmax(xb @ w["dense_1/kernel"] + w["dense_1/bias"]) - y) / 4
                               @ w["dense_1/kernel"].T, rtol=1e-10)
    report = check_model(model, xb, y.argmax(axis=1))
    assert report.ok and "x" in [c.tensor for c in report.checks]


def test_two_seeded_dropouts_draw_their_own_masks():
    from nnscratch import Input
    from nnscratch.layers import Dropout
    from nnscratch.layers.context import BatchContext, installed

    x = Input((200,))
    model = nnscratch.Model(inputs=x, outputs=[Dropout(0.5)(x), Dropout(0.5)(x)], seed=0)
    model.set(loss=["mse", "mse"], optimizer="sgd")
    model.finalize()
    ones = np.ones((3, 200), np.float32)
    with installed(BatchContext(0, 3, (0, 0, 0))):
        (a, b), _ = model.plan.forward([ones], training=True)
    with installed(BatchContext(0, 3, (0, 0, 0))):
        (again, _), _ = model.plan.forward([ones], training=True)
    np.testing.assert_array_equal(again, a)           # one seed, one mask per node
    assert set(np.unique(a)) == {0.0, 2.0} and 0.3 < np.mean(a == 0) < 0.7
    assert np.mean((a == 0) != (b == 0)) > 0.3        # two nodes: two streams (equal masks would give 0)
    # each mask is named by its layer's place in the graph, not by how many draws came before it
    model.get_layer("dropout_1").rate = 0.0
    with installed(BatchContext(0, 3, (0, 0, 0))):
        (none_dropped, alone), _ = model.plan.forward([ones], training=True)
    np.testing.assert_array_equal(none_dropped, ones)
    np.testing.assert_array_equal(alone, b)


@pytest.mark.parametrize("between", [None, "swish", "tanh", "leaky_relu"])
def test_what_runs_between_a_convolution_and_max_pooling_keeps_its_place_unless_it_is_a_relu(between):
    # only a ReLU may run after the pooling: swish is not monotonic, and other layers are no activation
    from nnscratch.layers import Activation, Conv2D, MaxPool2D
    layers = [Conv2D(3, 3, padding="same", input_shape=(6, 6, 2))]
    layers += [] if between is None else [Activation(between)]
    layers += [MaxPool2D(2), Flatten(), Dense(4), Softmax()]
    model = nnscratch.Model(layers, seed=0, dtype="float64")
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert not any(step.skip_forward for step in model.plan.steps)
    assert all(step.relu_after is None for step in model.plan.steps)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 6, 2))
    y = model.loss.check_targets(rng.integers(0, 4, 4), model.output_shape)
    output, logits = model.forward(x, training=True)
    model.backward(output, logits, y)
    got = _grads(model)
    h = x
    for layer in model.layers[:-1]:
        h = layer.forward(h, training=True)
    np.testing.assert_allclose(logits, h, rtol=1e-12)
    grad = model.loss.fused_gradient(model.layers[-1].forward(h), y)
    for layer in reversed(model.layers[:-1]):
        grad = layer.backward(grad)
    for layer in model.layers:
        for k, g in layer.grads.items():
            np.testing.assert_allclose(got[f"{layer.name}/{k}"], g, rtol=1e-10, atol=1e-14)


def test_outputs_fused_or_not_predicted_in_pieces_equal_one_piece(monkeypatch):
    from nnscratch import Input
    from nnscratch.engine import plan

    x = Input((5,))
    h = ReLU()(Dense(8)(x))
    model = nnscratch.Model(inputs=x, outputs=[Softmax(name="cls")(Dense(3)(h)), Dense(2, name="reg")(h)], seed=0,
                            threads=1)
    model.set(loss=["categorical_crossentropy", "mse"], optimizer="sgd")
    model.finalize()
    assert model.plan.fused[0] is not None and model.plan.fused[1] is None
    xb = np.random.default_rng(4).standard_normal((300, 5)).astype(np.float32)
    whole, _ = model.plan.forward([xb])
    monkeypatch.setattr(plan, "INFERENCE_ACTIVATIONS", 0)      # pieces of 64: four, and one of 44
    outputs, logits = model.plan.infer([xb])
    for got, expected in zip(outputs, whole):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert logits[0].shape == (300, 3) and logits[1] is None
    for got, expected in zip(model.predict(xb, batch_size=300), whole):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_network_between_the_two_piece_sizes_is_predicted_in_whole_pieces(monkeypatch):
    from nnscratch.engine import plan

    model = nnscratch.Model([Dense(4_890, input_shape=(100,)), Dense(10), Softmax()], seed=0, threads=1)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert model.plan.activations_per_sample == 5_010
    assert plan.inference_piece(5_010) == 299 and type(plan.inference_piece(5_010)) is int
    sizes = []
    forward = plan.Plan.forward
    monkeypatch.setattr(plan.Plan, "forward", lambda self, xs, *args: sizes.append(len(xs[0])) or
                        forward(self, xs, *args))
    xb = np.random.default_rng(5).standard_normal((400, 100)).astype(np.float32)
    got = model.predict(xb, batch_size=400)
    assert sizes == [299, 101]
    np.testing.assert_allclose(got, forward(model.plan, [xb])[0][0], rtol=1e-5, atol=1e-7)


def _shared_batchnorm_model(threads):
    from nnscratch import Input
    from nnscratch.layers import BatchNormalization

    x = Input((4,))
    bn = BatchNormalization(name="bn")
    h = bn(Dense(4, name="inner")(bn(x)))       # one BatchNormalization called twice: its state is one
    model = nnscratch.Model(inputs=x, outputs=Softmax()(Dense(3, name="top")(h)), seed=0, threads=threads,
                            dtype="float64")
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


def test_a_layer_with_state_called_twice_updates_its_state_once_per_call():
    model = _shared_batchnorm_model(threads=1)
    rng = np.random.default_rng(6)
    xb = rng.standard_normal((8, 4)) * 3 + 1
    w = model.get_weights()
    model.plan.forward([xb], training=True)
    mu1, var1 = xb.mean(axis=0), xb.var(axis=0)
    inner = (xb - mu1) / np.sqrt(var1 + 1e-3) @ w["inner/kernel"] + w["inner/bias"]
    mu2, var2 = inner.mean(axis=0), inner.var(axis=0)
    state = model.get_layer("bn").state
    np.testing.assert_allclose(state["moving_mean"], 0.99 * (0.01 * mu1) + 0.01 * mu2, rtol=1e-12)
    np.testing.assert_allclose(state["moving_variance"], 0.99 * (0.99 + 0.01 * var1) + 0.01 * var2, rtol=1e-12)


def test_threads_with_a_shared_layer_with_state_train_and_predict_as_one_thread(monkeypatch):
    from nnscratch.engine import parallel

    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)
    rng = np.random.default_rng(7)
    # the last batch of one sample runs in one thread: the other thread's twins miss that update
    xb, y = rng.standard_normal((65, 4)) * 3 + 1, rng.integers(0, 3, 65)
    models = [_shared_batchnorm_model(threads) for threads in (1, 2)]
    histories = [model.fit(xb, y, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=(xb[:32], y[:32]))
                 for model in models]
    # validated between epochs on the threads that train: every thread's twins see the state of that epoch
    np.testing.assert_allclose(histories[1].history["val_loss"], histories[0].history["val_loss"], rtol=1e-10)
    one, two = (model.get_layer("bn").state for model in models)
    for key in one:   # each step's moving averages moved once per call, not once per call and thread
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10)
    expected = models[0].predict(xb, batch_size=64)
    np.testing.assert_allclose(models[1].predict(xb, batch_size=64), expected, rtol=1e-10)
    models[1].fit(xb, y, batch_size=16, epochs=1, shuffle=False, verbose=0)    # the threads' twins see new state
    models[0].fit(xb, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(models[1].predict(xb, batch_size=64), models[0].predict(xb, batch_size=64),
                               rtol=1e-10)


def test_each_thread_runs_its_own_instances_in_training_and_inference(monkeypatch):
    import threading

    from nnscratch.engine import parallel

    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)
    model = _shared_batchnorm_model(threads=2)
    model.parallel = "threads"  # the thread engine's instances are the subject (processes hold their own)
    ran = {}
    forward = Dense.forward

    def recording(self, x, training=False):
        ran.setdefault(id(self), set()).add(threading.get_ident())
        return forward(self, x, training)

    monkeypatch.setattr(Dense, "forward", recording)
    rng = np.random.default_rng(8)
    xb, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    for run in (lambda: model.fit(xb, y, batch_size=32, epochs=2, verbose=0),
                lambda: model.predict(xb, batch_size=32)):
        ran.clear()
        run()
        assert len(ran) == 4                          # two Dense layers, twinned for the second thread
        assert all(len(threads) == 1 for threads in ran.values())
        assert len(set.union(*ran.values())) == 2


def test_a_relu_with_two_readers_does_not_stop_a_later_relu_from_moving_after_its_pooling():
    from nnscratch import Input
    from nnscratch.layers import Add, Conv2D, MaxPool2D

    x = Input((6, 6, 2))
    r = ReLU()(Conv2D(2, 3, padding="same")(x))                   # read by the Add and by the next convolution
    h = Add()([r, Conv2D(2, 3, padding="same")(r)])
    h = MaxPool2D(2)(ReLU()(Conv2D(3, 3, padding="same")(h)))
    model = nnscratch.Model(inputs=x, outputs=Softmax()(Dense(3)(Flatten()(h))), seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    deferred = [type(step.layer).__name__ for step in model.plan.steps if step.skip_forward]
    assert deferred == ["ReLU"] and model.plan.steps[2].skip_forward is False


def test_first_layers_that_return_no_input_gradient_do_not_end_the_backward_pass():
    from nnscratch import Input
    from nnscratch.layers import Concatenate

    a, b = Input((3,)), Input((2,))
    u = Dense(4, name="from_b")(b)
    v = Dense(4, name="from_a")(a)                 # runs after from_b, so its backward (no dx) comes first
    model = nnscratch.Model(inputs=[a, b], outputs=Softmax()(Dense(3, name="top")(Concatenate()([u, v]))), seed=0,
                            dtype="float64")
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    rng = np.random.default_rng(9)
    xa, xb, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), np.eye(3)[rng.integers(0, 3, 5)]
    out, logits = model.plan.forward([xa, xb], training=True)
    assert model.plan.backward(out, logits, [y]) == [None, None]
    w = model.get_weights()
    uv = np.concatenate([xb @ w["from_b/kernel"] + w["from_b/bias"], xa @ w["from_a/kernel"] + w["from_a/bias"]], 1)
    duv = (_softmax(uv @ w["top/kernel"] + w["top/bias"]) - y) / 5 @ w["top/kernel"].T
    np.testing.assert_allclose(model.get_layer("from_b").grads["kernel"], xb.T @ duv[:, :4], rtol=1e-10)
    np.testing.assert_allclose(model.get_layer("from_a").grads["kernel"], xa.T @ duv[:, 4:], rtol=1e-10)

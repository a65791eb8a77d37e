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



@pytest.mark.parametrize("pool", [{"pool_size": 2}, {"pool_size": 3, "strides": 2}])
def test_a_relu_before_max_pooling_runs_after_it_with_the_same_values_and_gradients(pool):
    from nnscratch.layers import Conv2D, MaxPool2D
    model = nnscratch.Model(seed=0)
    model.add(Conv2D(3, 3, padding="same", input_shape=(8, 8, 2)))
    model.add(ReLU())
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
    monkeypatch.setattr(plan, "INFERENCE_ACTIVATIONS", 0)  # pieces of 128 even for the small 4-channel net
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
    for _ in range(2):  # in two threads (150 samples each: pieces of 128 and 22), then in one
        np.testing.assert_array_equal(model.predict(x, batch_size=300), expected)
    model.threads = 1
    np.testing.assert_allclose(model.predict(x, batch_size=300), expected, rtol=1e-5)
    assert all(layer.workspace["cols"] is cols for layer, cols in zip(convs, own_columns))  # left as training had it
    pool = model.plan._scratch_pools[next(layer for layer in model.plan.instances if layer is not None)]
    assert pool["cols"].size >= max(c.size for c in own_columns)


def test_inference_pieces_grow_only_for_networks_with_few_activations_per_sample(monkeypatch):
    from nnscratch.engine import plan
    from nnscratch.layers import Conv2D, MaxPool2D

    mlp = nnscratch.Model([Dense(64, input_shape=(784,)), ReLU(), Dense(10), Softmax()], seed=0, threads=1)
    cnn = nnscratch.Model([Conv2D(6, 5, padding="same", input_shape=(28, 28, 1)), ReLU(), MaxPool2D(2), Flatten(),
                           Dense(10), Softmax()], seed=0, threads=1)
    sizes = []
    forward = plan.Plan.forward
    monkeypatch.setattr(plan.Plan, "forward", lambda self, xs, *args: sizes.append(len(xs[0])) or
                        forward(self, xs, *args))
    rng = np.random.default_rng(0)
    for model, expected in ((mlp, [512, 512, 76]), (cnn, [128] * 8 + [76])):
        model.set(loss="categorical_crossentropy", optimizer="sgd")
        model.finalize()
        x = rng.standard_normal((1100,) + model.input_shape).astype(np.float32)
        sizes.clear()
        got = model.predict(x, batch_size=1100)
        assert sizes == expected
        with monkeypatch.context() as patch:
            patch.setattr(plan, "MAX_INFERENCE_PIECE", plan.INFERENCE_PIECE)
            sizes.clear()
            np.testing.assert_allclose(model.predict(x, batch_size=1100), got, rtol=1e-5, atol=1e-7)
            assert sizes == [128] * 8 + [76]


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

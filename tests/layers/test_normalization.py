"""BatchNormalization and LayerNormalization: Keras' formulas, moving statistics, and PyTorch as a reference."""
import numpy as np
import pytest

from nnscratch.layers import BatchNormalization, LayerNormalization


def test_batch_normalization_uses_the_batch_statistics_in_training_and_keras_moving_averages():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (6, 5, 5, 4))
    bn = BatchNormalization(momentum=0.9, epsilon=1e-3)
    bn.initialize((5, 5, 4), "float64")
    bn.params["gamma"][...] = [1.0, 2.0, 0.5, -1.0]
    bn.params["beta"][...] = [0.0, 1.0, -1.0, 0.5]
    y = bn.forward(x, training=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # the biased variance, as Keras uses
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3) * bn.params["gamma"] + bn.params["beta"],
                               rtol=1e-12)
    np.testing.assert_allclose(bn.state["moving_mean"], 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.state["moving_variance"], 0.9 + 0.1 * var, rtol=1e-12)
    inference = bn.forward(x, training=False)
    expected = (x - bn.state["moving_mean"]) / np.sqrt(bn.state["moving_variance"] + 1e-3)
    np.testing.assert_allclose(inference, expected * bn.params["gamma"] + bn.params["beta"], rtol=1e-12)


def test_a_frozen_batch_normalization_uses_its_moving_statistics_even_in_training():
    bn = BatchNormalization()
    bn.initialize((3,), "float64")
    bn.trainable = False
    x = np.random.default_rng(1).normal(5.0, 2.0, (8, 3))
    np.testing.assert_allclose(bn.forward(x, training=True), x / np.sqrt(1 + 1e-3), rtol=1e-12)
    assert np.array_equal(bn.state["moving_mean"], np.zeros(3))  # nothing moved


def test_parameter_counts_and_names_are_keras():
    bn = BatchNormalization()
    bn.initialize((7, 7, 32))
    assert sorted(bn.params) == ["beta", "gamma"] and sorted(bn.state) == ["moving_mean", "moving_variance"]
    assert bn.count_params() == 128 and bn.count_non_trainable_params() == 64
    ln = LayerNormalization()
    ln.initialize((10, 6))
    assert ln.count_params() == 12 and ln.params["gamma"].shape == (6,)


@pytest.mark.parametrize("make, pattern", [
    (lambda: BatchNormalization(axis=0), r"cannot include 0, the batch axis"),
    (lambda: BatchNormalization(axis="x"), r"axis must be an integer or a list of integers"),
    (lambda: BatchNormalization(momentum=1.5), r"momentum must be <= 1"),
    (lambda: BatchNormalization(epsilon=0), r"epsilon must be > 0"),
    (lambda: LayerNormalization(axis=[1, 1]), r"lists an axis twice"),
    (lambda: BatchNormalization(gamma_initializer="onez"), r"unknown initializer 'onez'"),
])
def test_bad_arguments_name_the_argument(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_an_axis_beyond_the_input_is_refused_at_build():
    with pytest.raises(ValueError, match=r"axis 4 is out of range for inputs with 2 axes per sample"):
        BatchNormalization(axis=4).initialize((3, 2))


def test_batch_and_layer_normalization_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5, 6))
    g = rng.standard_normal(x.shape)
    bn = BatchNormalization(epsilon=1e-5)
    bn.initialize((3, 5, 6), "float64")
    bn.params["gamma"][...] = rng.standard_normal(6)
    bn.params["beta"][...] = rng.standard_normal(6)
    y = bn.forward(x, training=True)
    dx = bn.backward(g)
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # PyTorch is channels-first
    tg, tb = (torch.tensor(bn.params[k].copy(), requires_grad=True) for k in ("gamma", "beta"))
    ty = F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bn.grads["gamma"], tg.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.grads["beta"], tb.grad.numpy(), rtol=1e-10)

    ln = LayerNormalization(axis=[2, 3], epsilon=1e-5)
    ln.initialize((3, 5, 6), "float64")
    ln.params["gamma"][...] = rng.standard_normal((5, 6))
    y = ln.forward(x)
    dx = ln.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    tg, tb = (torch.tensor(ln.params[k].copy(), requires_grad=True) for k in ("gamma", "beta"))
    ty = F.layer_norm(tx, (5, 6), tg, tb, eps=1e-5)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ln.grads["gamma"], tg.grad.numpy(), rtol=1e-10)


def test_inside_an_inference_plan_batch_normalization_keeps_nothing_for_a_backward():
    from nnscratch.ops.workspace import SharedWorkspace
    bn = BatchNormalization()
    bn.initialize((4,), "float64")
    x = np.random.default_rng(5).normal(size=(6, 4))
    expected = bn.forward(x, training=False)
    own, bn.workspace = bn.workspace, SharedWorkspace(bn.workspace, {})   # as Plan.infer hands it over
    np.testing.assert_array_equal(bn.forward(x, training=False), expected)
    assert bn._x is None   # the input is not held alive until the next call
    with pytest.raises(RuntimeError, match=r"backward after a forward inside predict/evaluate"):
        bn.backward(np.ones_like(x))
    bn.workspace = own
    bn.forward(x, training=False)
    assert bn.backward(np.ones_like(x)).shape == x.shape


def test_chunks_with_far_apart_means_get_the_whole_batchs_statistics_in_float32():
    # each chunk centres on its own mean and the chunks exchange one set of sums: the variance must stay as
    # exact as a two-pass one even when the data sit far from zero and the chunks' means differ
    import threading

    from nnscratch.engine.parallel import Exchange
    from nnscratch.layers import context
    rng = np.random.default_rng(6)
    x = (1000.0 + rng.normal(0.0, 1.0, (16, 5, 5, 3))).astype(np.float32)
    x[8:] += 3.0
    g = rng.normal(size=x.shape).astype(np.float32)
    bn = BatchNormalization(momentum=0.0)
    bn.initialize((5, 5, 3), "float32")
    chunks = [bn.replicate(own_state=True) for _ in range(2)]
    exchange, results = Exchange(2), [None, None]

    def run(r):
        with context.installed(context.BatchContext(8 * r, 16, exchange=exchange.for_chunk(r))):
            y = chunks[r].forward(x[8 * r:8 * r + 8], training=True)
            results[r] = (y, chunks[r].backward(g[8 * r:8 * r + 8]))
    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mean, var = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
    xhat = (x64 - mean) / np.sqrt(var + 1e-3)
    dx = (g64 - g64.mean(axis=(0, 1, 2)) - xhat * (g64 * xhat).mean(axis=(0, 1, 2))) / np.sqrt(var + 1e-3)
    for chunk in chunks:
        np.testing.assert_allclose(chunk.state["moving_variance"], var, rtol=1e-5)
        np.testing.assert_allclose(chunk.state["moving_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), xhat, atol=2e-4)
    np.testing.assert_allclose(np.concatenate([r[1] for r in results]), dx, atol=2e-4 * np.abs(dx).max())

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


# -- found by mutation testing ---------------------------------------------------------------------
def _bn_reference(x, g, gamma, beta, epsilon):
    """Batch normalization of the whole batch over every axis but the last, in float64: ``(y, dx, dgamma,
    dbeta, mean, var)``."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - mean) / np.sqrt(var + epsilon)
    dxhat = g * gamma
    dx = (dxhat - dxhat.mean(axis=axes) - xhat * (dxhat * xhat).mean(axis=axes)) / np.sqrt(var + epsilon)
    return xhat * gamma + beta, dx, (g * xhat).sum(axis=axes), g.sum(axis=axes), mean, var


def _bn_in_chunks(x, g, cuts, dtype, momentum=0.5, **config):
    """A BatchNormalization trained on one batch cut at ``cuts``, each chunk in its own thread (as the engine
    runs it): ``(y, dx, summed gamma and beta gradients, each chunk's moving mean and variance)``."""
    import threading

    from nnscratch.engine.parallel import Exchange
    from nnscratch.layers import context
    bn = BatchNormalization(momentum=momentum, **config)
    bn.initialize(x.shape[1:], dtype)
    rng = np.random.default_rng(7)
    for k in bn.params:
        bn.params[k][...] = rng.uniform(0.5, 1.5, bn.params[k].shape) * (-1 if k == "beta" else 1)
    bounds = [0, *cuts, len(x)]
    chunks = [bn.replicate(own_state=True) for _ in cuts] + [bn] if cuts else [bn]
    exchange, results, errors = Exchange(len(chunks)), [None] * len(chunks), []

    def run(r):
        lo, hi = bounds[r], bounds[r + 1]
        try:
            with context.installed(context.BatchContext(lo, len(x), exchange=exchange.for_chunk(r)) if cuts else None):
                y = chunks[r].forward(x[lo:hi].astype(dtype), training=True)
                results[r] = (y, chunks[r].backward(g[lo:hi].astype(dtype)), dict(chunks[r].grads))
        except BaseException as e:   # noqa: BLE001 - re-raised below, after every thread stopped
            errors.append(e)
            exchange.abort()
    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    grads = {k: sum(r[2][k].astype(np.float64) for r in results) for k in results[0][2]}
    return (np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]), grads,
            [(c.state["moving_mean"].copy(), c.state["moving_variance"].copy()) for c in chunks], bn.params)


@pytest.mark.parametrize("cuts", [(), (3,), (2, 7)], ids=["one thread", "3+5 samples", "2+5+1 samples"])
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-4)])
def test_a_batch_far_from_zero_cut_unevenly_gets_the_statistics_and_gradients_of_the_whole_batch(cuts, dtype, tol):
    # 20x20 values per sample and feature, so a chunk of 3 or more samples has more values than the layer uses to
    # estimate its centre, and the samples' means differ, so that estimate is not the chunk's mean
    rng = np.random.default_rng(3)
    x = 1000.0 + rng.normal(0.0, 1.0, (8, 20, 20, 2)) + 3.0 * np.arange(8)[:, None, None, None]
    x[..., 1] = -0.5 * x[..., 1] + 40.0
    g = rng.normal(0.5, 1.0, x.shape)
    y, dx, grads, moving, params = _bn_in_chunks(x, g, list(cuts), dtype, momentum=0.25, epsilon=1e-2)
    gamma, beta = params["gamma"].astype(np.float64), params["beta"].astype(np.float64)
    ry, rdx, rdgamma, rdbeta, mean, var = _bn_reference(x, g, gamma, beta, 1e-2)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol * np.abs(rdx).max())
    np.testing.assert_allclose(grads["gamma"], rdgamma, rtol=tol, atol=tol * np.abs(rdgamma).max())
    np.testing.assert_allclose(grads["beta"], rdbeta, rtol=tol, atol=tol * np.abs(rdbeta).max())
    for moving_mean, moving_var in moving:   # momentum 0.25 from zeros and ones
        np.testing.assert_allclose(moving_mean, 0.75 * mean, rtol=tol)
        np.testing.assert_allclose(moving_var, 0.25 + 0.75 * var, rtol=tol)


_KNOWN = "known: glorot_normal, glorot_uniform, he_normal, he_uniform, lecun1998, lecun_normal, lecun_uniform, ones, zeros"


@pytest.mark.parametrize("make, message", [
    (lambda: BatchNormalization(axis=True), "axis must be an integer or a list of integers, got True"),
    (lambda: BatchNormalization(axis=[]), "axis must be an integer or a list of integers, got []"),
    (lambda: LayerNormalization(axis=[1, 2.0]), "axis must be an integer or a list of integers, got [1, 2.0]"),
    (lambda: LayerNormalization(axis="x"), "axis must be an integer or a list of integers, got 'x'"),
    (lambda: BatchNormalization(axis=[2, 0]), "axis cannot include 0, the batch axis; use -1 for channels (the default)"),
    (lambda: LayerNormalization(axis=0), "axis cannot include 0, the batch axis; use -1 for channels (the default)"),
    (lambda: BatchNormalization(axis=(2, 2)), "axis lists an axis twice: (2, 2)"),
    (lambda: BatchNormalization(epsilon=0), "epsilon must be > 0, got 0.0"),
    (lambda: LayerNormalization(epsilon=-1), "epsilon must be > 0, got -1.0"),
    (lambda: BatchNormalization(momentum=-0.1), "momentum must be >= 0, got -0.1"),
    (lambda: BatchNormalization(momentum=1.01), "momentum must be <= 1, got 1.01"),
    (lambda: BatchNormalization(beta_initializer="zero"), f"beta_initializer: unknown initializer 'zero'; {_KNOWN}"),
    (lambda: LayerNormalization(gamma_initializer="one"), f"gamma_initializer: unknown initializer 'one'; {_KNOWN}"),
    (lambda: BatchNormalization(moving_mean_initializer="zero"),
     f"moving_mean_initializer: unknown initializer 'zero'; {_KNOWN}"),
    (lambda: BatchNormalization(moving_variance_initializer="one"),
     f"moving_variance_initializer: unknown initializer 'one'; {_KNOWN}"),
    (lambda: BatchNormalization(axis=3).initialize((3, 2)),
     "BatchNormalization: axis 3 is out of range for inputs with 2 axes per sample (valid: 1..2 or -2..-1)"),
    (lambda: BatchNormalization(axis=-3).compute_output_shape((3, 2)),
     "BatchNormalization: axis -3 is out of range for inputs with 2 axes per sample (valid: 1..2 or -2..-1)"),
    (lambda: LayerNormalization(axis=[1, 3]).compute_output_shape((3, 4)),
     "LayerNormalization: axis 3 is out of range for inputs with 2 axes per sample (valid: 1..2 or -2..-1)"),
    (lambda: BatchNormalization(axis=[1, -1]).initialize((3,)), "BatchNormalization: axis [1, -1] names one axis twice"),
    (lambda: LayerNormalization(axis=[2, -1]).initialize((3, 4)), "LayerNormalization: axis [2, -1] names one axis twice"),
])
def test_each_bad_argument_is_refused_word_for_word(make, message):
    import re
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make()


def test_the_bounds_of_momentum_and_epsilon_are_accepted_and_the_flags_are_booleans():
    assert BatchNormalization(momentum=0).momentum == 0.0 and BatchNormalization(momentum=1).momentum == 1.0
    assert LayerNormalization(epsilon=1e-300).epsilon == 1e-300
    config = BatchNormalization(center=0, scale=[1]).get_config()
    assert config["center"] is False and config["scale"] is True
    assert BatchNormalization(axis=(1, -1)).get_config()["axis"] == [1, -1]
    assert LayerNormalization(axis=2).get_config()["axis"] == 2


def test_the_initializers_given_are_the_ones_used():
    bn = BatchNormalization(beta_initializer="ones", gamma_initializer="zeros", moving_mean_initializer="ones",
                            moving_variance_initializer="zeros")
    bn.initialize((3, 2))
    ln = LayerNormalization(beta_initializer="ones", gamma_initializer="zeros")
    ln.initialize((3, 2))
    for layer in (bn, ln):
        np.testing.assert_array_equal(layer.params["beta"], np.ones(2 if layer is bn else 2))
        np.testing.assert_array_equal(layer.params["gamma"], np.zeros(2))
    np.testing.assert_array_equal(bn.state["moving_mean"], np.ones(2))
    np.testing.assert_array_equal(bn.state["moving_variance"], np.zeros(2))
    defaults = BatchNormalization()
    defaults.initialize((3, 2))
    assert [defaults.weights()[k].tolist() for k in ("gamma", "beta", "moving_mean", "moving_variance")] == [
        [1, 1], [0, 0], [0, 0], [1, 1]]


@pytest.mark.parametrize("layer, shape, macs", [
    (BatchNormalization(), (3, 4, 5), 60), (BatchNormalization(axis=1), (7,), 7), (LayerNormalization(), (2, 3), 6),
])
def test_count_macs_is_one_scale_and_shift_per_value(layer, shape, macs):
    layer.initialize(shape)
    assert layer.count_macs() == macs


@pytest.mark.parametrize("cls, defaults", [
    (BatchNormalization, {"axis": -1, "momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True,
                          "beta_initializer": "zeros", "gamma_initializer": "ones", "moving_mean_initializer": "zeros",
                          "moving_variance_initializer": "ones"}),
    (LayerNormalization, {"axis": -1, "epsilon": 1e-3, "center": True, "scale": True, "beta_initializer": "zeros",
                          "gamma_initializer": "ones"}),
])
def test_the_defaults_are_keras_and_a_name_is_kept(cls, defaults):
    config = cls(name="norm").get_config()
    assert {k: config[k] for k in defaults} == defaults and config["name"] == "norm"
    assert set(config) == set(defaults) | {"name", "input_shape"}
    assert cls(input_shape=(3,)).get_config()["input_shape"] == [3]


def test_forward_without_training_normalises_with_the_moving_statistics_and_moves_nothing():
    bn = BatchNormalization(epsilon=0.5)
    bn.initialize((3,), "float64")
    bn.state["moving_mean"][...] = [1.0, -2.0, 0.5]
    bn.state["moving_variance"][...] = [4.0, 0.5, 1.5]
    x = np.random.default_rng(8).normal(3.0, 2.0, (5, 3))
    np.testing.assert_allclose(bn.forward(x), (x - [1.0, -2.0, 0.5]) / np.sqrt(np.array([4.0, 0.5, 1.5]) + 0.5),
                               rtol=1e-12)
    np.testing.assert_array_equal(bn.state["moving_mean"], [1.0, -2.0, 0.5])


@pytest.mark.parametrize("trainable", [True, False])
def test_the_inference_backward_uses_the_moving_statistics(trainable):
    # a check in inference mode, or a frozen layer in training: y = (x - moving_mean) / sqrt(moving_var + eps) * gamma
    # + beta, so dgamma = sum(dout * xhat) and dx = dout * gamma / sqrt(moving_var + eps)
    rng = np.random.default_rng(9)
    bn = BatchNormalization(epsilon=0.25)
    bn.initialize((2, 3), "float64")
    bn.trainable = trainable
    mean, var, gamma = rng.normal(size=3), rng.uniform(0.5, 2.0, 3), rng.normal(size=3)
    bn.state["moving_mean"][...], bn.state["moving_variance"][...], bn.params["gamma"][...] = mean, var, gamma
    x, dout = rng.normal(2.0, 1.0, (4, 2, 3)), rng.normal(size=(4, 2, 3))
    bn.forward(x, training=not trainable)
    dx = bn.backward(dout)
    xhat = (x - mean) / np.sqrt(var + 0.25)
    np.testing.assert_allclose(bn.grads["gamma"], (dout * xhat).sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(bn.grads["beta"], dout.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(dx, dout * gamma / np.sqrt(var + 0.25), rtol=1e-12)


def test_a_backward_after_an_inference_plan_forward_is_refused_word_for_word():
    from nnscratch.ops.workspace import SharedWorkspace
    bn = BatchNormalization(name="bn")
    bn.initialize((4,), "float64")
    bn.workspace = SharedWorkspace(bn.workspace, {})
    x = np.ones((2, 4))
    bn.forward(x, training=False)
    with pytest.raises(RuntimeError, match=r"^bn \(BatchNormalization\): backward after a forward inside "
                                           r"predict/evaluate, which keeps nothing for a backward; call forward \(or "
                                           r"fit\) outside them first$"):
        bn.backward(x)

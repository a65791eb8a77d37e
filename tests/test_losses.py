import numpy as np
import pytest

from nnscratch.losses import (LOSSES, BinaryCrossEntropy, CategoricalCrossEntropy, MeanSquaredError,
                              SumSquaredError)


def numeric_grad(loss, p, y, eps=1e-6):
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        plus = loss.forward(p, y)
        p[i] = old - eps
        minus = loss.forward(p, y)
        p[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


@pytest.mark.parametrize("loss, make", [
    (CategoricalCrossEntropy(), lambda r: (r.dirichlet(np.ones(4), 5), r.integers(0, 4, 5))),
    (BinaryCrossEntropy(), lambda r: (r.uniform(0.1, 0.9, (5, 2)), r.integers(0, 2, (5, 2)).astype(float))),
    (MeanSquaredError(), lambda r: (r.standard_normal((5, 3)), r.standard_normal((5, 3)))),
    (SumSquaredError(), lambda r: (r.standard_normal((5, 3)), r.standard_normal((5, 3)))),
])
def test_backward_matches_finite_differences(loss, make):
    p, y = make(np.random.default_rng(0))
    np.testing.assert_allclose(loss.backward(p, y), numeric_grad(loss, p, y), rtol=1e-5, atol=1e-8)


def test_fused_softmax_gradient_and_logit_loss():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cce = CategoricalCrossEntropy()
    assert cce.from_logits(logits, y) == pytest.approx(cce.forward(p, y))
    expected = p.copy()
    expected[np.arange(6), y] -= 1
    np.testing.assert_allclose(cce.fused_gradient(p, y), expected / 6)


def test_mse_and_sse_values():
    p, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))
    assert MeanSquaredError().forward(p, y) == pytest.approx(7.5)
    assert SumSquaredError().forward(p, y) == pytest.approx(15.0)


def test_target_checks():
    cce = CategoricalCrossEntropy()
    np.testing.assert_array_equal(cce.check_targets(np.eye(3)[[2, 0]], (3,)), [2, 0])
    with pytest.raises(ValueError, match="one-hot rows"):
        cce.check_targets(np.array([[0.5, 0.5, 0.0]]), (3,))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        MeanSquaredError().check_targets(np.zeros((4, 3)), (2,))
    with pytest.raises(ValueError, match="0 or 1"):
        BinaryCrossEntropy().check_targets(np.array([[0.3]]), (1,))


def test_aliases():
    assert LOSSES.get("mse") is MeanSquaredError and LOSSES.get("categorical_crossentropy") is CategoricalCrossEntropy


# -- every target format a docstring promises, told apart by shape (issue 19) ----------------------------
def cce_by_definition(p, labels):
    """The documented formula written out sample by sample: -mean(log p[i, label_i])."""
    return -sum(np.log(max(p[i, c], 1e-7)) for i, c in enumerate(labels)) / len(labels)


def class_target_formats(labels, k):
    """The same targets in every format the docstrings accept."""
    one_hot = np.eye(k)[labels]
    return {"int64 labels": labels.astype(np.int64), "uint8 labels": labels.astype(np.uint8),
            "(N, 1) labels": labels[:, None], "int one-hot": one_hot.astype(int),
            "float one-hot": one_hot, "float32 one-hot": one_hot.astype(np.float32), "bool one-hot": one_hot > 0}


@pytest.mark.parametrize("n", [5, 3, 8], ids=["N=K", "N<K", "N>K"])
@pytest.mark.parametrize("fmt", list(class_target_formats(np.array([0]), 2)))
def test_categorical_cross_entropy_reads_every_target_format_as_documented(n, fmt):
    # N == K is the case where an integer one-hot matrix used to be taken as an index array.
    k = 5
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.permutation(np.arange(max(n, k)) % k)[:n]
    y = class_target_formats(labels, k)[fmt]
    cce = CategoricalCrossEntropy()
    expected = cce_by_definition(p, labels)
    assert cce.forward(p, y) == pytest.approx(expected, rel=1e-12)
    assert cce.from_logits(logits, y) == pytest.approx(expected, rel=1e-12)
    grad = np.zeros_like(p)
    grad[np.arange(n), labels] = -1 / (n * p[np.arange(n), labels])
    np.testing.assert_allclose(cce.backward(p, y), grad, rtol=1e-12)
    np.testing.assert_allclose(cce.fused_gradient(p, y), (p - np.eye(k)[labels]) / n, rtol=1e-12, atol=1e-15)


def test_the_case_reported_in_issue_19():
    # N = K = 5 and an integer one-hot matrix: the loss used to index rows with the matrix itself
    p = np.array([[0.05, 0.05, 0.1, 0.1, 0.7], [0.6, 0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2],
                  [0.1, 0.7, 0.1, 0.05, 0.05], [0.3, 0.3, 0.2, 0.1, 0.1]])
    labels = np.array([0, 1, 2, 3, 4])
    value = CategoricalCrossEntropy().forward(p, np.eye(5, dtype=int)[labels])
    # -(log .05 + log .1 + log .2 + log .05 + log .1) / 5
    assert value == pytest.approx(2.4412145291, abs=1e-10)
    assert value == pytest.approx(cce_by_definition(p, labels), rel=1e-12)


@pytest.mark.parametrize("y, error, pattern", [
    (np.array([0, -1, 2]), ValueError, r"labels must lie in \[0, 2\].*got label -1"),
    (np.array([0, 3, 2]), ValueError, "got label 3"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer class labels, got float"),
    (np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]]), ValueError, "one-hot rows"),
    (np.array([[0.8, 0.1, 0.1]] * 3), ValueError, "one-hot rows"),
    (np.array([0, 1]), ValueError, "3 predictions but 2 targets"),
    (np.zeros((3, 2), int), ValueError, r"shape \(N,\) or one-hot targets of shape \(N, 3\)"),
])
@pytest.mark.parametrize("method", ["forward", "backward", "from_logits", "fused_gradient"])
def test_categorical_cross_entropy_refuses_what_it_cannot_read(y, error, pattern, method):
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(error, match=pattern):
        getattr(CategoricalCrossEntropy(), method)(p, y)


@pytest.mark.parametrize("loss", [BinaryCrossEntropy(), MeanSquaredError(), SumSquaredError()])
def test_single_output_losses_take_flat_targets_and_never_broadcast(loss):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, (4, 1))
    y = np.array([1.0, 0.0, 0.0, 1.0])
    assert loss.forward(p, y) == loss.forward(p, y[:, None])
    np.testing.assert_array_equal(loss.backward(p, y), loss.backward(p, y[:, None]))
    # (N, 1) against (N,) used to broadcast to (N, N): a different, wrong number with no error
    diffs = (p - y[:, None]) ** 2
    if isinstance(loss, MeanSquaredError):
        assert loss.forward(p, y) == pytest.approx(diffs.mean())
    for bad in (y[:3], np.ones((4, 2)), y[None, :]):
        with pytest.raises(ValueError, match="targets of the predictions' shape"):
            loss.forward(p, bad)
        with pytest.raises(ValueError, match="targets of the predictions' shape"):
            loss.backward(p, bad)


def test_probabilities_are_clipped_at_1e_7_before_the_log():
    # a probability of 0 for the true class costs -log(1e-7), not infinity; another epsilon changes the value
    loss = CategoricalCrossEntropy()
    p = np.array([[0.0, 1.0], [1e-9, 1.0 - 1e-9]])
    assert loss.forward(p, np.array([0, 0])) == pytest.approx(-np.log(1e-7), rel=1e-12)
    assert loss.forward(np.array([[0.5, 0.5]]), np.array([0])) == pytest.approx(np.log(2), rel=1e-12)
    bce = BinaryCrossEntropy()
    assert bce.forward(np.array([[0.0]]), np.array([[1.0]])) == pytest.approx(-np.log(1e-7), rel=1e-9)

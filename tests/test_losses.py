import numpy as np
import pytest

from nnscratch.losses import (LOSSES, BinaryCrossEntropy, CategoricalCrossEntropy, Loss, MeanSquaredError,
                              SumSquaredError, class_labels, matching_targets, weight_rows, weighted_mean)


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


# --- found by mutation testing (docs/mutation-testing.md): each test below kills mutants that survived ---

def test_targets_of_a_single_output_loss_are_checked_reshaped_and_named():
    mse = MeanSquaredError()
    assert mse.check_targets(np.array([1.0, 2.0]), (1,)).shape == (2, 1)
    with pytest.raises(ValueError, match=r"^MeanSquaredError needs targets of shape \(N, 2, 3\) to match"):
        mse.check_targets(np.zeros((4, 3)), (2, 3))
    with pytest.raises(ValueError, match=r"^MeanSquaredError: targets contain NaN/inf$"):
        mse.check_targets(np.array([[1.0], [np.nan]]), (1,))
    with pytest.raises(TypeError, match="^MeanSquaredError needs numeric targets, got dtype <U1$"):
        mse.check_targets(np.array(["a", "b"]), (1,))


def test_binary_cross_entropy_accepts_zeros_and_ones_at_fit():
    y = BinaryCrossEntropy().check_targets([1, 0, 1], (1,))
    np.testing.assert_array_equal(y, [[1], [0], [1]])
    with pytest.raises(ValueError, match="^BinaryCrossEntropy needs targets that are 0 or 1$"):
        BinaryCrossEntropy().check_targets(np.array([[0.3]]), (1,))
    with pytest.raises(ValueError, match=r"^BinaryCrossEntropy needs targets of shape \(N, 1\)"):
        BinaryCrossEntropy().check_targets(np.zeros((2, 2)), (1,))


@pytest.mark.parametrize("labels, bad", [([0, 1, 3], 3), ([0, 5, 1], 5), ([0, -1, 2], -1), ([3], 3)])
def test_an_out_of_range_label_is_refused_and_named_at_fit(labels, bad):
    with pytest.raises(ValueError, match=rf"^CategoricalCrossEntropy: labels must lie in \[0, 2\] for a model with "
                                         rf"3 outputs, got label {bad};"):
        CategoricalCrossEntropy().check_targets(np.array(labels), (3,))
    np.testing.assert_array_equal(CategoricalCrossEntropy().check_targets(np.array([0, 2, 1]), (3,)), [0, 2, 1])


def test_categorical_target_errors_say_what_is_wrong():
    cce = CategoricalCrossEntropy()
    with pytest.raises(ValueError, match=r"^CategoricalCrossEntropy needs outputs of shape \(N, classes\), "
                                         r"the model gives \(N, 4, 5\)$"):
        cce.check_targets(np.zeros(2, dtype=int), (4, 5))
    with pytest.raises(TypeError, match=r"^CategoricalCrossEntropy: one-hot targets must be numeric, got dtype"):
        cce.check_targets(np.array([["a", "b"]]), (2,))
    with pytest.raises(TypeError, match=r"convert with y\.astype\(int\) if they are whole numbers$"):
        cce.check_targets(np.array([0.0, 1.0]), (2,))
    with pytest.raises(TypeError, match=r"^CategoricalCrossEntropy needs integer class labels, got dtype bool$"):
        cce.check_targets(np.array([True, False]), (2,))
    with pytest.raises(ValueError, match=r"^demo needs predictions of shape \(N, classes\), got \(3,\)$"):
        class_labels(np.array([0, 1, 0]), np.zeros(3), "demo")
    # prepared integer labels take the cheap check, whose message speaks of predictions
    with pytest.raises(ValueError, match=r"^demo: labels must lie in \[0, 1\] for predictions with 2 classes"):
        class_labels(np.array([0, 2]), np.full((2, 2), 0.5), "demo")


@pytest.mark.parametrize("method", ["forward", "backward", "sample_losses"])
def test_categorical_errors_name_the_method_that_raised(method):
    cce = CategoricalCrossEntropy()
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=rf"^CategoricalCrossEntropy\.{method}: labels must lie"):
        getattr(cce, method)(p, np.array([0, 3]))
    with pytest.raises(TypeError, match=rf"^CategoricalCrossEntropy\.{method} needs integer class labels"):
        getattr(cce, method)(p, np.array([0.0, 1.0]))


@pytest.mark.parametrize("method", ["from_logits", "fused_gradient", "sample_losses_from_logits"])
def test_categorical_logit_errors_name_the_method_that_raised(method):
    with pytest.raises(ValueError, match=rf"^CategoricalCrossEntropy\.{method}: labels must lie"):
        getattr(CategoricalCrossEntropy, method)(np.zeros((2, 3)), np.array([0, 3]))


@pytest.mark.parametrize("loss", [BinaryCrossEntropy(), MeanSquaredError(), SumSquaredError()])
@pytest.mark.parametrize("method", ["forward", "backward", "sample_losses"])
def test_single_output_errors_name_the_method_that_raised(loss, method):
    p = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=rf"^{type(loss).__name__}\.{method} needs targets of the predictions' "
                                         r"shape \(3, 2\), got \(3,\); targets are not broadcast \(an \(N, 1\) "
                                         r"output against \(N,\) targets is the one reshape done for you\)$"):
        getattr(loss, method)(p, np.zeros(3))
    with pytest.raises(TypeError, match=rf"^{type(loss).__name__}\.{method} needs numeric targets, got dtype"):
        getattr(loss, method)(p, np.full((3, 2), "a"))


def test_a_trailing_axis_of_one_on_the_targets_is_dropped():
    y = matching_targets(np.zeros((3, 1)), np.zeros(3), "demo")
    assert y.shape == (3,)


def test_probabilities_above_one_are_clipped_to_one():
    cce = CategoricalCrossEntropy()
    p = np.array([[1.5, 0.0], [0.0, 0.0]])
    assert cce.forward(p, np.array([0, 1])) == pytest.approx(-np.log(1e-7) / 2, rel=1e-12)
    g = cce.backward(p, np.array([0, 1]))
    np.testing.assert_allclose(g, [[-0.5, 0.0], [0.0, -1.0 / (2 * 1e-7)]], rtol=1e-12)
    np.testing.assert_allclose(cce.sample_losses(p, np.array([0, 1])), [0.0, -np.log(1e-7)], rtol=1e-12, atol=0)


def test_binary_cross_entropy_clips_both_ends():
    bce = BinaryCrossEntropy()
    p = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [0.0]])
    assert bce.forward(p, y) == pytest.approx(-np.log(1e-7) / 2, rel=1e-6)
    np.testing.assert_allclose(bce.sample_losses(np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]])),
                               [-np.log(1e-7), -np.log(1e-7)], rtol=1e-6)
    g = bce.backward(p, y)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g[1], 1.0 / (1e-7 * 2), rtol=1e-6)
    assert bce.backward(np.array([[1.5]]), np.array([[0.0]]))[0, 0] == pytest.approx(g[1, 0] * 2, rel=1e-6)


@pytest.mark.parametrize("loss", [BinaryCrossEntropy(), MeanSquaredError(), SumSquaredError()])
def test_gradients_keep_the_predictions_dtype(loss):
    p = np.full((2, 2), 0.25, dtype=np.float32)
    assert loss.backward(p, np.ones((2, 2))).dtype == np.float32


def test_the_logit_loss_is_shifted_row_by_row():
    # a global shift would underflow the second row to log(0); no shift at all would overflow the first
    logits = np.array([[1000.0, 0.0], [-1000.0, -1001.0]])
    y = np.array([0, 0])
    expected = np.log1p(np.exp(-1000.0)) / 2 + np.log1p(np.exp(-1.0)) / 2
    assert CategoricalCrossEntropy.from_logits(logits, y) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(CategoricalCrossEntropy.sample_losses_from_logits(logits, y),
                               [np.log1p(np.exp(-1000.0)), np.log1p(np.exp(-1.0))], rtol=1e-12)


@pytest.mark.parametrize("loss, p, y", [
    (CategoricalCrossEntropy(), np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.0, 0.4, 0.6]]), np.array([0, 2, 0])),
    (BinaryCrossEntropy(), np.array([[0.8, 0.3], [0.4, 1.0], [0.5, 0.9]]), np.array([[1, 0], [0, 0], [1, 1]])),
    (MeanSquaredError(), np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]), np.array([[0, 1], [1, 1], [2, 0]])),
    (SumSquaredError(), np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]), np.array([[0, 1], [1, 1], [2, 0]])),
])
def test_sample_losses_are_the_terms_whose_mean_is_forward(loss, p, y):
    per = loss.sample_losses(p, y)
    assert per.shape == (3,)
    assert per.mean() == pytest.approx(loss.forward(p, y), rel=1e-12)
    # each sample's loss is its own: the loss of that row alone
    for i in range(3):
        assert per[i] == pytest.approx(loss.forward(p[i:i + 1], y[i:i + 1]), rel=1e-12)


def test_sample_losses_of_one_column_outputs_take_flat_targets():
    p = np.array([[0.8], [0.4]])
    np.testing.assert_allclose(BinaryCrossEntropy().sample_losses(p, np.array([1, 0])),
                               [-np.log(0.8), -np.log(0.6)], rtol=1e-12)
    np.testing.assert_allclose(MeanSquaredError().sample_losses(p, np.array([1, 0])), [0.04, 0.16], rtol=1e-12)
    np.testing.assert_allclose(SumSquaredError().sample_losses(p, np.array([1, 0])), [0.04, 0.16], rtol=1e-12)


def test_logit_sample_losses_are_the_terms_of_from_logits():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 5)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    per = CategoricalCrossEntropy.sample_losses_from_logits(logits, y)
    np.testing.assert_allclose(per, -np.log(p[np.arange(5), y]), rtol=1e-12)
    np.testing.assert_allclose(CategoricalCrossEntropy.sample_losses_from_logits(logits, np.eye(4)[y]), per)


def test_a_loss_without_sample_losses_says_so():
    with pytest.raises(NotImplementedError, match=r"^MeanSquaredError does not define sample_losses\(y_pred, "
                                                  r"y_true\), so it cannot take sample_weight or class_weight$"):
        Loss.sample_losses(MeanSquaredError(), np.zeros((1, 1)), np.zeros((1, 1)))


def test_weighted_mean_divides_by_the_batch_size_not_the_weights():
    losses = np.array([1.0, 2.0, 3.0, 4.0])
    assert weighted_mean(losses, None) == 2.5
    assert weighted_mean(losses, np.array([2.0, 0.0, 1.0, 0.0])) == pytest.approx(5.0 / 4, rel=1e-15)
    # weights of 1 give the unweighted mean bit for bit, in the losses' dtype
    l32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert weighted_mean(l32, np.ones(3)) == weighted_mean(l32, None)


def test_weight_rows_scales_each_sample_row():
    g = np.ones((2, 3, 2), dtype=np.float32)
    assert weight_rows(g, None) is g
    out = weight_rows(g, np.array([2.0, 0.5]))
    assert out.dtype == np.float32 and out.shape == (2, 3, 2)
    np.testing.assert_array_equal(out[0], 2.0)
    np.testing.assert_array_equal(out[1], 0.5)
    np.testing.assert_array_equal(weight_rows(np.ones(2), np.array([3.0, 4.0])), [3.0, 4.0])

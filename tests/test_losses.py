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

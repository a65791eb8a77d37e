import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Dense, RBFOutput, ScaledTanh
from nnscratch.layers.rbf import LeNetRBFLoss, digit_codes
from nnscratch.metrics import CategoricalAccuracy


def test_digit_codes_are_distinct_pm1_bitmaps():
    codes = digit_codes()
    assert codes.shape == (84, 10) and set(np.unique(codes)) == {-1.0, 1.0}
    assert len({tuple(c) for c in codes.T}) == 10


def test_distances_match_the_definition():
    rbf = RBFOutput(3, codes="random", seed=1)
    rbf.initialize((5,), "float64")
    x = np.random.default_rng(0).standard_normal((4, 5))
    expected = ((x[:, :, None] - rbf.constants["codes"][None]) ** 2).sum(axis=1)
    np.testing.assert_allclose(rbf.forward(x), expected)
    assert rbf.count_trainable_params() == 0 and rbf.count_non_trainable_params() == 15


def test_digits_codes_need_84_inputs():
    model = nnscratch.Model([Dense(80, input_shape=(4,)), RBFOutput()])
    model.set(loss=LeNetRBFLoss(), optimizer="sgd")
    with pytest.raises(ValueError, match="needs 84 inputs.*codes='random'"):
        model.finalize()


def test_criterion_gradient_matches_finite_differences():
    loss = LeNetRBFLoss(j=0.5)
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, (4, 6))
    t = rng.integers(0, 6, 4)
    numeric = np.zeros_like(y)
    for i in np.ndindex(y.shape):
        e = np.zeros_like(y)
        e[i] = 1e-6
        numeric[i] = (loss.forward(y + e, t) - loss.forward(y - e, t)) / 2e-6
    np.testing.assert_allclose(loss.backward(y, t), numeric, rtol=1e-6, atol=1e-9)


def test_rbf_network_learns_with_the_paper_criterion():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 8)) * 3
    labels = rng.integers(0, 4, 400)
    x = (centers[labels] + rng.standard_normal((400, 8))).astype(np.float32)
    model = nnscratch.Model([Dense(16, input_shape=(8,)), ScaledTanh(), Dense(84), ScaledTanh(), RBFOutput(4)],
                            seed=0)
    model.set(loss="lenet_rbf", optimizer="adam", accuracy=CategoricalAccuracy(lower_is_better=True))
    model.finalize()
    model.fit(x, labels, epochs=15, batch_size=32, verbose=0)
    assert model.validate(x, labels)["accuracy"] > 0.95

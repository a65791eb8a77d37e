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


# -- found by mutation testing (docs/mutation-testing.md, layers/rbf.py) ----------------------------------------
@pytest.mark.parametrize("method", ["forward", "backward", "second_derivative", "sample_losses"])
def test_a_bad_label_is_refused_naming_the_method(method):
    with pytest.raises(ValueError, match=rf"^LeNetRBFLoss\.{method}: labels must lie in \[0, 2\] for predictions "
                                         r"with 3 classes, got label 5$"):
        getattr(LeNetRBFLoss(), method)(np.ones((2, 3)), np.array([0, 5]))


@pytest.mark.parametrize("method", ["backward", "second_derivative", "sample_losses"])
def test_float32_distances_give_float32_results(method):
    y = np.random.default_rng(0).uniform(0, 5, size=(4, 3)).astype(np.float32)
    assert getattr(LeNetRBFLoss(), method)(y, np.array([0, 1, 2, 0])).dtype == np.float32


def test_sample_losses_are_the_papers_criterion_per_sample_and_average_to_the_loss():
    y, labels, j = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]), np.array([0, 2]), 0.5
    by_hand = y[[0, 1], labels] + np.log(np.exp(-j) + np.exp(-y).sum(axis=1))
    loss = LeNetRBFLoss(j)
    np.testing.assert_allclose(loss.sample_losses(y, labels), by_hand, rtol=1e-14)
    assert loss.forward(y, labels) == pytest.approx(by_hand.mean(), rel=1e-14)


def test_rows_of_very_different_distances_each_keep_their_own_scale():
    """A sample whose distances are all ~2000 beside one near 0: each sample's loss is its own, finite."""
    y = np.array([[0.5, 1.0, 2.0], [2000.0, 2001.0, 2003.0]])
    labels = np.array([0, 1])
    j = 1.0
    by_hand = y[[0, 1], labels] + np.logaddexp.reduce(np.concatenate([np.full((2, 1), -j), -y], axis=1), axis=1)
    loss = LeNetRBFLoss(j)
    np.testing.assert_allclose(loss.sample_losses(y, labels), by_hand, rtol=1e-12)
    assert np.isfinite(loss.backward(y, labels)).all() and np.isfinite(loss.second_derivative(y, labels)).all()


@pytest.mark.parametrize("make, message", [
    (lambda: LeNetRBFLoss(0), r"^j must be > 0, got 0\.0$"),
    (lambda: LeNetRBFLoss(-1), r"^j must be > 0, got -1\.0$"),
    (lambda: RBFOutput(3, codes="x"), r"^codes must be 'digits' or 'random', got 'x'$"),
    (lambda: LeNetRBFLoss().check_targets(np.array([0, 1]), (3, 4)),
     r"^LeNetRBFLoss needs outputs \(N, classes\), got \(N, 3, 4\)$"),
    (lambda: RBFOutput(0), r"^units must be a positive integer, got 0$"),
    (lambda: RBFOutput(3, seed=-1), r"^seed must be a non-negative integer, got -1$"),
    (lambda: RBFOutput(11, codes="digits").compute_output_shape((84,)),
     r"^codes='digits' needs 84 inputs \(a 7x12 bitmap\) and at most 10 units, got 84 inputs and 11 units; "
     r"use codes='random' otherwise$"),
    (lambda: LeNetRBFLoss().check_targets(np.eye(4)[[0, 1]], (3,)),
     r"^LeNetRBFLoss needs integer labels of shape \(N,\) or one-hot targets of shape \(N, 3\), got shape "
     r"\(2, 4\)$"),
    (lambda: RBFOutput(3, codes="random").compute_output_shape((4, 4)),
     r"^RBFOutput expects flat inputs \(features,\), got \(4, 4\)$"),
])
def test_misuse_is_refused_with_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_digit_codes_are_the_bitmaps_hash_plus_one():
    one = digit_codes()[:, 1].reshape(12, 7)                      # (84, 10): one column per digit
    assert one[0].tolist() == [-1, -1, -1, 1, -1, -1, -1]          # "...#..."
    assert one[1].tolist() == [-1, -1, 1, 1, -1, -1, -1]           # "..##..."


def test_the_layer_uses_the_codes_it_is_given():
    digits = RBFOutput(10, codes="digits", input_shape=(84,))
    nnscratch.Model([digits]).finalize()
    np.testing.assert_array_equal(digits.state["codes"], digit_codes())
    random = RBFOutput(5, codes="random", seed=3, input_shape=(84,))
    nnscratch.Model([random]).finalize()
    codes = random.state["codes"]
    assert set(np.unique(codes)) == {-1.0, 1.0} and len({tuple(c) for c in codes.T}) == 5


def test_random_codes_default_to_seed_0_and_the_seed_chooses_them():
    # the documented default: a layer built without a seed has the codes of seed=0, the same every time
    def codes(**seed):
        layer = RBFOutput(6, codes="random", input_shape=(20,), **seed)
        nnscratch.Model([layer]).finalize()
        return layer.state["codes"]

    np.testing.assert_array_equal(codes(), codes(seed=0))
    assert not np.array_equal(codes(), codes(seed=1))


def test_count_macs_is_one_squared_difference_per_input_and_unit():
    layer = RBFOutput(10, input_shape=(84,))
    nnscratch.Model([layer]).finalize()
    assert layer.count_macs() == 840                    # LeCun's F6 -> output connections: 84 x 10

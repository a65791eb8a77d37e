"""The merge layers: values, Keras' broadcasting of size-1 axes, and gradients summed back over it."""
import numpy as np
import pytest

from nnscratch.testing import check_layer_contract
from nnscratch.layers import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract


def _call(layer, arrays):
    layer.initialize([a.shape[1:] for a in arrays], "float64")
    return layer.forward(arrays)


@pytest.mark.parametrize("layer, op", [
    (Add(), lambda a, b, c: a + b + c), (Multiply(), lambda a, b, c: a * b * c),
    (Average(), lambda a, b, c: (a + b + c) / 3), (Maximum(), lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    (Minimum(), lambda a, b, c: np.minimum(np.minimum(a, b), c)),
])
def test_element_wise_merges_of_three(layer, op):
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    np.testing.assert_allclose(_call(layer, [a, b, c]), op(a, b, c), rtol=1e-12)


def test_a_size_one_axis_is_broadcast_and_its_gradient_summed_back():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 1, 4))
    layer = Subtract()
    np.testing.assert_allclose(_call(layer, [a, b]), a - b)
    da, db = layer.backward(np.ones((2, 3, 4)))
    assert da.shape == (2, 3, 4) and db.shape == (2, 1, 4)
    np.testing.assert_allclose(db, -3 * np.ones((2, 1, 4)))


def test_concatenate_splits_its_gradient_back():
    a, b = np.ones((2, 2, 3)), np.zeros((2, 2, 1))
    layer = Concatenate()
    out = _call(layer, [a, b])
    assert out.shape == (2, 2, 4)
    g = np.arange(16.0).reshape(2, 2, 4)
    da, db = layer.backward(g)
    np.testing.assert_array_equal(da, g[..., :3])
    np.testing.assert_array_equal(db, g[..., 3:])


def test_concatenate_refuses_the_batch_axis_and_non_integers():
    with pytest.raises(ValueError, match="cannot join along axis 0, the batch axis"):
        Concatenate(axis=0)
    with pytest.raises(ValueError, match="axis must be an integer"):
        Concatenate(axis=1.5)


def test_maximum_sends_a_tie_to_the_first_input_only():
    layer = Maximum()
    a = np.array([[1.0, 2.0]])
    _call(layer, [a, a.copy()])
    da, db = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(da, [[1.0, 1.0]])
    np.testing.assert_array_equal(db, [[0.0, 0.0]])


# found by mutation testing (docs/mutation-testing.md)

@pytest.mark.parametrize("layer, shapes, message", [
    (Add(), [(3,)], r"^Add merges at least 2 tensors, got 1$"),
    (Subtract(), [(3,), (3,), (3,)], r"^Subtract merges exactly 2 tensors, got 3$"),
    (Add(), [(3,), (3, 1)], r"^Add needs inputs of one rank, got shapes \[\(None, 3\), \(None, 3, 1\)\]$"),
    (Maximum(), [(2, 3), (2, 4)], r"^Maximum cannot merge shapes \[\(None, 2, 3\), \(None, 2, 4\)\]: axis 2 has sizes "
                                  r"\[3, 4\]; make them equal \(or 1 to broadcast\), e\.g\. with a 1x1 Conv2D that "
                                  r"matches the channels$"),
])
def test_merges_refuse_the_wrong_number_rank_or_sizes_of_inputs(layer, shapes, message):
    with pytest.raises(ValueError, match=message):
        layer.compute_output_shape(shapes)


def test_merged_shape_takes_the_size_that_is_not_one_and_keeps_an_axis_of_ones():
    assert Add().compute_output_shape([(1, 4, 1), (3, 1, 1), (3, 4, 1)]) == (3, 4, 1)


def test_maximum_sends_a_tie_to_the_first_input_only_when_a_smaller_one_comes_between():
    layer = Maximum()
    a = np.array([[2.0, 5.0]])
    _call(layer, [a, np.array([[1.0, 1.0]]), a.copy()])
    da, db, dc = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(da, [[1.0, 1.0]])
    np.testing.assert_array_equal(db, [[0.0, 0.0]])
    np.testing.assert_array_equal(dc, [[0.0, 0.0]])


def test_maximums_gradcheck_inputs_are_half_a_unit_apart_around_zero_with_small_jitter():
    xs = Maximum().gradcheck_input([(2, 3)] * 3, np.random.default_rng(0))
    assert [x.shape for x in xs] == [(2, 3)] * 3
    stacked = np.stack(xs)
    grid = np.round(stacked * 2) / 2
    jitter = stacked - grid
    # one permutation of the grid over every input and position: no two values within a finite-difference step
    np.testing.assert_array_equal(np.sort(grid.ravel()), (np.arange(18) - 9) * 0.5)
    assert np.abs(jitter).max() <= 0.1
    assert len(np.unique(jitter)) == jitter.size


@pytest.mark.parametrize("layer", [Maximum, Minimum])
def test_maximums_gradcheck_inputs_fit_broadcast_shapes_and_keep_their_gap(layer):
    shapes = [(2, 4, 4, 3), (2, 1, 1, 3), (2, 4, 1, 3)]
    xs = layer().gradcheck_input(shapes, np.random.default_rng(0))
    assert [x.shape for x in xs] == shapes
    a, b, c = np.broadcast_arrays(*xs)
    assert min(np.abs(a - b).min(), np.abs(a - c).min(), np.abs(b - c).min()) >= 0.3
    check_layer_contract(layer, [s[1:] for s in shapes], checks=("gradients",))


@pytest.mark.parametrize("axis, message", [
    (0, r"^Concatenate cannot join along axis 0, the batch axis; use axis=-1 \(channels\) or 1\.\. "
        r"\(a sample's axes\)$"),
    (True, r"^axis must be an integer, got True$"),
])
def test_concatenate_refuses_a_bad_axis_with_the_fix(axis, message):
    with pytest.raises(ValueError, match=message):
        Concatenate(axis=axis)


@pytest.mark.parametrize("axis, shapes, message", [
    (-1, [(3,)], r"^Concatenate joins at least 2 tensors, got 1$"),
    (-1, [(3,), (3, 1)], r"^Concatenate needs inputs of one rank, got \[\(None, 3\), \(None, 3, 1\)\]$"),
    (3, [(3, 2), (3, 2)], r"^axis=3 is out of range for inputs with 2 axes per sample \(valid: 1\.\.2 or -2\.\.-1\)$"),
    (-3, [(3, 2), (3, 2)], r"^axis=-3 is out of range for inputs with 2 axes per sample "
                          r"\(valid: 1\.\.2 or -2\.\.-1\)$"),
    (1, [(3, 2), (4, 5)], r"^Concatenate\(axis=1\) needs all other axes equal, but axis 2 has sizes \[2, 5\] in "
                          r"\[\(None, 3, 2\), \(None, 4, 5\)\]$"),
])
def test_concatenate_refuses_shapes_it_cannot_join(axis, shapes, message):
    with pytest.raises(ValueError, match=message):
        Concatenate(axis=axis).compute_output_shape(shapes)


@pytest.mark.parametrize("axis", [2, -1])
def test_concatenate_counts_a_positive_axis_from_the_batch_axis(axis):
    assert Concatenate(axis=axis).compute_output_shape([(3, 2), (3, 5)]) == (3, 7)

"""The merge layers: values, Keras' broadcasting of size-1 axes, and gradients summed back over it."""
import numpy as np
import pytest

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

"""Flatten and Reshape: values are checked by the contract check (tests/test_common.py); here what it does not
see: the storage order handed back, and the refusals word for word. Found by mutation testing
(docs/mutation-testing.md)."""
import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Flatten, Reshape
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn


def _built(layer, shape):
    nnscratch.Model([layer], dtype="float64").finalize()
    return layer


@pytest.mark.parametrize("make", [lambda: Flatten(input_shape=(3, 3, 2)), lambda: Reshape((9, 2), input_shape=(3, 3, 2))])
@pytest.mark.parametrize("chwn", [True, False])
def test_the_gradient_comes_back_stored_as_the_input_came(make, chwn):
    """A convolution hands out CHWN-stored batches and reads its gradient cheapest in the same order; values
    are equal either way, so only the storage shows a layer that forgot it."""
    x = np.arange(4 * 18, dtype=np.float64).reshape(4, 3, 3, 2)
    x = from_chwn(to_chwn(x)) if chwn else x
    layer = _built(make(), (3, 3, 2))
    y = layer.forward(x)
    dx = layer.backward(np.full(y.shape, 2.0))   # C-ordered, as a Dense layer after it hands it back
    assert dx.shape == x.shape and is_chwn(dx) == chwn
    np.testing.assert_array_equal(dx, np.full(x.shape, 2.0))


def test_reshape_refuses_a_shape_of_another_size_saying_both_sizes():
    with pytest.raises(ValueError, match=r"^Reshape cannot reshape \(3, 3, 2\) \(18 values\) to \(4, 4\) "
                                         r"\(16 values\)"):
        Reshape((4, 4)).compute_output_shape((3, 3, 2))


def test_reshape_names_its_argument():
    with pytest.raises((TypeError, ValueError), match=r"^target_shape "):
        Reshape("x")

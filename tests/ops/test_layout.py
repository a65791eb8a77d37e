"""Storage-order helpers: values never change, only where they live."""
import numpy as np
import pytest

import naive_conv
from nnscratch.ops.layout import from_chwn, oriented, restore, spatial_first, to_chwn

X = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)


@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
def test_to_chwn_holds_the_same_values_and_copies_only_when_it_must(order):
    x = naive_conv.stored(X, order)
    stored = to_chwn(x)
    assert stored.shape == (5, 3, 4, 2) and stored.flags.c_contiguous
    np.testing.assert_array_equal(from_chwn(stored), X)
    assert np.shares_memory(stored, x) == (order == "chwn")


@pytest.mark.parametrize("order, flips", [("nhwc", False), ("chwn", True), ("strided", True)])
def test_spatial_first_keeps_the_image_axes_at_1_and_2(order, flips):
    x = naive_conv.stored(X, order)
    a, flipped = spatial_first(x)
    assert flipped == flips and a.flags.c_contiguous and a.shape[1:3] == (3, 4)
    assert np.shares_memory(a, x) == (order != "strided")
    np.testing.assert_array_equal(restore(a, flipped), X)
    other = naive_conv.stored(X + 1, "nhwc")
    np.testing.assert_array_equal(restore(oriented(other, flipped), flipped), X + 1)

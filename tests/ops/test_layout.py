"""Storage-order helpers: values never change, only where they live."""
import numpy as np
import pytest

import naive_conv
from nnscratch.ops.layout import from_chwn, is_chwn, oriented, restore, spatial_first, stored_like, to_chwn

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


# --- found by mutation testing (docs/mutation-testing.md) ---

@pytest.mark.parametrize("order, expected", [("nhwc", False), ("chwn", True), ("strided", False)])
def test_is_chwn_tells_batch_innermost_storage_apart(order, expected):
    assert is_chwn(naive_conv.stored(X, order)) is expected


def test_is_chwn_is_false_for_anything_but_a_4d_batch():
    assert not is_chwn(np.zeros((3, 2)).T)                     # 2-D, stored transposed
    assert not is_chwn(np.zeros((2, 3, 4, 5, 6)).transpose(4, 1, 2, 3, 0))
    one = np.zeros((1, 1, 1, 1))                                # both orders at once counts as NHWC
    assert one.transpose(3, 1, 2, 0).flags.c_contiguous and not is_chwn(one)


@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
@pytest.mark.parametrize("chwn", [False, True])
def test_stored_like_stores_the_same_values_the_way_asked(order, chwn):
    x = naive_conv.stored(X, order)
    out = stored_like(x, chwn)
    np.testing.assert_array_equal(out, X)
    if chwn:
        assert is_chwn(out)
    else:
        assert out is x

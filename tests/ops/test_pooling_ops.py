"""Pooling kernels against the loop reference in tests/naive_conv.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_conv
from nnscratch.ops.im2col import resolve_padding
from nnscratch.ops.layout import to_chwn
from nnscratch.ops.pooling import (global_avg_pool_backward, global_avg_pool_forward, max_pool_2x2_backward,
                                   max_pool_2x2_forward, max_pool_backward, max_pool_forward, sum_pool_backward,
                                   sum_pool_forward, window_counts)

NO_PAD = ((0, 0), (0, 0))

POOL_CASES = [  # (x shape, pool, strides, padding mode)
    ((2, 4, 4, 3), (2, 2), (2, 2), "valid"),     # the common tiling case
    ((1, 5, 7, 2), (2, 2), (2, 2), "valid"),     # odd sizes floor: last row/column dropped
    ((2, 7, 7, 1), (3, 3), (2, 2), "valid"),     # overlapping
    ((1, 6, 5, 2), (3, 2), (1, 2), "valid"),     # overlapping in H only, non-square
    ((2, 7, 8, 1), (2, 2), (3, 3), "valid"),     # stride > pool: skipped cells
    ((1, 5, 5, 2), (2, 2), (2, 2), "same"),      # padding at bottom/right
    ((2, 4, 5, 1), (3, 3), (1, 1), "same"),      # padding on all sides, overlapping
    ((1, 3, 3, 2), (1, 1), (1, 1), "valid"),     # identity-sized window
    ((1, 1, 6, 1), (1, 3), (1, 3), "valid"),
]


def _pads(shape, pool, strides, mode):
    return resolve_padding(mode, shape[1:3], pool, strides)


@pytest.mark.parametrize("shape, pool, strides, mode", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_loops(shape, pool, strides, mode, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    pads = _pads(shape, pool, strides, mode)
    out = max_pool_forward(x, pool, strides, pads)
    ref, ref_backward = naive_conv.max_pool(x, pool, strides, pads)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.astype(dtype))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = max_pool_backward(dout, x, out, pool, strides, pads)
    assert dx.dtype == dtype and dx.shape == x.shape and dx.flags.c_contiguous
    np.testing.assert_allclose(dx, ref_backward(dout), rtol=1e-6)


def test_max_pool_sends_each_window_gradient_to_its_first_maximum():
    # windows: [[1, 3], [3, 0]] -> the 3 in the left column wins (column-major order); all-equal -> the
    # top-left cell wins; [[0, 0], [0, 2]] -> the unique maximum
    x = np.array([[1, 3, 5, 5, 0, 0],
                  [3, 0, 5, 5, 0, 2]], dtype=np.float32).reshape(1, 2, 6, 1)
    out = max_pool_forward(x, (2, 2), (2, 2))
    dx = max_pool_backward(np.array([10.0, 20.0, 30.0], np.float32).reshape(1, 1, 3, 1), x, out, (2, 2), (2, 2))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 20, 0, 0, 0],
                                                   [10, 0, 0, 0, 0, 30]])


def test_max_pool_of_relu_zeros_routes_one_gradient_per_window():
    # after a ReLU whole windows are 0: every window must still send its gradient to exactly one cell
    x = np.zeros((2, 6, 6, 3))
    out = max_pool_forward(x, (3, 3), (1, 1))
    dout = np.ones_like(out)
    dx = max_pool_backward(dout, x, out, (3, 3), (1, 1))
    assert dx.sum() == dout.sum()
    _, ref_backward = naive_conv.max_pool(x, (3, 3), (1, 1))
    np.testing.assert_array_equal(dx, ref_backward(dout))


def test_max_pool_same_padding_never_picks_the_padding():
    x = -np.ones((1, 3, 3, 1)) * 5.0  # everything negative: a zero padding would win, -inf must not
    pads = resolve_padding("same", (3, 3), (2, 2), (2, 2))
    out = max_pool_forward(x, (2, 2), (2, 2), pads)
    np.testing.assert_array_equal(out, -5.0)
    dx = max_pool_backward(np.ones_like(out), x, out, (2, 2), (2, 2), pads)
    assert dx.sum() == out.size


@pytest.mark.parametrize("shape, pool, strides, mode", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_pool_matches_loops(shape, pool, strides, mode, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    pads = _pads(shape, pool, strides, mode)
    out = sum_pool_forward(x, pool, strides, pads)
    ref, ref_backward = naive_conv.sum_pool(x, pool, strides, pads)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = sum_pool_backward(dout, x.shape, pool, strides, pads)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, ref_backward(dout), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, pool, strides, mode", POOL_CASES)
def test_window_counts_make_same_padding_averages_ignore_the_padding(shape, pool, strides, mode):
    x = np.random.default_rng(2).standard_normal(shape)
    pads = _pads(shape, pool, strides, mode)
    avg = sum_pool_forward(x, pool, strides, pads) / window_counts(shape[1:3], pool, strides, pads)
    np.testing.assert_allclose(avg, naive_conv.sum_pool(x, pool, strides, pads, average=True)[0], rtol=1e-12)


def test_forward_outputs_never_alias_the_input():
    x = np.random.default_rng(0).standard_normal((1, 3, 3, 2))
    for out in (max_pool_forward(x, (1, 1), (1, 1)), sum_pool_forward(x, (1, 1), (1, 1))):
        assert not np.shares_memory(out, x)
        np.testing.assert_array_equal(out, x)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7), c=st.integers(1, 3),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       mode=st.sampled_from(["valid", "same"]), ties=st.booleans(), order=st.sampled_from(naive_conv.STORAGE_ORDERS),
       seed=st.integers(0, 2**16))
def test_pools_match_loops_on_random_geometry(n, h, w, c, kh, kw, sh, sw, mode, ties, order, seed):
    if mode == "valid" and (kh > h or kw > w):
        with pytest.raises(ValueError, match="larger than the padded input"):
            max_pool_forward(np.zeros((n, h, w, c)), (kh, kw), (sh, sw))
        return
    rng = np.random.default_rng(seed)
    # with ties=True values come from {0, 1, 2}: many windows hold several maxima
    x = rng.integers(0, 3, (n, h, w, c)).astype(float) if ties else rng.standard_normal((n, h, w, c))
    pads = resolve_padding(mode, (h, w), (kh, kw), (sh, sw))
    xs = naive_conv.stored(x, order)
    out = max_pool_forward(xs, (kh, kw), (sh, sw), pads)
    ref, ref_backward = naive_conv.max_pool(x, (kh, kw), (sh, sw), pads)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(max_pool_backward(naive_conv.stored(dout, order), xs, out, (kh, kw), (sh, sw), pads),
                               ref_backward(dout), rtol=1e-12, atol=1e-12)
    sums, sum_backward = naive_conv.sum_pool(x, (kh, kw), (sh, sw), pads)
    np.testing.assert_allclose(sum_pool_forward(xs, (kh, kw), (sh, sw), pads), sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_pool_backward(naive_conv.stored(dout, order), x.shape, (kh, kw), (sh, sw), pads),
                               sum_backward(dout), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    out = global_avg_pool_forward(x)
    assert out.dtype == dtype and out.shape == (3, 2)
    np.testing.assert_allclose(out, x.astype(np.float64).mean(axis=(1, 2)), rtol=1e-5)
    dout = rng.standard_normal((3, 2)).astype(dtype)
    dx = global_avg_pool_backward(dout, x.shape)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, np.broadcast_to(dout[:, None, None, :] / 20, x.shape), rtol=1e-6)


@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_2x2_matches_loops_in_every_storage_order(order, ties):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (3, 6, 4, 2)).astype(float) if ties else rng.standard_normal((3, 6, 4, 2))
    out, winners = max_pool_2x2_forward(naive_conv.stored(x, order))
    ref, ref_backward = naive_conv.max_pool(x, (2, 2), (2, 2), NO_PAD)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    for stored_as in naive_conv.STORAGE_ORDERS:  # the gradient may arrive stored differently from x
        np.testing.assert_array_equal(max_pool_2x2_backward(naive_conv.stored(dout, stored_as), winners),
                                      ref_backward(dout))


def test_pools_keep_a_batch_innermost_input_stored_that_way():
    # the next convolution then reads it without a copy
    x = naive_conv.stored(np.random.default_rng(5).standard_normal((4, 6, 6, 3)), "chwn")
    for out in (max_pool_forward(x, (2, 2), (2, 2)), max_pool_2x2_forward(x)[0], sum_pool_forward(x, (3, 3), (1, 1)),
                max_pool_backward(x, x, x, (1, 1), (1, 1)), sum_pool_backward(x, x.shape, (1, 1), (1, 1))):
        assert np.shares_memory(to_chwn(out), out)


@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
def test_global_avg_pool_in_every_storage_order(order):
    x = np.random.default_rng(6).standard_normal((3, 4, 5, 2))
    np.testing.assert_allclose(global_avg_pool_forward(naive_conv.stored(x, order)), x.mean(axis=(1, 2)), rtol=1e-12)


# --- found by mutation testing (docs/mutation-testing.md) ---

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool_backward_spreads_the_gradient_in_either_storage(dtype):
    from nnscratch.ops.layout import is_chwn
    dout = np.arange(6, dtype=dtype).reshape(2, 3)
    expected = np.broadcast_to(dout[:, None, None, :] / dtype(20), (2, 4, 5, 3))
    default = global_avg_pool_backward(dout, (2, 4, 5, 3))
    assert default.dtype == dtype and default.flags.c_contiguous
    np.testing.assert_allclose(default, expected, rtol=1e-6)
    stored = global_avg_pool_backward(dout, (2, 4, 5, 3), chwn=True)
    assert stored.dtype == dtype and stored.shape == (2, 4, 5, 3) and is_chwn(stored)
    np.testing.assert_allclose(stored, expected, rtol=1e-6)


def test_a_window_of_zeros_sends_its_gradient_to_an_input_not_to_the_padding():
    # padding (-inf) comes first in column-major window order here; zero padding would tie with the zeros
    x = np.zeros((1, 3, 3, 1))
    pads = ((1, 1), (1, 1))
    out = max_pool_forward(x, (3, 3), (1, 1), pads)
    dx = max_pool_backward(np.ones_like(out), x, out, (3, 3), (1, 1), pads)
    assert dx.sum() == 9


def test_max_pool_2x2_backward_keeps_float32():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype(np.float32)
    out, winners = max_pool_2x2_forward(x)
    dx = max_pool_2x2_backward(np.ones_like(out), winners)
    assert dx.dtype == np.float32 and dx.sum() == out.size


def test_max_pool_backward_writes_zeros_where_no_window_reaches_whatever_memory_it_gets():
    # the width tiles (4 = 2 x 2) but the height does not (5): the fifth row is in no window. Blocks of NaN of
    # dx's size are freed first, so NumPy's cache of small blocks hands that memory back to an np.empty
    x = np.random.default_rng(0).standard_normal((1, 5, 4, 1))
    out = max_pool_forward(x, (2, 2), (2, 2))
    for _ in range(5):
        blocks = [np.full(x.shape, np.nan) for _ in range(8)]
        del blocks
        dx = max_pool_backward(np.ones_like(out), x, out, (2, 2), (2, 2))
        np.testing.assert_array_equal(dx[0, 4], 0.0)
        assert dx[0, :4].sum() == 4.0                   # one gradient per window

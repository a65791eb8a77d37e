"""ops/resize.py: nearest and bilinear upsampling against repeats and a by-hand half-pixel rule, their
gradients as adjoints, in both storage orders (NHWC and batch-innermost CHWN)."""
import math

import numpy as np
import pytest

from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn
from nnscratch.ops.resize import linear_weights, resize_bilinear, upsample_nearest, upsample_nearest_backward


def stored(x, chwn):
    """``x`` stored NHWC (C-contiguous) or batch-innermost, with the same values."""
    return from_chwn(to_chwn(x)) if chwn else np.ascontiguousarray(x)


def half_pixel_weights(size, out_size):
    """Output pixel ``o`` reads the input at ``(o + 0.5) * size / out_size - 0.5``, clamped to ``[0, size - 1]``,
    between its two neighbours, one entry at a time."""
    m = np.zeros((out_size, size))
    for o in range(out_size):
        src = min(max((o + 0.5) * size / out_size - 0.5, 0.0), size - 1.0)
        lo = math.floor(src)
        hi = min(lo + 1, size - 1)
        m[o, lo] += 1 - (src - lo)
        m[o, hi] += src - lo
    return m


@pytest.mark.parametrize("chwn", [False, True])
@pytest.mark.parametrize("size", [(2, 2), (3, 1), (1, 4)])
def test_upsample_nearest_repeats_every_pixel_and_keeps_the_storage_order(size, chwn):
    x = stored(np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32), chwn)
    out = upsample_nearest(x, size)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, size[0], axis=1), size[1], axis=2))
    assert out.dtype == np.float32 and is_chwn(out) == chwn


@pytest.mark.parametrize("chwn", [False, True])
@pytest.mark.parametrize("size", [(2, 2), (3, 1), (1, 4)])
def test_upsample_nearest_backward_sums_the_gradients_of_each_pixels_copies(size, chwn):
    sh, sw = size
    dout = stored(np.random.default_rng(1).standard_normal((2, 3 * sh, 4 * sw, 5)), chwn)
    dx = upsample_nearest_backward(dout, size)
    by_hand = np.zeros((2, 3, 4, 5))
    for i in range(3):
        for j in range(4):
            by_hand[:, i, j] = dout[:, i * sh:(i + 1) * sh, j * sw:(j + 1) * sw].sum(axis=(1, 2))
    np.testing.assert_allclose(dx, by_hand, rtol=1e-12)
    assert is_chwn(dx) == chwn


@pytest.mark.parametrize("size, out_size", [(2, 4), (3, 6), (3, 9), (4, 5), (1, 3), (5, 5), (6, 3), (7, 2)])
def test_linear_weights_follow_the_half_pixel_rule_clamped_at_the_borders(size, out_size):
    m = linear_weights(size, out_size)
    assert m.shape == (out_size, size) and m.dtype == np.float64
    np.testing.assert_allclose(m, half_pixel_weights(size, out_size), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-12)
    assert linear_weights(size, out_size, np.float32).dtype == np.float32
    np.testing.assert_array_equal(linear_weights(size, out_size, np.float32), m.astype(np.float32))


def test_linear_weights_of_a_two_pixel_row_made_four():
    # outputs read positions -0.25 (clamped to 0), 0.25, 0.75 and 1.25 (clamped to 1)
    np.testing.assert_allclose(linear_weights(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], rtol=1e-12)
    np.testing.assert_allclose(linear_weights(3, 2), [[0.75, 0.25, 0], [0, 0.25, 0.75]], rtol=1e-12)


@pytest.mark.parametrize("chwn", [False, True])
def test_resize_bilinear_applies_one_matrix_per_axis_and_its_transposes_give_the_gradient(chwn):
    rng = np.random.default_rng(2)
    x = stored(rng.standard_normal((2, 3, 4, 2)), chwn)
    wh, ww = linear_weights(3, 7), linear_weights(4, 6)
    out = resize_bilinear(x, wh, ww)
    assert out.shape == (2, 7, 6, 2) and is_chwn(out) == chwn
    np.testing.assert_allclose(out, np.einsum("ah,nhwc,bw->nabc", wh, x, ww), rtol=1e-12, atol=1e-12)
    g = stored(rng.standard_normal(out.shape), chwn)
    dx = resize_bilinear(g, wh.T, ww.T)
    assert dx.shape == x.shape and is_chwn(dx) == chwn
    np.testing.assert_allclose(np.vdot(out, g), np.vdot(x, dx), rtol=1e-12)

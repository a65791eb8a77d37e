"""ops/warp.py: resampling at per-sample positions against a pixel loop, its adjoint, and the Gaussian blur
matrix of the elastic distortion against a convolution of a mirror-padded signal."""
import math

import numpy as np
import pytest

from nnscratch.ops.warp import gaussian_matrix, resample, resample_backward


def reflect(i, size):
    """``d c b a | a b c d | d c b a``, one index at a time."""
    i = i % (2 * size)
    return i if i < size else 2 * size - 1 - i


def read(x, n, r, q, mode, fill_value):
    """``x[n, r, q]`` with TensorFlow's fill modes, for integer ``r``, ``q`` anywhere."""
    h, w = x.shape[1:3]
    if mode == "constant":
        return x[n, r, q] if 0 <= r < h and 0 <= q < w else np.full(x.shape[3], fill_value)
    if mode == "reflect":
        return x[n, reflect(r, h), reflect(q, w)]
    if mode == "wrap":
        return x[n, r % h, q % w]
    return x[n, min(max(r, 0), h - 1), min(max(q, 0), w - 1)]


def naive_resample(x, rows, cols, interpolation, mode, fill_value):
    """One output pixel at a time: the nearest pixel (halves round up), or the four neighbours weighted by
    their areas, each read with the fill mode."""
    n, ho, wo = rows.shape
    out = np.zeros((n, ho, wo, x.shape[3]))
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                r, q = rows[s, i, j], cols[s, i, j]
                if interpolation == "nearest":
                    out[s, i, j] = read(x, s, math.floor(r + 0.5), math.floor(q + 0.5), mode, fill_value)
                    continue
                r0, q0 = math.floor(r), math.floor(q)
                fr, fq = r - r0, q - q0
                for dr, wr in ((0, 1 - fr), (1, fr)):
                    for dq, wq in ((0, 1 - fq), (1, fq)):
                        out[s, i, j] += wr * wq * read(x, s, r0 + dr, q0 + dq, mode, fill_value)
    return out


def positions(rng, n, ho, wo, h, w):
    """Positions inside, near and far outside an ``h`` x ``w`` image, fractional and whole, negative too."""
    rows = rng.uniform(-2 * h, 3 * h, (n, ho, wo))
    cols = rng.uniform(-2 * w, 3 * w, (n, ho, wo))
    rows[:, 0] = np.round(rows[:, 0])          # whole positions, and halves (nearest rounds them up)
    cols[:, :, 0] = np.round(cols[:, :, 0]) + 0.5
    return rows, cols


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "constant"])
def test_resample_matches_a_pixel_loop_anywhere_in_and_around_the_image(mode, interpolation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 2))
    rows, cols = positions(rng, 3, 6, 3, 4, 5)      # an output of another size than the input
    out, _ = resample(x, rows, cols, interpolation, mode, 0.7)
    assert out.shape == (3, 6, 3, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, naive_resample(x, rows, cols, interpolation, mode, 0.7), rtol=1e-12, atol=1e-12)


def test_resample_defaults_to_bilinear_with_mirrored_borders_and_a_zero_fill():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 1))
    rows, cols = positions(rng, 2, 3, 3, 3, 4)
    np.testing.assert_allclose(resample(x, rows, cols)[0], naive_resample(x, rows, cols, "bilinear", "reflect", 0.0),
                               rtol=1e-12, atol=1e-12)
    constant, _ = resample(x, rows, cols, "bilinear", "constant")
    np.testing.assert_allclose(constant, naive_resample(x, rows, cols, "bilinear", "constant", 0.0), atol=1e-12)


def test_nearest_interpolation_rounds_halves_up():
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    cols = np.array([[[-0.5, 0.49, 0.5, 1.5, 3.5, 3.51]]])
    out, _ = resample(x, np.zeros_like(cols), cols, "nearest", "constant", -1.0)
    assert out[0, 0, :, 0].tolist() == [0.0, 0.0, 1.0, 2.0, 4.0, 4.0]
    rows = np.array([[[-0.51, 0.0, 4.5]]])
    out, _ = resample(np.arange(5.0).reshape(1, 5, 1, 1), rows, np.zeros_like(rows), "nearest", "constant", -1.0)
    assert out[0, 0, :, 0].tolist() == [-1.0, 0.0, -1.0]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "constant"])
def test_resample_backward_is_the_adjoint_of_resample(mode, interpolation):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 3))
    rows, cols = positions(rng, 2, 5, 4, 4, 3)
    out, taps = resample(x, rows, cols, interpolation, mode)
    g = rng.standard_normal(out.shape)
    dx = resample_backward(g, taps)
    assert dx.shape == x.shape
    # <resample(x), g> = <x, resample_backward(g)> for every x: the gradient of a linear map is its adjoint
    np.testing.assert_allclose(np.vdot(out, g), np.vdot(x, dx), rtol=1e-12)
    # and per input pixel: the gradient of x[n, h, w, c] is the sum of the output gradients that read it, times
    # their weights; moving one pixel by e moves the output by e times those weights
    e = np.zeros_like(x)
    e[1, 2, 0, 1] = 1.0
    moved, _ = resample(x + e, rows, cols, interpolation, mode)
    np.testing.assert_allclose(np.vdot(moved - out, g), dx[1, 2, 0, 1], rtol=1e-9, atol=1e-12)


def test_a_constant_fill_adds_its_value_to_the_output_but_no_gradient():
    x = np.zeros((1, 2, 2, 1))
    cols = np.array([[[-0.25, 1.5, 0.5]]])                      # a quarter, a half, none outside
    out, taps = resample(x, np.zeros_like(cols), cols, "bilinear", "constant", 2.0)
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(resample_backward(np.ones_like(out), taps)[0, :, :, 0], [[1.25, 1.0], [0.0, 0.0]])
    # fill values only for "constant"
    other, _ = resample(x + 1, np.zeros_like(cols), cols, "bilinear", "nearest", 2.0)
    np.testing.assert_allclose(other, np.ones_like(other))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_float32_stays_float32_both_ways(interpolation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    rows, cols = positions(rng, 2, 3, 3, 3, 3)
    out, taps = resample(x, rows, cols, interpolation, "constant", 0.5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, naive_resample(x, rows, cols, interpolation, "constant", 0.5), rtol=1e-5,
                               atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    dx = resample_backward(g, taps)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(resample_backward(g.astype(np.float64), taps), dx, rtol=1e-5, atol=1e-6)


def test_resample_reads_a_non_contiguous_input_and_gradient():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 5)).transpose(0, 2, 1, 3)[:, :, :, ::2]    # (2, 4, 3, 3), strided
    rows, cols = positions(rng, 2, 3, 2, 4, 3)
    out, taps = resample(x, rows, cols, "bilinear", "wrap")
    np.testing.assert_allclose(out, naive_resample(x, rows, cols, "bilinear", "wrap", 0.0), atol=1e-12)
    g = rng.standard_normal((2, 2, 3, 6))[:, :, :, ::2].transpose(0, 2, 1, 3)   # (2, 3, 2, 3), strided
    np.testing.assert_allclose(np.vdot(out, g), np.vdot(x, resample_backward(g, taps)), rtol=1e-12)


def mirror_blur(v, sigma):
    """A Gaussian blur truncated at 4 sigma (at least one tap each side) of ``v`` padded by mirroring
    (``d c b a | a b c d``, numpy's "symmetric", scipy's "reflect"), by direct convolution."""
    radius = max(1, int(4 * sigma + 0.5))
    k = np.arange(-radius, radius + 1)
    taps = np.exp(-k ** 2 / (2 * sigma ** 2))
    padded = np.pad(v, radius, mode="symmetric")
    return np.convolve(padded, taps / taps.sum(), mode="valid")


@pytest.mark.parametrize("size, sigma", [(7, 1.0), (12, 2.5), (4, 3.0), (1, 1.0), (6, 0.2), (9, 0.6)])
def test_gaussian_matrix_blurs_as_a_convolution_of_the_mirrored_signal(size, sigma):
    m = gaussian_matrix(size, sigma)
    assert m.shape == (size, size)
    v = np.random.default_rng(size).standard_normal(size)
    np.testing.assert_allclose(m @ v, mirror_blur(v, sigma), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m, np.stack([mirror_blur(e, sigma) for e in np.eye(size)], axis=1), atol=1e-15)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-12)


def test_gaussian_matrix_of_a_narrow_blur_still_reaches_each_neighbour():
    # sigma 0.25: 4 sigma rounds to one tap each side; its weight exp(-8) / (1 + 2 exp(-8))
    side = math.exp(-8) / (1 + 2 * math.exp(-8))
    m = gaussian_matrix(3, 0.25)
    np.testing.assert_allclose(m, [[1 - side, side, 0], [side, 1 - 2 * side, side], [0, side, 1 - side]], rtol=1e-12)

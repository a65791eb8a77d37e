"""Augmentation layers: what each transformation does, fill modes against a pixel loop and PyTorch's
grid_sample, identity in inference, reproducible draws in a model, and bad arguments named."""
import re

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import (Conv2D, Dense, ElasticDistortion, Flatten, RandomContrast, RandomFlip, RandomRotation,
                              RandomTranslation, RandomZoom)
from nnscratch.ops.warp import fill_index, resample, resample_backward


def built(layer, shape=(5, 5, 1), seed=0):
    layer.initialize(shape, "float64", np.random.default_rng(seed))
    return layer


def dot(shape=(7, 7, 1), at=(3, 5)):
    x = np.zeros((1,) + shape)
    x[(0,) + at + (0,)] = 1.0
    return x


def where(out):
    return tuple(int(i) for i in np.unravel_index(np.argmax(out[0, :, :, 0]), out.shape[1:3]))


def test_each_transformation_moves_pixels_as_keras_says():
    x = dot()  # a dot two pixels right of the centre (3, 3)
    # a quarter turn counter-clockwise takes it above the centre
    assert where(built(RandomRotation((0.25, 0.25)), (7, 7, 1))(x, training=True)) == (1, 3)
    assert where(built(RandomRotation((-0.25, -0.25)), (7, 7, 1))(x, training=True)) == (5, 3)
    # positive translations move the image down and right
    moved = built(RandomTranslation((2 / 7, 2 / 7), (-1 / 7, -1 / 7), fill_mode="constant"), (7, 7, 1))
    assert where(moved(x, training=True)) == (5, 4)
    # zooming out by 2 (factor 1: read twice the extent) halves the distance to the centre
    assert where(built(RandomZoom((1.0, 1.0)), (7, 7, 1))(x, training=True)) == (3, 4)
    # zooming in by 2 (factor -0.5) doubles it, out of the image: with constant filling nothing is left of the dot
    zoomed_in = built(RandomZoom((-0.5, -0.5), fill_mode="constant"), (7, 7, 1))(dot(at=(3, 4)), training=True)
    assert where(zoomed_in) == (3, 5)
    flipped = built(RandomFlip("horizontal"), (7, 7, 1))
    outs = [flipped(x, training=True) for _ in range(20)]
    assert {where(o) for o in outs} == {(3, 5), (3, 1)}


def test_inference_is_the_identity_and_gradients_pass_through():
    x = np.random.default_rng(0).standard_normal((3, 5, 5, 1))
    for layer in (RandomFlip(), RandomTranslation(0.2, 0.2), RandomRotation(0.1), RandomZoom(0.2),
                  RandomContrast(0.5), ElasticDistortion(2.0, 1.0)):
        built(layer)
        assert layer.forward(x, training=False) is x
        assert layer.backward(x) is x
        assert layer.forward(x) is x and layer(x) is x          # inference is the default


def naive_shift(x, dr, dc, mode, fill_value=0.0):
    """out[i, j] = x[i - dr, j - dc] with TensorFlow's fill modes, one pixel at a time."""
    n, h, w, c = x.shape
    out = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            r, q = i - dr, j - dc
            if mode == "constant" and not (0 <= r < h and 0 <= q < w):
                out[:, i, j] = fill_value
                continue
            if mode == "reflect":
                r = r % (2 * h)
                r = r if r < h else 2 * h - 1 - r
                q = q % (2 * w)
                q = q if q < w else 2 * w - 1 - q
            elif mode == "wrap":
                r, q = r % h, q % w
            else:
                r, q = min(max(r, 0), h - 1), min(max(q, 0), w - 1)
            out[:, i, j] = x[:, r, q]
    return out


@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "constant"])
def test_fill_modes_match_a_pixel_loop(mode):
    x = np.random.default_rng(1).standard_normal((1, 4, 5, 2))
    for dr, dc in ((3, -4), (-6, 2), (9, 11)):
        layer = built(RandomTranslation((dr / 4, dr / 4), (dc / 5, dc / 5), fill_mode=mode, fill_value=0.7), (4, 5, 2))
        np.testing.assert_allclose(layer(x, training=True), naive_shift(x, dr, dc, mode, 0.7), atol=1e-12)
    assert fill_index(np.array([-1, -2, 4, 5, 9]), 4, "reflect")[0].tolist() == [0, 1, 3, 2, 1]


@pytest.mark.parametrize("mode, padding", [("constant", "zeros"), ("reflect", "reflection"), ("nearest", "border")])
def test_bilinear_resampling_agrees_with_pytorch_grid_sample(mode, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    n, h, w, c = 3, 6, 7, 2
    x = rng.standard_normal((n, h, w, c))
    rows, cols = rng.uniform(-3, h + 2, (n, 5, 4)), rng.uniform(-3, w + 2, (n, 5, 4))
    out, taps = resample(x, rows, cols, "bilinear", mode)
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    grid = torch.tensor(np.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], axis=-1))
    ty = torch.nn.functional.grid_sample(tx, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    np.testing.assert_allclose(out, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(resample_backward(g, taps), tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10,
                               atol=1e-12)


def test_contrast_keeps_the_mean_and_scales_the_spread():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (4, 5, 5, 2))
    layer = built(RandomContrast((0.5, 0.5), value_range=None), (5, 5, 2))
    out = layer(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-12)
    spread = (out - out.mean(axis=(1, 2), keepdims=True)) / (x - x.mean(axis=(1, 2), keepdims=True))
    assert np.all((spread > 0.5 - 1e-9) & (spread < 1.5 + 1e-9))
    np.testing.assert_allclose(spread, spread[:, :1, :1, :1] * np.ones_like(spread), rtol=1e-9)  # one per image
    clipped = built(RandomContrast((0, 1), value_range=(0, 1)), (5, 5, 2))(x, training=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_elastic_distortion_moves_pixels_smoothly():
    layer = built(ElasticDistortion(alpha=0.0, sigma=2.0), (8, 8, 1))
    x = np.random.default_rng(4).standard_normal((2, 8, 8, 1))
    np.testing.assert_allclose(layer(x, training=True), x, atol=1e-12)  # no displacement: the identity
    layer = built(ElasticDistortion(alpha=8.0, sigma=3.0), (28, 28, 1))
    rows, cols = layer._coordinates(64, (28, 28))
    shift = np.stack([rows - np.arange(28)[:, None], cols - np.arange(28)[None, :]])
    assert 0.05 < np.abs(shift).mean() < 2.0
    # neighbouring pixels move alike (smooth fields), far ones independently
    near = np.corrcoef(shift[0, :, 10, 10], shift[0, :, 10, 11])[0, 1]
    far = np.corrcoef(shift[0, :, 2, 2], shift[0, :, 25, 25])[0, 1]
    assert near > 0.9 and abs(far) < 0.5


def test_a_model_with_augmentation_is_reproducible_and_trains(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (48, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)

    def build():
        m = nnscratch.Model([RandomFlip("horizontal", input_shape=(8, 8, 1)), RandomTranslation(0.1, 0.1),
                             RandomRotation(0.05), RandomZoom(0.1), RandomContrast(0.2, value_range=(0, 1)),
                             ElasticDistortion(2.0, 2.0), Conv2D(4, 3, activation="relu"), Flatten(),
                             Dense(2, activation="softmax")], seed=0)
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return m

    a, b = build(), build()
    a.fit(x, y, epochs=2, batch_size=16, verbose=0)
    b.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v)
    a.save(tmp_path / "aug.h5")
    again = nnscratch.load_model(tmp_path / "aug.h5")
    np.testing.assert_array_equal(again.predict(x), a.predict(x))   # inference: no augmentation
    assert [type(layer).__name__ for layer in again.layers[:6]] == ["RandomFlip", "RandomTranslation",
                                                                    "RandomRotation", "RandomZoom", "RandomContrast",
                                                                    "ElasticDistortion"]


@pytest.mark.parametrize("make, message", [
    (lambda: RandomFlip("diagonal"), r"mode must be one of 'horizontal', 'vertical', 'horizontal_and_vertical'"),
    (lambda: RandomTranslation(0.1, (0.3, 0.1)), r"width_factor must be \(lower, upper\) with lower <= upper"),
    (lambda: RandomTranslation(0.1, 0.1, fill_mode="mirror"), r"fill_mode must be one of 'reflect', 'wrap'"),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), r"interpolation must be one of 'bilinear', 'nearest'"),
    (lambda: RandomRotation("a lot"), r"factor must be a number or a pair"),
    (lambda: RandomZoom((-1.2, 0.1)), r"height_factor must keep every draw above -1"),
    (lambda: RandomContrast(1.5), r"factor must be"),
    (lambda: RandomContrast(0.2, value_range=(1, 0)), r"value_range must have low < high"),
    (lambda: ElasticDistortion(sigma=0), r"sigma must be"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_images_only():
    with pytest.raises(ValueError, match=r"expects images of shape \(height, width, channels\)"):
        RandomRotation(0.1).initialize((28, 28))


# -- RandomAffine: LeCun 1998's distortions ----------------------------------------------------------------
def _fixed(factor):
    return (factor, factor)


@pytest.mark.parametrize("affine, same", [
    (dict(height_factor=_fixed(0.2), width_factor=_fixed(-0.25)),
     lambda: nnscratch.layers.RandomTranslation(_fixed(0.2), _fixed(-0.25), fill_mode="constant")),
    (dict(scale=_fixed(0.25)), lambda: RandomZoom(_fixed(1 / 1.25 - 1), fill_mode="constant")),
    (dict(squeeze=_fixed(0.25)), lambda: RandomZoom(_fixed(1 / 1.25 - 1), _fixed(0.25), fill_mode="constant")),
])
def test_random_affine_translates_scales_and_squeezes_as_the_single_transformations_do(affine, same):
    from nnscratch.layers import RandomAffine

    arguments = dict(height_factor=0.0, width_factor=0.0, scale=0.0, squeeze=0.0, shear=0.0, fill_mode="constant")
    arguments.update(affine)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1))
    ours = built(RandomAffine(**arguments), (8, 8, 1))(x, training=True)
    theirs = built(same(), (8, 8, 1))(x, training=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_random_affine_shears_horizontally_and_keeps_its_draws_within_range():
    from nnscratch.layers import RandomAffine

    x = np.zeros((1, 9, 9, 1))
    x[0, :, 4, 0] = 1.0                                  # a vertical bar through the centre
    out = built(RandomAffine(0.0, 0.0, scale=0.0, squeeze=0.0, shear=_fixed(1.0), fill_mode="constant"),
                (9, 9, 1))(x, training=True)
    assert [where(out[:, r:r + 1]) for r in (0, 4, 8)] == [(0, 0), (0, 4), (0, 8)]   # one column per row
    layer = built(RandomAffine(), (32, 32, 1))
    matrices, offsets = layer._affine(1000, (32, 32))
    assert np.all(np.abs(offsets) < 0.06 * 32 * 1.5) and np.all(matrices[:, 0, 1] == 0)
    assert built(RandomAffine(), (9, 9, 1))(x, training=False) is x  # inference: the identity


# -- found by mutation testing ------------------------------------------------------------------------------
def _affine(**kwargs):
    from nnscratch.layers import RandomAffine

    return RandomAffine(**kwargs)


@pytest.mark.parametrize("make, message", [
    (lambda: RandomFlip("diagonal"),
     "mode must be one of 'horizontal', 'vertical', 'horizontal_and_vertical', got 'diagonal'"),
    (lambda: RandomTranslation(float("nan"), 0.1), "height_factor must be a finite number, got nan"),
    (lambda: RandomTranslation(-0.1, 0.1), "height_factor must be >= 0, got -0.1"),
    (lambda: RandomTranslation(0.1, (0.1, "a")), "width_factor[1] must be a finite number, got 'a'"),
    (lambda: RandomTranslation(0.1, ("a", 0.1)), "width_factor[0] must be a finite number, got 'a'"),
    (lambda: RandomTranslation(0.1, (0.3, 0.1)), "width_factor must be (lower, upper) with lower <= upper, got (0.3, 0.1)"),
    (lambda: RandomTranslation(0.1, [0.1, 0.2, 0.3]),
     "width_factor must be a number or a pair (lower, upper), got [0.1, 0.2, 0.3]"),
    (lambda: RandomTranslation(True, 0.1), "height_factor must be a number or a pair (lower, upper), got True"),
    (lambda: RandomTranslation(0.1, 0.1, fill_mode="mirror"),
     "fill_mode must be one of 'reflect', 'wrap', 'nearest', 'constant', got 'mirror'"),
    (lambda: RandomTranslation(0.1, 0.1, interpolation="bicubic"),
     "interpolation must be one of 'bilinear', 'nearest', got 'bicubic'"),
    (lambda: RandomTranslation(0.1, 0.1, fill_value="white"), "fill_value must be a finite number, got 'white'"),
    (lambda: RandomRotation("a lot"), "factor must be a number or a pair (lower, upper), got 'a lot'"),
    (lambda: RandomRotation(0.1, fill_mode="edge"),
     "fill_mode must be one of 'reflect', 'wrap', 'nearest', 'constant', got 'edge'"),
    (lambda: RandomZoom((-1.2, 0.1)), "height_factor must keep every draw above -1, got the range (-1.2, 0.1)"),
    (lambda: RandomZoom((-1, 0.1)), "height_factor must keep every draw above -1, got the range (-1.0, 0.1)"),
    (lambda: RandomZoom(1), "height_factor must keep every draw above -1, got the range (-1.0, 1.0)"),
    (lambda: RandomZoom(0.5, (-1.0, 0.0)), "width_factor must keep every draw above -1, got the range (-1.0, 0.0)"),
    (lambda: RandomZoom(0.5, interpolation="cubic"), "interpolation must be one of 'bilinear', 'nearest', got 'cubic'"),
    (lambda: _affine(height_factor=-1), "height_factor must be >= 0, got -1.0"),
    (lambda: _affine(width_factor=(0.2, 0.1)), "width_factor must be (lower, upper) with lower <= upper, got (0.2, 0.1)"),
    (lambda: _affine(scale=1.0), "scale must keep every draw above -1, got the range (-1.0, 1.0)"),
    (lambda: _affine(squeeze=(-1, 0)), "squeeze must keep every draw above -1, got the range (-1.0, 0.0)"),
    (lambda: _affine(shear=(0.3, 0.2)), "shear must be (lower, upper) with lower <= upper, got (0.3, 0.2)"),
    (lambda: _affine(fill_mode="zeros"), "fill_mode must be one of 'reflect', 'wrap', 'nearest', 'constant', got 'zeros'"),
    (lambda: RandomContrast(1.5), "factor must be <= 1, got 1.5"),
    (lambda: RandomContrast(-0.5), "factor must be >= 0, got -0.5"),
    (lambda: RandomContrast((-0.1, 0.2)), "factor[0] must be >= 0, got -0.1"),
    (lambda: RandomContrast((0.5, -0.2)), "factor[1] must be >= 0, got -0.2"),
    (lambda: RandomContrast((1.5, 0.2)),
     "factor[0] must be at most 1 (factors from 1 - factor[0] must stay >= 0), got 1.5"),
    (lambda: RandomContrast("x"), "factor must be a number in [0, 1] or a pair (lower, upper), got 'x'"),
    (lambda: RandomContrast(True), "factor must be a number in [0, 1] or a pair (lower, upper), got True"),
    (lambda: RandomContrast((0.1, 0.2, 0.3)),
     "factor must be a number in [0, 1] or a pair (lower, upper), got (0.1, 0.2, 0.3)"),
    (lambda: RandomContrast(0.2, value_range=5), "value_range must be a pair (low, high) or None, got 5"),
    (lambda: RandomContrast(0.2, value_range=(0, 1, 2)), "value_range must be a pair (low, high) or None, got (0, 1, 2)"),
    (lambda: RandomContrast(0.2, value_range=("a", 1)), "value_range[0] must be a finite number, got 'a'"),
    (lambda: RandomContrast(0.2, value_range=(0, "b")), "value_range[1] must be a finite number, got 'b'"),
    (lambda: RandomContrast(0.2, value_range=(1, 1)), "value_range must have low < high, got (1, 1)"),
    (lambda: ElasticDistortion(alpha=-1), "alpha must be >= 0, got -1.0"),
    (lambda: ElasticDistortion(sigma=0), "sigma must be > 0, got 0.0"),
    (lambda: ElasticDistortion(fill_mode="edge"),
     "fill_mode must be one of 'reflect', 'wrap', 'nearest', 'constant', got 'edge'"),
    (lambda: ElasticDistortion(interpolation="area"), "interpolation must be one of 'bilinear', 'nearest', got 'area'"),
    (lambda: ElasticDistortion(fill_value=None), "fill_value must be a finite number, got None"),
])
def test_every_refusal_word_for_word(make, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make()


def test_the_bounds_of_the_arguments_are_accepted():
    RandomZoom((-0.99, 0.0), (-0.99, 0.0))             # just above -1
    _affine(scale=(-0.99, 0.0), squeeze=(-0.99, 0.0))
    RandomTranslation((0.2, 0.2), (-0.1, -0.1))        # lower == upper: one fixed draw
    RandomContrast(0.0), RandomContrast(1.0), RandomContrast((1, 0)), RandomContrast((0.0, 5.0))
    RandomContrast(0.2, value_range=None)
    ElasticDistortion(alpha=0.0, sigma=1e-3)


def recovered_maps(layer, n, hw=(21, 21)):
    """Each sample's affine map ``source = M @ (pixel - centre) + centre + offset``, read back from the layer's
    output on two ramps (channel 0 the row, channel 1 the column, both from the centre): bilinear
    interpolation is exact on a linear function, so the output at the centre is the offset and its steps
    to the next row and column are ``M``'s columns."""
    (h, w), (a, b) = hw, (hw[0] // 2, hw[1] // 2)
    grid = np.stack(np.meshgrid(np.arange(h) - a, np.arange(w) - b, indexing="ij"), axis=-1)
    out = built(layer, (h, w, 2))(np.broadcast_to(grid, (n, h, w, 2)).astype(float), training=True)
    offset = out[:, a, b]
    m = np.stack([out[:, a + 1, b] - offset, out[:, a, b + 1] - offset], axis=-1)    # (n, 2, 2)
    return m, offset


def assert_uniform(draws, low, high):
    """Within ``[low, high]``, reaching both ends, and spread evenly: the sorted draws stay near the
    quantiles of the uniform distribution (a Kolmogorov-Smirnov distance well under 0.1)."""
    draws = np.sort(np.ravel(draws))
    span = high - low
    assert draws[0] >= low - 1e-9 * span and draws[-1] <= high + 1e-9 * span
    assert draws[0] < low + 0.02 * span and draws[-1] > high - 0.02 * span
    quantiles = (np.arange(len(draws)) + 0.5) / len(draws)
    assert np.max(np.abs((draws - low) / span - quantiles)) < 0.06


def assert_independent(a, b):
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15


def test_random_translation_shifts_by_uniform_independent_fractions_of_height_and_width():
    m, offset = recovered_maps(RandomTranslation((-0.2, 0.3), 0.4), 600, hw=(21, 31))
    np.testing.assert_allclose(m, np.broadcast_to(np.eye(2), m.shape), atol=1e-9)
    shift = -offset                                  # the image moves by the shift: it reads from pixel - shift
    assert_uniform(shift[:, 0], -0.2 * 21, 0.3 * 21)
    assert_uniform(shift[:, 1], -0.4 * 31, 0.4 * 31)
    assert_independent(shift[:, 0], shift[:, 1])


def test_random_rotation_turns_by_uniform_angles_of_the_factors_range():
    m, offset = recovered_maps(RandomRotation((-0.1, 0.05)), 600)
    np.testing.assert_allclose(offset, 0, atol=1e-9)
    angle = np.arctan2(m[:, 0, 1], m[:, 0, 0])       # turning by a reads from R(-a): [[cos, sin], [-sin, cos]]
    np.testing.assert_allclose(m, np.stack([np.stack([np.cos(angle), np.sin(angle)], -1),
                                            np.stack([-np.sin(angle), np.cos(angle)], -1)], 1), atol=1e-9)
    assert_uniform(angle, -0.1 * 2 * np.pi, 0.05 * 2 * np.pi)
    m, _ = recovered_maps(RandomRotation(0.1), 600)
    assert_uniform(np.arctan2(m[:, 0, 1], m[:, 0, 0]), -0.1 * 2 * np.pi, 0.1 * 2 * np.pi)


def test_random_zoom_reads_one_plus_factor_times_the_extent_and_keeps_the_aspect_unless_told():
    m, offset = recovered_maps(RandomZoom((-0.3, 0.2)), 600)
    np.testing.assert_allclose(offset, 0, atol=1e-9)
    np.testing.assert_allclose(m[:, 0, 1], 0, atol=1e-9)
    np.testing.assert_allclose(m[:, 1, 0], 0, atol=1e-9)
    assert_uniform(m[:, 0, 0], 0.7, 1.2)
    np.testing.assert_allclose(m[:, 1, 1], m[:, 0, 0], rtol=1e-9)   # the same draw for both axes
    m, _ = recovered_maps(RandomZoom(0.2, (-0.5, -0.1)), 600)
    assert_uniform(m[:, 0, 0], 0.8, 1.2)
    assert_uniform(m[:, 1, 1], 0.5, 0.9)
    assert_independent(m[:, 0, 0], m[:, 1, 1])


def test_random_affine_draws_each_distortion_uniformly_and_independently():
    m, offset = recovered_maps(_affine(height_factor=(-0.05, 0.1), width_factor=0.08, scale=(-0.1, 0.2),
                                       squeeze=0.15, shear=(-0.3, 0.1)), 800, hw=(21, 31))
    a = np.linalg.inv(m)                              # the map from input to output: diag(s q, s / q) @ [[1, 0], [k, 1]]
    np.testing.assert_allclose(a[:, 0, 1], 0, atol=1e-9)
    s, q, k = np.sqrt(a[:, 0, 0] * a[:, 1, 1]), np.sqrt(a[:, 0, 0] / a[:, 1, 1]), a[:, 1, 0] / a[:, 1, 1]
    shift = -np.einsum("nij,nj->ni", a, offset)       # then shifted by (dy, dx)
    assert_uniform(s, 0.9, 1.2)
    assert_uniform(q, 0.85, 1.15)
    assert_uniform(k, -0.3, 0.1)
    assert_uniform(shift[:, 0], -0.05 * 21, 0.1 * 21)                # fractions of the height
    assert_uniform(shift[:, 1], -0.08 * 31, 0.08 * 31)                # and of the width
    draws = [s, q, k, shift[:, 0], shift[:, 1]]
    for i in range(5):
        for j in range(i):
            assert_independent(draws[i], draws[j])


def test_random_affine_defaults_are_lecuns_small_distortions():
    m, offset = recovered_maps(_affine(), 800)
    a = np.linalg.inv(m)
    s, q, k = np.sqrt(a[:, 0, 0] * a[:, 1, 1]), np.sqrt(a[:, 0, 0] / a[:, 1, 1]), a[:, 1, 0] / a[:, 1, 1]
    shift = -np.einsum("nij,nj->ni", a, offset)
    assert_uniform(s, 0.9, 1.1)
    assert_uniform(q, 0.9, 1.1)
    assert_uniform(k, -0.2, 0.2)
    assert_uniform(shift[:, 0], -0.06 * 21, 0.06 * 21)
    assert_uniform(shift[:, 1], -0.06 * 21, 0.06 * 21)
    layer = _affine()
    assert (layer.fill_mode, layer.interpolation, layer.fill_value) == ("nearest", "bilinear", 0.0)


def test_resampling_layers_default_to_bilinear_reflection_with_a_zero_fill():
    for layer in (RandomTranslation(0.1, 0.1), RandomRotation(0.1), RandomZoom(0.1)):
        assert (layer.fill_mode, layer.interpolation, layer.fill_value) == ("reflect", "bilinear", 0.0)
        assert layer.get_config()["fill_mode"] == "reflect"
    layer = ElasticDistortion()
    assert (layer.alpha, layer.sigma, layer.fill_mode, layer.interpolation, layer.fill_value) == \
        (34.0, 4.0, "constant", "bilinear", 0.0)
    assert RandomFlip().mode == "horizontal_and_vertical"
    assert RandomContrast(0.1).value_range == [0, 255]
    # the defaults at work: a shift past the border mirrors the image, bilinear between pixels
    x = np.arange(4.0).reshape(1, 1, 4, 1)
    out = built(RandomTranslation(0.0, (0.375, 0.375)), (1, 4, 1))(x, training=True)     # 1.5 pixels right
    np.testing.assert_allclose(out[0, 0, :, 0], [0.5, 0.0, 0.5, 1.5])


def test_resampling_layers_use_their_fill_and_interpolation_arguments():
    x = np.arange(4.0).reshape(1, 1, 4, 1) + 1
    shifted = dict(height_factor=0.0, width_factor=(0.375, 0.375))
    expect = {("constant", "bilinear"): [-2.0, -0.5, 1.5, 2.5], ("wrap", "bilinear"): [3.5, 2.5, 1.5, 2.5],
              ("nearest", "bilinear"): [1.0, 1.0, 1.5, 2.5], ("constant", "nearest"): [-2.0, 1.0, 2.0, 3.0]}
    for (mode, interpolation), values in expect.items():
        layer = built(RandomTranslation(**shifted, fill_mode=mode, interpolation=interpolation, fill_value=-2.0),
                      (1, 4, 1))
        np.testing.assert_allclose(layer(x, training=True)[0, 0, :, 0], values, err_msg=f"{mode} {interpolation}")
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 6, 1))
    for make in (lambda **k: RandomRotation((0.25, 0.25), **k), lambda **k: RandomZoom((1.0, 1.0), **k),
                 lambda **k: _affine(**dict(dict(height_factor=0.0, width_factor=0.0, scale=(-0.5, -0.5), squeeze=0.0,
                                                 shear=0.0), **k)),
                 lambda **k: ElasticDistortion(alpha=5.0, sigma=1.0, **k)):
        nearest = built(make(fill_mode="constant", interpolation="nearest", fill_value=-2.0), (3, 6, 1))(
            x, training=True)
        bilinear = built(make(fill_mode="constant", interpolation="bilinear", fill_value=-2.0), (3, 6, 1))(
            x, training=True)
        wrapped = built(make(fill_mode="wrap", interpolation="bilinear", fill_value=-2.0), (3, 6, 1))(
            x, training=True)
        assert (nearest == -2.0).any() and (bilinear < 0).any() and (wrapped >= 0).all()
        assert np.isin(nearest, np.append(x, -2.0)).all() and not np.isin(bilinear, np.append(x, -2.0)).all()


@pytest.mark.parametrize("mode, flips", [("horizontal", {(0, 0), (1, 0)}), ("vertical", {(0, 0), (0, 1)}),
                                         ("horizontal_and_vertical", {(0, 0), (1, 0), (0, 1), (1, 1)})])
def test_random_flip_flips_what_its_mode_names_each_half_the_time_independently(mode, flips):
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    images = {(h, v): x[0][::-1 if v else 1, ::-1 if h else 1] for h in (0, 1) for v in (0, 1)}
    layer = built(RandomFlip(mode), (2, 3, 1))
    out = layer(np.repeat(x, 2000, axis=0), training=True)
    seen = [next(k for k, image in images.items() if np.array_equal(o, image)) for o in out]
    counts = {k: seen.count(k) / len(seen) for k in set(seen)}
    assert set(counts) == flips
    for share in counts.values():
        assert abs(share - 1 / len(flips)) < 0.04
    # the gradient goes back through the same flip of each sample
    g = np.random.default_rng(1).standard_normal(out.shape)
    dx = layer.backward(g)
    for k, o, gi, di in zip(seen, out, g, dx):
        np.testing.assert_array_equal(di, gi[::-1 if k[1] else 1, ::-1 if k[0] else 1])


@pytest.mark.parametrize("make", [lambda: RandomFlip(), lambda: RandomTranslation(0.2, 0.2),
                                  lambda: RandomContrast(0.3, value_range=None), lambda: ElasticDistortion(2.0, 1.0)])
def test_training_casts_to_the_layers_dtype_and_a_layer_below_without_gradient_gets_none(make):
    layer = make()
    layer.initialize((5, 5, 1), "float32", np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0, 1, (3, 5, 5, 1))
    out = layer(x, training=True)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert layer.backward(x).dtype == np.float32
    assert layer(x, training=False) is x                    # inference: no cast, no copy
    layer.input_grad_needed = False
    layer(x, training=True)
    assert layer.backward(np.ones_like(out)) is None


def test_random_contrast_draws_factors_uniformly_from_one_minus_lower_to_one_plus_upper():
    x = np.random.default_rng(2).uniform(0, 1, (800, 3, 3, 1))
    out = built(RandomContrast((0.2, 0.6), value_range=None), (3, 3, 1))(x, training=True)
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    factor = ((out - out.mean(axis=(1, 2), keepdims=True)) * centred).sum(axis=(1, 2, 3)) / (centred ** 2).sum(
        axis=(1, 2, 3))
    assert_uniform(factor, 0.8, 1.6)
    out = built(RandomContrast(0.3, value_range=None), (3, 3, 1))(x, training=True)
    factor = ((out - out.mean(axis=(1, 2), keepdims=True)) * centred).sum(axis=(1, 2, 3)) / (centred ** 2).sum(
        axis=(1, 2, 3))
    assert_uniform(factor, 0.7, 1.3)


def test_random_contrast_clips_to_its_range_and_passes_no_gradient_through_clipped_values():
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, 4, 2))

    def layer():
        return built(RandomContrast((0.0, 3.0), value_range=(0.2, 0.8)), (3, 4, 2), seed=7)   # the same draws

    out = layer()(x, training=True)
    assert out.min() == 0.2 and out.max() == 0.8        # clipped at both ends, exactly to the bounds
    g = np.random.default_rng(4).standard_normal(x.shape)
    first = layer()
    first(x, training=True)
    dx = first.backward(g)
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[index] = 1e-6
        numeric[index] = np.vdot(layer()(x + e, training=True) - layer()(x - e, training=True), g) / 2e-6
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_elastic_displacements_are_uniform_noise_blurred_per_axis_and_scaled_by_alpha():
    from nnscratch.ops.warp import gaussian_matrix

    h, w, alpha, sigma, n = 13, 17, 0.5, 1.5, 300
    grid = np.stack(np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij"), axis=-1)
    layer = built(ElasticDistortion(alpha, sigma, fill_mode="nearest"), (h, w, 2))
    shift = (layer(np.broadcast_to(grid, (n, h, w, 2)), training=True) - grid)[:, 1:-1, 1:-1]  # rows and columns
    assert np.abs(shift).max() <= alpha
    assert abs(shift.mean()) < 0.01
    # uniform noise in [-1, 1] has variance 1/3; the blur M_h @ f @ M_w.T sums it with the squares of its weights
    expected = alpha ** 2 / 3 * np.outer((gaussian_matrix(h, sigma) ** 2).sum(1), (gaussian_matrix(w, sigma) ** 2).sum(1))
    np.testing.assert_allclose((shift ** 2).mean(axis=(0, 3)), expected[1:-1, 1:-1], rtol=0.25)
    np.testing.assert_allclose((shift ** 2).mean(), expected[1:-1, 1:-1].mean(), rtol=0.06)
    assert_independent(shift[..., 0].ravel(), shift[..., 1].ravel())
    # blurred along both axes: a pixel moves like its neighbour in the next row and in the next column
    assert np.corrcoef(shift[:, 5, 5, 0], shift[:, 6, 5, 0])[0, 1] > 0.7
    assert np.corrcoef(shift[:, 5, 5, 1], shift[:, 5, 6, 1])[0, 1] > 0.7


def test_a_model_draws_the_same_transformations_on_two_threads_as_on_one(monkeypatch):
    from nnscratch.engine import parallel

    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)   # split even this small batch
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 1, (24, 8, 8, 1))
    y = rng.integers(0, 2, 24)

    def trained(threads):
        m = nnscratch.Model([RandomFlip(input_shape=(8, 8, 1)), RandomTranslation(0.2, 0.2), RandomRotation(0.1),
                             RandomZoom(0.2, 0.1), _affine(), RandomContrast(0.3, value_range=(0, 1)),
                             ElasticDistortion(3.0, 1.5), Flatten(), Dense(2, activation="softmax")],
                            seed=3, threads=threads, dtype="float64")
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=12, verbose=0)
        return m.get_weights()

    one, two = trained(1), trained(2)
    for k, v in one.items():
        np.testing.assert_allclose(two[k], v, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("factor", [1.0, (0.5, 0.5)])
def test_random_contrast_gives_the_checker_values_that_no_factor_clips_for_images_in_0_1(factor):
    # a clipped value has a zero gradient: the check would compare zeros there. Images in [0, 1] (value_range
    # (0, 1)) are the tightest common range; factors reach 2 (factor 1.0) or 1.5
    layer = RandomContrast(factor, value_range=(0, 1), input_shape=(6, 6, 3))
    nnscratch.Model([layer], seed=0).finalize()
    x = layer.gradcheck_input((64, 6, 6, 3), np.random.default_rng(0))
    upper = 1 + (factor if isinstance(factor, float) else factor[1])
    mean = x.mean(axis=(1, 2), keepdims=True)
    extreme = np.concatenate([(x - mean) * upper + mean, (x - mean) * (2 - upper) + mean])
    assert extreme.min() > 0 and extreme.max() < 1          # no factor drawn can reach either bound
    out = layer.forward(x, training=True)
    assert 0 < out.min() and out.max() < 1

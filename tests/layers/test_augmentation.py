"""Augmentation layers: what each transformation does, fill modes against a pixel loop and PyTorch's
grid_sample, identity in inference, reproducible draws in a model, and bad arguments named."""
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

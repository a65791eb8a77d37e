"""UpSampling2D, Cropping2D, GlobalMaxPool2D, MaxPool1D and AvgPool1D against loop references and PyTorch
(skipped without torch), and their errors."""
import math

import numpy as np
import pytest

import naive_conv
from nnscratch.layers import AvgPool1D, Cropping2D, GlobalMaxPool2D, MaxPool1D, UpSampling2D


def built(layer, shape, dtype="float64"):
    layer.initialize(shape, dtype, np.random.default_rng(0))
    return layer


def run(layer, shape, x=None, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    x = layer.gradcheck_input((batch,) + tuple(shape), rng) if x is None else x
    out = layer.forward(x, training=True)
    dout = rng.standard_normal(out.shape)
    return x, out, dout, layer.backward(dout)


# -- loop references ------------------------------------------------------------------------------
def naive_resize(x, out_hw, mode):
    """TensorFlow 2's tf.image.resize without antialiasing, one output pixel at a time."""
    n, h, w, c = x.shape
    ho, wo = out_hw
    out = np.zeros((n, ho, wo, c))
    for a in range(ho):
        for b in range(wo):
            if mode == "nearest":
                out[:, a, b] = x[:, a * h // ho, b * w // wo]
                continue
            sy, sx = (a + 0.5) * h / ho - 0.5, (b + 0.5) * w / wo - 0.5
            y0, x0 = math.floor(sy), math.floor(sx)
            fy, fx = sy - y0, sx - x0
            top, bottom = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
            left, right = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
            if sy < 0:
                fy = 0.0
            if sx < 0:
                fx = 0.0
            out[:, a, b] = ((1 - fy) * ((1 - fx) * x[:, top, left] + fx * x[:, top, right])
                            + fy * ((1 - fx) * x[:, bottom, left] + fx * x[:, bottom, right]))
    return out


def numeric_backward(f, x, dout, eps=1e-6):
    """The gradient of ``sum(f(x) * dout)`` by central differences (the layers here are linear or piecewise so)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = np.sum(f(x) * dout)
        x[i] = old - eps
        minus = np.sum(f(x) * dout)
        x[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


@pytest.mark.parametrize("size, interpolation, shape", [
    (2, "nearest", (3, 2, 2)), ((3, 2), "nearest", (2, 3, 1)),
    (2, "bilinear", (3, 4, 2)), ((3, 2), "bilinear", (2, 3, 1)), ((1, 4), "bilinear", (2, 2, 1)),
])
def test_upsampling_matches_the_pixel_loop(size, interpolation, shape):
    layer = built(UpSampling2D(size, interpolation), shape)
    x, out, dout, dx = run(layer, shape)
    ref = naive_resize(x, layer.output_shape[:2], interpolation)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, numeric_backward(lambda a: naive_resize(a, layer.output_shape[:2], interpolation),
                                                    x.copy(), dout), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cropping, crops", [
    (1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((0, 1), (3, 2)), ((0, 1), (3, 2))),
])
def test_cropping(cropping, crops):
    shape = (6, 7, 2)
    layer = built(Cropping2D(cropping), shape)
    x, out, dout, dx = run(layer, shape)
    (t, b), (l, r) = crops
    np.testing.assert_array_equal(out, x[:, t:6 - b, l:7 - r])
    expected = np.zeros_like(x)
    expected[:, t:6 - b, l:7 - r] = dout
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("shape", [(3, 4, 2), (1, 1, 3), (5, 2, 1)])
def test_global_max_pool_is_a_whole_image_max_pool(shape):
    layer = built(GlobalMaxPool2D(), shape)
    x, out, dout, dx = run(layer, shape)
    ref, ref_backward = naive_conv.max_pool(x, shape[:2], shape[:2])
    np.testing.assert_array_equal(out, ref[:, 0, 0])
    np.testing.assert_array_equal(dx, ref_backward(dout[:, None, None]))
    # ties go to the first maximum in column-major order, as MaxPool2D's
    tie = np.zeros((1, 2, 2, 1))
    layer.forward(tie)
    assert layer.backward(np.ones((1, 1)))[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    tie[0, 0, 1, 0] = tie[0, 1, 0, 0] = 1.0
    layer.forward(tie)
    assert layer.backward(np.ones((1, 1)))[0, :, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]
    keep = built(GlobalMaxPool2D(keepdims=True), shape)
    assert keep.forward(x).shape == (2, 1, 1, shape[2])


@pytest.mark.parametrize("config, shape", [
    ({}, (6, 2)), ({"pool_size": 3, "strides": 2, "padding": "same"}, (7, 3)), ({"pool_size": 3, "strides": 1}, (5, 2)),
    ({"pool_size": 2, "padding": "same"}, (5, 1)),
])
def test_1d_pools_are_2d_pools_on_a_row(config, shape):
    from nnscratch.ops.im2col import resolve_padding
    k = config.get("pool_size", 2)
    s = config.get("strides") or k
    pads = resolve_padding(config.get("padding", "valid"), (1, shape[0]), (1, k), (1, s))
    layer = built(MaxPool1D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    ref, ref_backward = naive_conv.max_pool(x[:, None], (1, k), (1, s), pads)
    np.testing.assert_array_equal(out, ref[:, 0])
    np.testing.assert_array_equal(dx, ref_backward(dout[:, None])[:, 0])
    layer = built(AvgPool1D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    ref, ref_backward = naive_conv.sum_pool(x[:, None], (1, k), (1, s), pads, average=True)
    np.testing.assert_allclose(out, ref[:, 0], rtol=1e-12)
    np.testing.assert_allclose(dx, ref_backward(dout[:, None])[:, 0], rtol=1e-12)


# -- against PyTorch ------------------------------------------------------------------------------
@pytest.mark.parametrize("size, interpolation", [(2, "nearest"), ((3, 2), "nearest"), (2, "bilinear"),
                                                 ((3, 2), "bilinear")])
def test_upsampling_agrees_with_pytorch(size, interpolation):
    torch = pytest.importorskip("torch")
    shape = (4, 5, 3)
    layer = built(UpSampling2D(size, interpolation), shape)
    x, out, dout, dx = run(layer, shape)
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    factor = (size, size) if isinstance(size, int) else size
    kwargs = {"align_corners": False} if interpolation == "bilinear" else {}
    ty = torch.nn.functional.interpolate(tx, scale_factor=factor, mode=interpolation, **kwargs)
    np.testing.assert_allclose(out, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    ty.backward(torch.tensor(dout.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


def test_pools_and_cropping_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    # global max pooling: adaptive_max_pool2d to 1x1
    layer = built(GlobalMaxPool2D(), (4, 5, 3))
    x, out, dout, dx = run(layer, (4, 5, 3))
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    ty = F.adaptive_max_pool2d(tx, 1)[:, :, 0, 0]
    ty.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, ty.detach().numpy())
    np.testing.assert_array_equal(dx, tx.grad.numpy().transpose(0, 2, 3, 1))
    # 1-D pools, 'valid'
    for cls, fn in ((MaxPool1D, F.max_pool1d), (AvgPool1D, F.avg_pool1d)):
        layer = built(cls(3, strides=2), (9, 2))
        x, out, dout, dx = run(layer, (9, 2))
        tx = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
        ty = fn(tx, 3, 2)
        ty.backward(torch.tensor(dout.transpose(0, 2, 1).copy()))
        np.testing.assert_allclose(out, ty.detach().numpy().transpose(0, 2, 1), rtol=1e-12)
        np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 1), rtol=1e-12, atol=1e-15)
    # cropping is padding by negative amounts
    layer = built(Cropping2D(((1, 2), (0, 3))), (5, 6, 2))
    x = rng.standard_normal((2, 5, 6, 2))
    ty = F.pad(torch.tensor(x.transpose(0, 3, 1, 2).copy()), (0, -3, -1, -2))
    np.testing.assert_array_equal(layer.forward(x), ty.numpy().transpose(0, 2, 3, 1))


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: UpSampling2D(0), r"size\[0\] must be a positive integer, got 0"),
    (lambda: UpSampling2D(2, interpolation="bicubic"), r"interpolation must be one of 'nearest', 'bilinear'"),
    (lambda: Cropping2D(-1), r"cropping must be a non-negative int"),
    (lambda: Cropping2D((1, 2, 3)), r"cropping must be"),
    (lambda: MaxPool1D(0), r"pool_size must be a positive integer, got 0"),
    (lambda: AvgPool1D(2, padding="full"), r"padding must be one of 'valid', 'same'"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("layer, shape, message", [
    (Cropping2D(((2, 2), (0, 0))), (4, 4, 1), r"cropping=.* removes 2 \+ 2 of the 4 positions along the height"),
    (MaxPool1D(2), (4, 4, 1), r"expects sequences of shape \(steps, channels\)"),
    (MaxPool1D(5), (4, 1), r"pool length 5 is larger than the padded input length 4"),
    (UpSampling2D(), (4, 4), r"expects images of shape \(height, width, channels\)"),
])
def test_bad_input_shapes_are_named(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.initialize(shape)

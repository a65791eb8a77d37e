"""Dilated and grouped Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose and Conv1D: shapes as Keras
gives them, values and gradients against the loop references in tests/naive_conv.py and against PyTorch's
torch.nn.functional (skipped without torch), and bad arguments named."""
import re

import numpy as np
import pytest

import naive_conv
from nnscratch.layers import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from nnscratch.layers.conv_variants import transpose_geometry


def built(layer, shape, dtype="float64", seed=0):
    layer.initialize(shape, dtype, np.random.default_rng(seed))
    if "bias" in layer.params:  # zero biases would hide a bias bug
        layer.params["bias"][...] = np.random.default_rng(seed + 1).standard_normal(layer.params["bias"].shape)
    return layer


def run(layer, shape, batch=2, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(shape))
    out = layer.forward(x, training=True)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    return x, out, dout, dx


# -- Conv2D with dilation and groups, against the loops -------------------------------------------
@pytest.mark.parametrize("config, shape", [
    ({"filters": 3, "kernel_size": 3, "dilation_rate": 2}, (7, 7, 2)),
    ({"filters": 4, "kernel_size": (2, 3), "dilation_rate": (3, 1), "strides": 2, "padding": "same"}, (8, 7, 2)),
    ({"filters": 6, "kernel_size": 3, "groups": 3, "padding": 1}, (5, 5, 6)),
    ({"filters": 4, "kernel_size": 2, "groups": 2, "dilation_rate": 2, "strides": (1, 2), "use_bias": False},
     (6, 7, 4)),
])
def test_dilated_and_grouped_conv2d_match_loops(config, shape):
    layer = built(Conv2D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    args = (layer._strides, layer._pads, layer._dilation, layer.groups)
    np.testing.assert_allclose(out, naive_conv.conv2d_general(x, layer.params["kernel"], layer.params.get("bias"),
                                                              *args), rtol=1e-10, atol=1e-12)
    rdx, rdk, rdb = naive_conv.conv2d_general_backward(x, layer.params["kernel"], layer._strides, layer._pads, dout,
                                                       layer._dilation, layer.groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["kernel"], rdk, rtol=1e-10, atol=1e-12)
    if layer.use_bias:
        np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-10, atol=1e-12)
    assert layer.params["kernel"].shape == layer._kernel_hw + (shape[2] // layer.groups, layer.filters)


# -- DepthwiseConv2D and SeparableConv2D ----------------------------------------------------------
def depthwise_as_grouped(kernel):
    """Keras' depthwise kernel (kh, kw, C, m) as a grouped Conv2D kernel (kh, kw, 1, C * m)."""
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, 1, c * m)


@pytest.mark.parametrize("config, shape", [
    ({"kernel_size": 3}, (5, 6, 2)),
    ({"kernel_size": (3, 2), "depth_multiplier": 3, "strides": (2, 1), "padding": "same"}, (6, 5, 2)),
    ({"kernel_size": (3, 2), "depth_multiplier": 3, "padding": "same"}, (6, 5, 2)),
    ({"kernel_size": 2, "dilation_rate": 2, "use_bias": False}, (5, 5, 3)),
])
def test_depthwise_matches_loops(config, shape):
    layer = built(DepthwiseConv2D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    c = shape[2]
    kernel = depthwise_as_grouped(layer.params["depthwise_kernel"])
    args = (layer._strides, layer._pads, layer._dilation, c)
    np.testing.assert_allclose(out, naive_conv.conv2d_general(x, kernel, layer.params.get("bias"), *args),
                               rtol=1e-10, atol=1e-12)
    rdx, rdk, _ = naive_conv.conv2d_general_backward(x, kernel, layer._strides, layer._pads, dout, layer._dilation, c)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["depthwise_kernel"], rdk.reshape(layer.params["depthwise_kernel"].shape),
                               rtol=1e-10, atol=1e-12)
    # output channel c * m + j is input channel c through depthwise_kernel[..., c, j] (TensorFlow's order)
    m = layer.depth_multiplier
    one = built(DepthwiseConv2D(**config), shape)
    x1 = np.zeros((1,) + shape)
    x1[..., 1] = np.random.default_rng(0).standard_normal(shape[:2])
    y1 = one.forward(x1) - (one.params["bias"] if one.use_bias else 0)
    assert np.abs(y1[..., m:2 * m]).max() > 0
    assert np.abs(np.delete(y1, np.s_[m:2 * m], axis=-1)).max() < 1e-12


@pytest.mark.parametrize("config, shape", [
    ({"filters": 3, "kernel_size": 3}, (5, 5, 2)),
    ({"filters": 4, "kernel_size": 2, "depth_multiplier": 2, "strides": 2, "padding": "same"}, (5, 6, 3)),
])
def test_separable_is_depthwise_then_pointwise(config, shape):
    layer = built(SeparableConv2D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    dw = depthwise_as_grouped(layer.params["depthwise_kernel"])
    args = (layer._strides, layer._pads, layer._dilation, shape[2])
    h = naive_conv.conv2d_general(x, dw, None, *args)
    pw = layer.params["pointwise_kernel"]
    ref = naive_conv.conv2d_general(h, pw, layer.params["bias"], (1, 1), ((0, 0), (0, 0)))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    dh, dpw, db = naive_conv.conv2d_general_backward(h, pw, (1, 1), ((0, 0), (0, 0)), dout)
    rdx, rdw, _ = naive_conv.conv2d_general_backward(x, dw, layer._strides, layer._pads, dh, layer._dilation, shape[2])
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["pointwise_kernel"], dpw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["depthwise_kernel"], rdw.reshape(layer.params["depthwise_kernel"].shape),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], db, rtol=1e-10, atol=1e-12)


def test_keras_weight_names_and_layouts():
    sep = built(SeparableConv2D(8, 3, depth_multiplier=2), (6, 6, 3))
    assert {k: v.shape for k, v in sep.params.items()} == {
        "depthwise_kernel": (3, 3, 3, 2), "pointwise_kernel": (1, 1, 6, 8), "bias": (8,)}
    dw = built(DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3))
    assert {k: v.shape for k, v in dw.params.items()} == {"depthwise_kernel": (3, 3, 3, 2), "bias": (6,)}
    tr = built(Conv2DTranspose(5, (2, 3)), (4, 4, 3))
    assert {k: v.shape for k, v in tr.params.items()} == {"kernel": (2, 3, 5, 3), "bias": (5,)}
    c1 = built(Conv1D(6, 3, groups=2), (9, 4))
    assert {k: v.shape for k, v in c1.params.items()} == {"kernel": (3, 2, 6), "bias": (6,)}


# -- Conv2DTranspose ------------------------------------------------------------------------------
@pytest.mark.parametrize("size, k, s, padding, op, keras", [
    # Keras' deconv_output_length
    (7, 3, 2, "same", None, 14), (7, 3, 2, "valid", None, 15), (7, 2, 2, "valid", None, 14),
    (2, 1, 3, "valid", None, 6), (7, 3, 2, "same", 1, 14), (7, 3, 2, "valid", 1, 16), (5, 4, 2, "same", 0, 8),
    (5, 5, 1, "same", None, 5), (4, 3, 1, "valid", None, 6),
])
def test_transpose_output_sizes_are_keras(size, k, s, padding, op, keras):
    assert transpose_geometry(size, k, s, 1, padding, op)[0] == keras
    layer = Conv2DTranspose(2, k, strides=s, padding=padding, output_padding=op)
    assert layer.compute_output_shape((size, size, 3)) == (keras, keras, 2)


@pytest.mark.parametrize("config, shape", [
    ({"filters": 3, "kernel_size": 3}, (3, 4, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (3, 3, 2)),
    ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, (3, 2, 1)),
    ({"filters": 2, "kernel_size": (2, 3), "strides": (2, 3), "output_padding": (1, 2)}, (2, 3, 2)),
    ({"filters": 1, "kernel_size": 1, "strides": 3}, (2, 2, 2)),
    ({"filters": 2, "kernel_size": 2, "dilation_rate": 2, "output_padding": 1, "padding": "same"}, (3, 3, 1)),
])
def test_transpose_matches_the_scatter_loops_and_is_the_adjoint_of_conv2d(config, shape):
    layer = built(Conv2DTranspose(**config), shape)
    x, out, dout, dx = run(layer, shape)
    kernel, bias = layer.params["kernel"], layer.params.get("bias")
    (top, _), (left, _) = layer._pads
    ref = naive_conv.conv2d_transpose(x, kernel, bias, layer._strides, out.shape[1:3], ((top, 0), (left, 0)),
                                      layer._dilation)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    # <T x, g> = <x, T* g>: the input gradient is the adjoint, which is the kernel gradient's partner too
    lin = out - (0 if bias is None else bias)
    np.testing.assert_allclose(np.sum(lin * dout), np.sum(x * dx), rtol=1e-10)
    eps = 1e-6
    probe = np.random.default_rng(9).standard_normal(kernel.shape)
    saved = kernel.copy()
    kernel += eps * probe
    plus = np.sum(layer.forward(x) * dout)
    kernel[...] = saved - eps * probe
    minus = np.sum(layer.forward(x) * dout)
    kernel[...] = saved
    np.testing.assert_allclose(np.sum(layer.grads["kernel"] * probe), (plus - minus) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("config, shape", [
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 3, 2)),
    ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, (3, 3, 1)),
    ({"filters": 3, "kernel_size": (3, 2), "strides": (2, 3), "padding": "same", "output_padding": (1, 2)}, (3, 2, 2)),
    ({"filters": 2, "kernel_size": 5, "strides": 3, "padding": "same", "output_padding": 2}, (2, 3, 1)),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "valid", "output_padding": 1}, (3, 3, 2)),
    ({"filters": 1, "kernel_size": 2, "strides": 3}, (2, 2, 2)),
])
def test_transpose_is_the_adjoint_of_the_keras_convolution_on_its_output_size(config, shape):
    # TensorFlow defines conv2d_transpose as the gradient of conv2d with the same padding mode, on the output size
    layer = built(Conv2DTranspose(**{**config, "use_bias": False}), shape)
    out_shape = layer.output_shape
    conv = built(Conv2D(shape[2], config["kernel_size"], strides=config["strides"],
                        padding=config.get("padding", "valid"),
                        use_bias=False), out_shape)
    assert conv.output_shape == shape
    conv.params["kernel"][...] = layer.params["kernel"]
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2,) + shape), rng.standard_normal((2,) + out_shape)
    np.testing.assert_allclose(np.sum(layer.forward(x) * y), np.sum(x * conv.forward(y)), rtol=1e-10)


# -- Conv1D ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, shape, pads", [
    ({"filters": 3, "kernel_size": 3}, (8, 2), (0, 0)),
    ({"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (7, 2), (4, 0)),
    ({"filters": 4, "kernel_size": 2, "strides": 2, "padding": "same", "groups": 2}, (7, 4), (0, 1)),
    ({"filters": 2, "kernel_size": 2, "padding": [1, 2]}, (4, 1), (1, 2)),
])
def test_conv1d_is_conv2d_on_a_row(config, shape, pads):
    layer = built(Conv1D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    assert out.shape == (2,) + layer.compute_output_shape(shape)
    if config.get("padding") == "causal":  # output t depends on inputs up to t only
        x2 = x.copy()
        x2[:, 4:] += 1.0
        np.testing.assert_allclose(layer.forward(x2)[:, :4], out[:, :4], rtol=1e-12)
        layer.forward(x, training=True)
        layer.backward(dout)
    kernel = layer.params["kernel"][None]
    args = ((1, layer.strides), ((0, 0), pads), (1, layer.dilation_rate), layer.groups)
    ref = naive_conv.conv2d_general(x[:, None], kernel, layer.params.get("bias"), *args)[:, 0]
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    rdx, rdk, _ = naive_conv.conv2d_general_backward(x[:, None], kernel, args[0], args[1], dout[:, None], args[2],
                                                     args[3])
    np.testing.assert_allclose(dx, rdx[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["kernel"], rdk[0], rtol=1e-10, atol=1e-12)


# -- against PyTorch ------------------------------------------------------------------------------
def _torch_check(torch, out, tout, tin, dx, dout_t, grads):
    """Backpropagates ``dout_t`` through torch's output and compares every pair (ours, torch tensor)."""
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    tout.backward(dout_t)
    np.testing.assert_allclose(dx, tin.grad.numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in grads:
        np.testing.assert_allclose(ours, theirs(), rtol=1e-10, atol=1e-10)


def _nchw(torch, a, grad=True):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), requires_grad=grad)


def _torch_pad(F, t, pads):
    (top, bottom), (left, right) = pads
    return F.pad(t, (left, right, top, bottom))


@pytest.mark.parametrize("config, shape", [
    ({"filters": 4, "kernel_size": 3, "dilation_rate": 2, "strides": 2, "padding": "same"}, (9, 8, 2)),
    ({"filters": 6, "kernel_size": (3, 2), "groups": 3, "dilation_rate": (1, 2)}, (6, 7, 3)),
])
def test_conv2d_dilation_and_groups_agree_with_pytorch(config, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = built(Conv2D(**config), shape)
    x, out, dout, dx = run(layer, shape)
    tx = _nchw(torch, x)
    tk = torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    ty = F.conv2d(_torch_pad(F, tx, layer._pads), tk, tb, stride=layer._strides, dilation=layer._dilation,
                  groups=layer.groups)
    _torch_check(torch, out, ty.permute(0, 2, 3, 1), tx, dx.transpose(0, 3, 1, 2), torch.tensor(dout),
                 [(layer.grads["kernel"], lambda: tk.grad.numpy().transpose(2, 3, 1, 0)),
                  (layer.grads["bias"], lambda: tb.grad.numpy())])


@pytest.mark.parametrize("strides", [(2, 1), (1, 1)])   # im2col's depthwise step, and nnscratch.ops.depthwise
def test_depthwise_and_separable_agree_with_pytorch(strides):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape = (7, 6, 3)
    layer = built(SeparableConv2D(5, 3, depth_multiplier=2, strides=strides, padding="same", dilation_rate=(1, 2)),
                  shape)
    x, out, dout, dx = run(layer, shape)
    dk = layer.params["depthwise_kernel"]
    kh, kw, c, m = dk.shape
    tx = _nchw(torch, x)
    tdk = torch.tensor(dk.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None].copy(), requires_grad=True)
    tpk = torch.tensor(layer.params["pointwise_kernel"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    h = F.conv2d(_torch_pad(F, tx, layer._pads), tdk, None, stride=layer._strides, dilation=layer._dilation, groups=c)
    ty = F.conv2d(h, tpk, tb)
    _torch_check(torch, out, ty.permute(0, 2, 3, 1), tx, dx.transpose(0, 3, 1, 2), torch.tensor(dout),
                 [(layer.grads["depthwise_kernel"],
                   lambda: tdk.grad.numpy()[:, 0].transpose(1, 2, 0).reshape(dk.shape)),
                  (layer.grads["pointwise_kernel"], lambda: tpk.grad.numpy().transpose(2, 3, 1, 0)),
                  (layer.grads["bias"], lambda: tb.grad.numpy())])


@pytest.mark.parametrize("config, shape", [
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 3, 2)),
    ({"filters": 2, "kernel_size": (3, 2), "strides": (2, 3), "output_padding": (1, 2), "dilation_rate": 1}, (3, 2, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": 1, "dilation_rate": 2, "output_padding": 1}, (3, 4, 1)),
    ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1}, (3, 3, 2)),
])
def test_transpose_agrees_with_pytorch(config, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = built(Conv2DTranspose(**config), shape)
    x, out, dout, dx = run(layer, shape)
    tx = _nchw(torch, x)
    tk = torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1).copy(), requires_grad=True)   # (c_in, F, kh, kw)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    full = F.conv_transpose2d(tx, tk, tb, stride=layer._strides, dilation=layer._dilation)     # the whole scatter
    (top, _), (left, _) = layer._pads
    ho, wo = out.shape[1:3]
    extra = (max(0, left + wo - full.shape[3]), max(0, top + ho - full.shape[2]))
    if any(extra):  # output padding beyond the scatter holds only the bias
        full = F.pad(full - tb[None, :, None, None], (0, extra[0], 0, extra[1])) + tb[None, :, None, None]
    # Keras (TensorFlow, JAX) keeps the scatter from `top` = TensorFlow's 'same' split; PyTorch's symmetric
    # `padding` argument would shift a k=3, s=2 'same' output by one pixel (Keras 3 warns about it)
    ty = full[:, :, top:top + ho, left:left + wo]
    _torch_check(torch, out, ty.permute(0, 2, 3, 1), tx, dx.transpose(0, 3, 1, 2), torch.tensor(dout),
                 [(layer.grads["kernel"], lambda: tk.grad.numpy().transpose(2, 3, 1, 0)),
                  (layer.grads["bias"], lambda: tb.grad.numpy())])


def test_conv1d_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape = (11, 4)
    layer = built(Conv1D(6, 3, strides=2, padding="causal", dilation_rate=2, groups=2), shape)
    x, out, dout, dx = run(layer, shape)
    tx = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
    tk = torch.tensor(layer.params["kernel"].transpose(2, 1, 0).copy(), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    ty = F.conv1d(F.pad(tx, (4, 0)), tk, tb, stride=2, dilation=2, groups=2)
    _torch_check(torch, out, ty.permute(0, 2, 1), tx, dx.transpose(0, 2, 1), torch.tensor(dout),
                 [(layer.grads["kernel"], lambda: tk.grad.numpy().transpose(2, 1, 0)),
                  (layer.grads["bias"], lambda: tb.grad.numpy())])


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: Conv2D(2, 3, dilation_rate=0), r"dilation_rate\[0\] must be a positive integer, got 0"),
    (lambda: Conv2D(2, 3, dilation_rate=(1, -2)), r"dilation_rate\[1\] must be a positive integer, got -2"),
    (lambda: Conv2D(3, 3, groups=2), r"groups=2 must divide filters=3"),
    (lambda: Conv2D(4, 3, groups=2, connections=[[1, 1, 1, 1]] * 4), r"either connections .* or groups"),
    (lambda: Conv2D(2, 3, activation="rleu"), r"activation: unknown activation 'rleu'; known: .*relu"),
    (lambda: Conv2D(2, 3, kernel_regularizer="l3"), r"kernel_regularizer: unknown regularizer 'l3'"),
    (lambda: DepthwiseConv2D(3, depth_multiplier=0), r"depth_multiplier must be a positive integer, got 0"),
    (lambda: SeparableConv2D(4, 3, pointwise_constraint="max"), r"pointwise_constraint: unknown constraint 'max'"),
    (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=-1), r"output_padding must be non-negative, got -1"),
    (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=(0, -1)), r"output_padding must be non-negative"),
    (lambda: Conv2DTranspose(2, 3, strides=2, output_padding=2),
     r"output_padding 2 along the height must be smaller than the stride \(2\) or the dilation \(1\)"),
    (lambda: Conv2DTranspose(2, 3, padding="full"), r"padding must be one of 'valid', 'same'"),
    (lambda: Conv1D(2, 3, padding="causl"), r"padding must be one of 'valid', 'same', 'causal'"),
    (lambda: Conv1D(3, 3, groups=2), r"groups=2 must divide filters=3"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("layer, shape, message", [
    (Conv2D(2, 3, dilation_rate=3), (6, 6, 1),
     r"dilated kernel \(dilation_rate=3\) height 7 is larger than the padded input height 6"),
    (Conv2D(4, 3, groups=2), (6, 6, 3), r"groups=2, which must divide the input's 3 channels"),
    (Conv1D(2, 3), (6, 6, 1), r"expects sequences of shape \(steps, channels\)"),
    (DepthwiseConv2D(3), (6, 6), r"expects images of shape \(height, width, channels\)"),
])
def test_bad_input_shapes_are_named(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.initialize(shape)


# -- found by mutation testing ---------------------------------------------------------------------
# multiply-adds per sample (the summary's flops column): every kernel tap of every output, plus one per output for
# the bias (LeCun's "connections"); shapes where height, width and channels all differ, so a swapped axis shows
@pytest.mark.parametrize("layer, shape, macs", [
    (DepthwiseConv2D((2, 3), strides=(2, 1), depth_multiplier=2), (7, 5, 3), 3 * 3 * 6 * (2 * 3 + 1)),
    (DepthwiseConv2D((2, 3), depth_multiplier=3, use_bias=False), (4, 6, 2), 3 * 4 * 6 * (2 * 3)),
    (SeparableConv2D(5, (3, 2), depth_multiplier=2, padding="same"), (4, 6, 3),
     4 * 6 * (6 * 3 * 2 + 6 * 5 + 5)),
    (SeparableConv2D(4, (2, 3), strides=(1, 2), use_bias=False), (5, 7, 2), 4 * 3 * (2 * 2 * 3 + 2 * 4)),
    # a transposed convolution scatters every input value through the whole kernel, then adds the bias per output
    (Conv2DTranspose(4, (2, 3), strides=(2, 1)), (3, 5, 2), 3 * 5 * 2 * (2 * 3) * 4 + 6 * 7 * 4),
    (Conv2DTranspose(3, (3, 2), strides=(1, 3), use_bias=False), (2, 4, 5), 2 * 4 * 5 * (3 * 2) * 3),
    (Conv1D(6, 3, strides=2), (9, 4), 4 * 6 * (3 * 4 + 1)),
    (Conv1D(6, 2, groups=3, use_bias=False), (5, 9), 4 * 6 * (2 * 3)),
])
def test_count_macs_is_each_outputs_kernel_taps_plus_its_bias(layer, shape, macs):
    layer.initialize(shape)
    assert layer.count_macs() == macs and type(layer.count_macs()) is int   # the summary prints it with commas


_INITIALIZERS = "glorot_normal, glorot_uniform, he_normal, he_uniform, lecun1998, lecun_normal, lecun_uniform, ones, zeros"
_PADDING_2D = ("padding must be one of 'valid', 'same', 'full', a non-negative int, a pair (ph, pw), "
               "((top, bottom), (left, right)); got ")
_PADDING_1D = "padding must be one of 'valid', 'same', 'causal', 'full', a non-negative int or a pair (left, right); got "


def _refusals():
    """(layer class, its required arguments, the bad argument, the whole message) for every layer of the module."""
    cases = []
    for cls, required in ((DepthwiseConv2D, {"kernel_size": 3}), (SeparableConv2D, {"filters": 2, "kernel_size": 3}),
                          (Conv2DTranspose, {"filters": 2, "kernel_size": 3})):
        cases += [
            (cls, {**required, "kernel_size": (3, 0)}, "kernel_size[1] must be a positive integer, got 0"),
            (cls, {**required, "kernel_size": "a"}, "kernel_size must be an integer or a pair of integers, got 'a'"),
            (cls, {**required, "strides": (0, 1)}, "strides[0] must be a positive integer, got 0"),
            (cls, {**required, "dilation_rate": (1, -1)}, "dilation_rate[1] must be a positive integer, got -1"),
            (cls, {**required, "bias_initializer": "zero"},
             f"bias_initializer: unknown initializer 'zero'; known: {_INITIALIZERS}"),
        ]
    for cls in (SeparableConv2D, Conv2DTranspose):
        cases.append((cls, {"filters": 0, "kernel_size": 3}, "filters must be a positive integer, got 0"))
    for cls, required in ((DepthwiseConv2D, {"kernel_size": 3}), (SeparableConv2D, {"filters": 2, "kernel_size": 3})):
        cases += [
            (cls, {**required, "padding": "causal"}, _PADDING_2D + "'causal'"),
            (cls, {**required, "depth_multiplier": -1}, "depth_multiplier must be a positive integer, got -1"),
            (cls, {**required, "depthwise_initializer": "onez"},
             f"depthwise_initializer: unknown initializer 'onez'; known: {_INITIALIZERS}"),
        ]
    cases += [
        (SeparableConv2D, {"filters": 2, "kernel_size": 3, "pointwise_initializer": "one"},
         f"pointwise_initializer: unknown initializer 'one'; known: {_INITIALIZERS}"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "padding": 1}, "padding must be one of 'valid', 'same'; got 1"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "kernel_initializer": "glorot"},
         f"kernel_initializer: unknown initializer 'glorot'; known: {_INITIALIZERS}"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": -1},
         "output_padding must be non-negative, got -1"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": [0, -1]},
         "output_padding must be non-negative, got (0, -1)"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": True},
         "output_padding must be an integer or a pair of integers, got True"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": (3, 2), "output_padding": (2, 2)},
         "output_padding 2 along the width must be smaller than the stride (2) or the dilation (1) along it; "
         "got output_padding=(2, 2)"),
        (Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": (3, 1), "output_padding": 3},
         "output_padding 3 along the height must be smaller than the stride (2) or the dilation (3) along it; "
         "got output_padding=3"),
        (Conv1D, {"filters": 0, "kernel_size": 3}, "filters must be a positive integer, got 0"),
        (Conv1D, {"filters": 2, "kernel_size": 0}, "kernel_size must be a positive integer, got 0"),
        (Conv1D, {"filters": 2, "kernel_size": (3, 3)}, "kernel_size must be a positive integer, got (3, 3)"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "strides": 0}, "strides must be a positive integer, got 0"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "dilation_rate": 0}, "dilation_rate must be a positive integer, got 0"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "groups": 0}, "groups must be a positive integer, got 0"),
        (Conv1D, {"filters": 3, "kernel_size": 3, "groups": 2}, "groups=2 must divide filters=3"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "kernel_initializer": "glorot"},
         f"kernel_initializer: unknown initializer 'glorot'; known: {_INITIALIZERS}"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "bias_initializer": "zero"},
         f"bias_initializer: unknown initializer 'zero'; known: {_INITIALIZERS}"),
    ]
    cases += [(Conv1D, {"filters": 2, "kernel_size": 3, "padding": p}, _PADDING_1D + repr(p))
              for p in ("causl", -1, True, (1,), (1, -1), (1, True), [2, 1.0], 1.0)]
    return cases


@pytest.mark.parametrize("cls, config, message", _refusals())
def test_each_bad_argument_is_refused_word_for_word(cls, config, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls(**config)


@pytest.mark.parametrize("layer, shape", [
    (DepthwiseConv2D(2, depthwise_initializer="ones", bias_initializer="ones"), (3, 3, 2)),
    (SeparableConv2D(3, 2, depthwise_initializer="ones", pointwise_initializer="ones", bias_initializer="ones"),
     (3, 3, 2)),
    (Conv2DTranspose(3, 2, kernel_initializer="ones", bias_initializer="ones"), (3, 3, 2)),
    (Conv1D(3, 2, kernel_initializer="ones", bias_initializer="ones"), (4, 2)),
])
def test_the_initializers_given_are_the_ones_used(layer, shape):
    layer.initialize(shape, "float64", np.random.default_rng(0))
    assert set(layer.params) >= {"bias"} and len(layer.params) >= 2
    for name, weight in layer.params.items():
        np.testing.assert_array_equal(weight, np.ones_like(weight), err_msg=name)


@pytest.mark.parametrize("cls, required, shape, weights", [
    (DepthwiseConv2D, {"kernel_size": 2}, (3, 3, 2), ("depthwise", "bias")),
    (SeparableConv2D, {"filters": 3, "kernel_size": 2}, (3, 3, 2), ("depthwise", "pointwise", "bias")),
    (Conv2DTranspose, {"filters": 3, "kernel_size": 2}, (3, 3, 2), ("kernel", "bias")),
    (Conv1D, {"filters": 3, "kernel_size": 2}, (4, 2), ("kernel", "bias")),
])
def test_every_weights_regularizer_and_constraint_is_kept_and_configured(cls, required, shape, weights):
    options = {f"{w}_{kind}": spec for w in weights for kind, spec in (("regularizer", "l2"), ("constraint", "non_neg"))}
    layer = cls(**required, **options)
    layer.initialize(shape)
    names = {w if w in ("kernel", "bias") else f"{w}_kernel" for w in weights}
    assert set(layer.weight_regularizers) == names and set(layer.weight_constraints) == names
    assert {k: layer.get_config()[k] for k in options} == options


def test_depthwise_and_pointwise_regularizers_and_constraints_reach_their_kernels():
    # Keras' depthwise_regularizer / pointwise_constraint act on depthwise_kernel / pointwise_kernel; they were
    # once filed under weights named "depthwise" and "pointwise", which no layer has, and silently dropped
    import nnscratch
    from nnscratch.engine.penalties import total_penalty
    from nnscratch.layers import Flatten
    model = nnscratch.Model([SeparableConv2D(2, 2, depthwise_regularizer={"class_name": "L2", "config": {"l2": 0.5}},
                                             pointwise_regularizer={"class_name": "L1", "config": {"l1": 0.25}},
                                             pointwise_constraint="non_neg", input_shape=(3, 3, 2)),
                             DepthwiseConv2D(2, depthwise_regularizer={"class_name": "L2", "config": {"l2": 2.0}},
                                             depthwise_constraint="non_neg"), Flatten()], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    sep, dw = model.layers[0], model.layers[1]
    expected = (0.5 * np.sum(sep.params["depthwise_kernel"] ** 2) + 0.25 * np.sum(np.abs(sep.params["pointwise_kernel"]))
                + 2.0 * np.sum(dw.params["depthwise_kernel"] ** 2))
    assert total_penalty(model) == pytest.approx(expected, rel=1e-6)
    assert (sep.params["pointwise_kernel"] < 0).any() and (dw.params["depthwise_kernel"] < 0).any()
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((4, 2)), epochs=1, batch_size=4, verbose=0)
    assert (sep.params["pointwise_kernel"] >= 0).all() and (dw.params["depthwise_kernel"] >= 0).all()
    assert (sep.params["depthwise_kernel"] < 0).any()   # no constraint asked for there


def _uniform_limit(name, shape):
    """Keras' bound of ``glorot_uniform`` or ``he_uniform`` for a kernel of ``shape`` (fans from the last two axes
    times the receptive field)."""
    receptive = int(np.prod(shape[:-2]))
    fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    return np.sqrt(6.0 / (fan_in + fan_out)) if name == "glorot_uniform" else np.sqrt(6.0 / fan_in)


@pytest.mark.parametrize("make, shape, expected", [
    (lambda a: DepthwiseConv2D(3, depth_multiplier=4, activation=a), (6, 6, 16), {"depthwise_kernel": None}),
    # the depthwise step is linear: only the pointwise kernel follows the activation
    (lambda a: SeparableConv2D(16, 3, depth_multiplier=4, activation=a), (6, 6, 16),
     {"depthwise_kernel": "glorot_uniform", "pointwise_kernel": None}),
    (lambda a: Conv2DTranspose(16, 3, activation=a), (3, 3, 16), {"kernel": None}),
    (lambda a: Conv1D(16, 5, groups=2, activation=a), (8, 32), {"kernel": None}),
])
@pytest.mark.parametrize("activation, default", [(None, "glorot_uniform"), ("relu", "he_uniform")])
def test_default_kernels_are_glorot_uniform_or_he_uniform_before_a_relu_and_biases_zero(make, shape, expected,
                                                                                       activation, default):
    layer = make(activation)
    layer.initialize(shape, "float64", np.random.default_rng(0))
    for name, initializer in expected.items():
        kernel = layer.params[name]
        limit = _uniform_limit(initializer or default, kernel.shape)
        assert kernel.size >= 500 and 0.95 * limit < np.abs(kernel).max() <= limit, name
    np.testing.assert_array_equal(layer.params["bias"], np.zeros_like(layer.params["bias"]))


_IMAGES = ("expects images of shape (height, width, channels), got input shape {}; add Reshape((height, width, "
           "channels)) before it, e.g. Reshape((28, 28, 1))")
_TOO_LONG = ("the kernel {0} {1} is larger than the padded input {0} {2} (input {2}, padding 0+0); use a smaller "
             "kernel, padding='same', or a larger input")


@pytest.mark.parametrize("layer, shape, message", [
    (Conv1D(2, 3), (6, 6, 1), "Conv1D expects sequences of shape (steps, channels), got input shape (6, 6, 1); "
                              "add Reshape((steps, channels)) before it"),
    (Conv1D(4, 3, groups=2, name="seq"), (6, 3), "seq (Conv1D) has groups=2, which must divide the input's 3 channels"),
    (Conv1D(2, 4), (3, 2), _TOO_LONG.format("length", 4, 3)),      # a sequence's axis is its length
    (Conv1D(2, 3, dilation_rate=2), (4, 2), _TOO_LONG.format("length", 5, 4)),
    (DepthwiseConv2D(3), (6, 6), "DepthwiseConv2D " + _IMAGES.format((6, 6))),
    (SeparableConv2D(2, 3), (4, 4), "SeparableConv2D " + _IMAGES.format((4, 4))),
    (Conv2DTranspose(2, 3), (4, 4), "Conv2DTranspose " + _IMAGES.format((4, 4))),
    (DepthwiseConv2D((2, 4)), (5, 3, 1), _TOO_LONG.format("width", 4, 3)),
    (SeparableConv2D(2, (4, 2), dilation_rate=(2, 1)), (5, 5, 1), _TOO_LONG.format("height", 7, 5)),
])
def test_each_bad_input_shape_is_refused_word_for_word(layer, shape, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        layer.initialize(shape)


@pytest.mark.parametrize("make, shape", [
    (lambda: DepthwiseConv2D(2, depth_multiplier=2), (4, 5, 2)),
    (lambda: SeparableConv2D(3, 2), (4, 5, 2)),
    (lambda: Conv2DTranspose(3, 2, strides=2), (3, 2, 2)),
    (lambda: Conv1D(4, 2), (5, 2)),
    (lambda: Conv1D(4, 2, groups=2, use_bias=False), (5, 2)),
])
def test_a_first_layer_skips_the_input_gradient_and_keeps_its_weight_gradients(make, shape):
    grads = []
    for needed in (True, False):
        layer = built(make(), shape, seed=1)
        layer.input_grad_needed = needed
        x, out, dout, dx = run(layer, shape)
        assert (dx is None) == (not needed)
        grads.append({k: g.copy() for k, g in layer.grads.items()})
    for key in grads[0]:
        np.testing.assert_array_equal(grads[0][key], grads[1][key], err_msg=key)



@pytest.mark.parametrize("config, length", [
    ({"kernel_size": (3,), "strides": (2,), "dilation_rate": (2,)}, (9 - 5) // 2 + 1),   # Keras' one-element tuples
    ({"kernel_size": 3, "padding": "full"}, 9 + 3 - 1),
    ({"kernel_size": 3, "padding": 2}, 9 + 4 - 2),
    ({"kernel_size": 3, "padding": np.int64(0)}, 9 - 2),
    ({"kernel_size": 3, "padding": (0, 2)}, 9 + 2 - 2),
    ({"kernel_size": 3, "padding": [np.int64(1), 0]}, 9 + 1 - 2),
])
def test_conv1d_accepts_keras_argument_forms_and_pads_as_asked(config, length):
    layer = built(Conv1D(2, **config), (9, 1))
    assert layer.output_shape == (length, 2)
    x = np.random.default_rng(0).standard_normal((2, 9, 1))
    pads = config.get("padding", 0)
    pads = {"full": (2, 2)}.get(pads, pads) if isinstance(pads, str) else pads
    left, right = (int(pads), int(pads)) if np.ndim(pads) == 0 else map(int, pads)
    k, s, d = (_one(config[key]) if key in config else 1 for key in ("kernel_size", "strides", "dilation_rate"))
    ref = naive_conv.conv2d_general(x[:, None], layer.params["kernel"][None], layer.params["bias"], (1, s),
                                    ((0, 0), (left, right)), (1, d))[:, 0]
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-10, atol=1e-12)


def _one(value):
    return value[0] if isinstance(value, tuple) else value


@pytest.mark.parametrize("cls, required, defaults", [
    (DepthwiseConv2D, {"kernel_size": 3},
     {"strides": 1, "padding": "valid", "depth_multiplier": 1, "dilation_rate": 1, "activation": None, "use_bias": True,
      "depthwise_initializer": None, "bias_initializer": "zeros", "depthwise_regularizer": None,
      "bias_regularizer": None, "depthwise_constraint": None, "bias_constraint": None}),
    (SeparableConv2D, {"filters": 2, "kernel_size": 3},
     {"strides": 1, "padding": "valid", "dilation_rate": 1, "depth_multiplier": 1, "activation": None, "use_bias": True,
      "depthwise_initializer": None, "pointwise_initializer": None, "bias_initializer": "zeros",
      "depthwise_regularizer": None, "pointwise_regularizer": None, "bias_regularizer": None,
      "depthwise_constraint": None, "pointwise_constraint": None, "bias_constraint": None}),
    (Conv2DTranspose, {"filters": 2, "kernel_size": 3},
     {"strides": 1, "padding": "valid", "output_padding": None, "dilation_rate": 1, "activation": None,
      "use_bias": True, "kernel_initializer": None, "bias_initializer": "zeros", "kernel_regularizer": None,
      "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}),
    (Conv1D, {"filters": 2, "kernel_size": 3},
     {"strides": 1, "padding": "valid", "dilation_rate": 1, "groups": 1, "activation": None, "use_bias": True,
      "kernel_initializer": None, "bias_initializer": "zeros", "kernel_regularizer": None, "bias_regularizer": None,
      "kernel_constraint": None, "bias_constraint": None}),
])
def test_the_defaults_are_keras(cls, required, defaults):
    config = cls(**required).get_config()
    assert {k: config[k] for k in defaults} == defaults
    assert set(config) == set(defaults) | set(required) | {"name", "input_shape"}
    # and they act: a 3x3 kernel over 5x5 (or 5 steps), one output channel per input channel and multiplier
    layer = built(cls(**required), (5, 5, 2) if cls is not Conv1D else (5, 2))
    assert layer.output_shape == {DepthwiseConv2D: (3, 3, 2), SeparableConv2D: (3, 3, 2), Conv2DTranspose: (7, 7, 2),
                                  Conv1D: (3, 2)}[cls]


@pytest.mark.parametrize("output_padding, shape", [((0, 1), (7, 8, 2)), (0, (7, 7, 2)), ([1, 0], (8, 7, 2)),
                                                    ((np.int64(0), np.int64(1)), (7, 8, 2))])
def test_transpose_takes_an_output_padding_of_zero_on_either_axis(output_padding, shape):
    # (size - 1) * stride + kernel + output_padding, Keras' deconv_output_length for 'valid'
    layer = Conv2DTranspose(2, 3, strides=2, output_padding=output_padding)
    assert layer.compute_output_shape((3, 3, 1)) == shape


@pytest.mark.parametrize("make, shape", [
    (lambda: DepthwiseConv2D(2, depth_multiplier=2), (4, 5, 2)),
    (lambda: SeparableConv2D(3, 2), (4, 5, 2)),
    (lambda: Conv2DTranspose(3, 2, strides=2), (3, 2, 2)),
    (lambda: Conv1D(4, 2), (5, 2)),
    (lambda: Conv1D(4, 2, groups=2), (5, 2)),
])
@pytest.mark.parametrize("layer_dtype, data_dtype", [("float32", "float64"), ("float64", "float32")])
def test_data_of_another_dtype_is_computed_in_the_layers_dtype(make, shape, layer_dtype, data_dtype):
    layer = built(make(), shape, dtype=layer_dtype)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2,) + shape).astype(data_dtype)
    y = layer.forward(x, training=True)
    dout = rng.standard_normal(y.shape).astype(data_dtype)
    dx = layer.backward(dout)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    same = layer.forward(x.astype(layer_dtype), training=True)
    same_dx = layer.backward(dout.astype(layer_dtype))
    assert y.dtype == dx.dtype == np.dtype(layer_dtype)
    np.testing.assert_array_equal(y, same)
    np.testing.assert_array_equal(dx, same_dx)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(grads[k], g, err_msg=k)

"""The convolution layers call: which kernel runs for which shape, and that the choice never shows in the results."""

import numpy as np
import pytest

from allocations import bytes_allocated_by
import naive_conv
from nnscratch.layers import Conv2D
from nnscratch.ops import convolution, im2col
from nnscratch.ops.layout import from_chwn, to_chwn

SAME = ((1, 1), (1, 1))


@pytest.mark.parametrize("input_shape, kernel_shape, strides, pads, dilation, expected", [
    ((64, 16, 16, 32), (3, 3, 32, 64), (1, 1), SAME, (1, 1), True),      # vgg's third convolution
    ((64, 8, 8, 64), (3, 3, 64, 64), (1, 1), SAME, (1, 1), True),        # resnet20's last stage
    ((64, 32, 32, 32), (3, 3, 32, 32), (1, 1), SAME, (1, 1), True),      # vgg's second
    ((16, 128, 128, 16), (3, 3, 16, 32), (1, 1), SAME, (1, 1), True),
    ((2, 512, 512, 16), (3, 3, 16, 16), (1, 1), SAME, (1, 1), True),     # padded 514x514, the largest measured
    ((2, 513, 512, 16), (3, 3, 16, 16), (1, 1), SAME, (1, 1), False),    # one row more: not measured, im2col
    ((64, 32, 32, 16), (3, 3, 16, 16), (1, 1), SAME, (1, 1), True),      # resnet20's first stage: 16 channels
    ((64, 16, 16, 8), (3, 3, 8, 32), (1, 1), SAME, (1, 1), False),       # too few channels for a 16x16 image
    ((64, 28, 28, 8), (3, 3, 8, 8), (1, 1), SAME, (1, 1), True),         # 8 channels, padded 30x30: enough
    ((64, 27, 28, 12), (3, 3, 12, 8), (1, 1), SAME, (1, 1), False),      # padded 29x30: one row short
    ((64, 64, 64, 7), (3, 3, 7, 16), (1, 1), SAME, (1, 1), False),       # 7 channels: im2col at any size
    ((64, 64, 64, 4), (3, 3, 4, 16), (1, 1), SAME, (1, 1), False),
    ((64, 32, 32, 3), (3, 3, 3, 16), (1, 1), SAME, (1, 1), False),       # a first layer: 3 channels
    ((64, 16, 16, 32), (3, 3, 32, 32), (2, 2), SAME, (1, 1), False),     # strided
    ((64, 16, 16, 32), (3, 3, 32, 32), (1, 1), SAME, (2, 2), False),     # dilated
    ((64, 16, 16, 32), (5, 5, 32, 32), (1, 1), SAME, (1, 1), False),     # 5x5
])
def test_rule(input_shape, kernel_shape, strides, pads, dilation, expected):
    assert convolution.use_winograd(input_shape, kernel_shape, strides, pads, dilation) is expected


@pytest.mark.parametrize("x_shape, kernel_hw, filters, pads, method", [
    ((2, 6, 5, 32), (3, 3), 4, SAME, "winograd"),
    ((2, 6, 5, 3), (3, 3), 4, SAME, "im2col"),
    ((8, 28, 28, 1), (5, 5), 6, ((2, 2), (2, 2)), "column_blocks"),   # LeNet-5's C1 on 8 images: 1.3 MB of columns
])
def test_every_kernel_gives_im2col_results(x_shape, kernel_hw, filters, pads, method):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    kernel, bias = rng.standard_normal(kernel_hw + (x_shape[3], filters)), rng.standard_normal(filters)
    out, saved = convolution.conv2d_forward(x, kernel, bias, (1, 1), pads, {})
    assert saved[0] == method
    dout = rng.standard_normal(out.shape)
    got = (out,) + convolution.conv2d_backward(dout, saved, kernel, x.shape, (1, 1), pads, workspace={})
    ref_out, cols = im2col.conv2d_forward(x, kernel, bias, (1, 1), pads)
    ref = (ref_out,) + im2col.conv2d_backward(dout, cols, kernel, x.shape, (1, 1), pads)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("conv, shape, batch, method", [
    (dict(filters=5, kernel_size=3, padding="same"), (6, 5, 32), 3, "winograd"),
    (dict(filters=5, kernel_size=3, padding="valid"), (7, 6, 32), 3, "winograd"),
    (dict(filters=5, kernel_size=3, padding=(2, 0)), (5, 5, 32), 3, "winograd"),
    (dict(filters=6, kernel_size=5, padding="same"), (28, 28, 1), 8, "column_blocks"),    # LeNet-5's C1
    (dict(filters=8, kernel_size=3, strides=2, padding="same"), (40, 40, 3), 16, "column_blocks"),
])
def test_conv2d_agrees_with_pytorch_whichever_kernel_runs(conv, shape, batch, method):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the convolution's values")
    F = torch.nn.functional
    layer = Conv2D(**conv)
    layer.initialize(shape, "float64", np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch,) + shape)
    out = layer.forward(x, training=True)
    assert layer._saved[0] == method
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (top, bottom), (left, right) = layer._pads
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    tk = torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    ty = F.conv2d(F.pad(tx, (left, right, top, bottom)), tk, tb, stride=layer._strides)
    ty.backward(torch.tensor(dout.transpose(0, 3, 1, 2).copy()))
    for ours, theirs in [(out, ty.detach().numpy().transpose(0, 2, 3, 1)), (dx, tx.grad.numpy().transpose(0, 2, 3, 1)),
                         (layer.grads["kernel"], tk.grad.numpy().transpose(2, 3, 1, 0)),
                         (layer.grads["bias"], tb.grad.numpy())]:
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("channels, strides", [(32, (1, 1)), (3, (1, 1)), (3, (2, 2))])  # Winograd, by rows, col2im
def test_what_a_layer_keeps_or_returns_survives_other_layers_of_its_thread(channels, strides):
    # two layers' workspaces in one thread share the temporaries (as the layers of a residual block do): the
    # second layer's forward and backward must leave the first one's saved arrays and returned gradients alone
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, channels))
    kernel, bias = rng.standard_normal((3, 3, channels, 4)), rng.standard_normal(4)
    first, second = {}, {}
    out, saved = convolution.conv2d_forward(x, kernel, bias, strides, SAME, first)
    dout = rng.standard_normal(out.shape)
    dx, dkernel, dbias = convolution.conv2d_backward(dout, saved, kernel, x.shape, strides, SAME, workspace=first)
    kept = [a.copy() for a in (out, dx, dkernel, dbias)]
    other_out, other_saved = convolution.conv2d_forward(x * 3, kernel, bias, strides, SAME, second)
    convolution.conv2d_backward(other_out, other_saved, kernel, x.shape, strides, SAME, workspace=second)
    for got, before in zip((out, dx, dkernel, dbias), kept):
        np.testing.assert_array_equal(got, before)
    again = convolution.conv2d_backward(dout, saved, kernel, x.shape, strides, SAME, workspace=first)
    for got, before in zip(again, kept[1:]):   # what forward saved is intact too
        np.testing.assert_array_equal(got, before)


# --- found by mutation testing (docs/mutation-testing.md) ---
def test_a_dilated_3x3_stride_1_convolution_with_many_channels_is_computed_dilated():
    # 16 channels, 3x3, stride 1 and a small image: everything but the dilation asks for Winograd, which cannot
    # dilate; the dilation must also reach the input gradient of the kernel that runs instead
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 16))
    kernel, bias = rng.standard_normal((3, 3, 16, 2)), rng.standard_normal(2)
    pads, dilation = ((2, 2), (2, 2)), (2, 2)
    out, saved = convolution.conv2d_forward(x, kernel, bias, (1, 1), pads, {}, dilation)
    np.testing.assert_allclose(out, naive_conv.conv2d_general(x, kernel, bias, (1, 1), pads, dilation),
                               rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    got = convolution.conv2d_backward(dout, saved, kernel, x.shape, (1, 1), pads, workspace={}, dilation=dilation)
    for g, r in zip(got, naive_conv.conv2d_general_backward(x, kernel, (1, 1), pads, dout, dilation)):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


#: what a call may allocate besides its result (a transformed or reshaped kernel, a kernel and bias gradient,
#: Python objects); the scratch arrays of the cases below are 160-560 KB
SMALL = 64 * 1024


@pytest.mark.parametrize("channels, method", [(16, "winograd"), (3, "im2col")])
def test_with_a_workspace_a_repeated_forward_and_backward_allocate_only_their_results(channels, method):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 16, 16, channels))
    kernel, bias = rng.standard_normal((3, 3, channels, 4)), rng.standard_normal(4)
    workspace = {}
    for _ in range(2):   # the first call fills the workspace (and the thread's pool of temporaries)
        (out, saved), allocated = bytes_allocated_by(
            lambda: convolution.conv2d_forward(x, kernel, bias, (1, 1), SAME, workspace))
    assert saved[0] == method
    assert allocated <= out.nbytes + SMALL
    dout = from_chwn(rng.standard_normal(to_chwn(out).shape))   # stored as the kernels keep it: no copy
    for _ in range(2):
        (dx, _, _), allocated = bytes_allocated_by(
            lambda: convolution.conv2d_backward(dout, saved, kernel, x.shape, (1, 1), SAME, workspace=workspace))
    assert allocated <= dx.nbytes + SMALL

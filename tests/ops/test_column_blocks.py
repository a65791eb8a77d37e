"""im2col in blocks of output rows: im2col's convolution and gradients in every geometry, block size and dtype."""
import numpy as np
import pytest

from allocations import bytes_allocated_by
import naive_conv
from nnscratch.ops import column_blocks, im2col
from nnscratch.ops.layout import from_chwn, to_chwn
from nnscratch.ops.workspace import SharedWorkspace


def _case(rng, shape, kernel_hw, filters, dtype=np.float64):
    c = shape[3]
    x = rng.standard_normal(shape).astype(dtype)
    kernel = (rng.standard_normal(kernel_hw + (c, filters)) / np.sqrt(kernel_hw[0] * kernel_hw[1] * c)).astype(dtype)
    return x, kernel, rng.standard_normal(filters).astype(dtype)


@pytest.mark.parametrize("shape, kernel_hw, strides, pads, dilation", [
    ((3, 9, 8, 1), (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1)),     # LeNet-5's first convolution, small
    ((2, 10, 7, 3), (3, 3), (2, 2), ((0, 1), (1, 1)), (1, 1)),    # strided: dx by col2im
    ((2, 11, 9, 2), (3, 3), (2, 1), ((1, 1), (0, 0)), (1, 1)),    # strided down the rows only: dx by rows
    ((2, 12, 12, 2), (3, 2), (1, 1), ((2, 2), (1, 0)), (2, 3)),   # dilated, asymmetric kernel and padding
    ((1, 5, 5, 4), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1)),     # a single output position
])
@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 30])      # one row per block, a few rows, all at once
@pytest.mark.parametrize("with_bias", [True, False])
def test_blocks_compute_im2col_convolution_and_gradients(shape, kernel_hw, strides, pads, dilation, block_bytes,
                                                          with_bias):
    rng = np.random.default_rng(0)
    x, kernel, bias = _case(rng, shape, kernel_hw, 3)
    bias = bias if with_bias else None
    ref_out, cols = im2col.conv2d_forward(x, kernel, bias, strides, pads, dilation=dilation)
    dout = rng.standard_normal(ref_out.shape)
    ref = (ref_out,) + im2col.conv2d_backward(dout, cols, kernel, x.shape, strides, pads, with_bias,
                                              dilation=dilation)
    out, xp = column_blocks.conv2d_forward(x, kernel, bias, strides, pads, {}, dilation, block_bytes=block_bytes)
    got = (out,) + column_blocks.conv2d_backward(dout, xp, kernel, x.shape, strides, pads, with_bias,
                                                 workspace={}, dilation=dilation, block_bytes=block_bytes)
    assert all(a.transpose(3, 1, 2, 0).flags.c_contiguous for a in got[:2])   # stored CHWN
    assert (got[3] is None) == (not with_bias)
    for g, r in zip(got, ref):
        if r is not None:
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)
    naive = naive_conv.conv2d_general(x, kernel, bias, strides, pads, dilation)
    np.testing.assert_allclose(out, naive, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32_within_its_rounding():
    rng = np.random.default_rng(1)
    x, kernel, bias = _case(rng, (4, 12, 12, 1), (5, 5), 6, np.float32)
    pads = ((2, 2), (2, 2))
    out, xp = column_blocks.conv2d_forward(x, kernel, bias, (1, 1), pads, {}, block_bytes=4000)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dkernel, dbias = column_blocks.conv2d_backward(dout, xp, kernel, x.shape, (1, 1), pads, need_dx=False,
                                                       workspace={}, block_bytes=4000)
    assert dx is None and out.dtype == dkernel.dtype == dbias.dtype == xp.dtype == np.float32
    x64, k64, b64 = (a.astype(np.float64) for a in (x, kernel, bias))
    ref_out, cols = im2col.conv2d_forward(x64, k64, b64, (1, 1), pads)
    _, ref_dk, ref_db = im2col.conv2d_backward(dout.astype(np.float64), cols, k64, x.shape, (1, 1), pads,
                                               need_dx=False)
    for g, r in [(out, ref_out), (dkernel, ref_dk), (dbias, ref_db)]:
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5 * float(np.abs(r).max()))


def test_what_forward_keeps_survives_other_layers_of_its_thread():
    # the column block is a temporary every layer of a thread shares; the padded input is the layer's own
    rng = np.random.default_rng(2)
    x, kernel, bias = _case(rng, (3, 10, 10, 2), (3, 3), 4)
    pads = ((1, 1), (1, 1))
    first, second = {}, {}
    out, xp = column_blocks.conv2d_forward(x, kernel, bias, (1, 1), pads, first, block_bytes=2000)
    dout = rng.standard_normal(out.shape)
    before = column_blocks.conv2d_backward(dout, xp, kernel, x.shape, (1, 1), pads, workspace=first, block_bytes=2000)
    before = [a.copy() for a in before]
    other, other_xp = column_blocks.conv2d_forward(x * 3, kernel, None, (1, 1), pads, second, block_bytes=2000)
    column_blocks.conv2d_backward(other, other_xp, kernel, x.shape, (1, 1), pads, False, workspace=second,
                                  block_bytes=2000)
    again = column_blocks.conv2d_backward(dout, xp, kernel, x.shape, (1, 1), pads, workspace=first, block_bytes=2000)
    for got, ref in zip(again, before):
        np.testing.assert_array_equal(got, ref)


def test_inference_keeps_nothing_of_its_own():
    x, kernel, bias = _case(np.random.default_rng(3), (2, 8, 8, 1), (5, 5), 6)
    own, pool = {}, {}
    out, _ = column_blocks.conv2d_forward(x, kernel, bias, (1, 1), ((2, 2), (2, 2)), SharedWorkspace(own, pool))
    assert own == {} and "padded_input" in pool
    np.testing.assert_allclose(out, im2col.conv2d_forward(x, kernel, bias, (1, 1), ((2, 2), (2, 2)))[0],
                               rtol=1e-12, atol=1e-12)


def test_with_a_workspace_a_repeated_step_allocates_its_results_and_no_column_matrix():
    rng = np.random.default_rng(4)
    x, kernel, bias = _case(rng, (8, 28, 28, 1), (5, 5), 6)
    pads = ((2, 2), (2, 2))
    columns = 26 * 28 * 28 * 8 * 8   # im2col's column matrix: 26 rows of 28 x 28 x 8 float64 values
    workspace = {}
    for _ in range(2):   # the first call fills the workspace and the thread's pool
        (out, xp), allocated = bytes_allocated_by(
            lambda: column_blocks.conv2d_forward(x, kernel, bias, (1, 1), pads, workspace))
    assert allocated <= out.nbytes + 64 * 1024
    assert sum(a.nbytes for a in workspace.values()) < columns / 10   # the padded input, not 26 rows per pixel
    dout = from_chwn(rng.standard_normal(to_chwn(out).shape))
    for _ in range(2):
        (dx, _, _), allocated = bytes_allocated_by(
            lambda: column_blocks.conv2d_backward(dout, xp, kernel, x.shape, (1, 1), pads, workspace=workspace))
    assert allocated <= dx.nbytes + 64 * 1024


@pytest.mark.parametrize("input_shape, kernel_shape, pads, expected", [
    ((64, 28, 28, 1), (5, 5, 1, 6), ((2, 2), (2, 2)), True),      # LeNet-5's C1 on a chunk of 64: 5.2 MB
    ((64, 14, 14, 6), (5, 5, 6, 16), ((0, 0), (0, 0)), True),     # its C3: 16 maps, 3.9 MB
    ((64, 32, 32, 3), (3, 3, 3, 16), ((1, 1), (1, 1)), True),     # ResNet-20's first convolution
    ((64, 32, 32, 3), (3, 3, 3, 32), ((1, 1), (1, 1)), False),    # VGG's: 32 maps
    ((8, 28, 28, 1), (5, 5, 1, 6), ((2, 2), (2, 2)), False),      # C1 on 8 images: 650 KB of columns
    ((64, 1, 4096, 1), (1, 9, 1, 8), ((0, 0), (4, 4)), False),    # 9.4 MB, but one output row: one block
    ((1024, 2, 28, 1), (1, 5, 1, 6), ((0, 0), (2, 2)), True),     # two output rows of 690 KB: two blocks
])
def test_rule(input_shape, kernel_shape, pads, expected):
    assert column_blocks.applies(input_shape, kernel_shape, (1, 1), pads) is expected


def test_an_empty_batch_gives_an_empty_output_and_zero_gradients():
    # applies() never sends one here (its column matrix is empty); a direct call divided by zero before
    x, kernel = np.zeros((0, 28, 28, 1), np.float32), np.ones((5, 5, 1, 6), np.float32)
    pads = ((2, 2), (2, 2))
    out, kept = column_blocks.conv2d_forward(x, kernel, np.ones(6, np.float32), (1, 1), pads, {})
    assert out.shape == (0, 28, 28, 6) and out.dtype == np.float32
    dx, dkernel, dbias = column_blocks.conv2d_backward(out, kept, kernel, x.shape, (1, 1), pads, True, True, {})
    assert dx.shape == x.shape and dkernel.shape == kernel.shape and dbias.shape == (6,)
    assert not dkernel.any() and not dbias.any() and [a.dtype for a in (dx, dkernel, dbias)] == [np.float32] * 3

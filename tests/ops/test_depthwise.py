"""Depthwise convolutions of stride 1 without a column matrix: the loops' values and gradients in every kernel shape,
padding, dilation, depth multiplier, block split, dtype and memory order; nothing kept in inference."""
import numpy as np
import pytest

import naive_conv
from nnscratch.ops import depthwise
from nnscratch.ops.layout import from_chwn, is_chwn, to_chwn
from nnscratch.ops.workspace import SharedWorkspace


def _reference(x, kernel, bias, pads, dilation, dout):
    """(out, dx, dkernel, dbias) by the loops of tests/naive_conv.py, the kernel as a grouped one."""
    kh, kw, c, m = kernel.shape
    grouped = kernel.reshape(kh, kw, 1, c * m)
    out = naive_conv.conv2d_general(x, grouped, bias, (1, 1), pads, dilation, c)
    dx, dk, db = naive_conv.conv2d_general_backward(x, grouped, (1, 1), pads, dout, dilation, c)
    return out, dx, dk.reshape(kernel.shape), db


GEOMETRIES = [  # (x shape, kernel (kh, kw, m), pads, dilation)
    ((2, 5, 6, 3), (3, 3, 1), ((1, 1), (1, 1)), (1, 1)),
    ((2, 5, 6, 2), (3, 3, 1), ((0, 0), (0, 0)), (1, 1)),
    ((1, 6, 5, 2), (3, 2, 3), ((1, 1), (0, 1)), (1, 1)),       # depth multiplier 3, uneven kernel and padding
    ((2, 7, 7, 2), (2, 3, 2), ((2, 1), (0, 3)), (2, 1)),       # dilation, more padding than the kernel's reach
    ((3, 4, 9, 1), (1, 5, 1), ((0, 0), (2, 2)), (1, 2)),       # a single kernel row
    ((2, 3, 3, 4), (3, 3, 1), ((0, 0), (0, 0)), (1, 1)),       # a single output
]


@pytest.mark.parametrize("shape, kernel_shape, pads, dilation", GEOMETRIES)
@pytest.mark.parametrize("small_blocks", [False, True])
def test_values_and_gradients_are_the_loops(shape, kernel_shape, pads, dilation, small_blocks, monkeypatch):
    if small_blocks:  # every channel and row its own block
        monkeypatch.setattr(depthwise, "VALUES_PER_BLOCK", 1)
    rng = np.random.default_rng(0)
    kh, kw, m = kernel_shape
    x = rng.standard_normal(shape)
    kernel = rng.standard_normal((kh, kw, shape[3], m))
    bias = rng.standard_normal(shape[3] * m)
    out, saved = depthwise.depthwise_forward(x, kernel, bias, pads, dilation, {})
    dout = rng.standard_normal(out.shape)
    dx, dk, db = depthwise.depthwise_backward(dout, saved, kernel, x.shape, pads, dilation, workspace={})
    ref_out, ref_dx, ref_dk, ref_db = _reference(x, kernel, bias, pads, dilation, dout)
    for got, want in ((out, ref_out), (dx, ref_dx), (dk, ref_dk), (db, ref_db)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert is_chwn(out) and is_chwn(dx)


@pytest.mark.parametrize("chwn", [False, True])
def test_float32_in_either_memory_order_stays_float32_and_close(chwn):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 9, 8, 5)).astype(np.float32)
    if chwn:
        x = from_chwn(np.ascontiguousarray(to_chwn(x)))
    kernel = rng.standard_normal((3, 3, 5, 2)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    out, saved = depthwise.depthwise_forward(x, kernel, None, pads, (1, 1), {})
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dk, db = depthwise.depthwise_backward(dout, saved, kernel, x.shape, pads, has_bias=False, workspace={})
    assert out.dtype == dx.dtype == dk.dtype == np.float32 and db is None
    ref = _reference(x.astype(np.float64), kernel.astype(np.float64), None, pads, (1, 1), dout.astype(np.float64))
    for got, want in zip((out, dx, dk), ref):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_without_dx_only_the_kernel_and_bias_gradients_come_back():
    rng = np.random.default_rng(2)
    x, kernel = rng.standard_normal((2, 4, 4, 2)), rng.standard_normal((3, 3, 2, 1))
    out, saved = depthwise.depthwise_forward(x, kernel, None, ((1, 1), (1, 1)), (1, 1), {})
    dx, dk, db = depthwise.depthwise_backward(np.ones(out.shape), saved, kernel, x.shape, ((1, 1), (1, 1)),
                                              need_dx=False, workspace={})
    assert dx is None and dk.shape == kernel.shape and db.shape == (2,)


def test_in_inference_nothing_is_kept_and_a_backward_says_so():
    rng = np.random.default_rng(3)
    x, kernel = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 1))
    pads = ((1, 1), (1, 1))
    trained, _ = depthwise.depthwise_forward(x, kernel, None, pads, (1, 1), {})
    workspace = SharedWorkspace({}, {})
    out, saved = depthwise.depthwise_forward(x, kernel, None, pads, (1, 1), workspace)
    np.testing.assert_array_equal(out, trained)
    assert saved is None and workspace.own == {}
    with pytest.raises(RuntimeError, match="keeps nothing for a backward"):
        depthwise.depthwise_backward(np.ones(out.shape), saved, kernel, x.shape, pads)


def test_a_kernel_larger_than_the_padded_input_is_refused_with_the_sizes():
    with pytest.raises(ValueError, match=r"3x3 kernel \(dilation 1x1\) needs a padded input of at least 3x3, got 2x4"):
        depthwise.depthwise_forward(np.ones((1, 2, 4, 1)), np.ones((3, 3, 1, 1)), None, ((0, 0), (0, 0)))


def test_an_empty_batch_gives_an_empty_output_and_zero_gradients():
    # a direct call divided by zero before (the block size per channel); Model.predict never passes one
    x, kernel = np.zeros((0, 8, 8, 4), np.float32), np.ones((3, 3, 4, 2), np.float32)
    pads = ((1, 1), (1, 1))
    out, saved = depthwise.depthwise_forward(x, kernel, np.ones(8, np.float32), pads, (1, 1), {})
    assert out.shape == (0, 8, 8, 8) and out.dtype == np.float32
    dx, dkernel, dbias = depthwise.depthwise_backward(out, saved, kernel, x.shape, pads, (1, 1), True, True, {})
    assert dx.shape == x.shape and dkernel.shape == kernel.shape and dbias.shape == (8,)
    assert not dkernel.any() and not dbias.any() and [a.dtype for a in (dx, dkernel, dbias)] == [np.float32] * 3

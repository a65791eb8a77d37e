"""Winograd F(4x2, 3x3): the same convolution and gradients as im2col + GEMM, in every padding, size and dtype."""
import numpy as np
import pytest

from allocations import allocated_during, bytes_allocated_by
import naive_conv
from nnscratch.ops import im2col, winograd
from nnscratch.ops.layout import is_chwn

SAME = ((1, 1), (1, 1))


def _case(rng, shape, filters, dtype=np.float64):
    n, h, w, c = shape
    x = rng.standard_normal(shape).astype(dtype)
    kernel = (rng.standard_normal((3, 3, c, filters)) / np.sqrt(9 * c)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return x, kernel, bias


def _both(x, kernel, bias, pads, dout_rng, workspace=None, need_dx=True):
    """(out, dx, dkernel, dbias) from im2col and from Winograd for the same upstream gradient."""
    ref_out, cols = im2col.conv2d_forward(x, kernel, bias, (1, 1), pads)
    dout = dout_rng.standard_normal(ref_out.shape).astype(x.dtype)
    ref = (ref_out,) + im2col.conv2d_backward(dout, cols, kernel, x.shape, (1, 1), pads, bias is not None, need_dx)
    out, saved = winograd.winograd_forward(x, kernel, bias, pads, workspace)
    got = (out,) + winograd.winograd_backward(dout, saved, kernel, x.shape, pads, bias is not None, need_dx,
                                              workspace)
    return ref, got


@pytest.mark.parametrize("shape, filters, pads", [
    ((2, 6, 5, 3), 4, SAME),                      # odd width: the tiles overhang by one column
    ((3, 7, 7, 2), 3, ((0, 0), (0, 0))),          # valid, odd output both ways
    ((2, 8, 8, 5), 6, SAME),
    ((1, 5, 6, 2), 2, ((2, 0), (1, 0))),          # one-sided padding
    ((2, 3, 3, 1), 1, ((0, 0), (0, 0))),          # a single output
    ((1, 4, 9, 3), 2, ((0, 3), (2, 2))),          # more padding than kernel overlap
])
@pytest.mark.parametrize("with_workspace", [False, True])
def test_matches_im2col_in_float64(shape, filters, pads, with_workspace):
    rng = np.random.default_rng(0)
    x, kernel, bias = _case(rng, shape, filters)
    ref, got = _both(x, kernel, bias, pads, rng, {} if with_workspace else None)
    for name, r, g in zip(("out", "dx", "dkernel", "dbias"), ref, got):
        assert g.shape == r.shape and g.dtype == np.float64, name
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=name)


def test_matches_the_loop_reference():
    rng = np.random.default_rng(1)
    x, kernel, bias = _case(rng, (2, 5, 4, 3), 2)
    out, saved = winograd.winograd_forward(x, kernel, bias, SAME)
    np.testing.assert_allclose(out, naive_conv.conv2d(x, kernel, bias, (1, 1), SAME), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    got = winograd.winograd_backward(dout, saved, kernel, x.shape, SAME)
    for g, r in zip(got, naive_conv.conv2d_backward(x, kernel, (1, 1), SAME, dout)):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


def test_outputs_and_gradients_are_stored_batch_innermost_and_new():
    rng = np.random.default_rng(2)
    x, kernel, bias = _case(rng, (3, 6, 6, 4), 5)
    ws = {}
    out, saved = winograd.winograd_forward(x, kernel, bias, SAME, ws)
    dx, _, _ = winograd.winograd_backward(np.ones_like(out), saved, kernel, x.shape, SAME, workspace=ws)
    assert is_chwn(out) and is_chwn(dx)
    assert not any(np.shares_memory(out, a) or np.shares_memory(dx, a) for a in ws.values()
                   if isinstance(a, np.ndarray))


def test_without_bias_or_dx():
    rng = np.random.default_rng(3)
    x, kernel, _ = _case(rng, (2, 6, 7, 3), 2)
    ref, got = _both(x, kernel, None, SAME, rng, need_dx=False)
    assert got[1] is None and got[3] is None
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-12)


def test_workspace_serves_chunks_of_two_sizes_in_turn():
    """A batch's last, shorter chunk shares the workspace with the full ones; results must not leak across."""
    rng = np.random.default_rng(4)
    ws = {}
    for n in (4, 3, 4, 3):
        x, kernel, bias = _case(rng, (n, 6, 6, 3), 2)
        ref, got = _both(x, kernel, bias, SAME, rng, ws)
        for r, g in zip(ref, got):
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [16, 32])
def test_float32_error_is_that_of_im2col_at_realistic_scale(channels):
    """Post-ReLU inputs, He-initialised kernels, 16 or 32 channels: both float32 paths against float64 im2col."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((4, 12, 12, channels)), 0)
    kernel = rng.uniform(-1, 1, (3, 3, channels, 32)) * np.sqrt(6 / (9 * channels))
    bias = rng.standard_normal(32) * 0.1
    dout = rng.standard_normal((4, 12, 12, 32)) * 1e-3
    out, cols = im2col.conv2d_forward(x, kernel, bias, (1, 1), SAME)
    exact = (out,) + im2col.conv2d_backward(dout, cols, kernel, x.shape, (1, 1), SAME)
    x32, k32, b32, d32 = (a.astype(np.float32) for a in (x, kernel, bias, dout))
    out, cols = im2col.conv2d_forward(x32, k32, b32, (1, 1), SAME)
    by_im2col = (out,) + im2col.conv2d_backward(d32, cols, k32, x.shape, (1, 1), SAME)
    out, saved = winograd.winograd_forward(x32, k32, b32, SAME)
    by_winograd = (out,) + winograd.winograd_backward(d32, saved, k32, x.shape, SAME)
    for name, e, a, b in zip(("out", "dx", "dkernel", "dbias"), exact, by_im2col, by_winograd):
        assert b.dtype == np.float32, name
        scale = np.abs(e).max()
        err_im2col, err_winograd = np.abs(a - e).max() / scale, np.abs(b - e).max() / scale
        # measured (16-64 channels, 16x16): im2col 2e-7 to 7e-7, Winograd F(4x2, 3x3) 6e-8 to 1.9e-6, its F(4, 3)
        # rows adding five terms scaled by up to 8 (docs/performance.md); a wrong transform gives errors of order 1
        assert err_winograd < max(8 * err_im2col, 4e-6), (name, err_winograd, err_im2col)


@pytest.mark.parametrize("kernel_hw, strides, dilation, groups, expected", [
    ((3, 3), (1, 1), (1, 1), 1, True),
    ((3, 3), (2, 2), (1, 1), 1, False),
    ((3, 3), (1, 2), (1, 1), 1, False),
    ((3, 3), (1, 1), (2, 2), 1, False),
    ((3, 3), (1, 1), (1, 1), 2, False),
    ((5, 5), (1, 1), (1, 1), 1, False),
    ((3, 1), (1, 1), (1, 1), 1, False),
])
def test_applies_only_to_3x3_stride_1(kernel_hw, strides, dilation, groups, expected):
    assert winograd.applies(kernel_hw, strides, dilation, groups) is expected


def test_too_small_an_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"3x3 kernel needs a padded input of at least 3x3, got 2x4"):
        winograd.winograd_forward(np.ones((1, 2, 4, 1)), np.ones((3, 3, 1, 1)), None, ((0, 0), (0, 0)))


def test_backward_twice_after_one_forward_gives_the_same_gradients():
    rng = np.random.default_rng(6)
    x, kernel, bias = _case(rng, (2, 6, 6, 3), 2)
    ws = {}
    out, saved = winograd.winograd_forward(x, kernel, bias, SAME, ws)
    dout = rng.standard_normal(out.shape)
    first = [a.copy() for a in winograd.winograd_backward(dout, saved, kernel, x.shape, SAME, workspace=ws)]
    second = winograd.winograd_backward(dout, saved, kernel, x.shape, SAME, workspace=ws)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tiles_per_block", [1, 13, 10**6])  # 4 tile rows of 6 tiles: blocks 1x4, 3+1, 4
def test_forward_and_backward_in_blocks_of_tile_rows_give_the_same_results(monkeypatch, tiles_per_block):
    monkeypatch.setattr(winograd, "TILES_PER_BLOCK", tiles_per_block)
    rng = np.random.default_rng(7)
    x, kernel, bias = _case(rng, (2, 15, 6, 3), 4)
    ref, got = _both(x, kernel, bias, SAME, rng, {})
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


def _outputs_reading(pixel, pads, shape):
    """The outputs (row, column) a NaN at input ``pixel`` reaches through F(4x2, 3x3): every tile whose 6x4 window
    covers it, over all 4 rows (F(4, 3)'s transforms are GEMMs, and 0 * NaN is NaN) and over the output columns
    that F(2, 3)'s sums and differences give that column tap: tap 0 only the first, tap 3 only the second."""
    (t, b), (l, r) = pads
    th, tw = -(-(shape[0] + t + b - 2) // 4), -(-(shape[1] + l + r - 2) // 2)
    row, col = pixel[0] + t, pixel[1] + l
    reached = np.zeros((4 * th, 2 * tw), bool)
    for i in range(th):
        for s in range(tw):
            if 4 * i <= row < 4 * i + 6 and 2 * s <= col < 2 * s + 4:
                tap = col - 2 * s
                reached[4 * i:4 * i + 4, 2 * s + (tap == 3):2 * s + 1 + (tap != 0)] = True
    return reached[:shape[0] + t + b - 2, :shape[1] + l + r - 2]


@pytest.mark.parametrize("pixel", [(0, 0), (4, 0), (3, 8), (5, 4)])   # beside the junk tile ending each tile row
@pytest.mark.parametrize("tiles_per_block", [1, 10**6])
def test_a_nan_reaches_only_the_tiles_that_read_it_in_forward_and_backward(monkeypatch, pixel, tiles_per_block):
    # each tile row is computed with one junk tile more, which reads the next row's first columns: a NaN there
    # must stay in the tiles whose windows cover it (Winograd spreads it over a whole 4x2 output tile, or in
    # backward over a whole 6x4 input window), never in the rows the junk tiles sit beside
    monkeypatch.setattr(winograd, "TILES_PER_BLOCK", tiles_per_block)
    h, w = 8, 9
    x = np.ones((2, h, w, 3))
    x[1, pixel[0], pixel[1], 2] = np.nan
    kernel = np.ones((3, 3, 3, 2))
    out, saved = winograd.winograd_forward(x, kernel, None, SAME, {})
    expected = _outputs_reading(pixel, SAME, (h, w))
    assert expected.any() and (np.isnan(out[1]) == expected[:, :, None]).all() and not np.isnan(out[0]).any()
    dout = np.ones(out.shape)
    dout[1, pixel[0], pixel[1], 1] = np.nan            # an output gradient: its tile's window, in the input
    tile, side = (pixel[0] // 4, pixel[1] // 2), pixel[1] % 2
    dx, _, _ = winograd.winograd_backward(dout, (np.nan_to_num(saved[0]), saved[1]), kernel, x.shape, SAME,
                                          workspace={})
    expected = np.zeros((h + 2, w + 3), bool)          # padded coordinates (the tiles overhang by one column)
    # all 6 rows (F(4, 3)'s adjoint is a GEMM), 3 of the 4 columns: F(2, 3)'s sums and differences leave out the
    # column tap that an output column's adjoint gives no weight
    expected[4 * tile[0]:4 * tile[0] + 6, 2 * tile[1] + side:2 * tile[1] + side + 3] = True
    assert (np.isnan(dx[1]) == expected[1:h + 1, 1:w + 1, None]).all() and not np.isnan(dx[0]).any()


def test_an_empty_batch_gives_empty_outputs_and_zero_gradients():
    x, kernel, bias = np.zeros((0, 8, 9, 2), np.float32), np.ones((3, 3, 2, 3), np.float32), np.ones(3, np.float32)
    out, saved = winograd.winograd_forward(x, kernel, bias, SAME, {})
    assert out.shape == (0, 8, 9, 3) and out.dtype == np.float32
    dx, dkernel, dbias = winograd.winograd_backward(out, saved, kernel, x.shape, SAME, workspace={})
    assert dx.shape == x.shape and not dkernel.any() and dkernel.shape == kernel.shape and not dbias.any()
    assert [a.dtype for a in (dx, dkernel, dbias)] == [np.float32] * 3


@pytest.mark.parametrize("shape, pads", [
    ((3, 8, 9, 2), SAME),
    ((4, 4, 4, 3), ((3, 3), (3, 3))),   # narrow, padded wide: zero columns on both sides of each parity
    ((2, 7, 6, 2), ((0, 2), (1, 0))),
])
def test_scratch_left_full_of_nans_by_an_earlier_call_changes_nothing(shape, pads):
    # every scratch array is reused by the next call, in any layer of the thread: whatever a call reads of one
    # (padding, borders, the slack the junk tiles read) it must have written itself
    rng = np.random.default_rng(14)
    x, kernel, bias = _case(rng, shape, 3)
    fresh = _both(x, kernel, bias, pads, np.random.default_rng(15), {})[1]
    workspace = {}
    big = np.full((shape[0] + 2, shape[1] + 5, shape[2] + 7, shape[3]), np.nan)
    out, saved = winograd.winograd_forward(big, np.ones((3, 3, shape[3], 3)), None, SAME, workspace)
    winograd.winograd_backward(np.full(out.shape, np.nan), saved, np.ones((3, 3, shape[3], 3)), big.shape, SAME,
                               workspace=workspace)
    got = _both(x, kernel, bias, pads, np.random.default_rng(15), workspace)[1]
    for a, b in zip(got, fresh):
        np.testing.assert_array_equal(a, b)


# --- found by mutation testing (docs/mutation-testing.md) ---
#: Lavin & Gray's input transforms: ``V = B4^T d B2`` for a 6x4 tile ``d`` (F(4, 3) down, F(2, 3) across)
B4_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)
B2_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)


@pytest.mark.parametrize("shape, pads", [
    ((2, 6, 5, 3), SAME),                     # odd width: one more zero column so the tiles cover it
    ((3, 7, 7, 2), ((0, 0), (0, 0))),         # odd output both ways
    ((1, 4, 9, 3), ((0, 3), (2, 2))),         # one-sided padding
])
@pytest.mark.parametrize("with_workspace", [False, True])
def test_transform_input_is_b4_t_d_b2_of_every_tile_in_tile_row_column_sample_order(shape, pads, with_workspace):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    x = np.asfortranarray(x)                  # any memory order
    n, h, w, c = shape
    (t, b), (l, r) = pads
    th, tw = -(-(h + t + b - 2) // 4), -(-(w + l + r - 2) // 2)
    padded = np.zeros((n, 4 * th + 2, 2 * tw + 2, c))
    padded[:, t:t + h, l:l + w] = x
    expected = np.empty((6, 4, c, th, tw, n))
    for i in range(th):
        for j in range(tw):
            for s in range(n):
                for ch in range(c):
                    expected[:, :, ch, i, j, s] = B4_T @ padded[s, 4 * i:4 * i + 6, 2 * j:2 * j + 4, ch] @ B2_T.T
    got = winograd.transform_input(x, pads, {} if with_workspace else None)
    assert got.shape == (24, c, th * tw * n)
    np.testing.assert_allclose(got, expected.reshape(24, c, th * tw * n), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, pads, message", [
    ((1, 4, 1, 1), ((1, 2), (0, 1)), r"got 7x2 \(input 4x1, padding \(\(1, 2\), \(0, 1\)\)\)"),
    ((1, 1, 4, 1), ((1, 0), (1, 2)), r"got 2x7 \(input 1x4, padding \(\(1, 0\), \(1, 2\)\)\)"),
])
def test_too_small_a_padded_input_is_refused_with_its_padded_size_input_and_padding(shape, pads, message):
    with pytest.raises(ValueError, match=r"^a 3x3 kernel needs a padded input of at least 3x3, " + message
                       + r"; pad more or use a larger input$"):
        winograd.winograd_forward(np.ones(shape), np.ones((3, 3, 1, 1)), None, pads)


def test_float32_stays_float32_in_what_forward_keeps_and_in_every_result_of_an_odd_output():
    rng = np.random.default_rng(9)
    x, kernel, bias = _case(rng, (2, 7, 6, 3), 4, np.float32)   # 7x6 'same' output: the tiles overhang
    assert winograd.transform_kernel(kernel).dtype == np.float32
    out, saved = winograd.winograd_forward(x, kernel, bias, SAME, {})
    assert out.dtype == np.float32 and all(a.dtype == np.float32 for a in saved)
    got = winograd.winograd_backward(rng.standard_normal(out.shape).astype(np.float32), saved, kernel, x.shape,
                                     SAME, workspace={})
    assert [a.dtype for a in got] == [np.float32] * 3


#: what a call may allocate besides its results and scratch arrays: the transformed kernel, the kernel and bias
#: gradients, Python objects (6-17 KB measured, the most under mutmut); every scratch array of the cases below is
#: larger (the smallest, the zero-padded output gradient, 56 KB in float32)
SMALL = 32 * 1024


@pytest.mark.parametrize("shape, filters, pads", [
    ((16, 15, 13, 8), 4, SAME),                 # a 15x13 output: the tiles overhang
    ((32, 4, 4, 32), 2, ((3, 3), (3, 3))),      # padded 10x10: the input gradient's scratch is larger than it
])
def test_with_a_workspace_repeated_forwards_and_backwards_allocate_only_their_results(monkeypatch, shape, filters,
                                                                                     pads):
    # forward and backward in turn, in float32: every scratch array is taken from the workspace or the thread's
    # pool, each name always in the data's dtype (a name asked for in two dtypes is allocated afresh each time);
    # in one block of tile rows, since neighbouring blocks set aside the two rows they share
    monkeypatch.setattr(winograd, "TILES_PER_BLOCK", 10**6)
    rng = np.random.default_rng(10)
    x, kernel, bias = _case(rng, shape, filters, np.float32)

    def twice(workspace):
        for _ in range(2):   # the first time fills the workspace and the thread's pool
            (out, saved), forward = allocated_during(
                lambda: winograd.winograd_forward(x, kernel, bias, pads, workspace))
            dout = np.ones_like(out)
            grads, backward = allocated_during(
                lambda: winograd.winograd_backward(dout, saved, kernel, x.shape, pads, workspace=workspace))
            weight_grads, weights_only = allocated_during(   # a first layer's: no input gradient to outweigh a scratch
                lambda: winograd.winograd_backward(dout, saved, kernel, x.shape, pads, need_dx=False,
                                                   workspace=workspace))
        return out, forward, grads, backward, weight_grads[1:], weights_only

    (out, forward, grads, backward, weight_grads, weights_only), _ = bytes_allocated_by(lambda: twice({}),
                                                                                       new_thread=True)
    assert forward <= out.nbytes + SMALL
    assert backward <= sum(a.nbytes for a in grads) + SMALL
    assert weights_only <= sum(a.nbytes for a in weight_grads) + SMALL


def test_float32_work_takes_half_the_memory_of_float64():
    rng = np.random.default_rng(11)
    x, kernel, bias = _case(rng, (16, 15, 13, 8), 4)
    peaks = {}
    for dtype in (np.float64, np.float32):
        args = [a.astype(dtype) for a in (x, kernel, bias)]

        def forward_and_backward():
            out, saved = winograd.winograd_forward(*args, SAME, {})
            return winograd.winograd_backward(np.ones_like(out), saved, args[1], x.shape, SAME, workspace={})

        _, peaks[dtype] = bytes_allocated_by(forward_and_backward, new_thread=True)
    assert peaks[np.float32] <= peaks[np.float64] / 2 + SMALL


def test_transform_input_reuses_its_workspace_and_takes_half_the_memory_in_float32():
    x = np.random.default_rng(12).standard_normal((16, 15, 13, 8))

    def again(x, workspace):
        winograd.transform_input(x, SAME, workspace)   # fills the workspace and the thread's pool
        return allocated_during(lambda: winograd.transform_input(x, SAME, workspace))

    (v, allocated), _ = bytes_allocated_by(lambda: again(x.astype(np.float32), {}), new_thread=True)
    assert v.dtype == np.float32 and allocated <= SMALL
    peaks = {}
    for dtype in (np.float64, np.float32):
        x_as = x.astype(dtype)
        _, peaks[dtype] = bytes_allocated_by(lambda: winograd.transform_input(x_as, SAME, {}), new_thread=True)
    assert peaks[np.float32] <= peaks[np.float64] / 2 + SMALL


def test_in_inference_the_forward_keeps_no_transformed_input(monkeypatch):
    # a SharedWorkspace (an inference plan) means no backward follows: the transformed input, 3x the input's size,
    # need not be written out, and the outputs are those of a training forward bit for bit
    from nnscratch.ops.workspace import SharedWorkspace, thread_pool
    monkeypatch.setattr(winograd, "TILES_PER_BLOCK", 16)   # blocks of one tile row: each far smaller than V
    rng = np.random.default_rng(13)
    x, kernel, bias = _case(rng, (16, 15, 13, 8), 4, np.float32)
    trained, saved = winograd.winograd_forward(x, kernel, bias, SAME, {})
    own, pool = {}, {}
    workspace = SharedWorkspace(own, pool)

    def infer():   # with the sizes of what the calling thread's own pool then holds (the thread is a new one)
        return winograd.winograd_forward(x, kernel, bias, SAME, workspace), [a.nbytes for a in thread_pool().values()]

    for _ in range(2):   # the first call fills the pools
        ((out, kept), thread_pooled), allocated = bytes_allocated_by(infer, new_thread=True)
    np.testing.assert_array_equal(out, trained)
    assert kept[0] is None and allocated <= out.nbytes + SMALL
    v_bytes = saved[0].nbytes
    assert own == {} and max(a.nbytes for a in pool.values()) < v_bytes / 2
    assert all(size < v_bytes / 2 for size in thread_pooled)


def test_tile_rows_refuses_what_as_strided_would_read_past():
    # the row stages view a tile's rows through as_strided; a block with too few rows, or rows whose (W, N)
    # values are not contiguous, must fail loudly rather than read memory it does not own
    rows = np.arange(5 * 2 * 3, dtype=np.float32).reshape(1, 5, 2, 3)
    assert winograd._tile_rows(rows, 1, 4).shape == (1, 1, 4, 6)
    with pytest.raises(ValueError, match="6 rows for 1 tiles of 6 taps"):
        winograd._tile_rows(rows, 1, 6)
    with pytest.raises(ValueError, match="contiguous"):
        winograd._tile_rows(np.zeros((1, 6, 3, 4), np.float32)[:, :, :, ::2], 1, 6)
    np.testing.assert_array_equal(winograd._tile_rows(np.arange(10.0).reshape(1, 10, 1, 1), 2, 6)[0, :, :, 0],
                                  [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9]])

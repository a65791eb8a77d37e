"""im2col / col2im / conv2d kernels against the loop reference in tests/naive_conv.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocations import bytes_allocated_by
import naive_conv
from nnscratch.ops.im2col import (check_padding, col2im, conv2d_backward, conv2d_forward, grouped_conv2d_backward,
                                  grouped_conv2d_forward, im2col, output_hw, pad_spatial, resolve_padding)
from nnscratch.ops.layout import from_chwn, to_chwn

NO_PAD = ((0, 0), (0, 0))


# -- padding arithmetic ---------------------------------------------------------------------------
@pytest.mark.parametrize("padding, size, k, s, expected", [
    ("valid", (28, 28), (5, 5), (1, 1), ((0, 0), (0, 0))),
    ("same", (28, 28), (5, 5), (1, 1), ((2, 2), (2, 2))),
    ("same", (28, 28), (4, 4), (1, 1), ((1, 2), (1, 2))),     # even kernel: extra at bottom/right (TF)
    ("same", (7, 8), (3, 3), (2, 2), ((1, 1), (0, 1))),       # H: (4-1)*2+3-7=2 split; W: 6+3-8=1 at the right
    ("same", (8, 8), (3, 1), (2, 2), ((0, 1), (0, 0))),       # total (4-1)*2+3-8=1 -> bottom
    ("same", (5, 5), (1, 1), (3, 3), ((0, 0), (0, 0))),       # negative total clamps to 0
    ("full", (14, 10), (5, 3), (1, 1), ((4, 4), (2, 2))),
    (3, (5, 5), (3, 3), (1, 1), ((3, 3), (3, 3))),
    ([1, 2], (5, 5), (3, 3), (1, 1), ((1, 1), (2, 2))),
    ([[0, 1], [2, 3]], (5, 5), (3, 3), (1, 1), ((0, 1), (2, 3))),
])
def test_resolve_padding(padding, size, k, s, expected):
    assert resolve_padding(padding, size, k, s) == expected


@pytest.mark.parametrize("size, k, s", [(28, 5, 1), (28, 4, 1), (7, 3, 2), (8, 2, 2), (13, 6, 4), (1, 3, 1)])
def test_same_padding_gives_ceil_of_size_over_stride(size, k, s):
    pads = resolve_padding("same", (size, size), (k, k), (s, s))
    assert output_hw((size, size), (k, k), (s, s), pads) == (-(-size // s),) * 2


def test_full_padding_output_is_size_plus_kernel_minus_one():
    pads = resolve_padding("full", (6, 4), (3, 2), (1, 1))
    assert output_hw((6, 4), (3, 2), (1, 1), pads) == (8, 5)


def test_output_hw_refuses_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"kernel width 5 is larger than the padded input width 4 .*padding 1\+0"):
        output_hw((9, 3), (5, 5), (1, 1), ((0, 0), (1, 0)), what="kernel")


@pytest.mark.parametrize("value, expected", [
    ("SAME", "same"), (0, 0), ((1, 2), [1, 2]), ([[1, 0], [0, 2]], [[1, 0], [0, 2]]),
])
def test_check_padding_normalises_to_json(value, expected):
    assert check_padding("padding", value) == expected


@pytest.mark.parametrize("value", ["half", -1, (1, -1), (1, 2, 3), ((1, 2), 3), 1.5, True, None])
def test_check_padding_refuses_with_the_accepted_forms(value):
    with pytest.raises(ValueError, match=r"padding must be one of 'valid', 'same', 'full', a non-negative int"):
        check_padding("padding", value)


def test_check_padding_without_explicit_amounts():
    with pytest.raises(ValueError, match=r"pool padding must be one of 'valid', 'same'; got 1"):
        check_padding("pool padding", 1, modes=("valid", "same"), explicit=False)


def test_pad_spatial_matches_np_pad_and_skips_the_copy_when_nothing_to_pad():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2)).astype(np.float32)
    pads = ((1, 0), (2, 3))
    got = pad_spatial(x, pads, value=-1.5)
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (1, 0), (2, 3), (0, 0)), constant_values=-1.5))
    assert got.dtype == np.float32
    assert pad_spatial(x, NO_PAD) is x


# -- im2col / col2im ------------------------------------------------------------------------------
def naive_im2col(x, k, s, pads):
    """One column per output position, positions in (ho, wo, n) order, each the window raveled (i, j, c)."""
    xp = naive_conv.pad(x, pads)
    n, h, w, c = x.shape
    ho = naive_conv.out_size(h, k[0], s[0], *pads[0])
    wo = naive_conv.out_size(w, k[1], s[1], *pads[1])
    columns = [xp[b, a * s[0]:a * s[0] + k[0], q * s[1]:q * s[1] + k[1], :].ravel()
               for a in range(ho) for q in range(wo) for b in range(n)]
    return np.array(columns).T


IM2COL_CASES = [  # (x shape, kernel, strides, pads)
    ((2, 5, 6, 3), (3, 3), (1, 1), NO_PAD),
    ((1, 7, 5, 1), (2, 3), (2, 1), ((1, 0), (2, 2))),
    ((3, 4, 4, 2), (4, 4), (1, 1), ((1, 2), (1, 2))),
    ((2, 9, 8, 2), (3, 2), (3, 2), ((0, 2), (1, 0))),
    ((1, 3, 3, 4), (1, 1), (1, 1), NO_PAD),
    ((2, 6, 6, 1), (5, 5), (1, 1), ((2, 2), (2, 2))),
]


@pytest.mark.parametrize("shape, k, s, pads", IM2COL_CASES)
@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_matches_explicit_windows(shape, k, s, pads, order, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    cols = im2col(naive_conv.stored(x, order), k, s, pads)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, naive_im2col(x, k, s, pads).astype(dtype))
    with_ones = im2col(x, k, s, pads, ones_row=True)
    np.testing.assert_array_equal(with_ones[:-1], cols)
    np.testing.assert_array_equal(with_ones[-1], 1)


def test_im2col_never_hands_out_an_alias_of_its_input():
    # a 1x1 kernel without padding is where a free view would be possible; writing through it would corrupt x
    x = from_chwn(to_chwn(np.random.default_rng(0).standard_normal((2, 3, 3, 1))))
    assert not np.shares_memory(im2col(x, (1, 1)), x)


@pytest.mark.parametrize("shape, k, s, pads", IM2COL_CASES)
def test_col2im_is_the_adjoint_of_im2col(shape, k, s, pads):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, pads)
    y = rng.standard_normal(cols.shape)
    # <im2col(x), y> == <x, col2im(y)> for every x, y defines the adjoint
    dx = col2im(y, shape, k, s, pads)
    assert dx.shape == shape and np.shares_memory(to_chwn(dx), dx)  # stored CHWN: to_chwn is a view
    np.testing.assert_allclose(np.sum(cols * y), np.sum(x * dx), rtol=1e-10)


def test_col2im_counts_overlaps():
    got = col2im(im2col(np.ones((1, 4, 4, 1)), (3, 3)), (1, 4, 4, 1), (3, 3))[0, :, :, 0]
    np.testing.assert_array_equal(got, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


# -- conv2d against the loop reference ------------------------------------------------------------
CONV_CASES = [  # (x shape, kernel shape, strides, pads)
    ((2, 6, 6, 3), (3, 3, 3, 4), (1, 1), NO_PAD),
    ((1, 7, 6, 2), (3, 2, 2, 3), (2, 1), ((1, 1), (0, 1))),
    ((3, 5, 5, 1), (5, 5, 1, 2), (1, 1), ((2, 2), (2, 2))),
    ((2, 4, 3, 2), (2, 3, 2, 2), (1, 1), ((1, 1), (2, 2))),
    ((1, 9, 8, 2), (3, 3, 2, 3), (3, 2), ((0, 2), (1, 0))),
    ((2, 5, 7, 4), (1, 1, 4, 3), (1, 2), NO_PAD),
    ((1, 2, 2, 1), (2, 2, 1, 1), (1, 1), NO_PAD),                   # a single output position
]


def _conv_case(shape, kshape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    kernel = rng.standard_normal(kshape).astype(dtype)
    bias = rng.standard_normal(kshape[-1]).astype(dtype)
    return rng, x, kernel, bias


@pytest.mark.parametrize("shape, kshape, s, pads", CONV_CASES)
@pytest.mark.parametrize("order", naive_conv.STORAGE_ORDERS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_forward_and_backward_match_loops(shape, kshape, s, pads, order, dtype, tol, use_bias):
    rng, x, kernel, bias = _conv_case(shape, kshape, dtype)
    bias = bias if use_bias else None
    out, cols = conv2d_forward(naive_conv.stored(x, order), kernel, bias, s, pads)
    assert out.dtype == dtype and cols.dtype == dtype
    ref = naive_conv.conv2d(x, kernel, bias, s, pads)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * 10)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dk, db = conv2d_backward(naive_conv.stored(dout, order), cols, kernel, x.shape, s, pads, has_bias=use_bias)
    rdx, rdk, rdb = naive_conv.conv2d_backward(x, kernel, s, pads, dout)
    assert dx.dtype == dtype and dk.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dk, rdk, rtol=tol, atol=tol * 10)
    if use_bias:
        np.testing.assert_allclose(db, rdb, rtol=tol, atol=tol * 10)
    else:
        assert db is None


def test_conv2d_backward_can_skip_dx():
    _, x, kernel, bias = _conv_case((2, 5, 5, 2), (3, 3, 2, 3), np.float64)
    out, cols = conv2d_forward(x, kernel, bias)
    dx, dk, db = conv2d_backward(np.ones_like(out), cols, kernel, x.shape, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dk, naive_conv.conv2d_backward(x, kernel, (1, 1), NO_PAD, np.ones_like(out))[1])


def test_conv2d_accepts_non_contiguous_inputs():
    _, x, kernel, bias = _conv_case((2, 8, 6, 3), (3, 3, 2, 2), np.float64)
    view = x[:, ::2, :, 1:]  # strided in H and C
    out, _ = conv2d_forward(view, kernel, bias)
    np.testing.assert_allclose(out, naive_conv.conv2d(view, kernel, bias, (1, 1), NO_PAD), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 3), f=st.integers(1, 3),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       pads=st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
       order=st.sampled_from(naive_conv.STORAGE_ORDERS), seed=st.integers(0, 2**16))
def test_conv2d_matches_loops_on_random_geometry(n, h, w, c, f, kh, kw, sh, sw, pads, order, seed):
    if kh > h + sum(pads[0]) or kw > w + sum(pads[1]):
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv2d_forward(np.zeros((n, h, w, c)), np.zeros((kh, kw, c, f)), None, (sh, sw), pads)
        return
    rng, x, kernel, bias = _conv_case((n, h, w, c), (kh, kw, c, f), np.float64, seed)
    out, cols = conv2d_forward(naive_conv.stored(x, order), kernel, bias, (sh, sw), pads)
    np.testing.assert_allclose(out, naive_conv.conv2d(x, kernel, bias, (sh, sw), pads), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dk, db = conv2d_backward(dout, cols, kernel, x.shape, (sh, sw), pads)
    rdx, rdk, rdb = naive_conv.conv2d_backward(x, kernel, (sh, sw), pads, dout)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, rdk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)


# -- dilation and groups (issue 14) ---------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7), groups=st.integers(1, 3),
       cg=st.integers(1, 2), fg=st.integers(1, 2), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 2), sw=st.integers(1, 2), dh=st.integers(1, 3), dw=st.integers(1, 3),
       pads=st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
       order=st.sampled_from(naive_conv.STORAGE_ORDERS), seed=st.integers(0, 2**16))
def test_dilated_grouped_conv2d_matches_loops(n, h, w, groups, cg, fg, kh, kw, sh, sw, dh, dw, pads, order, seed):
    c, f = groups * cg, groups * fg
    if (kh - 1) * dh + 1 > h + sum(pads[0]) or (kw - 1) * dw + 1 > w + sum(pads[1]):
        with pytest.raises(ValueError, match="larger than the padded input"):
            im2col(np.zeros((n, h, w, c)), (kh, kw), (sh, sw), pads, dilation=(dh, dw), groups=groups)
        return
    rng, x, kernel, bias = _conv_case((n, h, w, c), (kh, kw, cg, f), np.float64, seed)
    if groups == 1:
        out, cols = conv2d_forward(naive_conv.stored(x, order), kernel, bias, (sh, sw), pads, dilation=(dh, dw))
    else:
        out, cols = grouped_conv2d_forward(naive_conv.stored(x, order), kernel, bias, groups, (sh, sw), pads, (dh, dw))
    ref = naive_conv.conv2d_general(x, kernel, bias, (sh, sw), pads, (dh, dw), groups)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    if groups == 1:
        dx, dk, db = conv2d_backward(naive_conv.stored(dout, order), cols, kernel, x.shape, (sh, sw), pads,
                                     dilation=(dh, dw))
    else:
        dx, dk, db = grouped_conv2d_backward(naive_conv.stored(dout, order), cols, kernel, x.shape, groups, (sh, sw),
                                             pads, (dh, dw))
    rdx, rdk, rdb = naive_conv.conv2d_general_backward(x, kernel, (sh, sw), pads, dout, (dh, dw), groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, rdk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, k, s, pads, d, g", [
    ((2, 7, 8, 4), (3, 2), (1, 1), ((1, 1), (0, 2)), (2, 3), 2),
    ((1, 9, 9, 3), (3, 3), (2, 2), ((1, 1), (1, 1)), (2, 2), 3),
    ((2, 6, 6, 2), (2, 2), (1, 2), NO_PAD, (1, 2), 1),
])
def test_dilated_grouped_col2im_is_the_adjoint_of_im2col(shape, k, s, pads, d, g):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, pads, dilation=d, groups=g)
    y = rng.standard_normal(cols.shape)
    dx = col2im(y, shape, k, s, pads, dilation=d, groups=g)
    np.testing.assert_allclose(np.sum(cols * y), np.sum(x * dx), rtol=1e-10)


def test_grouped_im2col_orders_rows_group_first():
    x = np.arange(2 * 2 * 4.0).reshape(1, 2, 2, 4)        # channels 0..3, two groups of two
    cols = im2col(x, (1, 2), groups=2)                       # rows (group, i, j, c)
    assert cols[:, 0].tolist() == [x[0, 0, 0, 0], x[0, 0, 0, 1], x[0, 0, 1, 0], x[0, 0, 1, 1],
                                   x[0, 0, 0, 2], x[0, 0, 0, 3], x[0, 0, 1, 2], x[0, 0, 1, 3]]
    with pytest.raises(ValueError, match="ones_row is not available with groups"):
        im2col(x, (1, 1), groups=2, ones_row=True)


# --- found by mutation testing (docs/mutation-testing.md) ---

@pytest.mark.parametrize("pads", [((0, 0), (1, 0)), ((0, 0), (0, 1)), ((1, 0), (0, 0)), ((0, 1), (0, 0)),
                                  ((0, 0), (2, 1)), ((1, 2), (0, 0))])
@pytest.mark.parametrize("s", [(1, 1), (2, 2)])
def test_padding_on_one_side_only_is_not_mistaken_for_none(pads, s):
    rng, x, kernel, bias = _conv_case((2, 5, 6, 3), (3, 2, 3, 4), np.float64)
    assert pad_spatial(x, pads).shape == (2, 5 + sum(pads[0]), 6 + sum(pads[1]), 3)
    out, cols = conv2d_forward(x, kernel, bias, s, pads)
    np.testing.assert_allclose(out, naive_conv.conv2d(x, kernel, bias, s, pads), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dk, _ = conv2d_backward(dout, cols, kernel, x.shape, s, pads)
    rdx, rdk, _ = naive_conv.conv2d_backward(x, kernel, s, pads, dout)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dk, rdk, rtol=1e-12, atol=1e-12)


def test_check_padding_accepts_zero_inside_explicit_amounts():
    assert check_padding("padding", (0, 2)) == [0, 2]
    assert check_padding("padding", ((0, 0), (1, 0))) == [[0, 0], [1, 0]]


@pytest.mark.parametrize("value", [((1, -1), (0, 0)), ((0, 0), (0.5, 0)), ((1, 1), (True, 0))])
def test_check_padding_refuses_bad_amounts_inside_pairs(value):
    with pytest.raises(ValueError, match=r"^padding must be one of "):
        check_padding("padding", value)


def test_check_padding_message_lists_every_accepted_form():
    expected = ("conv padding must be one of 'valid', 'same', 'full', a non-negative int, a pair (ph, pw), "
                "((top, bottom), (left, right)); got -1")
    with pytest.raises(ValueError) as info:
        check_padding("conv padding", -1)
    assert str(info.value) == expected


def test_resolve_padding_names_the_modes_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"^unknown padding mode 'half'; use one of \('valid', 'same', 'full'\)$"):
        resolve_padding("half", (5, 5), (3, 3), (1, 1))


def test_output_hw_names_the_window_and_the_height_by_default():
    with pytest.raises(ValueError, match=r"^the window height 4 is larger than the padded input height 3 "
                                         r"\(input 2, padding 0\+1\); use a smaller window, padding='same', "
                                         r"or a larger input$"):
        output_hw((2, 9), (4, 2), (1, 1), ((0, 1), (0, 0)))


def test_im2col_refusal_of_a_ones_row_with_groups_is_worded_exactly():
    with pytest.raises(ValueError, match=r"^im2col: ones_row is not available with groups > 1$"):
        im2col(np.zeros((1, 2, 2, 4)), (1, 1), groups=2, ones_row=True)


@pytest.mark.parametrize("value", [0.0, 1.0, -np.inf])
def test_pad_spatial_border_holds_the_value_and_never_leftover_memory(value):
    # the output is allocated right after an array of NaN of the same size is freed, so that a border
    # left unwritten shows NaN instead of whatever zeros fresh memory happens to hold
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 2))
    pads = ((1, 1), (2, 0))
    expected = np.pad(x, ((0, 0), (1, 1), (2, 0), (0, 0)), constant_values=value)
    for _ in range(3):
        junk = np.full(expected.shape, np.nan)
        del junk
        got = pad_spatial(x, pads, value) if value != 0.0 else pad_spatial(x, pads)
        np.testing.assert_array_equal(got, expected)


DILATED_CASES = [  # (x shape, kernel shape, strides, pads, dilation): groups=1 through every backward path
    ((2, 8, 7, 2), (3, 2, 2, 3), (1, 1), ((1, 0), (0, 1)), (2, 1)),   # kh rows apart: the by-rows backward
    ((1, 7, 9, 2), (2, 3, 2, 2), (1, 1), NO_PAD, (1, 2)),             # width dilation: col2im
    ((2, 9, 9, 1), (2, 2, 1, 2), (2, 1), ((0, 1), (1, 1)), (3, 1)),   # vertical stride and dilation
    ((1, 8, 10, 3), (2, 3, 3, 2), (1, 2), ((1, 1), (0, 0)), (2, 3)),
]


@pytest.mark.parametrize("shape, kshape, s, pads, d", DILATED_CASES)
def test_dilated_conv2d_without_groups_matches_loops(shape, kshape, s, pads, d):
    rng, x, kernel, bias = _conv_case(shape, kshape, np.float64, seed=5)
    out, cols = conv2d_forward(x, kernel, bias, s, pads, dilation=d)
    np.testing.assert_allclose(out, naive_conv.conv2d_general(x, kernel, bias, s, pads, d), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dk, db = conv2d_backward(dout, cols, kernel, x.shape, s, pads, dilation=d)
    rdx, rdk, rdb = naive_conv.conv2d_general_backward(x, kernel, s, pads, dout, d)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, rdk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fg", [1, 2])   # one map per group (depthwise) and two
def test_grouped_conv2d_backward_without_bias_returns_no_bias_gradient(fg):
    rng, x, kernel, _ = _conv_case((2, 5, 5, 4), (3, 3, 2, 2 * fg), np.float64)
    out, cols = grouped_conv2d_forward(x, kernel, None, 2)
    dx, dk, db = grouped_conv2d_backward(rng.standard_normal(out.shape), cols, kernel, x.shape, 2, has_bias=False)
    assert db is None and dx.shape == x.shape and dk.shape == kernel.shape


@pytest.mark.parametrize("pads", [NO_PAD, ((1, 1), (1, 1))])
@pytest.mark.parametrize("s", [(1, 1), (1, 2)])
def test_input_gradient_is_a_new_array_that_the_next_call_leaves_alone(pads, s):
    # the workspace keeps scratch arrays between calls, but dx must never be one of them
    rng, x, kernel, bias = _conv_case((2, 5, 6, 2), (3, 3, 2, 3), np.float64)
    workspace = {}
    out, cols = conv2d_forward(x, kernel, bias, s, pads)
    dx, _, _ = conv2d_backward(rng.standard_normal(out.shape), cols, kernel, x.shape, s, pads, workspace=workspace)
    kept = dx.copy()
    conv2d_backward(rng.standard_normal(out.shape), cols, kernel, x.shape, s, pads, workspace=workspace)
    np.testing.assert_array_equal(dx, kept)
    y = rng.standard_normal(cols[:-1].shape)
    first = col2im(y, x.shape, (3, 3), s, pads, workspace=workspace)
    kept = first.copy()
    col2im(-y, x.shape, (3, 3), s, pads, workspace=workspace)
    np.testing.assert_array_equal(first, kept)


#: what a call may allocate besides its result: small reshaped kernels, shapes, Python objects; every scratch
#: array of the cases below is larger (the smallest, the padded input, is ~50 KB)
SMALL = 16 * 1024


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 0), (1, 0)), ((0, 1), (0, 0))])
@pytest.mark.parametrize("s", [(1, 1), (1, 2)])   # the by-rows input gradient and col2im
def test_with_a_workspace_a_repeated_call_allocates_only_its_result(pads, s):
    rng, x, kernel, bias = _conv_case((8, 12, 12, 4), (3, 3, 4, 4), np.float64)
    workspace = {}
    for _ in range(2):   # the first call fills the workspace
        cols, allocated = bytes_allocated_by(lambda: im2col(x, (3, 3), s, pads, workspace=workspace))
    assert allocated <= SMALL and np.shares_memory(cols, im2col(x, (3, 3), s, pads, workspace=workspace))
    for _ in range(2):
        (out, cols), allocated = bytes_allocated_by(lambda: conv2d_forward(x, kernel, bias, s, pads, workspace))
    assert allocated <= out.nbytes + SMALL
    dout = from_chwn(rng.standard_normal(to_chwn(out).shape))   # stored as the kernels keep it: no copy
    for _ in range(2):
        (dx, _, _), allocated = bytes_allocated_by(
            lambda: conv2d_backward(dout, cols, kernel, x.shape, s, pads, workspace=workspace))
    assert allocated <= dx.nbytes + SMALL


@pytest.mark.parametrize("fg", [1, 2])
def test_grouped_conv2d_with_a_workspace_allocates_only_its_results(fg):
    rng, x, kernel, bias = _conv_case((8, 12, 12, 4), (3, 3, 2, 2 * fg), np.float64)
    pads, workspace = ((1, 1), (0, 1)), {}
    for _ in range(2):
        (out, cols), allocated = bytes_allocated_by(
            lambda: grouped_conv2d_forward(x, kernel, bias, 2, (1, 1), pads, workspace=workspace))
    assert allocated <= out.nbytes + SMALL
    dout = from_chwn(rng.standard_normal(to_chwn(out).shape))
    for _ in range(2):
        (dx, _, _), allocated = bytes_allocated_by(
            lambda: grouped_conv2d_backward(dout, cols, kernel, x.shape, 2, (1, 1), pads, workspace=workspace))
    # the column gradient (g, K/g, M) is a temporary too: a depthwise layer's was 75 MB per 64 images of 32x32,
    # mapped afresh and faulted in on every call
    assert allocated <= dx.nbytes + SMALL


@pytest.mark.parametrize("s", [(1, 1), (1, 2)])
def test_float32_work_takes_half_the_memory_of_float64(s):
    # every scratch array is in the data's dtype: a float64 one among float32 data would add to the peak
    pads = ((1, 0), (2, 1))

    def first_forward_and_backward(dtype):
        _, x, kernel, bias = _conv_case((8, 12, 12, 4), (3, 3, 4, 4), dtype)
        workspace = {}
        out, cols = conv2d_forward(x, kernel, bias, s, pads, workspace)
        return conv2d_backward(np.ones_like(out), cols, kernel, x.shape, s, pads, workspace=workspace)

    (dx32, _, _), float32_bytes = bytes_allocated_by(lambda: first_forward_and_backward(np.float32))
    (dx64, _, _), float64_bytes = bytes_allocated_by(lambda: first_forward_and_backward(np.float64))
    assert dx32.dtype == np.float32 and dx64.dtype == np.float64
    assert float32_bytes <= float64_bytes / 2 + SMALL

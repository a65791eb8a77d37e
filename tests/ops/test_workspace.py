"""Scratch arrays: reused across calls, grown when needed, never shared between names or owners."""
import numpy as np

from nnscratch.ops.workspace import KEPT_SHAPES, SharedWorkspace, scratch, zero_bordered


def test_scratch_reuses_one_block_per_name_and_grows_it_when_asked_for_more():
    ws = {}
    a = scratch(ws, "cols", (4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    smaller = scratch(ws, "cols", (2, 3), np.float32)
    assert np.shares_memory(a, smaller)
    other = scratch(ws, "dcols", (2, 3), np.float32)
    assert not np.shares_memory(other, a)
    bigger = scratch(ws, "cols", (10, 10), np.float32)
    assert bigger.shape == (10, 10) and not np.shares_memory(bigger, a)
    assert np.shares_memory(scratch(ws, "cols", (4, 5), np.float32), bigger)
    assert scratch(ws, "cols", (4, 5), np.float64).dtype == np.float64  # a dtype change gets its own block


def test_without_a_workspace_every_call_gets_a_new_array():
    a, b = scratch(None, "cols", (3,), np.float32), scratch(None, "cols", (3,), np.float32)
    assert not np.shares_memory(a, b)


def test_zero_bordered_zeroes_once_per_shape_and_keeps_what_the_caller_left():
    ws = {}
    buf = zero_bordered(ws, "padded", (2, 4, 4, 3), np.float32)
    assert not buf.any()
    buf[:, 1:3, 1:3] = 7
    again = zero_bordered(ws, "padded", (2, 4, 4, 3), np.float32)
    assert np.shares_memory(again, buf) and again[:, 1:3, 1:3].min() == 7 and again[:, 0].max() == 0
    other_shape = zero_bordered(ws, "padded", (3, 4, 4, 2), np.float32)
    assert not other_shape.any()  # a new shape is zeroed everywhere, whatever the block held
    assert not zero_bordered(None, "padded", (2, 2), np.float64).any()


def test_zero_bordered_keeps_one_array_per_shape_so_alternating_shapes_are_not_zeroed_again():
    ws = {}
    a = zero_bordered(ws, "padded", (2, 4, 4, 3), np.float32)
    a[:, 1:3, 1:3] = 5
    b = zero_bordered(ws, "padded", (2, 4, 4, 2), np.float32)
    assert not b.any() and not np.shares_memory(a, b)
    assert zero_bordered(ws, "padded", (2, 4, 4, 3), np.float32) is a  # content kept: never re-zeroed
    for extra in range(KEPT_SHAPES):
        zero_bordered(ws, "padded", (1, 1, 1, 10 + extra), np.float32)
    fresh = zero_bordered(ws, "padded", (2, 4, 4, 3), np.float32)  # evicted as the oldest, so new zeros
    assert fresh is not a and not fresh.any()


# --- found by mutation testing (docs/mutation-testing.md) ---

def test_arrays_have_the_dtype_asked_for_with_or_without_a_workspace():
    for ws in (None, {}):
        assert scratch(ws, "cols", (2, 3), np.float32).dtype == np.float32
        assert scratch(ws, "cols", (2, 3), "int32").dtype == np.int32
        assert zero_bordered(ws, "padded", (2, 3), np.float32).dtype == np.float32
        assert zero_bordered(ws, "padded", (2, 3), "int32").dtype == np.int32


def test_a_block_of_exactly_the_size_asked_for_is_reused():
    ws = {}
    a = scratch(ws, "cols", (4, 5), np.float32)
    b = scratch(ws, "cols", (5, 4), np.float32)
    assert b.shape == (5, 4) and np.shares_memory(a, b)


def test_zero_bordered_arrays_of_two_names_are_never_shared():
    ws = {}
    a = zero_bordered(ws, "padded", (2, 3), np.float32)
    a[:] = 1
    b = zero_bordered(ws, "other", (2, 3), np.float32)
    assert not np.shares_memory(a, b) and not b.any()


def test_zero_bordered_keeps_exactly_kept_shapes_arrays_per_name():
    ws = {}
    first = zero_bordered(ws, "padded", (1, 1), np.float32)
    for extra in range(KEPT_SHAPES - 1):
        zero_bordered(ws, "padded", (1, 2 + extra), np.float32)
    assert zero_bordered(ws, "padded", (1, 1), np.float32) is first  # still one of the newest KEPT_SHAPES
    zero_bordered(ws, "padded", (1, 100), np.float32)                 # one more: the oldest goes
    assert zero_bordered(ws, "padded", (1, 1), np.float32) is not first


def test_a_shared_workspace_takes_scratch_from_the_pool_and_keeps_zero_bordered_arrays_per_layer():
    pool, first, second = {}, {}, {}
    a = scratch(SharedWorkspace(first, pool), "cols", (3, 4), np.float32)
    b = scratch(SharedWorkspace(second, pool), "cols", (5, 4), np.float32)  # larger: the pool's block grows
    c = scratch(SharedWorkspace(first, pool), "cols", (5, 4), np.float32)
    assert np.shares_memory(b, c) and not np.shares_memory(a, b)
    assert "cols" in pool and "cols" not in first and "cols" not in second
    # two layers padding arrays of one shape differently must not see each other's interior as their border
    p = zero_bordered(SharedWorkspace(first, pool), "padded", (2, 4), np.float32)
    p[1:3] = 7
    q = zero_bordered(SharedWorkspace(second, pool), "padded", (2, 4), np.float32)
    assert not np.shares_memory(p, q) and not q.any()
    assert zero_bordered(SharedWorkspace(first, pool), "padded", (2, 4), np.float32) is p
    assert "padded:by_shape" in first and "padded:by_shape" not in pool


def test_what_a_layer_keeps_in_its_workspace_itself_stays_its_own_under_a_shared_workspace():
    pool, own = {}, {"table": np.arange(3)}
    shared = SharedWorkspace(own, pool)
    assert "table" in shared and shared["table"] is own["table"] and shared.get("missing") is None
    shared["lookup"] = np.ones(2)  # e.g. a user layer's cache: not scratch, so not handed to other layers
    assert "lookup" in own and "lookup" not in pool

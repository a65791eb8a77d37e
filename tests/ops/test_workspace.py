"""Scratch arrays: reused across calls, grown when needed; kept ones per owner, temporaries per thread."""
import numpy as np

import threading

from nnscratch.ops.workspace import SharedWorkspace, bordered, scratch, temporary, thread_pool


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


def test_temporaries_of_every_owner_in_one_thread_share_one_block_per_name():
    first, second = {}, {}
    a = temporary(first, "dout_rows", (4, 5), np.float32)
    b = temporary(second, "dout_rows", (2, 5), np.float32)
    assert np.shares_memory(a, b) and not first and not second and "dout_rows" in thread_pool()
    assert not np.shares_memory(temporary(first, "dx_rows", (4, 5), np.float32), a)
    assert not np.shares_memory(temporary(None, "dout_rows", (4, 5), np.float32), a)


def test_each_thread_has_its_own_pool_of_temporaries():
    mine = temporary({}, "col2im", (8,), np.float64)
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(temporary({}, "col2im", (8,), np.float64)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_a_bordered_temporary_is_zero_outside_its_interior_whatever_the_block_held():
    ws = {}
    temporary(ws, "padded", (2, 5, 6, 3), np.float32)[...] = 9
    a = bordered(ws, "padded", (2, 5, 6, 3), np.float32, 1, 3, 2, 2)
    interior = np.zeros(a.shape, bool)
    interior[:, 1:4, 2:4] = True
    assert not a[~interior].any() and (a[interior] == 9).all()    # the interior is the caller's to fill
    b = bordered(ws, "padded", (3, 4, 4, 2), np.float32, 0, 4, 1, 2)   # another layer's shape and padding
    assert np.shares_memory(a, b) and not b[:, :, [0, 3]].any()


def test_a_kept_bordered_array_is_the_layers_own_not_the_threads_shared_temporary():
    ws = {}
    scratch(ws, "padded", (2, 5, 6, 3), np.float32)[...] = 9
    kept = bordered(ws, "padded", (2, 5, 6, 3), np.float32, 1, 3, 2, 2, kept=True)
    assert np.shares_memory(kept, ws["padded"])                    # in the layer's workspace, as scratch() gives
    assert not np.shares_memory(kept, temporary(ws, "padded", (2, 5, 6, 3), np.float32))
    interior = np.zeros(kept.shape, bool)
    interior[:, 1:4, 2:4] = True
    assert not kept[~interior].any() and (kept[interior] == 9).all()


# --- found by mutation testing (docs/mutation-testing.md) ---

def test_arrays_have_the_dtype_asked_for_with_or_without_a_workspace():
    for ws in (None, {}):
        assert scratch(ws, "cols", (2, 3), np.float32).dtype == np.float32
        assert scratch(ws, "cols", (2, 3), "int32").dtype == np.int32
        assert temporary(ws, "padded", (2, 3), np.float32).dtype == np.float32
        assert temporary(ws, "padded", (2, 3), "int32").dtype == np.int32


def test_a_block_of_exactly_the_size_asked_for_is_reused():
    ws = {}
    a = scratch(ws, "cols", (4, 5), np.float32)
    b = scratch(ws, "cols", (5, 4), np.float32)
    assert b.shape == (5, 4) and np.shares_memory(a, b)


def test_a_shared_workspace_takes_scratch_and_temporaries_from_the_pool():
    pool, first, second = {}, {}, {}
    a = scratch(SharedWorkspace(first, pool), "cols", (3, 4), np.float32)
    b = scratch(SharedWorkspace(second, pool), "cols", (5, 4), np.float32)  # larger: the pool's block grows
    c = scratch(SharedWorkspace(first, pool), "cols", (5, 4), np.float32)
    assert np.shares_memory(b, c) and not np.shares_memory(a, b)
    assert "cols" in pool and "cols" not in first and "cols" not in second
    p = temporary(SharedWorkspace(first, pool), "padded", (2, 4), np.float32)
    assert np.shares_memory(p, temporary(SharedWorkspace(second, pool), "padded", (2, 4), np.float32))
    assert "padded" in pool and not np.shares_memory(p, temporary({}, "padded", (2, 4), np.float32))  # training's


def test_what_a_layer_keeps_in_its_workspace_itself_stays_its_own_under_a_shared_workspace():
    pool, own = {}, {"table": np.arange(3)}
    shared = SharedWorkspace(own, pool)
    assert "table" in shared and shared["table"] is own["table"] and shared.get("missing") is None
    shared["lookup"] = np.ones(2)  # e.g. a user layer's cache: not scratch, so not handed to other layers
    assert "lookup" in own and "lookup" not in pool

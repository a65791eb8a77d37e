"""Whole-batch sums and draws for a layer computing one chunk of a batch."""
import threading

import numpy as np
import pytest

from nnscratch.layers import context


def test_draws_for_a_chunk_are_its_rows_of_the_whole_batch_draw():
    whole_ctx = context.BatchContext(0, 10, seed=(1, 2, 3))
    with context.installed(whole_ctx.at_node(4)):
        whole = context.uniform(None, (10, 3, 2))
        second = context.uniform(None, (10, 3, 2))
    assert not np.array_equal(whole, second)  # a second draw of the same call is a new stream
    for start, stop in ((0, 6), (6, 10), (3, 4)):
        with context.installed(context.BatchContext(start, 10, seed=(1, 2, 3)).at_node(4)):
            np.testing.assert_array_equal(context.uniform(None, (stop - start, 3, 2)), whole[start:stop])
    with context.installed(context.BatchContext(0, 10, seed=(1, 2, 3)).at_node(5)):
        assert not np.array_equal(context.uniform(None, (10, 3, 2)), whole)  # another node, another stream


def test_outside_a_context_a_layer_is_its_whole_batch():
    a = np.arange(3.0)
    assert context.gather(a)[0] is a and context.batch_sum(a) is a
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(context.uniform(rng, (2, 2)), np.random.default_rng(0).random((2, 2)))


def test_batch_sum_adds_the_chunks_in_batch_order():
    parts = [np.array([1.0]), np.array([2.0]), np.array([4.0])]
    with context.installed(context.BatchContext(0, 3, exchange=lambda a: parts)):
        assert context.batch_sum(parts[0]).tolist() == [7.0]
    assert parts[0].tolist() == [1.0]  # the chunk's own array is not written into


# --- found by mutation testing (issue 21) -------------------------------------------------------------------


def test_a_context_keeps_its_arguments_and_starts_at_node_zero_draw_zero():
    ctx = context.BatchContext()
    assert (ctx.offset, ctx.total, ctx.seed, ctx.exchange, ctx.node, ctx.draw) == (0, None, None, None, 0, 0)
    def exchange(array):
        return [array]

    ctx = context.BatchContext(np.int64(3), 8, seed=[np.int64(1), 2.0, 3], exchange=exchange)
    assert type(ctx.offset) is int and ctx.offset == 3 and ctx.total == 8 and ctx.exchange is exchange
    assert ctx.seed == (1, 2, 3) and all(type(s) is int for s in ctx.seed)
    ctx.draw = 5
    assert ctx.at_node(2) is ctx and (ctx.node, ctx.draw) == (2, 0)


def test_installed_sets_the_context_of_this_thread_only_and_restores_the_one_before():
    outer, inner = context.BatchContext(), context.BatchContext(1)
    assert context.current() is None
    seen_elsewhere = []
    with context.installed(outer) as got:
        assert got is outer and context.current() is outer
        with pytest.raises(RuntimeError):
            with context.installed(inner):
                assert context.current() is inner
                thread = threading.Thread(target=lambda: seen_elsewhere.append(context.current()))
                thread.start()
                thread.join()
                raise RuntimeError("the context is restored on the way out of an error too")
        assert context.current() is outer
    assert context.current() is None and seen_elsewhere == [None]


def test_gather_asks_the_exchange_only_inside_a_split_batch():
    a = np.arange(2.0)
    with context.installed(context.BatchContext(0, 4)):
        assert context.gather(a)[0] is a and len(context.gather(a)) == 1
    with context.installed(context.BatchContext(0, 4, exchange=lambda x: [x, x + 1])):
        parts = context.gather(a)
    assert parts[0] is a and parts[1].tolist() == [1.0, 2.0]


def test_batch_sum_lets_an_exchange_that_sums_do_it_in_one_call():
    class Summing:
        def __call__(self, array):
            raise AssertionError("a summing exchange is not asked to gather")

        def sum(self, array):
            return array * 10

    with context.installed(context.BatchContext(0, 4, exchange=Summing())):
        assert context.batch_sum(np.array([1.0, 2.0])).tolist() == [10.0, 20.0]
    single = np.array([1.0])
    with context.installed(context.BatchContext(0, 4, exchange=lambda x: [x])):
        assert context.batch_sum(single) is single
    parts = [np.array([1.0]), np.array([2.0])]
    with context.installed(context.BatchContext(0, 4, exchange=lambda x: parts)):
        assert context.batch_sum(parts[0]).tolist() == [3.0]
    assert parts[0].tolist() == [1.0]


def test_uniform_without_a_generator_outside_a_seeded_context_is_refused_word_for_word():
    message = r"^uniform needs a generator outside a seeded batch context$"
    with pytest.raises(ValueError, match=message):
        context.uniform(None, (2, 3))
    with context.installed(context.BatchContext(0, 2)):  # a context without a seed draws from the layer's rng
        with pytest.raises(ValueError, match=message):
            context.uniform(None, (2, 3))
        np.testing.assert_array_equal(context.uniform(np.random.default_rng(4), (2, 3)),
                                      np.random.default_rng(4).random((2, 3)))


def test_a_seeded_draw_is_the_stream_named_by_seed_node_and_draw():
    seed, node = (7, 1, 2), 3
    ctx = context.BatchContext(0, 4, seed=seed).at_node(node)
    with context.installed(ctx):
        first = context.uniform(None, [np.int64(4), 2])
        second = context.uniform(None, (4, 2))
    assert ctx.draw == 2 and first.shape == (4, 2)
    for draw, got in enumerate((first, second)):
        bits = np.random.PCG64(np.random.SeedSequence(seed + (node, draw)))
        np.testing.assert_array_equal(got, np.random.Generator(bits).random((4, 2)))


def _whole_draw(shape):
    with context.installed(context.BatchContext(0, shape[0], seed=(1, 1, 1))):
        return context.uniform(None, shape)


def test_a_chunk_of_a_vector_draw_and_of_a_3d_draw_is_its_rows_of_the_whole():
    with context.installed(context.BatchContext(4, 6, seed=(1, 1, 1))):
        np.testing.assert_array_equal(context.uniform(None, (2,)), _whole_draw((6,))[4:])
    with context.installed(context.BatchContext(1, 6, seed=(1, 1, 1))):
        np.testing.assert_array_equal(context.uniform(None, (2, 1, 3)), _whole_draw((6, 1, 3))[1:3])

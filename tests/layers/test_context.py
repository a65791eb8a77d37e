"""Whole-batch sums and draws for a layer computing one chunk of a batch."""
import numpy as np

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

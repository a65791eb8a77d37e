import os

import numpy as np
import pytest

import nnscratch
from nnscratch.engine import parallel
from nnscratch.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Softmax
from nnscratch.engine.parallel import DataParallel, chunk_bounds, worthwhile


@pytest.mark.parametrize("n, parts", [(10, 3), (128, 2), (1, 4), (5, 5), (7, 2)])
def test_chunks_cover_the_batch_in_order(n, parts):
    bounds = chunk_bounds(n, parts)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1 and len(bounds) == min(n, parts)


def cnn(threads, seed=0, dropout=0.0):
    model = nnscratch.Model([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), ReLU(), MaxPool2D(2), Flatten(),
                             Dropout(dropout), Dense(3), Softmax()], seed=seed, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    return model


@pytest.fixture
def always_parallel(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)


def data(n=96):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, n)


def test_chunked_gradients_add_up_to_the_batch_gradient(always_parallel):
    x, y = data(10)
    serial, threaded = cnn(1), cnn(2)
    output, logits = serial.forward(x, training=True)
    serial.backward(output, logits, y)
    with DataParallel(threaded, 2) as runner:
        before = {k: v.copy() for k, v in threaded.get_weights().items()}
        threaded.optimizer.learning_rate = 0.0  # keep the weights; only the gradients are compared
        logs = runner.train_step([x], [y])
    for a, b in zip(serial.layers, threaded.layers):
        for k in a.grads:
            np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-5, atol=1e-7)
    assert logs["loss"] == pytest.approx(serial.compute_loss(output, logits, y), rel=1e-6)
    for k, v in threaded.get_weights().items():
        np.testing.assert_array_equal(v, before[k])


def test_threaded_training_is_reproducible_and_matches_serial_closely(always_parallel):
    x, y = data()
    runs = []
    for threads in (2, 2, 1):
        model = cnn(threads, dropout=0.2)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        runs.append(model.get_weights())
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])       # same threads: bit for bit
    assert any(not np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])  # dropout streams differ


def test_threaded_training_without_dropout_stays_close_to_serial(always_parallel):
    x, y = data()
    a, b = cnn(1), cnn(2)
    a.fit(x, y, epochs=2, batch_size=32, verbose=0)
    b.fit(x, y, epochs=2, batch_size=32, verbose=0)
    for k, v in a.get_weights().items():
        np.testing.assert_allclose(b.get_weights()[k], v, rtol=1e-4, atol=1e-5)


def test_threaded_predict_and_validate_equal_serial(always_parallel):
    x, y = data(50)
    a, b = cnn(1), cnn(3)
    np.testing.assert_allclose(b.predict(x, batch_size=16), a.predict(x, batch_size=16), rtol=1e-6, atol=1e-7)
    assert b.validate(x, y)["loss"] == pytest.approx(a.validate(x, y)["loss"], rel=1e-6)


def test_small_batches_of_small_models_stay_in_one_thread():
    model = nnscratch.Model([Dense(4, input_shape=(2,)), Softmax()], threads=2)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert not worthwhile(model, 32, 2) and not worthwhile(model, 1000, 1)


def test_blas_threads_are_restored_after_fit(always_parallel):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    x, y = data(32)
    cnn(2).fit(x, y, epochs=1, batch_size=32, verbose=0)
    after = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert before == after


def test_thread_count_is_validated():
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        nnscratch.Model(threads=0)


def test_saved_and_resumed_threaded_training_matches_an_unbroken_run(always_parallel, tmp_path):
    x, y = data()
    unbroken = cnn(2, dropout=0.2)
    unbroken.fit(x, y, epochs=3, batch_size=32, verbose=0)
    first = cnn(2, dropout=0.2)
    first.fit(x, y, epochs=2, batch_size=32, verbose=0)
    first.save(tmp_path / "m.h5")
    resumed = nnscratch.load_model(tmp_path / "m.h5")
    resumed.threads = 2
    resumed.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for k, v in unbroken.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[k], v)


def test_a_step_on_an_index_equals_a_step_on_the_gathered_batch(always_parallel):
    x, y = data(12)
    index = np.array([7, 0, 11, 3, 3, 5, 9, 1, 10])
    for part in (index, slice(2, 11), slice(None, -3), slice(1, None, 2)):
        gathered, indexed = cnn(2), cnn(2)
        with DataParallel(gathered, 2) as a, DataParallel(indexed, 2) as b:
            logs_a = a.train_step([x[part]], [y[part]])
            logs_b = b.train_step([x], [y], part)
        states_a, states_b = logs_a.pop("_states"), logs_b.pop("_states")   # metric statistics: arrays
        assert logs_a == logs_b and states_a.keys() == states_b.keys()
        for k in states_a:
            np.testing.assert_array_equal(states_a[k], states_b[k])
        for la, lb in zip(gathered.layers, indexed.layers):
            for k in la.params:
                np.testing.assert_array_equal(lb.params[k], la.params[k])


def test_every_thread_replica_has_its_own_scratch_arrays(always_parallel):
    x, y = data(8)
    model = cnn(2)
    model.train_on_batch(x, y)  # fills the layers' workspaces before the replicas are made
    with DataParallel(model, 2) as runner:
        runner.train_step([x], [y])
        for original, twin in zip(model.layers, [i for i in runner.instance_sets[1] if i is not None]):
            assert twin.workspace is not original.workspace
            mine = [a for v in twin.workspace.values() for a in (v.values() if isinstance(v, dict) else [v])
                    if isinstance(a, np.ndarray)]
            theirs = [a for v in original.workspace.values() for a in (v.values() if isinstance(v, dict) else [v])
                      if isinstance(a, np.ndarray)]
            assert not any(np.shares_memory(a, b) for a in mine for b in theirs)


def test_a_chunk_that_fails_stops_the_others_without_a_hang():
    import threading

    from nnscratch import Input
    from nnscratch.layers import BatchNormalization, Layer

    class FailsInSecondChunk(Layer, register=False):
        def forward(self, x, training=False):
            if threading.current_thread().name.startswith("nnscratch"):  # the pool's thread: chunk 1
                raise MemoryError("chunk 1 ran out of memory")
            return x

        def backward(self, dout):
            return dout

    inp = Input((4,))
    out = Softmax()(Dense(3)(BatchNormalization()(FailsInSecondChunk()(inp))))  # the other chunk waits in BN
    model = nnscratch.Model(inp, out, seed=0, threads=2)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    x = np.ones((8, 4), np.float32)
    raised = []

    def step():
        with DataParallel(model, 2) as runner:
            try:
                runner.train_step([x], [np.zeros(8, int)])
            except MemoryError as e:
                raised.append(e)

    worker = threading.Thread(target=step, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a deadlock would keep it alive
    assert not worker.is_alive(), "a failing chunk left the other one waiting"
    assert [str(e) for e in raised] == ["chunk 1 ran out of memory"]


def test_chunks_of_unequal_size_are_weighted_by_their_size(always_parallel):
    # 11 samples on 2 threads: chunks of 6 and 5; weighting them equally was off by 7e-2 (issue 21)
    x, y = data(11)
    serial, threaded = cnn(1), cnn(2)
    serial.optimizer.learning_rate = threaded.optimizer.learning_rate = 0.0
    serial_logs = serial.train_on_batch(x, y)
    with DataParallel(threaded, 2) as runner:
        logs = runner.train_step([x], [y])
    for a, b in zip(serial.layers, threaded.layers):
        for k in a.grads:
            np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-4, atol=1e-6, err_msg=f"{a.name}/{k}")
    from nnscratch.metrics import LogTally
    logs = LogTally(threaded._metric_table()).add(logs, 11)  # metric states (counts) into values
    assert logs["loss"] == pytest.approx(serial_logs["loss"], rel=1e-6)
    assert logs["accuracy"] == pytest.approx(serial_logs["accuracy"])


def _mlp_weights_after_steps(threads=2, steps=3, frozen=False, **layer_options):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 64)).astype(np.float32), rng.integers(0, 3, 16)
    model = nnscratch.Model([Dense(48, input_shape=(64,), **layer_options), ReLU(), Dense(3), Softmax()], seed=0,
                            threads=threads)
    model.layers[0].trainable = not frozen
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    with DataParallel(model, threads) as runner:
        for _ in range(steps):
            runner.train_step([x], [y])
    return model.get_weights()


def test_the_optimizer_step_split_over_the_threads_gives_the_same_bits(always_parallel, monkeypatch):
    import nnscratch.optimizers as optimizers

    # the three ways of a threaded step: summed and stepped in the calling thread, stepped in ranges by
    # run_all after the sum, and summed and stepped by the chunks' own threads (the default)
    ranged, splits = [], []
    step_in_ranges, run_all = optimizers.Optimizer.step_in_ranges, DataParallel.run_all
    monkeypatch.setattr(optimizers.Optimizer, "step_in_ranges",
                        lambda self, items: ranged.append(1) or step_in_ranges(self, items))
    monkeypatch.setattr(DataParallel, "run_all", lambda self, fs: splits.append(len(fs)) or run_all(self, fs))
    in_threads = _mlp_weights_after_steps()
    assert len(ranged) == 3 and splits == []
    monkeypatch.setattr(DataParallel, "_update_in_threads", lambda self: None)
    for min_split, expected in ((10**12, []), (0, [2, 2, 2])):
        monkeypatch.setattr(optimizers, "MIN_SPLIT_ELEMENTS", min_split)
        splits.clear()
        weights = _mlp_weights_after_steps()
        assert splits == expected
        for key in weights:
            np.testing.assert_array_equal(weights[key], in_threads[key])


@pytest.mark.parametrize("options", [{"kernel_regularizer": "l2"}, {"frozen": True}])
def test_a_step_with_a_regularizer_or_a_frozen_layer_is_summed_in_the_calling_thread(always_parallel, monkeypatch,
                                                                                     options):
    calls = []
    original = DataParallel._update_in_threads
    monkeypatch.setattr(DataParallel, "_update_in_threads", lambda self: calls.append(original(self)) or calls[-1])
    _mlp_weights_after_steps(steps=1, **options)
    assert calls == [None]


def test_the_gradients_summed_in_the_threads_are_left_in_the_layers_as_the_serial_sum_leaves_them(always_parallel):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((10, 64)).astype(np.float32), rng.integers(0, 3, 10)
    grads = []
    for in_threads in (True, False):
        model = nnscratch.Model([Dense(8, input_shape=(64,)), ReLU(), Dense(3), Softmax()], seed=0, threads=3)
        model.set(loss="categorical_crossentropy", optimizer="sgd")
        model.finalize()
        with DataParallel(model, 3) as runner:
            if not in_threads:
                runner._update_in_threads = lambda: None
            runner.train_step([x], [y])
        grads.append([g.copy() for _, _, g in model.trainable_params()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_blas_is_held_to_one_thread_inside_and_restored_after_by_one_reused_controller():
    from threadpoolctl import threadpool_info

    from nnscratch.engine.parallel import blas_single_thread

    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    for _ in range(2):
        with blas_single_thread():
            assert blas_threads() and set(blas_threads()) == {1}
        assert blas_threads() == before
    assert parallel._blas_controller is not None  # made once: scanning the loaded libraries costs ~0.2 ms a call
    controller = parallel._blas_controller
    with blas_single_thread():
        pass
    assert parallel._blas_controller is controller



@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
def test_a_process_forked_inside_the_limit_starts_no_blas_thread_when_it_enters_it_again():
    # After a fork OpenBLAS's thread server is down, and setting any thread count (even 1) starts a thread that
    # spins for ~0.1 s: a worker process that set the limit again ran its first ~10 LeNet-5 steps at half speed
    from nnscratch.engine.parallel import blas_single_thread

    a = np.ones((200, 200), np.float32)
    with blas_single_thread():
        pid = os.fork()
        if pid == 0:  # the child reports its thread count through its exit status
            code = 99
            try:
                with blas_single_thread():
                    a @ a
                code = len(os.listdir("/proc/self/task"))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1

def test_the_blas_controller_is_made_again_after_an_import_which_may_bring_its_own_blas(monkeypatch):
    # torch, SciPy or jax imported after the first fit load BLAS libraries of their own; a controller kept from
    # before would not know them, and threads=1 would let them use every core
    import sys
    import types

    from nnscratch.engine.parallel import blas_single_thread

    with blas_single_thread():
        pass
    controller = parallel._blas_controller
    monkeypatch.setitem(sys.modules, "a_module_imported_since", types.ModuleType("a_module_imported_since"))
    with blas_single_thread():
        pass
    assert parallel._blas_controller is not controller
    again = parallel._blas_controller
    with blas_single_thread():
        pass
    assert parallel._blas_controller is again

def test_the_split_optimizer_step_runs_under_the_callers_numpy_error_state(always_parallel):
    seen = []
    model = nnscratch.Model([Dense(3, input_shape=(4,)), Softmax()], seed=0, threads=2)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    with DataParallel(model, 2) as runner, np.errstate(over="ignore", invalid="raise"):
        runner.run_all([lambda: seen.append(np.geterr()) for _ in range(2)])
    assert len(seen) == 2 and all(e["over"] == "ignore" and e["invalid"] == "raise" for e in seen)


# --- found by mutation testing (docs/mutation-testing.md) ---

@pytest.mark.parametrize("cores, env, expected", [
    (6, {"OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, 3),        # two ranks on this host share its six cores
    (8, {"MPI_LOCALNRANKS": "2", "PMIX_LOCAL_SIZE": "4"}, 4),   # the first variable set decides
    (6, {"PMIX_LOCAL_SIZE": "1"}, 4),                   # one rank: all cores, capped at MAX_THREADS
    (6, {"MPI_LOCALNRANKS": "two"}, 4),                 # not a number: ignored
    (1, {}, 1),
    (3, {"MPI_LOCALNRANKS": "8"}, 1),                   # more ranks than cores: still one thread
])
def test_default_threads_shares_the_cores_among_the_ranks_on_this_host(monkeypatch, cores, env, expected):
    for name in parallel._LOCAL_RANKS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(cores)))
    got = parallel.default_threads()
    assert got == expected and type(got) is int


@pytest.mark.parametrize("cpu_count, expected", [(3, 3), (None, 1)])
def test_default_threads_without_an_affinity_mask_counts_the_cpus(monkeypatch, cpu_count, expected):
    for name in parallel._LOCAL_RANKS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delattr(parallel.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: cpu_count)
    assert parallel.default_threads() == expected


def dense_model(threads=1):
    # per sample: 5 inputs + 10 Dense outputs + 10 Softmax outputs = 25 activations
    model = nnscratch.Model([Dense(10, input_shape=(5,)), Softmax()], seed=0, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


@pytest.mark.parametrize("minimum, batch, expected", [(100, 8, True), (100, 7, False), (80, 7, False),
                                                      (75, 7, True)])
def test_worthwhile_counts_whole_samples_per_chunk_against_the_minimum(monkeypatch, minimum, batch, expected):
    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", minimum)
    assert worthwhile(dense_model(), batch, 2) is expected     # (batch // 2) * 25 >= minimum


def test_split_every_batch_splits_any_batch_of_two_or_more():
    model = dense_model()
    assert not worthwhile(model, 2, 2)
    with parallel.split_every_batch():
        assert worthwhile(model, 2, 2) is True
        assert worthwhile(model, 1, 2) is False and worthwhile(model, 2, 1) is False
    assert not worthwhile(model, 2, 2)


def test_combine_logs_of_one_chunk_and_of_several():
    assert parallel.combine_logs([{"loss": 2.5, "_states": {"correct": 3}}], [4]) == {"loss": 2.5,
                                                                                      "_states": {"correct": 3}}
    logs = parallel.combine_logs([{"loss": 1.0, "_states": {"correct": 3}}, {"loss": 4.0, "_states": {"correct": 1}}],
                                 [3, 1])
    assert logs == {"loss": pytest.approx(1.75), "_states": {"correct": 4}}


def test_blas_single_thread_holds_blas_to_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="a declared dependency; skipped only if broken")
    with parallel.blas_single_thread():
        pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert pools and all(p["num_threads"] == 1 for p in pools)


def test_exchange_hands_every_chunk_all_arrays_in_chunk_order_round_after_round():
    import threading
    exchange = parallel.Exchange(3)
    got = {}

    def chunk(r):
        hand_in = exchange.for_chunk(r)
        got[r] = [hand_in(f"{r}:{k}") for k in range(3)]

    threads = [threading.Thread(target=chunk, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    expected = [[f"{r}:{k}" for r in range(3)] for k in range(3)]
    assert got == {0: expected, 1: expected, 2: expected}


def bn_dropout_model(threads):
    from nnscratch.layers import BatchNormalization
    model = nnscratch.Model([Dense(6, input_shape=(4,)), BatchNormalization(), ReLU(), Dropout(0.5), Dense(3),
                             Softmax()], seed=0, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


def _gradients(model, runner, x, y, **kwargs):
    for layer in model.layers:
        for g in layer.grads.values():
            g[...] = 0
    logs, sizes = runner.compute_gradients([x], [y], seed=(0, 1, 2), **kwargs)
    return {f"{layer.name}/{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()}, sizes


@pytest.mark.parametrize("exchange", [None, parallel.Exchange])   # the default, or a factory (as MPI passes one)
def test_chunks_of_one_batch_share_batch_statistics_and_random_draws(exchange):
    # BatchNormalization needs the whole batch's mean and variance, and Dropout's mask is drawn for the whole
    # batch and sliced: two chunks must give the gradient of one
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    model = bn_dropout_model(2)
    with DataParallel(model, 2, adaptive=True) as whole, DataParallel(model, 2) as split:
        one, sizes_one = _gradients(model, whole, x, y)          # 10 samples are not worth two threads
        two, sizes_two = _gradients(model, split, x, y, exchange=exchange)
    assert sizes_one == [10] and sizes_two == [5, 5]
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-4, atol=1e-6)   # float32, sums in another order


def test_sample_weights_follow_their_samples_into_the_chunks():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    w = rng.uniform(0.0, 2.0, 9)
    model = dense_model()
    with DataParallel(model, 2, adaptive=True) as whole, DataParallel(model, 2) as split:
        one, _ = _gradients(model, whole, x, y, weights=[w])
        two, _ = _gradients(model, split, x, y, weights=[w])
        unweighted, _ = _gradients(model, split, x, y)
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(unweighted[k], one[k]) for k in one)


def test_train_step_applies_the_sample_weights():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    w = np.r_[np.zeros(4), np.ones(4)]
    weighted, plain = dense_model(2), dense_model(2)
    with DataParallel(weighted, 2) as runner:
        runner.train_step([x], [y], weights=[w])
    with DataParallel(plain, 2) as runner:
        runner.train_step([x], [y])
    assert not np.allclose(weighted.get_weights()["dense_1/kernel"], plain.get_weights()["dense_1/kernel"])


def test_worthwhile_in_a_thread_that_never_split_every_batch():
    import threading
    model, answers = dense_model(), []
    thread = threading.Thread(target=lambda: answers.append(worthwhile(model, 2, 2)))
    thread.start()
    thread.join(timeout=30)
    assert answers == [False]


def test_an_error_inside_the_runner_block_is_not_swallowed():
    with pytest.raises(KeyError, match="raised in the block"):
        with DataParallel(dense_model(2), 2):
            raise KeyError("raised in the block")


def test_a_share_of_a_larger_batch_scales_the_gradient_by_its_share():
    # another process computes the other half: these 6 samples are half of a batch of 12
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    model = dense_model()
    with DataParallel(model, 2) as runner:
        alone, _ = _gradients(model, runner, x, y)
        half, _ = _gradients(model, runner, x, y, total=12)
        no_weights, _ = _gradients(model, runner, x, y, weights=[None])
    for k in alone:
        np.testing.assert_allclose(half[k], alone[k] / 2, rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(no_weights[k], alone[k])


def test_inference_in_chunks_uses_the_moving_statistics_of_the_latest_step():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    model = bn_dropout_model(2)
    with DataParallel(model, 2) as runner:
        runner.forward([x])                     # the replicas now hold the initial moving statistics
        runner.train_step([x], [y], seed=(0, 0, 0))
        chunked = runner.forward([x])[0]
    whole = model.plan.infer([x], model.plan.instances)[0]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)



def test_two_processes_halves_of_a_batch_add_up_to_the_batch_with_its_dropout_masks():
    # found by mutation testing: a default offset other than 0 shifted the first samples' random draws.
    # One process computing a whole batch must equal two computing its halves (the first at the default
    # offset, the second at offset 5 of 10), dropout masks included.
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    model = nnscratch.Model([Dense(6, input_shape=(4,)), ReLU(), Dropout(0.5), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    with DataParallel(model, 2, adaptive=True) as runner:   # batches this small stay in one thread
        whole, _ = _gradients(model, runner, x, y)
        first, _ = _gradients(model, runner, x, y, index=slice(0, 5), total=10)
        second, _ = _gradients(model, runner, x, y, index=slice(5, 10), offset=5, total=10)
        shifted, _ = _gradients(model, runner, x, y, index=slice(0, 5), offset=1, total=10)
    for k in whole:
        np.testing.assert_allclose(first[k] + second[k], whole[k], rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(shifted[k] + second[k], whole[k], rtol=1e-5, atol=1e-7) for k in whole)

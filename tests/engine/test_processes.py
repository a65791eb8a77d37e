"""Worker processes (``Model(parallel="processes")``): the threads' numbers bit for bit, failures that name the
worker and leave no process behind."""
import copy
import gc
import multiprocessing
import os
import signal
import sys
import time
import types

import numpy as np
import pytest

import nnscratch
from nnscratch.callbacks import Callback
from nnscratch.engine import parallel, processes
from nnscratch.engine.processes import WorkerError, fork_available
from nnscratch.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU,
                              Softmax)

pytestmark = pytest.mark.skipif(not fork_available(), reason="worker processes are forked: Linux only")


@pytest.fixture(autouse=True)
def always_parallel(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ACTIVATIONS_PER_CHUNK", 0)
    monkeypatch.setattr(parallel, "MIN_MACS_PER_CHUNK", 0)


@pytest.fixture(autouse=True)
def no_worker_outlives_its_model():
    gc.collect()  # the models of earlier tests, elsewhere, with their workers
    yield
    gc.collect()  # the test's models are gone: so must their workers be
    assert workers() == []


def workers():
    return [p for p in multiprocessing.active_children() if p.name.startswith("nnscratch-worker-")]


class SeeWorkers(Callback):
    """Records the pids of the worker processes alive at the end of every batch."""

    def on_train_begin(self, logs=None):
        self.seen = []

    def on_batch_end(self, step, logs=None):
        own = getattr(self.model, "_process_workers", None)
        self.seen.append(sorted(p.pid for p in own.processes) if own is not None else [])


def cnn(threads, engine, extra=(), seed=0):
    model = nnscratch.Model([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), BatchNormalization(), ReLU(),
                             *extra, MaxPool2D(2), Flatten(), Dropout(0.2), Dense(3), Softmax()],
                            seed=seed, threads=threads, parallel=engine)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    return model


def data(n=100):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("threads", [2, 3])
def test_processes_give_the_threads_numbers_bit_for_bit(threads):
    """BatchNormalization's exchange, dropout's draws, shuffled batches, a short last batch and sample weights:
    the weights, state, optimizer state and logs of processes equal those of threads exactly."""
    x, y = data()
    weights = np.random.default_rng(1).uniform(0.5, 2, len(x))
    runs = []
    for engine in ("threads", "processes"):
        model = cnn(threads, engine)
        seen = SeeWorkers()
        history = model.fit(x, y, epochs=2, batch_size=32, sample_weight=weights, validation_split=0.1, verbose=0,
                            callbacks=[seen])
        runs.append((model.get_weights(), model.optimizer.get_state(), history.history))
        assert all(len(pids) == (threads - 1 if engine == "processes" else 0) for pids in seen.seen)
    (w_t, o_t, h_t), (w_p, o_p, h_p) = runs
    assert w_t.keys() == w_p.keys()
    for k in w_t:
        np.testing.assert_array_equal(w_p[k], w_t[k], err_msg=k)
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h_p[k] == h_t[k], k
    assert repr(o_p) == repr(o_t)


def test_the_workers_serve_the_next_fit_and_stop_with_their_model():
    x, y = data(64)
    model = cnn(2, "processes")
    seen = SeeWorkers()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
    first = seen.seen[0]
    model.optimizer.learning_rate = 0.5 * model.optimizer.learning_rate  # the main process's business alone
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
    assert seen.seen[0] == first and len(first) == 1  # no new fork
    assert copy.deepcopy(model)._process_workers is None  # a copy forks its own
    model = seen = None  # the callback held the model too
    gc.collect()
    assert workers() == []


class Scaled(Layer, register=False):
    """Multiplies by ``scale``, an attribute outside its config (a user's layer may keep one)."""

    scale = 1.0

    def forward(self, x, training=False):
        return x * self.scale

    def backward(self, dout):
        return dout * self.scale


@pytest.mark.parametrize("change", ["dropout rate", "loss", "threads", "frozen layer", "attribute outside config"])
def test_a_model_changed_between_fits_gets_new_workers_with_the_threads_numbers(change):
    x, y = data(64)
    y = np.eye(3, dtype=np.float32)[y]  # one-hot, which mean squared error takes too
    runs = []
    for engine in ("threads", "processes"):
        model = cnn(3 if change != "threads" else 2, engine, extra=[Scaled()] if change.startswith("attr") else ())
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        before = [p.pid for p in workers()]
        if change == "dropout rate":
            next(layer for layer in model.layers if isinstance(layer, Dropout)).rate = 0.5
        elif change == "loss":
            model.set(loss="mse")
            model.finalize()
        elif change == "threads":
            model.threads = 3
        elif change == "attribute outside config":
            next(layer for layer in model.layers if isinstance(layer, Scaled)).scale = 2.0
        else:
            model.layers[0].trainable = False
        seen = SeeWorkers()
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
        if engine == "processes":
            assert not set(seen.seen[0]) & set(before) and len(seen.seen[0]) == 2
        runs.append(model.get_weights())
        model = None
        gc.collect()
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)


def test_idle_workers_retire_and_the_next_step_forks_new_ones(monkeypatch):
    monkeypatch.setattr(processes, "IDLE_SECONDS", 0.3)
    x, y = data(64)
    runs = []
    for engine in ("threads", "processes"):
        model = cnn(2, engine)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        deadline = time.monotonic() + 10
        while workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers() == []  # retired by themselves
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        runs.append(model.get_weights())
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)


class RowsSeen(Layer, register=False):  # the suite's all-layer checks must not see it
    """A test layer that gathers every chunk's row count through the batch exchange (as a user's layer may)
    and scales its input by the batch's total rows over the chunk's."""

    def forward(self, x, training=False):
        if training:
            counts = self.batch_gather(np.array([len(x)], np.int64))
            self._factor = float(sum(int(c[0]) for c in counts)) / len(x)
        else:
            self._factor = 1.0
        return x * self._factor

    def backward(self, dout):
        return dout * self._factor


def test_a_layers_own_gather_reaches_every_process():
    x, y = data(64)
    runs = []
    for engine in ("threads", "processes"):
        model = cnn(2, engine, extra=[RowsSeen()])
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        runs.append(model.get_weights())
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)


def test_auto_chooses_for_a_data_source_at_its_first_batch():
    x, y = data(96)

    def batches():
        for a in range(0, 96, 32):
            yield x[a:a + 32], y[a:a + 32]

    runs = []
    for engine in ("threads", "auto"):
        model, seen = cnn(2, engine), SeeWorkers()
        model.fit(batches(), epochs=1, verbose=0, callbacks=[seen], validation_data=(x[:20], y[:20]))
        runs.append(model.get_weights())
        assert all(len(pids) == (engine == "auto") for pids in seen.seen)
        model = seen = None
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)
    dense, seen = mlp(), SeeWorkers()
    dense.fit(((a.reshape(len(a), 64), b) for a, b in batches()), epochs=1, verbose=0, callbacks=[seen])
    assert seen.seen == [[], [], []]


def test_a_data_source_with_growing_batches_restarts_the_workers_with_room():
    x, y = data(120)

    def batches():
        # each larger than the last; one sample cannot be split, and runs in the main process alone
        for a, b in ((0, 1), (1, 10), (10, 30), (30, 70), (70, 120)):
            yield x[a:b], y[a:b]

    runs = []
    for engine in ("threads", "processes"):
        model = cnn(2, engine)
        seen = SeeWorkers()
        model.fit(batches(), epochs=1, verbose=0, callbacks=[seen])
        runs.append(model.get_weights())
    assert len({tuple(pids) for pids in seen.seen}) > 1  # a batch larger than the room made new workers
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)


class FailsInChunk(Layer, register=False):
    """Raises in the forward of the chunk that starts at row ``offset`` of the batch (0: the main process's)."""

    def __init__(self, offset=1, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def forward(self, x, training=False):
        from nnscratch.layers.context import current
        context = current()
        if training and context is not None and context.offset == self.offset:
            raise ArithmeticError(f"chunk at row {self.offset} cannot go on")
        return x

    def backward(self, dout):
        return dout


def test_a_worker_that_raises_stops_the_step_with_its_traceback_and_the_next_fit_works():
    x, y = data(64)
    model = cnn(2, "processes", extra=[FailsInChunk(offset=32)])
    with pytest.raises(WorkerError) as caught:
        model.fit(x, y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    text = str(caught.value)
    assert "worker process 1 of 2" in text and "ArithmeticError: chunk at row 32 cannot go on" in text
    assert "Its traceback" in text and "in forward" in text
    assert workers() == []
    model.layers[3].offset = -1  # never fails now
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert len(workers()) == 1


def test_an_error_in_the_main_process_is_raised_as_it_is_and_the_workers_stop():
    x, y = data(64)
    model = cnn(2, "processes", extra=[FailsInChunk(offset=0)])
    with pytest.raises(ArithmeticError, match="chunk at row 0"):
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert workers() == []


class KillWorker(Callback):
    def on_batch_end(self, step, logs=None):
        if step == 1:
            for process in workers():
                os.kill(process.pid, signal.SIGKILL)


def test_a_worker_killed_mid_fit_is_named_with_its_signal():
    x, y = data(128)
    model = cnn(2, "processes")
    with pytest.raises(WorkerError, match=r"worker process 1 of 2 \(pid \d+\) died with exit code -9"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[KillWorker()])
    assert workers() == []


def test_a_worker_killed_between_fits_is_reported_at_the_next_and_the_one_after_forks_anew():
    x, y = data(64)
    model = cnn(2, "processes")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    (worker,) = model._process_workers.processes
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    with pytest.raises(WorkerError, match="died with exit code -9"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert workers() == []
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(workers()) == 1


def test_a_distributed_fit_refuses_parallel_processes_before_any_mpi():
    x, y = data(16)
    with pytest.raises(ValueError, match="parallel='processes' is for training in one process"):
        cnn(2, "processes").fit(x, y, epochs=1, batch_size=8, verbose=0, distributed=True)


def test_parallel_must_name_an_engine():
    with pytest.raises(ValueError, match="parallel must be one of 'auto', 'threads', 'processes', got 'fork'"):
        nnscratch.Model([Dense(2, input_shape=(3,))], parallel="fork")
    model = nnscratch.Model([Dense(2, input_shape=(3,))])
    assert model.parallel == "auto"


def mlp():
    model = nnscratch.Model([Dense(256, input_shape=(64,)), ReLU(), Dense(3), Softmax()], seed=0, threads=2)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    return model


def test_auto_takes_processes_for_a_cnn_and_threads_for_an_mlp_or_beside_jax(monkeypatch):
    x, y = data(64)
    model, seen = cnn(2, "auto"), SeeWorkers()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
    assert len(seen.seen[0]) == 1  # a chunk's activations (16 x 8 x 8 x 4 x ...) outnumber its 167 parameters
    model = seen = None
    dense, seen = mlp(), SeeWorkers()
    dense.fit(x.reshape(64, 64), y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
    assert seen.seen[0] == []  # no feature maps: BLAS releases the GIL, threads do as well
    assert not processes.processes_pay(dense, 1 << 20, 2)  # however large the batch
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    model, seen = cnn(2, "auto"), SeeWorkers()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[seen])
    assert seen.seen[0] == []


def test_parallel_processes_is_refused_where_there_is_no_fork(monkeypatch):
    import nnscratch.model as model_module
    monkeypatch.setattr(model_module, "fork_available", lambda: False)
    with pytest.raises(ValueError, match="Linux only; use parallel='threads'"):
        nnscratch.Model([Dense(2, input_shape=(3,))], parallel="processes")


def exchange_alone():
    """One process's side of an exchange with itself only (one party), to see what it refuses."""
    model = cnn(1, "threads")
    shared = processes._Shared(model, 1, 64)
    return processes._Exchange(shared, 0, lambda: None)


def test_the_exchange_passes_numbers_and_refuses_objects_and_floods():
    exchange = exchange_alone()
    a = np.arange(6.0).reshape(2, 3)
    assert exchange(a)[0] is a
    from nnscratch.layers.context import BatchContext, batch_sum, installed
    with installed(BatchContext(0, 2, None, exchange)):
        np.testing.assert_array_equal(batch_sum(a), a)
    with pytest.raises(TypeError, match="only numeric arrays.*parallel='threads'"):
        exchange(np.array([object()]))
    with pytest.raises(ValueError, match=r"at most \d+ bytes pass at once.*parallel='threads'"):
        exchange(np.zeros(processes.SLOT_BYTES // 8 + 1))


def test_messages_carry_a_long_traceback_cut_from_its_start():
    area = np.zeros(processes.MESSAGE_BYTES, np.uint8)
    processes._send(area, {"error": "E", "traceback": "x" * processes.MESSAGE_BYTES + "the end"})
    message = processes._receive(area)
    assert message["error"] == "E" and message["traceback"].startswith("...") and message["traceback"].endswith(
        "the end")


def _fit_in_a_pool_worker(parallel):
    x, y = data(64)
    model = cnn(2, parallel)
    try:
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    except RuntimeError as e:
        return str(e)
    return getattr(model, "_process_workers", None) is None  # True: it trained on threads


def test_in_a_pool_worker_auto_trains_on_threads_and_processes_says_why_not():
    # a Pool worker is daemonic, and multiprocessing forbids a daemonic process to have children
    with multiprocessing.get_context("fork").Pool(1) as pool:
        auto, processes_ = pool.map(_fit_in_a_pool_worker, ["auto", "processes"])
    assert auto is True
    assert "cannot start worker processes from" in processes_ and "multiprocessing.Pool worker" in processes_

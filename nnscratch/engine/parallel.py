"""Data parallelism over threads: one batch, cut into contiguous chunks, runs through per-thread instances
of the model's layers at once, and the chunks' gradients are summed before one optimizer step.

Why threads work here: NumPy releases the GIL inside its array loops, so two threads keep two cores
busy on the element-wise work (ReLU, pooling, im2col copies) that a single NumPy call runs on one core.
BLAS is held to one thread meanwhile: its own threads would only compete with ours for the cores.

The numbers do not depend on the thread count beyond float rounding: each thread runs twins of the
layers (``Layer.replicate``) that share the weights and keep their own caches, gradients and state copies;
layers that couple the samples of a batch (BatchNormalization) exchange partial sums through a barrier
(:class:`Exchange`), and random draws are made for the whole batch and sliced per chunk
(:mod:`nnscratch.layers.context`). Chunk boundaries and the order in which gradients are summed depend only
on the batch size and the thread count, so a run is reproducible bit for bit for a given
``Model(threads=...)``.

Example:
    >>> default_threads() >= 1
    True
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

from ..layers.context import BatchContext, installed
from .data_source import take_rows
from .penalties import apply_constraints, has_penalties, optimizer_step
from .plan import join

#: below this many activations per chunk, handing work to threads costs more than it saves
MIN_ACTIVATIONS_PER_CHUNK = 100_000
#: and below this many multiply-adds per chunk, training in threads does too (:func:`threads_pay`): every NumPy
#: call hands the GIL over, and LeNet-5's many small calls need enough arithmetic between them. Two threads
#: against one, LeNet-5 (417k per sample): chunks of 8 images (3.3M) 0.48x, 16 (6.7M) 0.91x, 24 (10M) 1.07x, 32
#: (13M) 1.23x; the MLP 784-512-512-10 (669k per sample): 32 rows (21M) 1.03x, 64 (43M) 1.42x
MIN_MACS_PER_CHUNK = 8_000_000
#: more chunks than this makes each too small to keep BLAS and NumPy efficient
MAX_THREADS = 4


#: environment variables in which MPI launchers say how many processes of the job share this host
_LOCAL_RANKS_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE")


def default_threads() -> int:
    """The cores this process may run on, shared out among the processes of an MPI job on this host (two
    ranks with two threads each on two cores would only fight over them), at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    for name in _LOCAL_RANKS_VARS:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            cores //= int(value)
            break
    return max(1, min(cores, MAX_THREADS))


def chunk_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, near-equal ``(start, stop)`` ranges covering ``range(n)`` (fewer if ``n < parts``).

    Example:
        >>> chunk_bounds(10, 3)
        [(0, 4), (4, 7), (7, 10)]
    """
    parts = max(1, min(parts, n))
    edges = [(n * i) // parts for i in range(parts + 1)]
    edges = [n - e for e in reversed(edges)]  # the larger chunks first
    return list(zip(edges[:-1], edges[1:]))


def batch_rows(index, n_all: int):
    """``(index, rows)``: the rows ``index`` picks of ``n_all`` (None: all of them), as a slice with plain
    bounds (so a chunk of it is a slice too) or an index array, and how many they are.

    Example:
        >>> batch_rows(None, 5), batch_rows(slice(1, 9, 2), 6)
        ((slice(0, 5, None), 5), (array([1, 3, 5]), 3))
    """
    if index is None:
        index = slice(0, n_all)
    if isinstance(index, slice):
        start, stop, step = index.indices(n_all)
        index = slice(start, max(start, stop)) if step == 1 else np.arange(start, stop, step)
    return index, (index.stop - index.start if isinstance(index, slice) else len(index))


_split_always = threading.local()


@contextlib.contextmanager
def split_every_batch():
    """Within the block (in this thread), every batch of two or more samples is split over the model's
    threads, however small: the contract check uses it to compare threads with one thread on tiny models."""
    old = getattr(_split_always, "on", False)
    _split_always.on = True
    try:
        yield
    finally:
        _split_always.on = old


def worthwhile(model, batch_size: int, threads: int) -> bool:
    """Whether chunks of ``batch_size / threads`` samples carry enough work to run in threads."""
    if threads < 2 or batch_size < 2:
        return False
    if getattr(_split_always, "on", False):
        return True
    return (batch_size // threads) * model.plan.activations_per_sample >= MIN_ACTIVATIONS_PER_CHUNK


def threads_pay(model, batch_size: int, threads: int) -> bool:
    """Whether training on batches of ``batch_size`` gains from ``threads`` threads: :func:`worthwhile`, and
    chunks of at least :data:`MIN_MACS_PER_CHUNK` multiply-adds. (Worker processes need no GIL, and inference
    no backward: they ask :func:`worthwhile` alone.)"""
    if not worthwhile(model, batch_size, threads):
        return False
    if getattr(_split_always, "on", False):
        return True
    return (batch_size // threads) * model.plan.macs_per_sample >= MIN_MACS_PER_CHUNK


def combine_logs(results, sizes) -> dict:
    """The logs of a batch from its chunks': floats as means weighted by the chunks' sizes, metric states
    (``"_states"``) summed."""
    n = sum(sizes) or 1
    logs = {k: float(sum(m / n * res[k] for m, res in zip(sizes, results))) for k in results[0] if k != "_states"}
    if "_states" in results[0]:  # metric statistics add up over the chunks
        logs["_states"] = {k: sum(res["_states"][k] for res in results) for k in results[0]["_states"]}
    return logs


_blas_controller = None
_modules_seen = 0


def blas_single_thread():
    """A context that holds BLAS to one thread (threadpoolctl is a dependency: no fallback needed).

    threadpoolctl's ``threadpool_limits`` looks through every loaded library each time (~0.2 ms here, more than
    a whole ``predict`` of one MLP sample), so the controller it makes is kept and sets a limit in ~6 us. It is
    made again whenever modules were imported since (``len(sys.modules)`` grew): an import such as torch, SciPy
    or jax can bring a BLAS of its own, which a controller made before it would leave free to use every core.

    Where every BLAS already runs on one thread, it sets nothing. After a fork, OpenBLAS has shut its thread
    server down, and setting any thread count starts a new thread that spins for ~0.1 s before it sleeps: a
    worker process forked inside this context that set the limit again had a second thread burning a core
    through its first ~10 LeNet-5 steps (9-10 ms each instead of 5).
    """
    global _blas_controller, _modules_seen
    if _blas_controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController  # loaded when a model first runs, not at import
        _blas_controller = ThreadpoolController().select(user_api="blas")
        _modules_seen = len(sys.modules)
    if all(library.num_threads == 1 for library in _blas_controller.lib_controllers):
        return contextlib.nullcontext()
    return _blas_controller.limit(limits=1, user_api="blas")


class Exchange:
    """Lets the chunks of one batch hand each other arrays: ``gather(chunk, array)`` waits until every chunk
    has handed in its array for this call and returns them all in chunk order.

    If a chunk fails, :meth:`abort` wakes the others (they raise ``threading.BrokenBarrierError``), so a
    failing thread never leaves the rest waiting.
    """

    def __init__(self, parties: int):
        self.parties = parties
        self._barrier = threading.Barrier(parties)
        self._rounds: list[list] = []
        self._lock = threading.Lock()
        self._calls = [0] * parties

    def gather(self, chunk: int, array):
        k = self._calls[chunk]
        self._calls[chunk] = k + 1
        with self._lock:
            while len(self._rounds) <= k:
                self._rounds.append([None] * self.parties)
        self._rounds[k][chunk] = array
        self._barrier.wait()
        return list(self._rounds[k])

    def for_chunk(self, chunk: int):
        return lambda array: self.gather(chunk, array)

    def abort(self):
        self._barrier.abort()


class DataParallel:
    """Runs a finalized model on chunks of each batch in ``threads`` threads. Use as a context manager.

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        threads: number of chunks and threads (>= 2).
        adaptive: decide for every training batch whether it is worth splitting (:func:`worthwhile`), for data
            sources whose batch size is known only batch by batch; default False (every batch is split).
    """

    def __init__(self, model, threads: int, adaptive: bool = False):
        self.model = model
        self.plan = model.plan
        self.threads = threads
        self.adaptive = adaptive
        self.instance_sets = [self.plan.instances] + [self.plan.replicate_instances() for _ in range(threads - 1)]
        self._stack = ExitStack()
        self._pool = None
        self._twin_grads = None

    def __enter__(self):
        self._pool = self._stack.enter_context(ThreadPoolExecutor(self.threads - 1, thread_name_prefix="nnscratch"))
        self._stack.enter_context(blas_single_thread())
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._pool = None
        return False

    def train_step(self, xs, ys, index=None, seed=None, weights=None) -> dict:
        """Forward, backward and one optimizer step on the batch ``(xs[index], ys[index])`` (lists, one array
        per model input and output; default index: all); returns the batch logs (metric states summed over the
        chunks, see :meth:`Model.forward_backward`).

        Each thread gathers its own chunk of an index array, so the gathering runs in parallel and the
        pool thread is woken before it starts rather than after.

        Args:
            seed: names the batch's random streams (``(model seed, epoch, step)``), default None.
            weights: per output, sample weights aligned with ``xs`` (or None), default None.
        """
        in_threads = self._update_in_threads()
        if in_threads is None:
            results, sizes = self.compute_gradients(xs, ys, index, seed, weights=weights)
            return optimizer_step(self.model, combine_logs(results, sizes), split=(self.threads, self.run_all))
        reduce_and_update, finish = in_threads
        results, sizes = self.compute_gradients(xs, ys, index, seed, weights=weights, then=reduce_and_update)
        finish()
        apply_constraints(self.model)
        return combine_logs(results, sizes)

    def _update_in_threads(self):
        """``(reduce_and_update(chunk, chunks), finish)`` when the chunks' threads can sum the gradients and
        take the optimizer step themselves, each on its own range of the parameters laid end to end; else None
        (then the calling thread sums and steps, as ``optimizer_step`` does).

        Done in the threads, the sum and the step run in parallel and need no second wake-up of the pool
        thread: LeNet-5's ~0.5 ms of summing and Adam ran in the calling thread while the other waited. The
        bits are those of the serial way: each element's sum runs over the chunks in the same order as
        ``Plan.collect_grads``, and the rule is element-wise. Needs: no layer called twice (its calls'
        gradients are summed first), no regularizer (its gradient joins the sum before the step), every layer
        trainable (a frozen one's gradients are still summed by ``collect_grads``), C-ordered gradients, and an
        element-wise optimizer (``Optimizer.step_in_ranges``).
        """
        model = self.model
        if self.plan.needs_collecting or has_penalties(model):
            return None
        twins = self._twins_of_grads()
        items = model.trainable_params()
        if len(items) != len(twins) or any(twins.get(id(g), (None,))[0] is not g or not g.flags.c_contiguous
                                           for _, _, g in items):
            return None
        ranged = model.optimizer.step_in_ranges(items)
        if ranged is None:
            return None
        edges, update, finish = ranged
        total = edges[-1]
        parts = [(grad.reshape(-1), [t.reshape(-1) for t in twins[id(grad)][1]], start, stop)
                 for (_, _, grad), start, stop in zip(items, edges[:-1], edges[1:])]

        def reduce_and_update(chunk, chunks):
            lo, hi = total * chunk // chunks, total * (chunk + 1) // chunks
            for grad, others, start, stop in parts:
                a, b = max(start, lo) - start, min(stop, hi) - start
                if a < b:
                    piece = grad[a:b]
                    for other in others[:chunks - 1]:  # the chunks of this batch: the other sets' grads are stale
                        piece += other[a:b]
            update(lo, hi)
        return reduce_and_update, finish

    def _twins_of_grads(self) -> dict:
        """``{id(gradient array): (the array, [the same gradient in the other threads' instances])}`` for every
        gradient of the layers (made once: the arrays live as long as the instances)."""
        if self._twin_grads is None:
            twins = {}
            for layer, calls in self.plan.layer_calls:
                others = [list(instances[calls[0]].walk()) for instances in self.instance_sets[1:]]
                for i, (_, sub) in enumerate(layer.walk()):
                    for key, grad in sub.grads.items():
                        twins[id(grad)] = (grad, [walked[i][1].grads[key] for walked in others])
            self._twin_grads = twins
        return self._twin_grads

    def run_all(self, functions) -> None:
        """Calls every zero-argument function of the list at once, the first in this thread and the rest in the
        pool (at most one per pool thread), each under this thread's NumPy error state; returns when all have
        returned."""
        errors = np.geterr()

        def call(r):
            with np.errstate(**errors):
                return functions[r]()

        self._run(call, len(functions))

    def compute_gradients(self, xs, ys, index=None, seed=None, offset=0, total=None, exchange=None, weights=None,
                          then=None):
        """Forward and backward on the chunks of ``(xs[index], ys[index])``, their gradients summed into the
        layers' ``grads``; no optimizer step. Returns ``(logs of each chunk, samples of each chunk)``.

        Args:
            offset, total: where these samples sit in the whole batch (another process may compute the
                rest, see :mod:`nnscratch.engine.distributed`): the position of their random draws, and each
                chunk's gradient scaled by its share ``m / total`` of the whole batch. Default: they are it.
            exchange: ``parties -> Exchange`` making the chunks' exchange (one that also reaches other
                processes); default a thread :class:`Exchange` when there are several chunks.
            weights: per output, sample weights aligned with ``xs`` (or None), default None.
            then: ``then(chunk, chunks)``, run by every chunk's thread once all chunks have their gradients,
                which it then sums itself (the layers' ``grads`` are not summed here); default None.
        """
        model = self.model
        index, n = batch_rows(index, len(xs[0]))
        total = n if total is None else total
        bounds = chunk_bounds(n, self.threads if not self.adaptive or threads_pay(model, n, self.threads) else 1)
        if exchange is not None:
            exchange = exchange(len(bounds))
        elif len(bounds) > 1:
            exchange = Exchange(len(bounds))
        self.plan.sync_state(self.instance_sets)
        errors = np.geterr()

        def work(r):
            start, stop = bounds[r]
            part = (slice(index.start + start, index.start + stop) if isinstance(index, slice)
                    else index[start:stop])
            context = BatchContext(offset + start, total, seed, None if exchange is None else exchange.for_chunk(r))
            # NumPy's error state is per thread: the pool's threads stay as quiet as fit keeps the caller
            with installed(context), np.errstate(**errors):
                logs = model.forward_backward([x[part] for x in xs], [y[part] for y in ys],
                                              instances=self.instance_sets[r], scale=(stop - start) / total,
                                              weights=take_rows(weights, part))
                if then is not None:
                    if exchange is not None:
                        exchange.gather(r, None)  # every chunk's gradients are complete
                    then(r, len(bounds))
                return logs

        results = self._run(work, len(bounds), exchange)
        if then is None:
            self.plan.collect_grads(self.instance_sets[:len(bounds)])
        return results, [stop - start for start, stop in bounds]

    def forward(self, xs):
        """Inference on the inputs ``xs`` in chunks: ``(outputs, logits)`` as ``Plan.forward`` returns them."""
        bounds = chunk_bounds(len(xs[0]), self.threads)
        self.plan.sync_state(self.instance_sets)
        return join(self._run(lambda r: self.plan.infer([x[bounds[r][0]:bounds[r][1]] for x in xs],
                                                        self.instance_sets[r]), len(bounds)))

    def _run(self, work, chunks: int, exchange: Exchange | None = None) -> list:
        """``[work(0), ..., work(chunks - 1)]``, chunk 0 in the calling thread and the rest in the pool.

        The calling thread would otherwise only wait; waking one pool thread fewer per batch saved
        ~0.6-1 ms of a ~16 ms LeNet-5 step on this VM, where an idle virtual CPU is slow to wake. A chunk
        that fails aborts the exchange, every chunk is waited for, and the first real error is raised.
        """
        def guarded(r):
            try:
                return work(r)
            except BaseException:
                if exchange is not None:
                    exchange.abort()
                raise

        futures = [self._pool.submit(guarded, r) for r in range(1, chunks)]
        results, errors = [], []
        try:
            results.append(guarded(0))
        except BaseException as e:  # noqa: BLE001 (re-raised below, after the other chunks have stopped)
            errors.append(e)
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
        if errors:
            real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
            raise (real or errors)[0]
        return results

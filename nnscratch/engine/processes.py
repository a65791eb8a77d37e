"""Data parallelism over forked worker processes: the chunks of a training batch run in processes of one
thread each instead of in threads of one process (``Model(parallel="processes")``).

Why: threads of one process hand the GIL to each other between NumPy calls, and a network of many small
calls (ResNet-20: ~60 layers, a few milliseconds each) spends 15-20 % of its step in those handoffs on this
2-core machine. Processes share no GIL. They pay instead for moving data between them, all through one
anonymous shared mapping made before the fork (no names to leak, freed when the last process exits):

* before each step the main process writes every layer's weights and state into it, and each worker's rows
  of the batch into that worker's part; a JSON order in the worker's message area and a semaphore start
  the step;
* BatchNormalization's sums (any ``Layer.batch_gather``/``batch_sum``) go through per-process slots, with
  a pair of semaphores per pair of processes as the barrier (semaphore operations order the memory
  accesses around them, on every CPU);
* after its backward a worker writes its gradients into its part and answers; the main process adds them
  to its own in chunk order and takes the optimizer step alone.

The numbers are the threads' bit for bit: the chunks are :func:`chunk_bounds`', exchanged sums are added in
chunk order and the workers' gradients are added to the main process's in chunk order, as
:class:`~nnscratch.engine.parallel.DataParallel` adds them. (A layer called twice sums its calls inside each
process first, which rounds differently from the threads.)

The workers are forked at the first step that needs them (0.1-0.5 s: the fork, then copy-on-write faults
and fresh memory in the first steps) and kept with the model for later fits (:class:`_Workers` says until
when). Everything but the forward and backward of their chunks stays in the main process:
optimizer, callbacks, data loading, validation (in threads). A failing worker stops the step with a
:class:`WorkerError` carrying its traceback; a worker that dies (killed, out of memory) is noticed within
milliseconds; a worker whose main process dies exits. Fork is POSIX's, and safe to use for this on Linux only
(macOS' system libraries are not fork-safe), so :func:`fork_available` is False elsewhere.

Measured on this 2-core machine (``benchmarks/bench_processes.py``, interleaved, docs/performance.md): steps
against two threads' LeNet-5 -17 %, VGG -10 %, ResNet-20 -8 %, the separable CNN -12 %, the MLP +3-13 % (BLAS
needs no help with the GIL, and its weights and gradients are many to copy): :func:`processes_pay` is
``Model(parallel="auto")``'s choice.

Example:
    >>> isinstance(fork_available(), bool)
    True
"""
from __future__ import annotations

import json
import mmap
import multiprocessing
import numbers
import os
import signal
import sys
import threading
import time
import traceback
import warnings
import weakref
from contextlib import ExitStack

import numpy as np

from ..layers.context import BatchContext, installed
from .data_source import take_rows
from .parallel import DataParallel, batch_rows, blas_single_thread, chunk_bounds, combine_logs, worthwhile
from .penalties import optimizer_step

#: bytes one process may hand in per batch exchange (BatchNormalization hands in 2 x channels + 1 numbers);
#: the pages are touched only as far as they are used
SLOT_BYTES = 8 << 20
#: seconds a worker waits for its next order before it retires, giving its memory back (the next step that
#: needs it forks a new one)
IDLE_SECONDS = 30.0
#: seconds a worker gets to stop by itself before it is terminated
STOP_SECONDS = 2.0
#: bytes of one JSON message between the main process and a worker (an order, an answer with a traceback)
MESSAGE_BYTES = 256 << 10
#: iterations of busy waiting (~1 ms) before a waiting process sleeps in the kernel: a BatchNormalization
#: exchange between two busy processes takes tens of microseconds, and a sleeping virtual CPU is slow to wake
SPINS = 2000

_ALIGN = 64
_HEADER = 128  # a slot's header: int64 [nbytes, ndim, *shape (<= 8)], then the dtype string


class WorkerError(RuntimeError):
    """A worker process of ``Model(parallel="processes")`` failed (its traceback is in the message) or died."""


class _Aborted(Exception):
    """Another process of the step failed: this one stops waiting for it."""


def fork_available() -> bool:
    """Whether worker processes can be forked here (Linux)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _may_have_children() -> bool:
    """False in a daemonic process (a ``multiprocessing.Pool`` worker), which multiprocessing forbids to start
    processes of its own."""
    return not multiprocessing.current_process().daemon


#: libraries whose threads make a fork unsafe for a child that uses them (JAX warns so at every fork): a
#: worker never does, but with one loaded ``parallel="auto"`` keeps to threads all the same
FORK_WARY = ("jax",)


def processes_pay(model, batch_size: int, threads: int) -> bool:
    """``parallel="auto"``'s choice: worker processes when they can be forked (Linux, not in a
    ``multiprocessing.Pool`` worker, no :data:`FORK_WARY` library loaded), the network works on feature maps
    (a layer outputs more than a vector per sample) and a chunk's activations are at least twice the
    model's parameters.

    Why: what processes save is the GIL's share of the element-wise passes (convolutions' unfolding,
    pooling, normalization, activations), which feature maps are made of and which grows with the
    activations; a network of Dense layers spends its step in BLAS, which releases the GIL anyway. What
    processes cost each step (weights and gradients copied, the optimizer step in the main process alone)
    grows with the parameters. Measured here (``benchmarks/bench_processes.py``, two processes' step over two
    threads'): at batch 128 LeNet-5 (62k parameters, 1.0M activations per chunk) 0.83, VGG (1.1M, 13.9M)
    0.90, ResNet-20 (272k, 43M) 0.92, the separable CNN (13k, 18.6M) 0.88; VGG at batch 64 (6.9M) 0.94 and
    at batch 32 (3.5M) 1.01; LeNet-5 at batch 32 (253k) 0.56 and at 16 (126k) 0.48 (two threads were
    slower than one there); the MLP (670k; 183k at batch 128, 1.5M at 1,024, 2.9M at 2,048) 1.13, 1.05,
    1.03.

    Example:
        >>> import nnscratch
        >>> from nnscratch.layers import Dense
        >>> mlp = nnscratch.Model([Dense(512, input_shape=(784,)), Dense(10)]); mlp.finalize()
        >>> processes_pay(mlp, 4096, 2)
        False
    """
    if not fork_available() or not _may_have_children() or any(name in sys.modules for name in FORK_WARY):
        return False
    plan = model.plan
    if not any(len(step.node.output.sample_shape) > 1 for step in plan.steps if not step.feed):
        return False
    parameters = sum(p.size for layer, _ in plan.layer_calls for _, sub in layer.walk() for p in sub.params.values())
    return (batch_size // max(1, threads)) * plan.activations_per_sample >= 2 * parameters


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _layout(specs) -> tuple[list, int]:
    """``([[dtype, shape, offset], ...], bytes needed)`` of arrays of the given ``(dtype, shape)`` (or arrays)
    laid end to end; None stays None.

    Example:
        >>> _layout([(np.dtype("float32"), (2, 3)), None, np.zeros(1)])
        ([['<f4', [2, 3], 0], None, ['<f8', [1], 64]], 128)
    """
    out, at = [], 0
    for spec in specs:
        if spec is None:
            out.append(None)
            continue
        dtype, shape = (spec.dtype, spec.shape) if isinstance(spec, np.ndarray) else spec
        out.append([np.dtype(dtype).str, [int(d) for d in shape], at])
        at += _aligned(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return out, at


def _views(region: np.ndarray, layout) -> list:
    return [None if item is None else
            region[item[2]:item[2] + int(np.prod(item[1], dtype=np.int64)) * np.dtype(item[0]).itemsize]
            .view(item[0]).reshape(item[1]) for item in layout]


def _model_arrays(model, kind: str) -> list:
    """``[(dict, key)]`` of every sublayer's ``params`` and ``state`` (kind "weights") or ``grads`` ("grads"),
    in the plan's order: the same list in every process. Made once per set of workers (walking ResNet-20's
    layers takes ~0.7 ms); ``dict[key]`` is looked up every step, as a callback may put in a new array."""
    names = ("params", "state") if kind == "weights" else ("grads",)
    return [(getattr(sub, name), key) for layer, _ in model.plan.layer_calls for _, sub in layer.walk()
            for name in names for key in getattr(sub, name)]


class _Shared:
    """The shared mapping and the semaphores of one set of workers: made before the fork, used by all."""

    def __init__(self, model, parties: int, input_bytes: int):
        self.parties = parties
        self.weights_layout, weight_bytes = _layout([d[k] for d, k in _model_arrays(model, "weights")])
        self.grads_layout, grad_bytes = _layout([d[k] for d, k in _model_arrays(model, "grads")])
        self.input_bytes = _aligned(input_bytes)
        workers = parties - 1
        sizes = [_aligned(8 + workers), 2 * parties * SLOT_BYTES, _aligned(weight_bytes),
                 workers * _aligned(grad_bytes), workers * self.input_bytes, 2 * workers * MESSAGE_BYTES]
        self.map = mmap.mmap(-1, max(1, sum(sizes)))  # anonymous and shared: the forked workers see it
        buf = np.frombuffer(self.map, np.uint8)
        edges = np.cumsum([0] + sizes).tolist()
        self.flags = buf[edges[0]:edges[0] + 8].view(np.int64)  # [0]: 1 once any process aborts the step
        self.retired = buf[edges[0] + 8:edges[0] + 8 + workers]  # 1 for a worker that retired
        slots = buf[edges[1]:edges[2]].reshape(2, parties, SLOT_BYTES)
        self.slots = slots
        self.weights = buf[edges[2]:edges[3]]
        self.grads = [buf[edges[3] + w * _aligned(grad_bytes):edges[3] + (w + 1) * _aligned(grad_bytes)]
                      for w in range(workers)]
        self.inputs = [buf[edges[4] + w * self.input_bytes:edges[4] + (w + 1) * self.input_bytes]
                       for w in range(workers)]
        messages = buf[edges[5]:edges[6]].reshape(2, workers, MESSAGE_BYTES)
        self.orders, self.answers = messages[0], messages[1]  # to each worker, from each worker
        ctx = multiprocessing.get_context("fork")
        # posts[i][j]: process i has arrived, for process j (one per ordered pair keeps the rounds apart)
        self.posts = [[ctx.Semaphore(0) if i != j else None for j in range(parties)] for i in range(parties)]
        # Semaphores, not pipes, say "an order" and "an answer": taking one that is ready is no system call,
        # and a pipe's wakeup asks Linux to run the woken task on the writer's core (a "sync" wakeup). Neither
        # kept a new worker off the main process's core for the first ~8 LeNet-5 steps after the fork
        # (docs/performance.md); the load balancer parts them after that.
        self.go = [ctx.Semaphore(0) for _ in range(workers)]
        self.done = [ctx.Semaphore(0) for _ in range(workers)]
        self.lock = ctx.Lock()  # orders are posted, and workers retire, under it
        #: busy waiting pays only when every process has a core of its own
        self.spin = parties <= len(os.sched_getaffinity(0))
        self.weight_arrays = _model_arrays(model, "weights")
        self.grad_arrays = _model_arrays(model, "grads")
        # made once: ~50 views a step cost LeNet-5 0.15 ms of its 5
        self.weight_views = _views(self.weights, self.weights_layout)
        self.grad_views = [_views(region, self.grads_layout) for region in self.grads]

    def close(self):
        self.flags = self.retired = self.slots = self.weights = self.grads = self.inputs = None
        self.weight_views = self.grad_views = None
        self.orders = self.answers = None
        try:
            self.map.close()
        except BufferError:  # a view is still alive somewhere: the mapping goes with the last one
            pass


class _Exchange:
    """One process's side of the batch exchange: ``port(array)`` gathers every chunk's array in chunk order
    (:func:`nnscratch.layers.context.batch_sum` adds them in that order itself, as with threads)."""

    def __init__(self, shared: _Shared, party: int, check):
        self.shared, self.party, self.check = shared, party, check
        self.round = 0

    def __call__(self, array):
        array = np.asarray(array)
        if array.dtype.hasobject or array.ndim > 8:
            raise TypeError(f"a layer handed the batch exchange an array of dtype {array.dtype} and {array.ndim} "
                            "dimensions; between worker processes only numeric arrays of up to 8 dimensions can "
                            "pass: hand in numbers, or use Model(parallel='threads')")
        if _HEADER + array.nbytes > SLOT_BYTES:
            raise ValueError(f"a layer handed the batch exchange {array.nbytes} bytes; between worker processes "
                             f"at most {SLOT_BYTES - _HEADER} bytes pass at once: hand in less (sums rather than "
                             "rows), or use Model(parallel='threads')")
        parity = self.round % 2  # two sets of slots: a fast process writes the next round beside a slow reader
        self.round += 1
        slot = self.shared.slots[parity, self.party]
        head = slot[:_HEADER - 16].view(np.int64)
        head[0], head[1] = array.nbytes, array.ndim
        head[2:2 + array.ndim] = array.shape
        slot[_HEADER - 16:_HEADER] = np.frombuffer(array.dtype.str.encode().ljust(16), np.uint8)
        slot[_HEADER:_HEADER + array.nbytes] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        self._barrier()
        out = []
        for p in range(self.shared.parties):
            if p == self.party:
                out.append(array)
                continue
            other = self.shared.slots[parity, p]
            head = other[:_HEADER - 16].view(np.int64)
            nbytes, ndim = int(head[0]), int(head[1])
            dtype = np.dtype(other[_HEADER - 16:_HEADER].tobytes().decode().strip())
            out.append(other[_HEADER:_HEADER + nbytes].view(dtype).reshape(head[2:2 + ndim].tolist()).copy())
        return out

    def _barrier(self):
        posts = self.shared.posts
        for j in range(self.shared.parties):
            if j != self.party:
                posts[self.party][j].release()
        for i in range(self.shared.parties):
            if i != self.party:
                self._wait(posts[i][self.party])

    def _wait(self, semaphore):
        _wait(semaphore, self.shared.spin, self.check)


def _wait(semaphore, spin: bool, check, sleep=0.002, timeout=None) -> bool:
    """Acquires ``semaphore``: busy for ~1 ms when ``spin`` (a BatchNormalization exchange between two busy
    processes takes tens of microseconds, and a sleeping virtual CPU is slow to wake), then in sleeps of
    ``sleep`` seconds; ``check()`` runs in between and raises (or exits) when waiting is pointless. Returns
    False if ``timeout`` seconds passed first."""
    if spin:
        for k in range(SPINS):
            if semaphore.acquire(False):
                return True
            if k % 64 == 63:
                check()
    end = None if timeout is None else time.monotonic() + timeout
    while not semaphore.acquire(True, sleep):
        check()
        if end is not None and time.monotonic() > end:
            return False
    return True


def _send(area: np.ndarray, message: dict) -> None:
    """Writes ``message`` as JSON into a message area (its length first); a traceback too long is cut."""
    data = json.dumps(message).encode()
    if len(data) > MESSAGE_BYTES - 8 and "traceback" in message:
        cut = len(data) - (MESSAGE_BYTES - 8) + 100
        message = {**message, "traceback": "...\n" + message["traceback"][cut:]}
        data = json.dumps(message).encode()
    if len(data) > MESSAGE_BYTES - 8:
        raise ValueError(f"a message of {len(data)} bytes between processes; at most {MESSAGE_BYTES - 8} fit")
    area[:8].view(np.int64)[0] = len(data)
    area[8:8 + len(data)] = np.frombuffer(data, np.uint8)


def _receive(area: np.ndarray) -> dict:
    return json.loads(area[8:8 + int(area[:8].view(np.int64)[0])].tobytes())


def _encode_logs(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        if key == "_states":
            out[key] = {k: [np.asarray(v).dtype.str, list(np.shape(v)), np.asarray(v).ravel().tolist()]
                        for k, v in value.items()}
        else:
            out[key] = float(value)
    return out


def _decode_logs(logs: dict) -> dict:
    if "_states" in logs:
        logs["_states"] = {k: np.array(data, dtype).reshape(shape) for k, (dtype, shape, data) in
                           logs["_states"].items()}
    return logs


def _put_rows(view, array, part) -> None:
    """``view[...] = array[part]`` without an intermediate copy when ``part`` is an index array."""
    if isinstance(part, slice):
        np.copyto(view, array[part])
    else:
        np.take(array, part, axis=0, out=view)


#: the model a worker about to be forked will serve: a global, read by the child, so that the Process object
#: (which multiprocessing keeps in a global list while the child lives) holds no reference to the model;
#: set and read under the lock (two threads may fit two models at once)
_forking = None
_fork_lock = threading.Lock()


def _worker(party: int, shared: _Shared, main: int) -> None:
    """A worker's life: steps on command until told to stop, its main process is gone, or it has waited
    :data:`IDLE_SECONDS` for an order (it then retires, giving its memory back)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it stops us
    model = _forking
    w = party - 1

    def alive():
        if os.getppid() != main:  # the main process died: nobody will ever read our answer
            os._exit(1)

    def check():
        alive()
        if shared.flags[0]:
            raise _Aborted()

    exchange = _Exchange(shared, party, check)
    weight_views, grad_views = shared.weight_views, shared.grad_views[w]
    with blas_single_thread():
        while True:
            if not _wait(shared.go[w], shared.spin, alive, sleep=1.0, timeout=IDLE_SECONDS):
                with shared.lock:  # the main process posts orders under the lock: none can slip past
                    if not shared.go[w].acquire(False):
                        shared.retired[w] = 1
                        return
            order = _receive(shared.orders[w])
            if order["op"] == "stop":
                return
            try:
                for (d, k), view in zip(shared.weight_arrays, weight_views):
                    np.copyto(d[k], view)
                arrays = _views(shared.inputs[w], order["inputs"])
                nx, ny = order["counts"]
                xs, ys, ws = arrays[:nx], arrays[nx:nx + ny], arrays[nx + ny:]
                seed = None if order["seed"] is None else tuple(order["seed"])
                with installed(BatchContext(order["offset"], order["total"], seed, exchange)), \
                        np.errstate(**order["errors"]):
                    logs = model.forward_backward(xs, ys, scale=order["scale"], weights=ws or None)
                if model.plan.needs_collecting:
                    model.plan.collect_grads([model.plan.instances])
                for (d, k), view in zip(shared.grad_arrays, grad_views):
                    np.copyto(view, d[k])
                reply = {"logs": _encode_logs(logs)}
            except _Aborted:
                reply = {"aborted": True}
            except BaseException as e:  # noqa: BLE001 (sent to the main process, which raises it)
                shared.flags[0] = 1
                reply = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            _send(shared.answers[w], reply)
            shared.done[w].release()


def fingerprint(model, parties: int) -> str:
    """What a model's workers copied when they were forked and use in every step: the plan, the layers'
    configurations and trainable flags, the losses, metrics and dtype (not the optimizer, which only the main
    process runs), and every public attribute of a layer that holds a plain value (a number, string or None):
    a scale a user's layer keeps outside its ``get_config`` and changes between fits reaches the workers too.
    Workers whose fingerprint differs from the model's are forked again. (Arrays and objects a layer holds
    outside its weights and state are not in it.)"""
    layers = [[type(sub).__name__, sub.get_config(), bool(sub.trainable), _plain_attributes(sub)]
              for layer, _ in model.plan.layer_calls for _, sub in layer.walk()]
    training = dict(model.get_training_config())
    training.pop("optimizer", None)  # the main process's alone: a learning rate changed between fits is no reason
    facts = [id(model.plan), parties, model.dtype.str, layers, training,
             [[id(m) for m in metrics] for metrics in model._metric_lists]]
    return json.dumps(facts, sort_keys=True, default=repr)


def _plain_attributes(layer) -> dict:
    """A layer's public attributes that hold numbers, strings or None (its configuration, and whatever a user set on
    it): the underscored ones are caches, which change every step."""
    return {k: v for k, v in vars(layer).items()
            if not k.startswith("_") and (v is None or isinstance(v, (numbers.Number, str)))}


class _Workers:
    """A model's worker processes and their shared mapping. They outlive one ``fit`` (forking costs
    0.1-0.5 s), so the model keeps them (``model._process_workers``) until its configuration changes, a step
    fails, they retire after :data:`IDLE_SECONDS` without an order, or the model is garbage-collected."""

    def __init__(self, model, parties: int, input_bytes: int):
        global _forking
        self.parties = parties
        self.fingerprint = fingerprint(model, parties)
        self.plan = weakref.ref(model.plan)
        self.shared = _Shared(model, parties, input_bytes)
        self.exchange = _Exchange(self.shared, 0, self.check)
        self.processes = []
        self.owner = os.getpid()
        ctx = multiprocessing.get_context("fork")
        try:
            with _fork_lock:
                _forking = model
                try:
                    for party in range(1, parties):
                        process = ctx.Process(target=_worker, args=(party, self.shared, os.getpid()), daemon=True,
                                              name=f"nnscratch-worker-{party}")
                        with warnings.catch_warnings():
                            # JAX warns at every fork that a child using JAX may deadlock; a worker never uses it
                            warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
                            process.start()
                        self.processes.append(process)
                finally:
                    _forking = None
        except BaseException:
            self.stop()
            raise
        self._finalizer = weakref.finalize(model, self.stop)  # a model collected stops its workers

    def __deepcopy__(self, memo):
        return None  # a copy of the model forks workers of its own when it needs them

    def __reduce__(self):
        return type(None), ()  # and so does a pickled model

    def ready(self, input_bytes: int) -> bool:
        """Whether the workers are alive, none has retired, and their room holds ``input_bytes`` of rows.

        Raises:
            WorkerError: a worker died without retiring (killed, out of memory), even between steps or fits:
                forking another would hide what happened to it.
        """
        if self.shared is None or self.shared.retired.any():
            return False
        self.check_alive()
        return self.shared.input_bytes >= input_bytes

    def serves(self, model, parties: int) -> bool:
        """Whether these workers were forked from ``model`` as it is now (:func:`fingerprint`)."""
        return self.plan() is model.plan and self.parties == parties and self.fingerprint == fingerprint(model,
                                                                                                         parties)

    def post(self) -> bool:
        """Starts every worker on the order in its message area; False (and none started) if one has retired."""
        shared = self.shared
        with shared.lock:
            if shared.retired.any():
                return False
            for go in shared.go:
                go.release()
        return True

    def stop(self):
        """Stops the workers (asking first, then terminating them) and frees the mapping; idempotent."""
        shared = self.shared
        if shared is None or os.getpid() != self.owner:
            # a worker holds a copy of this object (and may collect it): the workers are not its to stop
            return
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()  # workers forked again for the same model must not pile up finalizers
        shared.flags[0] = 1  # a worker waiting in an exchange for this process stops waiting
        for w in range(len(self.processes)):
            _send(shared.orders[w], {"op": "stop"})
            shared.go[w].release()
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()
        self.processes = []
        self.exchange = None
        self.shared = None
        shared.close()

    def check(self):
        """Raises when a worker has died or aborted the step."""
        self.check_alive()
        if self.shared.flags[0]:
            raise _Aborted()

    def check_alive(self):
        """Raises :class:`WorkerError` when a worker has died (other than by retiring)."""
        for party, process in enumerate(self.processes, 1):  # none once stopped (shared is None then)
            if process.exitcode is not None and not self.shared.retired[party - 1]:
                raise WorkerError(f"worker process {party} of {self.parties} (pid {process.pid}) died with exit "
                                  f"code {process.exitcode} (a negative code is the signal that killed it: -9 is "
                                  "often the kernel's out-of-memory killer); train with a smaller batch, fewer "
                                  "threads or Model(parallel='threads')")

    def replies(self, wait_for_all=True) -> list:
        """Every worker's answer to this step, in order; a worker's death raises :class:`WorkerError`.
        ``wait_for_all=False``: only the answers already there or coming within a second (after a failure)."""
        replies = []
        for w, done in enumerate(self.shared.done):
            if wait_for_all:
                _wait(done, self.shared.spin, self.check_alive)
            elif not done.acquire(True, 1.0):
                continue
            replies.append(_receive(self.shared.answers[w]))
        return replies

    def raise_failure(self, replies):
        for party, reply in enumerate(replies, 1):
            if "error" in reply:
                raise WorkerError(f"worker process {party} of {self.parties} failed in its part of the batch: "
                                  f"{reply['error']}\n\nIts traceback:\n{reply['traceback']}")
        self.check_alive()


def stop_workers(model) -> None:
    """Stops ``model``'s worker processes now, if it has any, giving their memory back (the next ``fit`` that
    needs them forks new ones).

    Example:
        >>> import nnscratch
        >>> from nnscratch.layers import Dense
        >>> stop_workers(nnscratch.Model([Dense(2, input_shape=(3,))]))  # none: nothing to do
    """
    workers = getattr(model, "_process_workers", None)
    if workers is not None:
        model._process_workers = None
        workers.stop()


class ProcessParallel:
    """Runs a finalized model's training steps on chunks of each batch in ``parties`` processes: this one and
    ``parties - 1`` worker processes (the model's, forked at the first step that needs them and kept for the
    next ``fit``). Use as a context manager, like :class:`DataParallel`.

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        parties: processes sharing each batch (>= 2).
        adaptive: decide for every batch whether it is worth splitting, default False (see DataParallel).
    """

    def __init__(self, model, parties: int, adaptive: bool = False):
        if not fork_available():
            raise RuntimeError("worker processes need fork, which nnscratch uses on Linux only; use "
                               "Model(parallel='threads') here")
        if not _may_have_children():
            raise RuntimeError(f"parallel='processes' cannot start worker processes from "
                               f"{multiprocessing.current_process().name}, a daemonic process (such as a "
                               "multiprocessing.Pool worker, which multiprocessing forbids to have children); "
                               "use Model(parallel='threads') or 'auto' there")
        self.model = model
        self.parties = parties
        self.adaptive = adaptive
        self._stack = ExitStack()
        self._inference = None
        self._verified = None  # the workers found to serve the model as it is in this fit

    def __enter__(self):
        self._stack.enter_context(blas_single_thread())
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._inference = None
        return False

    def _workers(self, input_bytes: int) -> _Workers:
        """The model's workers, forked again when they cannot serve this step."""
        workers = getattr(self.model, "_process_workers", None)
        if workers is not None and workers.ready(input_bytes) and (
                self._verified is workers or workers.serves(self.model, self.parties)):
            self._verified = workers  # checked once per fit: the fingerprint walks every layer
            return workers
        stop_workers(self.model)
        # room for a data source's batches to vary a little
        self.model._process_workers = self._verified = _Workers(self.model, self.parties, input_bytes * 5 // 4)
        return self._verified

    # -- steps ------------------------------------------------------------------------------------------
    def train_step(self, xs, ys, index=None, seed=None, weights=None) -> dict:
        """Forward, backward and one optimizer step on the batch ``(xs[index], ys[index])``, as
        :meth:`DataParallel.train_step`; returns the batch logs."""
        index, n = batch_rows(index, len(xs[0]))
        split = not self.adaptive or worthwhile(self.model, n, self.parties)
        bounds = chunk_bounds(n, self.parties if split else 1)
        parts = [slice(index.start + a, index.start + b) if isinstance(index, slice) else index[a:b]
                 for a, b in bounds]
        if len(bounds) < self.parties:  # a batch too small to split (or with fewer samples than processes)
            return self.model._train_step(take_rows(xs, parts[0]), take_rows(ys, parts[0]), seed,
                                          take_rows(weights, parts[0]))
        try:
            logs = self._split_step(xs, ys, weights, n, bounds, parts, seed)
        except BaseException:
            stop_workers(self.model)  # the next step forks new ones
            raise
        return optimizer_step(self.model, logs)

    def _split_step(self, xs, ys, weights, n, bounds, parts, seed) -> dict:
        model = self.model
        arrays = list(xs) + list(ys) + ([] if weights is None else list(weights))
        layouts = [_layout([None if g is None else (g.dtype, (b - a,) + g.shape[1:]) for g in arrays])
                   for a, b in bounds[1:]]
        need = max(size for _, size in layouts)
        while True:
            workers = self._workers(need)
            shared = workers.shared
            for (d, k), view in zip(shared.weight_arrays, shared.weight_views):
                np.copyto(view, d[k])
            errors = np.geterr()
            for w, ((layout, _), (a, b), part) in enumerate(zip(layouts, bounds[1:], parts[1:])):
                for view, array in zip(_views(shared.inputs[w], layout), arrays):
                    if view is not None:
                        _put_rows(view, array, part)
                _send(shared.orders[w], {"op": "step", "inputs": layout, "counts": [len(xs), len(ys)], "offset": a,
                                         "total": n, "scale": (b - a) / n, "errors": errors,
                                         "seed": None if seed is None else [int(s) for s in seed]})
            if workers.post():
                break
            stop_workers(self.model)  # one retired just now: fork new ones and hand them the step
        a, b = bounds[0]
        try:
            with installed(BatchContext(0, n, seed, workers.exchange)):
                logs = model.forward_backward(take_rows(xs, parts[0]), take_rows(ys, parts[0]), scale=(b - a) / n,
                                              weights=take_rows(weights, parts[0]))
        except _Aborted:  # a worker failed while this process waited for it in an exchange
            workers.raise_failure(workers.replies(wait_for_all=False))
            raise WorkerError("a worker process stopped the step without saying why") from None
        if model.plan.needs_collecting:
            model.plan.collect_grads([model.plan.instances])
        replies = workers.replies()
        workers.raise_failure(replies)
        grads = [d[k] for d, k in shared.grad_arrays]
        for w in range(len(workers.processes)):
            for grad, theirs in zip(grads, shared.grad_views[w]):
                grad += theirs
        results = [logs] + [_decode_logs(reply["logs"]) for reply in replies]
        return combine_logs(results, [b - a for a, b in bounds])

    # -- inference --------------------------------------------------------------------------------------
    def forward(self, xs):
        """Inference (validation) in threads of this process: ``(outputs, logits)`` as ``Plan.forward``."""
        if self._inference is None:
            self._inference = self._stack.enter_context(DataParallel(self.model, self.parties))
        return self._inference.forward(xs)


class ChosenAtFirstBatch:
    """``parallel="auto"`` for a data source, whose batch size shows only batch by batch: the engine is
    chosen by :func:`processes_pay` at the first batch and serves the whole ``fit`` (deciding batch by batch
    whether to split, as ``adaptive`` engines do). A context manager, like the engines."""

    def __init__(self, model, threads: int):
        self.model, self.threads = model, threads
        self._stack = ExitStack()
        self._runner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._runner = None
        return False

    def _engine(self, batch_size: int):
        if self._runner is None:
            engine = ProcessParallel if processes_pay(self.model, batch_size, self.threads) else DataParallel
            self._runner = self._stack.enter_context(engine(self.model, self.threads, adaptive=True))
        return self._runner

    def train_step(self, xs, ys, index=None, seed=None, weights=None) -> dict:
        return self._engine(batch_rows(index, len(xs[0]))[1]).train_step(xs, ys, index, seed=seed, weights=weights)

    def forward(self, xs):
        return self._engine(len(xs[0])).forward(xs)

"""Data parallelism over processes and hosts with MPI (``mpi4py``): Horovod's recipe, in NumPy.

Under ``mpiexec -n N python script.py``, ``model.fit(..., distributed=True)`` on every rank trains one model:

* at the start, the ranks compare what they were given (architecture, training settings, data) and rank 0
  broadcasts its weights, non-trainable state, optimizer state, seed and epoch count, so every rank starts
  from the same point (a model built with ``seed=None`` draws a different seed on each rank);
* every rank walks the same global batches (the shuffle comes from ``(seed, epoch)``) and computes rows
  ``chunk_bounds(batch, N)[rank]`` of each, split further over its own threads (:class:`DataParallel`);
  its chunks keep their position in the *global* batch, so dropout and augmentation slice the one draw made
  for the whole batch, and each chunk's loss gradient is scaled by its share of the whole batch;
* BatchNormalization's sums reach every chunk of every rank (:class:`RankExchange`: the threads' parts,
  then an allgather across ranks, summed in a fixed order), so its statistics are the global batch's;
* one ``Allreduce`` per step sums a flat buffer of every gradient, the ranks' loss and metric sums and
  their sample counts; every rank then takes the same optimizer step;
* after the user's callbacks, the ranks agree on stopping (a one-number allreduce per step), so a
  callback that stops one rank stops all;
* only rank 0 prints and writes (progress, checkpoints, ``save``, history files: :func:`is_writer`), and at
  the end of ``fit`` the ranks compare a digest of their weights.

So the result equals one process with the same ``batch_size`` up to the order of float summation, whatever
the rank count. Every collective here is non-blocking and polled while listening for a failure notice on a
second communicator: a rank that raises tells the others, which stop with a :class:`DistributedError`
naming it and its exception, instead of waiting forever in a collective the failed rank will never join.

mpi4py is optional (``pip install -e ".[mpi]"``) and imported only when a distributed call is made.

Example (a rank's share of a global batch of 10 on 3 ranks; a rank beyond the batch gets none):
    >>> rank_share(10, 3, 1), rank_share(2, 3, 2)
    ((4, 7), None)
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import threading
import time
from contextlib import ExitStack

import numpy as np

from ..layers.context import BatchContext, installed
from .data_source import ArrayBatches, take_rows
from .parallel import DataParallel, Exchange, blas_single_thread, chunk_bounds, combine_logs, threads_pay
from .penalties import optimizer_step

#: the tag of failure notices on the control communicator
_FAIL_TAG = 77
#: environment variables set by the launchers we know (MPICH/Hydra and PMIx, Open MPI, Slurm)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_ID")
#: how to start a distributed run, for error messages
HOW_TO_START = ("start every rank with an MPI launcher, e.g. `mpiexec -n 2 python script.py` (or "
                "`mpiexec -n 2 nnscratch train lenet5 --distributed`, or `srun` under Slurm)")


class DistributedError(RuntimeError):
    """Another rank failed, the ranks disagree (models, data, final weights), or MPI is unusable.

    Attributes:
        rank: the rank that failed first, when one did (else None).
        all_ranks: True when every rank raised this same error at the same point (a check whose result
            all ranks share): the ranks are still in step, and later distributed calls may run.
    """

    def __init__(self, message, rank=None, all_ranks=False):
        super().__init__(message)
        self.rank = rank
        self.all_ranks = all_ranks


def rank_share(n: int, ranks: int, rank: int):
    """Rows ``(start, stop)`` of a global batch of ``n`` that ``rank`` computes, or None when ``n < ranks``
    leaves it none (the last, short batch of an epoch)."""
    bounds = chunk_bounds(n, ranks)
    return bounds[rank] if rank < len(bounds) else None


# -- the MPI session: one per process -------------------------------------------------------------------
_session = None
_session_lock = threading.Lock()


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedError(
            f"distributed=True needs mpi4py and an MPI library, which are not installed ({e}); install them with "
            "`pip install -e \".[mpi]\"` (or `pip install mpi4py mpich`), then " + HOW_TO_START) from e
    return MPI


def session() -> "Session":
    """The process's MPI session, started on first use.

    Raises:
        DistributedError: mpi4py or MPI is missing, or this process was not started by an MPI launcher.
    """
    global _session
    with _session_lock:
        if _session is None:
            MPI = _import_mpi()
            world = MPI.COMM_WORLD
            if world.Get_size() == 1 and not any(v in os.environ for v in _LAUNCHER_VARS):
                raise DistributedError("distributed=True, but this process was not started by an MPI launcher "
                                       "(it is the only rank); " + HOW_TO_START)
            _session = Session(MPI, world)
        return _session


def is_writer() -> bool:
    """False on the ranks other than 0 of a distributed run: they neither print progress nor write files
    (checkpoints, ``save``, history files, CSV logs). True everywhere else."""
    return _session is None or _session.rank == 0


def rank_of_this_process():
    """This process's rank in a distributed run, or None outside one."""
    return None if _session is None else _session.rank


class Session:
    """The communicators of a distributed run and the collectives nnscratch makes on them.

    Every collective is non-blocking and waited for by polling, which also watches the control
    communicator for a failure notice from another rank (:meth:`guard` sends one when a rank raises): so no
    rank waits forever for one that has failed, and Ctrl-C reaches the Python code.
    """

    def __init__(self, MPI, world):
        self.MPI = MPI
        self.comm = world.Dup()      # the collectives of training
        self.control = world.Dup()   # failure notices only, so they never mix with the collectives
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.host = MPI.Get_processor_name()
        self.failure: DistributedError | None = None
        self._depth = 0
        #: running totals, for benchmarks and curious users: collectives made, seconds spent waiting in them,
        #: and the step Allreduces' count, bytes and seconds
        self.stats = {"collectives": 0, "collective_seconds": 0.0, "allreduces": 0, "allreduce_bytes": 0,
                      "allreduce_seconds": 0.0}
        self._install_excepthook()

    # -- failures ---------------------------------------------------------------------------------
    def _install_excepthook(self):
        """An exception nobody catches, raised outside :meth:`guard`, would leave the other ranks waiting in a
        collective forever (MPI does not notice a rank that exits cleanly): print it, then abort the job.
        After a failure the ranks already shared, a normal exit is safe and keeps every rank's message."""
        previous = sys.excepthook

        def hook(kind, value, tb):
            previous(kind, value, tb)
            # an error every rank raised at the same point (all_ranks) needs no abort: each rank exits with its
            # own message, and aborting would cut the others' short
            if self.failure is None and self.size > 1 and not getattr(value, "all_ranks", False):
                sys.stderr.flush()
                sys.stdout.flush()
                self.comm.Abort(1)

        sys.excepthook = hook

    def check(self):
        """Raises the failure of another rank, if one was received (or had been)."""
        if self.failure is not None:
            raise self.failure
        status = self.MPI.Status()
        if self.control.Iprobe(source=self.MPI.ANY_SOURCE, tag=_FAIL_TAG, status=status):
            rank, host, text = self.control.recv(source=status.Get_source(), tag=_FAIL_TAG)
            self.failure = DistributedError(f"rank {rank} (on {host}) failed, so every rank stopped: {text}", rank)
            raise self.failure

    def notify(self, error: BaseException):
        """Tells every other rank that this one failed with ``error``; waits at most 2 s for the messages
        to leave (small messages go at once)."""
        text = f"{type(error).__name__}: {error}".strip()
        self.failure = DistributedError(f"rank {self.rank} (on {self.host}) failed: {text}", self.rank)
        requests = [self.control.isend((self.rank, self.host, text), dest=d, tag=_FAIL_TAG)
                    for d in range(self.size) if d != self.rank]
        deadline = time.monotonic() + 2.0
        while requests and not self.MPI.Request.Testall(requests) and time.monotonic() < deadline:
            time.sleep(0.001)

    def guard(self):
        """A context in which an exception on this rank is reported to the others before it propagates."""
        return _Guard(self)

    def usable(self):
        """Raises when an earlier failure left the ranks out of step (their collectives no longer match)."""
        if self.failure is not None:
            raise DistributedError(f"an earlier distributed call failed ({self.failure}); the ranks are out of "
                                   "step, so no further distributed call can run in this job: restart it")

    # -- collectives ------------------------------------------------------------------------------
    def wait(self, request):
        """Waits for ``request`` while listening for failures: ~1 ms of spinning (a BatchNormalization
        exchange takes tens of microseconds), then naps of up to 1 ms (a rank waiting for a slow one
        should leave the core to that one's threads)."""
        t0 = time.perf_counter()
        spins = 0
        while not request.Test():
            spins += 1
            if spins % 64 == 0:
                self.check()
            if spins > 2000:
                time.sleep(min(1e-3, 1e-5 * (spins - 2000)))
        seconds = time.perf_counter() - t0
        self.stats["collectives"] += 1
        self.stats["collective_seconds"] += seconds
        return seconds

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        """Sums the contiguous ``buffer`` over the ranks, in place."""
        seconds = self.wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM))
        self.stats["allreduces"] += 1
        self.stats["allreduce_bytes"] += buffer.nbytes
        self.stats["allreduce_seconds"] += seconds
        return buffer

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any."""
        buffer = np.array([1 if flag else 0], np.int64)
        self.wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM))
        return bool(buffer[0])

    def bcast(self, buffer: np.ndarray, root=0) -> np.ndarray:
        self.wait(self.comm.Ibcast(buffer, root=root))
        return buffer

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data``, in rank order (two collectives: the sizes, then the bytes)."""
        sizes = np.zeros(self.size, np.int64)
        sizes[self.rank] = len(data)
        self.wait(self.comm.Iallgather(self.MPI.IN_PLACE, sizes))
        out = np.empty(int(sizes.sum()), np.uint8)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        send = np.frombuffer(data, np.uint8) if data else np.empty(0, np.uint8)
        self.wait(self.comm.Iallgatherv(send, [out, sizes, offsets, self.MPI.BYTE]))
        return [out[o:o + s].tobytes() for o, s in zip(offsets, sizes)]

    def allgather_array(self, array: np.ndarray) -> np.ndarray:
        """``(ranks, *array.shape)``: every rank's ``array`` (the same shape and dtype on every rank)."""
        array = np.ascontiguousarray(array)
        out = np.empty((self.size,) + array.shape, array.dtype)
        self.wait(self.comm.Iallgather(array, out))
        return out

    def allgather_obj(self, obj) -> list:
        """Every rank's ``obj`` (plain data and arrays, pickled: only ever what nnscratch itself sent)."""
        return [pickle.loads(b) for b in self.allgather_bytes(pickle.dumps(obj, protocol=5))]

    def bcast_obj(self, obj, root=0):
        """Rank ``root``'s ``obj`` on every rank."""
        data = pickle.dumps(obj, protocol=5) if self.rank == root else b""
        size = self.bcast(np.array([len(data)], np.int64), root)[0]
        buffer = np.frombuffer(data, np.uint8).copy() if self.rank == root else np.empty(int(size), np.uint8)
        return pickle.loads(self.bcast(buffer, root).tobytes())

    def gatherv_rows(self, array: np.ndarray, counts, root=0):
        """Rank ``root`` gets the ranks' ``array`` rows stacked in rank order (others get None); ``counts``
        is every rank's row count, known to all."""
        row = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
        sizes = np.asarray(counts, np.int64) * row  # in bytes: any dtype goes as MPI.BYTE
        send = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        if self.rank == root:
            out = np.empty((int(sum(counts)),) + array.shape[1:], array.dtype)
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self.wait(self.comm.Igatherv(send, [out.reshape(-1).view(np.uint8), sizes, offsets, self.MPI.BYTE],
                                         root=root))
            return out
        self.wait(self.comm.Igatherv(send, None, root=root))
        return None


class _Guard:
    def __init__(self, session):
        self.session = session

    def __enter__(self):
        if self.session._depth == 0:  # an inner guard (predict inside a distributed fit) was checked outside
            self.session.usable()
        self.session._depth += 1
        return self.session

    def __exit__(self, kind, value, tb):
        self.session._depth -= 1
        if value is None or self.session.failure is not None or getattr(value, "all_ranks", False):
            return False  # no error, or one the ranks already share (the ranks are still in step)
        self.session.notify(value)
        return False


# -- exchanges and the runner ----------------------------------------------------------------------------
class RankExchange(Exchange):
    """An :class:`Exchange` that reaches every rank: the threads of this rank hand in their arrays, the
    first thread allgathers this rank's list across the ranks, and every thread gets all the chunks' arrays
    in global batch order (rank by rank, chunk by chunk). A rank with no rows of this batch (``ghost``)
    runs the forward on a stand-in sample but hands in nothing."""

    def __init__(self, parties: int, session: Session, ghost: bool = False):
        super().__init__(parties)
        self.session = session
        self.ghost = ghost
        self._results: list = []
        self._mpi_calls = [0] * parties

    def gather(self, chunk: int, array):
        local = super().gather(chunk, array)
        k = self._next(chunk)
        if chunk == 0:  # the calling thread: the only one that talks MPI
            gathered = self.session.allgather_obj([] if self.ghost else [np.asarray(a) for a in local])
            self._results.append([a for part in gathered for a in part])
        self._barrier.wait()
        return list(self._results[k])

    def sum(self, chunk: int, array):
        """``batch_sum``'s way (BatchNormalization's): the threads' parts added in chunk order, then one
        fixed-size allgather of each rank's sum, added in rank order: the same bits on every rank, with a
        third of the cost of :meth:`gather` (no sizes to exchange, nothing pickled)."""
        local = super().gather(chunk, array)
        k = self._next(chunk)
        if chunk == 0:
            mine = np.zeros_like(local[0]) if self.ghost else local[0].copy()
            if not self.ghost:
                for part in local[1:]:
                    mine += part
            everyone = self.session.allgather_array(mine)
            total = everyone[0].copy()
            for part in everyone[1:]:
                total += part
            self._results.append(total)
        self._barrier.wait()
        return self._results[k].copy()  # each thread its own, as the thread exchange gives

    def _next(self, chunk):
        k = self._mpi_calls[chunk]
        self._mpi_calls[chunk] = k + 1
        return k

    def for_chunk(self, chunk: int):
        return _Port(self, chunk)


class _Port:
    """What a chunk's batch context holds: ``port(array)`` gathers, ``port.sum(array)`` sums."""

    __slots__ = ("exchange", "chunk")

    def __init__(self, exchange, chunk):
        self.exchange, self.chunk = exchange, chunk

    def __call__(self, array):
        return self.exchange.gather(self.chunk, array)

    def sum(self, array):
        return self.exchange.sum(self.chunk, array)


def _digest(arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.data)
    return h.hexdigest()


def _rows_digest(arrays) -> str:
    """A cheap digest of data: the length and 256 rows spread over it (bad or different data on one host
    is caught without reading every byte)."""
    parts = []
    for a in arrays:
        pick = np.unique(np.linspace(0, len(a) - 1, num=min(len(a), 256)).astype(np.int64)) if len(a) else []
        parts.append(np.asarray(len(a)))
        parts.append(np.asarray(a)[pick])
    return _digest(parts)


def weights_digest(model) -> str:
    """A digest of every parameter and state array of ``model``."""
    return _digest(v for _, v in sorted(model.get_weights().items()))


def _compare(session, what: str, mine: dict):
    """Raises on every rank when the ranks' ``mine`` dicts differ, naming the ranks and the entries."""
    everyone = session.allgather_obj(mine)
    bad = [(r, sorted(k for k in everyone[0] if everyone[r].get(k) != everyone[0][k])) for r in range(session.size)
           if everyone[r] != everyone[0]]
    if bad:
        lines = "; ".join(f"rank {r} differs from rank 0 in {', '.join(keys)}" for r, keys in bad)
        raise DistributedError(f"the ranks were given different {what}: {lines}. Every rank must run the same "
                               "script on the same data (the ranks split each batch of it).", all_ranks=True)


def _model_facts(model) -> dict:
    config = model.get_config()
    config.pop("seed", None)  # broadcast from rank 0 instead
    shapes = {k: list(v.shape) for k, v in model.get_weights().items()}
    return {"architecture": hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest(),
            "training config": hashlib.sha1(json.dumps(model.get_training_config(), sort_keys=True,
                                                       default=str).encode()).hexdigest(),
            "weight shapes": shapes, "dtype": model.dtype.name}


def broadcast_start(model, session: Session) -> None:
    """Rank 0's weights, state, optimizer state, seed and epoch count on every rank (after checking that
    the ranks built the same model)."""
    _compare(session, "models", _model_facts(model))
    start = session.bcast_obj({"weights": model.get_weights(), "optimizer": model.optimizer.get_state(),
                               "seed": model.seed, "epochs_trained": model.epochs_trained}
                              if session.rank == 0 else None)
    if session.rank != 0:
        model.set_weights(start["weights"])
        model.optimizer.set_state(start["optimizer"])
        model.seed = start["seed"]
        model.epochs_trained = start["epochs_trained"]


def check_same_weights(model, session: Session, when: str) -> None:
    """Raises on every rank when the ranks' weights differ (compared by digest)."""
    digests = session.allgather_obj(weights_digest(model))
    differ = [r for r, d in enumerate(digests) if d != digests[0]]
    if not differ:
        return
    if when == "after":
        raise DistributedError(f"after training, the weights of rank(s) {differ} differ from rank 0's: the ranks "
                               "did not take the same steps (a callback that decides by wall time or by "
                               "something only one rank sees?)", all_ranks=True)
    raise DistributedError(f"the weights of rank(s) {differ} differ from rank 0's; load the same weights on every "
                           "rank (or train them with fit(distributed=True), which starts from rank 0's)",
                           all_ranks=True)


class DistributedRunner:
    """Runs a model's training steps and inference on this rank's share of every global batch, with its own
    threads when they pay. Used by ``Model.fit(distributed=True)``; a context manager like DataParallel.

    Args:
        model: a finalized model.
        session: the :class:`Session`.
        batch_size: the global batch size (decides whether this rank's share is worth threads).
    """

    def __init__(self, model, session: Session, batch_size: int):
        self.model = model
        self.session = session
        share = -(-batch_size // session.size)
        self.threads = DataParallel(model, model.threads) if threads_pay(model, share, model.threads) else None
        self._stack = ExitStack()
        self._buffer = None

    def __enter__(self):
        if self.threads is not None:
            self._stack.enter_context(self.threads)
        else:
            self._stack.enter_context(blas_single_thread())
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False

    def train_step(self, xs, ys, index=None, seed=None, weights=None) -> dict:
        """One step on the global batch ``(xs[index], ys[index])``: this rank's rows, the gradients summed
        over the ranks with one Allreduce, one optimizer step; returns the global batch's logs."""
        model, s = self.model, self.session
        if index is None:
            index = slice(0, len(xs[0]))
        n = index.stop - index.start if isinstance(index, slice) else len(index)
        share = rank_share(n, s.size, s.rank)
        ghost = share is None
        a, b = (0, 1) if ghost else share  # a rank with no rows runs a stand-in sample, weighed 0
        local = slice(index.start + a, index.start + b) if isinstance(index, slice) else index[a:b]

        def exchange(parties):
            return RankExchange(parties, s, ghost)

        if self.threads is not None and not ghost:
            results, sizes = self.threads.compute_gradients(xs, ys, local, seed, offset=a, total=n,
                                                            exchange=exchange, weights=weights)
        else:
            ex = exchange(1)
            with installed(BatchContext(a, n, seed, ex.for_chunk(0))):
                logs = model.forward_backward([x[local] for x in xs], [y[local] for y in ys],
                                              scale=0.0 if ghost else (b - a) / n, weights=take_rows(weights, local))
            if model.plan.needs_collecting:
                model.plan.collect_grads([model.plan.instances])
            results, sizes = [logs], [0 if ghost else b - a]
        params = model.trainable_params()
        if ghost:
            # its stand-in sample's loss gradient was scaled to 0, but BatchNormalization's dx also holds
            # terms from the whole batch's sums, so gradients still flow upstream: they are not this rank's
            for _, _, g in params:
                g[...] = 0
        # this rank's logs: floats as means over its rows, metric states summed; both ride in the gradients'
        # buffer (floats times the rows, states as they are), so one Allreduce per step carries everything
        local = combine_logs(results, sizes) if any(sizes) else {  # a rank without rows adds nothing
            k: 0.0 if k != "_states" else {sk: 0 * sv for sk, sv in v.items()} for k, v in results[0].items()}
        rows = float(sum(sizes))
        keys = [k for k in local if k != "_states"]
        states = local.get("_states", {})
        state_keys = sorted(states)
        state_sizes = [int(np.size(states[k])) for k in state_keys]
        buffer = self._flat(params, len(keys) + sum(state_sizes))
        edges = self._edges
        np.concatenate([g.reshape(-1) for _, _, g in params], out=buffer[:edges[-1]])
        tail = buffer[edges[-1]:]
        for j, k in enumerate(keys):
            tail[j] = local[k] * rows
        at = len(keys)
        for k, size in zip(state_keys, state_sizes):
            tail[at:at + size] = np.ravel(states[k])
            at += size
        tail[-1] = rows
        s.allreduce_sum(buffer)
        for (_, _, g), lo, hi in zip(params, edges[:-1], edges[1:]):
            np.copyto(g, buffer[lo:hi].reshape(g.shape))
        count = float(tail[-1])
        logs = {k: float(tail[j]) / count for j, k in enumerate(keys)}
        if state_keys:
            logs["_states"], at = {}, len(keys)
            for k, size in zip(state_keys, state_sizes):
                logs["_states"][k] = np.array(tail[at:at + size], np.float64).reshape(np.shape(states[k]))
                at += size
        return optimizer_step(model, logs)

    def _flat(self, params, n_logs):
        sizes = [g.size for _, _, g in params]
        if self._buffer is None or self._sizes != sizes or len(self._buffer) != sum(sizes) + n_logs + 1:
            self._sizes = sizes
            self._edges = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
            # float64 when the model is: the metric sums ride in the same buffer, one Allreduce per step
            self._buffer = np.zeros(sum(sizes) + n_logs + 1, self.model.dtype)
        return self._buffer

    def evaluate(self, xs, ys, batch_size, weights=None):
        """Mean loss and metrics over ``(xs, ys)`` (with per-output sample ``weights``, or None), each rank
        scoring its contiguous share."""
        return evaluate(self.model, xs, ys, batch_size, self.session, runner=self.threads, weights=weights)


def evaluate(model, xs, ys, batch_size, s: Session, runner=None, weights=None) -> dict:
    """Mean loss and metrics of prepared ``(xs, ys)`` and sample ``weights`` (per output, or None) on every
    rank: each rank scores its contiguous share (with ``runner``'s threads, if given), and one Allreduce adds
    up the sums and sample counts."""
    n = len(xs[0])
    share = rank_share(n, s.size, s.rank)
    if share is not None:
        a, b = share
        scores = model._evaluate(ArrayBatches([x[a:b] for x in xs], [y[a:b] for y in ys],
                                              take_rows(weights, slice(a, b)), batch_size), runner=runner)
        m = b - a
    else:
        scores, m = {}, 0
    keys = s.bcast_obj(list(scores))  # rank 0 always has a share (n >= 1)
    buffer = np.array([scores.get(k, 0.0) * m for k in keys] + [m], np.float64)
    s.allreduce_sum(buffer)
    return {k: float(buffer[j] / buffer[-1]) for j, k in enumerate(keys)}


def predict(model, xs, batch_size, multi_out):
    """The model's outputs for ``xs``, each rank computing a contiguous share; rank 0 gets them all in
    order, the other ranks None."""
    s = session()
    with s.guard():
        _compare(s, "models or inputs", {**_model_facts(model), "inputs": _rows_digest(xs)})
        check_same_weights(model, s, "before")
        n = len(xs[0])
        shares = [rank_share(n, s.size, r) for r in range(s.size)]
        counts = [0 if share is None else share[1] - share[0] for share in shares]
        share = shares[s.rank]
        a, b = share if share is not None else (0, 0)
        outs = model.predict([x[a:b] for x in xs] if model._multi_in else xs[0][a:b], batch_size)
        outs = outs if multi_out else [outs]
        gathered = [s.gatherv_rows(o, counts) for o in outs]
        if s.rank != 0:
            return None
        return gathered if multi_out else gathered[0]


def distributed_evaluate(model, xs, ys, batch_size, weights=None) -> dict:
    s = session()
    with s.guard():
        _compare(s, "models or data", {**_model_facts(model), "data": _rows_digest(xs + ys + _given(weights))})
        check_same_weights(model, s, "before")
        return evaluate(model, xs, ys, batch_size, s, weights=weights)


def _given(weights) -> list:
    """The sample weight arrays that were given (for the digest that every rank must agree on)."""
    return [w for w in weights or [] if w is not None]


class _FitState:
    """What ``Model.fit`` asks of a distributed run (held on the model while its distributed fit runs)."""

    def __init__(self, s: Session):
        self.session = s
        self.runner = None

    def make_runner(self, model, train, val, batch_size, epochs, shuffle):
        """The runner of a distributed ``fit`` on the prepared ``train`` and ``val`` batches (ArrayBatches),
        once every rank has been found to hold the same model, settings and data (sample weights too)."""
        s = self.session
        facts = {**_model_facts(model), "batch_size": batch_size, "epochs": epochs, "shuffle": bool(shuffle),
                 "training data": _rows_digest(train.xs + train.ys + _given(train.weights)),
                 "validation data": None if val is None else _rows_digest(val.xs + val.ys + _given(val.weights))}
        _compare(s, "models or training settings", facts)
        if batch_size < s.size:  # after the comparison: every rank has the same batch_size, so every rank raises
            error = ValueError(f"batch_size={batch_size} is smaller than the number of ranks ({s.size}): each rank "
                               f"needs at least one sample of every batch; use batch_size >= {s.size} or fewer ranks")
            error.all_ranks = True
            raise error
        broadcast_start(model, s)
        self.runner = DistributedRunner(model, s, batch_size)
        return self.runner


def _agree_to_stop(s: Session):
    from ..callbacks.base import Callback  # here: the callbacks package imports this module

    class AgreeToStop(Callback):
        """After the user's callbacks, every step and epoch: the ranks stop together if any wants to. The
        built-in callbacks decide from the reduced logs, the same on every rank; one of the user's that
        decides otherwise must not leave the others waiting in the next step's Allreduce."""

        def on_batch_end(self, step, logs=None):
            self.model.stop_training = s.any_rank(self.model.stop_training)

        on_epoch_end = on_batch_end

    return AgreeToStop()


def distributed_fit(model, fit, kwargs):
    """``fit(**kwargs)`` as one rank of a distributed run (see the module docstring)."""
    from ..callbacks.base import Callback
    s = session()
    with s.guard():
        if s.rank != 0:
            kwargs = {**kwargs, "verbose": 0}
        callbacks = kwargs.get("callbacks")
        if callbacks is None or isinstance(callbacks, (Callback, list, tuple)):  # else fit says what is wrong
            callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
            kwargs = {**kwargs, "callbacks": callbacks + [_agree_to_stop(s)]}
        model._distributed = _FitState(s)
        try:
            history = fit(**kwargs)
        finally:
            model._distributed = None
        check_same_weights(model, s, "after")
        return history

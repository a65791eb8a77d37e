"""Where ``fit``, ``evaluate`` and ``predict`` get their batches: arrays, or a data source that yields them.

A *data source* is what Keras takes for data larger than memory or augmented on the fly:

* a **Sequence** (``keras.utils.Sequence`` / ``PyDataset``-like): an object with ``__len__`` (batches per
  epoch) and ``__getitem__(i)`` (batch ``i``), and optionally ``on_epoch_end()``, called after every epoch;
  ``fit(shuffle=True)`` visits its batches in a new order every epoch (from the model's seed);
* a **generator** or any iterator, continued from epoch to epoch: ``steps_per_epoch`` batches per epoch,
  or, without it, one pass until it stops (a second epoch then needs a new pass, so it must be given
  ``steps_per_epoch`` and yield forever);
* any other **iterable** (not an array, list, tuple or dict): a new pass every epoch.

Each batch is ``(x, y)`` or ``(x, y, sample_weight)`` (``predict`` also takes ``x`` alone), with ``x`` and
``y`` as ``fit`` takes them (lists or dicts for several inputs or outputs). Batches are read, checked and
converted to the model's dtype in a background thread, up to ``max_queue_size`` ahead, while the model
trains; an error there is raised in the training thread with the batch's number, and nothing waits
forever.

:class:`ArrayBatches` gives array data the same interface: it hands out the whole arrays and an index
per batch, so the threads of :class:`~nnscratch.engine.parallel.DataParallel` gather their own parts.

Example:
    >>> import numpy as np
    >>> class Squares:                                   # a Sequence of 3 batches of 4
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         x = np.arange(4.0 * i, 4.0 * i + 4)[:, None]
    ...         return x, x ** 2
    >>> is_data_source(Squares()), is_data_source(np.zeros(3)), is_data_source([np.zeros(3)])
    (True, False, False)
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from .weighting import check_sample_weight, class_sample_weights, split_per_output

#: a finished producer puts this on the queue
_DONE = object()


class DataSourceError(RuntimeError):
    """A data source failed while producing a batch (the original exception is the ``__cause__``)."""


def is_data_source(x) -> bool:
    """True for a Sequence, an iterator (generators included) or another iterable that is not array data."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or np.isscalar(x):
        return False
    if hasattr(x, "__len__") and hasattr(x, "__getitem__"):
        return not hasattr(x, "__array__") and not hasattr(x, "shape")
    return hasattr(x, "__next__") or hasattr(x, "__iter__")


def _is_sequence(x) -> bool:
    return hasattr(x, "__len__") and hasattr(x, "__getitem__") and not hasattr(x, "__next__")


def take_rows(arrays, index):
    """``[a[index] for a in arrays]`` (None entries stay None: an output without sample weights); ``arrays``
    itself when it or ``index`` is None.

    Example:
        >>> take_rows([np.arange(4), None], slice(1, 3))
        [array([1, 2]), None]
    """
    if arrays is None or index is None:
        return arrays
    return [None if a is None else a[index] for a in arrays]


class ArrayBatches:
    """Batches of prepared arrays: ``(xs, ys, index, weights)`` per batch, the whole arrays with the batch's
    index (a slice, or rows of a permutation when shuffling).

    Args:
        xs, ys: lists of checked arrays (``ys`` may be None for prediction).
        weights: per output, sample weights ``(N,)`` or None; or None.
        batch_size: samples per batch.
        shuffle: a new order every epoch from ``np.random.default_rng([seed, epoch])``.
        seed: the model's seed.
    """

    def __init__(self, xs, ys, weights, batch_size, shuffle=False, seed=0):
        self.xs, self.ys, self.weights = xs, ys, weights
        self.n = len(xs[0])
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.steps = -(-self.n // batch_size)

    def epoch(self, epoch: int):
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else None
        for step in range(self.steps):
            index = slice(step * self.batch_size, min(self.n, (step + 1) * self.batch_size))
            if order is not None:
                index = order[index]
            yield self.xs, self.ys, index, self.weights

    def end_epoch(self):
        pass


class SourceBatches:
    """Batches from a data source, prepared in a background thread: ``(xs, ys, None, weights)`` per batch.

    Args:
        model: the finalized model (its input checks and dtype).
        source: a Sequence, an iterator or an iterable (see the module docstring).
        steps: batches per epoch; default None: ``len(source)`` for a Sequence, one whole pass otherwise.
        targets: whether batches must carry targets (``fit``, ``evaluate``) or may be inputs alone
            (``predict``).
        class_weight: ``{class: weight}`` or None.
        shuffle: visit a Sequence's batches in a new order every epoch.
        max_queue_size: batches prepared ahead, default 10.
        what: how messages name the source, default ``"the data source"`` (``"validation_data"``...).
    """

    def __init__(self, model, source, steps=None, targets=True, class_weight=None, shuffle=False, max_queue_size=10,
                 what="the data source"):
        self.model = model
        self.source = source
        self.what = what
        self.targets = targets
        self.class_weight = class_weight
        self.shuffle = shuffle
        self.max_queue_size = max(1, int(max_queue_size))
        self.sequence = _is_sequence(source)
        self.iterator = source if hasattr(source, "__next__") else None
        if self.sequence:
            length = len(source)
            if length < 1:
                raise ValueError(f"{what}: the Sequence has no batches (len() is {length})")
            self.steps = length if steps is None else min(int(steps), length)
        else:
            self.steps = steps
        self._passes = 0

    def _items(self, epoch):
        """The raw batches of one epoch, in order."""
        if self.sequence:
            order = np.arange(len(self.source))
            if self.shuffle:
                order = np.random.default_rng([self.model.seed, epoch]).permutation(order)
            for i in order[:self.steps]:
                yield self.source[int(i)]
            return
        iterator = self.iterator if self.iterator is not None else iter(self.source)
        count = 0
        while self.steps is None or count < self.steps:
            try:
                item = next(iterator)
            except StopIteration:
                if self.steps is not None:
                    raise DataSourceError(
                        f"{self.what}: the data source ran dry after {count} batch(es) of this epoch, but "
                        f"steps_per_epoch={self.steps} asks for {self.steps}; make the generator yield more (e.g. "
                        "loop forever with `while True:`) or lower steps_per_epoch") from None
                if count == 0:
                    raise DataSourceError(
                        f"{self.what}: the data source yielded no batch"
                        + (" for this epoch: a generator used up by an earlier epoch does not restart; give "
                           "steps_per_epoch with a generator that loops forever, or pass a Sequence or an "
                           "iterable that starts a new pass" if self._passes else "")) from None
                return
            count += 1
            yield item

    def _prepare(self, item, index):
        """Checks one raw batch and converts it: ``(xs, ys, weights)``; errors name the batch."""
        try:
            return self._checked(item, index)
        except (ValueError, TypeError) as e:
            raise type(e)(f"batch {index} of {self.what}: {e}") from e

    def _checked(self, item, index):
        model = self.model
        if isinstance(item, tuple) and len(item) in (1, 2, 3):
            x, y, w = (tuple(item) + (None, None))[:3]
        elif self.targets:
            raise ValueError(f"got a {type(item).__name__}; a data source for training or evaluation yields tuples "
                             "(x, y) or (x, y, sample_weight)")
        else:
            x, y, w = item, None, None
        if not self.targets:
            return model._check_x(x), None, None
        if y is None:
            raise ValueError("it has no targets; yield (x, y) or (x, y, sample_weight)")
        xs, ys = model._check_xy(x, y)
        weights = None
        if w is not None:
            weights = split_per_output(model, w, len(xs[0]), "its sample_weight")
        if self.class_weight is not None:
            cw = class_sample_weights(model, self.class_weight, ys[0], "this batch")
            weights = [cw if u is None else u * cw for u in (weights or [None])]
        return xs, ys, weights

    def epoch(self, epoch: int):
        """Yields ``(xs, ys, None, weights)`` for every batch of the epoch, read ahead in a thread."""
        buffer = queue.Queue(maxsize=self.max_queue_size)
        stop = threading.Event()

        def put(item):
            while not stop.is_set():
                try:
                    buffer.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            items, index = self._items(epoch), 0
            while True:
                try:
                    raw = next(items)
                except StopIteration:
                    break
                except BaseException as e:  # noqa: BLE001 (the source's own error: handed to the training thread)
                    put((index, _located(e, index, self.what)))
                    return
                try:
                    prepared = self._prepare(raw, index)
                except BaseException as e:  # noqa: BLE001 (its message names the batch already)
                    put((index, e))
                    return
                if not put((index, prepared)):
                    return
                index += 1
            put((index, _DONE))

        producer = threading.Thread(target=produce, name="nnscratch-data", daemon=True)
        producer.start()
        try:
            while True:
                try:
                    index, payload = buffer.get(timeout=0.5)
                except queue.Empty:
                    if not producer.is_alive() and buffer.empty():
                        raise DataSourceError(f"{self.what}: the batch producer stopped without a word") from None
                    continue
                if payload is _DONE:
                    break
                if isinstance(payload, BaseException):
                    raise payload
                xs, ys, weights = payload
                yield xs, ys, None, weights
        finally:
            stop.set()
            producer.join(timeout=5)
            self._passes += 1

    def end_epoch(self):
        """Calls the Sequence's ``on_epoch_end`` (Keras calls it after every epoch)."""
        hook = getattr(self.source, "on_epoch_end", None)
        if callable(hook):
            hook()


def _located(error: BaseException, index: int, what: str) -> BaseException:
    """``error`` re-raised in the training thread, saying which batch it came from."""
    if isinstance(error, DataSourceError):
        return error
    if isinstance(error, (ValueError, TypeError)):
        located = type(error)(f"batch {index} of {what}: {error}")
    else:
        located = DataSourceError(f"batch {index} of {what}: reading it raised {type(error).__name__}: {error}")
    located.__cause__ = error
    return located


def array_weights(model, sample_weight, class_weight, ys, n, what="sample_weight"):
    """Per output, the sample weights ``(N,)`` of array data (or None): ``sample_weight`` times the class
    weights of the targets; ``what`` names ``sample_weight`` in messages."""
    weights = None if sample_weight is None else split_per_output(model, sample_weight, n, what)
    if class_weight is not None:
        cw = class_sample_weights(model, class_weight, ys[0], "y")
        weights = [cw if w is None else w * cw for w in (weights or [None])]
    return weights


__all__ = ["ArrayBatches", "DataSourceError", "SourceBatches", "array_weights", "check_sample_weight",
           "is_data_source"]

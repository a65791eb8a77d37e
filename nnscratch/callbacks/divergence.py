"""Divergence guard: notice when training blows up and raise, stop, or roll back and lower the learning rate.

Plain SGD at a learning rate that is a little too high can run well for a while and then, in a few
"defect iterations", throw the weights so far that the loss turns NaN or the ReLUs die and the accuracy
falls to chance, never to recover. :class:`DivergenceGuard` watches every batch for that and acts.

Example:
    >>> import numpy as np
    >>> from nnscratch import Model
    >>> from nnscratch.layers import Dense, ReLU, Softmax
    >>> from nnscratch.optimizers import SGD
    >>> rng = np.random.default_rng(0)
    >>> centers = np.array([[0.0, 2.5], [-2.2, -1.3], [2.2, -1.3]], np.float32)
    >>> y = np.arange(300) % 3
    >>> x = (centers[y] + rng.standard_normal((300, 2))).astype(np.float32)
    >>> model = Model([Dense(32, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=0)
    >>> model.set(loss="categorical_crossentropy", optimizer=SGD(learning_rate=5.0))  # far too high
    >>> model.finalize()
    >>> with np.errstate(all="ignore"):  # the diverging steps overflow before the guard sees them
    ...     _ = model.fit(x, y, epochs=10, batch_size=16, verbose=0, callbacks=[DivergenceGuard()])
    >>> [e["kind"] for e in model.history.events][:1]
    ['rollback']
    >>> model.validate(x, y)["accuracy"] > 0.9
    True
"""
from __future__ import annotations

import copy
import math
import statistics
import warnings
from collections import deque

import numpy as np

from .. import _checks
from ..metrics import BinaryAccuracy, CategoricalAccuracy
from .base import Callback, record_event
from .health import META_KEY as HEALTH_KEY, blowup_origin

ACTIONS = ("rollback", "stop", "raise")


class DivergenceError(RuntimeError):
    """Raised by ``DivergenceGuard(action="raise")`` when training diverges.

    Attributes:
        epoch: global epoch (from 0) in which it happened.
        step: batch index within that epoch.
        cause: ``"nonfinite_loss"``, ``"nonfinite_gradients"``, ``"loss_blowup"`` or ``"accuracy_collapse"``.
        loss: the loss that gave it away (one batch's, or the recent median).
    """

    def __init__(self, message, *, epoch, step, cause, loss):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.cause = cause
        self.loss = loss


class _Snapshot:
    """Weights and optimizer state from just before batch ``step`` of ``epoch``, and the loss/accuracy level
    measured over the first batches trained from it (None until measured)."""

    def __init__(self, model, epoch, step, epoch_sums, epoch_count):
        self.weights = model.get_weights()
        # get_state returns the live slot arrays; the snapshot must not move with them.
        self.optimizer_state = copy.deepcopy(model.optimizer.get_state())
        self.epoch = epoch
        self.step = step
        self.epoch_sums = dict(epoch_sums)
        self.epoch_count = epoch_count
        self.loss = None
        self.accuracy = None
        self.probe_losses = []
        self.probe_accs = []
        self.first = False

    @property
    def level(self):
        """The loss level: the measured one, or the best guess while measuring (None before any batch)."""
        if self.loss is None and self.probe_losses:
            # The median of the batches trained from here is robust to a lucky batch; a later snapshot is
            # only kept when they show no slide. The first snapshot is kept regardless, so its level is the
            # first batch alone, which measures exactly these weights (for an untrained model every batch
            # is about as good, and a run that diverges at once has not yet spoiled it).
            return self.probe_losses[0] if self.first else statistics.median(self.probe_losses)
        return self.loss


def _all_finite(arrays) -> bool:
    # One reduction per array: a NaN or inf anywhere makes its sum NaN or inf. An overflow of the sum
    # itself needs values near 1e38, which is divergence too.
    with np.errstate(over="ignore", invalid="ignore"):
        total = 0.0
        for a in arrays:
            total += float(np.sum(a))
    return math.isfinite(total)


class DivergenceGuard(Callback):
    """Detects a diverging run and raises, stops, or rolls back to the last good state with a lower LR.

    Checks, after every batch:

    * the batch loss is finite (every batch: it costs nothing);
    * the gradients of ``model.trainable_params()`` are finite (every ``check_every`` batches: one sum
      per array);
    * no loss blow-up: the median loss of the last ``window`` batches stays within ``loss_factor`` times
      the good level (losses below ``min_loss`` count as ``min_loss``, so noise near zero loss is not
      mistaken for divergence);
    * no accuracy collapse: the mean accuracy of the last ``window`` batches stays above chance plus
      ``collapse_fraction`` of the good level's gain over chance. Chance is ``1/num_classes`` for
      categorical accuracy and 0.5 for binary accuracy (or ``chance=...``); other metrics skip this
      check, and so does a model that has not yet climbed 10% of the way from chance to 1.

    Judging starts a quarter window after the start (or a rollback), so an early blow-up is caught
    within a few batches.

    A divergence is a state much worse than the one a rollback would return to: the good level is the
    worse of the best windowed value seen and the level measured at the current snapshot, so a snapshot
    that fails the test itself is never the target of an endless loop of rollbacks.

    Snapshots (``model.get_weights()`` and a deep copy of ``optimizer.get_state()``) are taken at the
    start of every epoch and every ``snapshot_every`` batches while training looks healthy (weights
    finite, windowed loss and accuracy at most halfway to the thresholds). The last update before a
    snapshot may already have thrown the weights off, so a new snapshot replaces the rollback target
    only after the next ``window // 4`` batches, trained from it, look healthy too; their median loss
    and mean accuracy become its level.

    On divergence, per ``action``:

    * ``"rollback"`` (default): restore the snapshot, multiply ``optimizer.lr_multiplier`` by
      ``lr_factor`` and carry on. After ``max_rollbacks`` rollbacks in one ``fit``, it restores and stops
      instead (with a RuntimeWarning). The epoch's ``loss``/accuracy logs then average only the batches
      whose updates were kept, so put the guard before CSVLogger & co. in the callbacks list.
    * ``"stop"``: restore the snapshot (unless ``restore_weights=False``) and stop training, with a
      RuntimeWarning.
    * ``"raise"``: restore the snapshot (unless ``restore_weights=False``) and raise
      :class:`DivergenceError`, whose message says what happened, at which epoch and batch.

    Every action is recorded in ``model.history.events`` with ``kind`` ``"rollback"``,
    ``"divergence_stop"`` or ``"divergence_error"``, ``epoch``, ``step``, ``cause``, ``loss_before`` (the
    loss that gave the divergence away), ``loss_after`` (the loss of the restored state, as measured when
    it was saved; None if not restored), ``learning_rate_before``, ``learning_rate`` (the new rate) and
    ``restored_epoch``/``restored_step`` (where the snapshot was taken). With
    :class:`~nnscratch.callbacks.LayerHealth` in the callbacks, the message also names the layer whose
    gradient norm or update ratio jumped first since the snapshot (event fields ``layer`` and
    ``layer_metric``; see :func:`~nnscratch.callbacks.health.blowup_origin`).

    Args:
        action: ``"rollback"``, ``"stop"`` or ``"raise"``, default ``"rollback"``.
        loss_factor: blow-up threshold over the good loss level, > 1, default 4 (the transient bumps of
            high-LR SGD seen on small problems stayed within about 3x; a divergence goes far past).
        window: batches in the moving window for the loss median and accuracy mean, default 20.
        check_every: check the gradients every this many batches (0 never), default 10.
        lr_factor: learning-rate multiplier after a rollback, in (0, 1), default 0.5.
        max_rollbacks: rollbacks allowed per ``fit`` before giving up, default 5.
        snapshot_every: also snapshot every this many batches within an epoch (None: only at epoch
            starts), default 100.
        min_loss: floor under the reference loss, default 0.1 (suits cross-entropy; lower it for losses
            on a smaller scale).
        collapse_fraction: in (0, 1), default 0.25.
        chance: accuracy of guessing, default None (derived from the model's accuracy metric).
        restore_weights: for ``"stop"``/``"raise"``, put the last good weights back first, default True
            (the diverged ones are rarely worth keeping; False leaves them for inspection).

    Memory: up to two snapshots (the confirmed one and one on probation), each a copy of the weights
    and of the optimizer's slots.

    Attributes:
        rollbacks: rollbacks done in the current (or last) ``fit``.

    Example:
        >>> guard = DivergenceGuard(action="rollback", lr_factor=0.5, max_rollbacks=3)
        >>> # model.fit(x, y, epochs=20, callbacks=[guard])
    """

    def __init__(self, action="rollback", loss_factor=4.0, window=20, check_every=10, lr_factor=0.5,
                 max_rollbacks=5, snapshot_every=100, min_loss=0.1, collapse_fraction=0.25, chance=None,
                 restore_weights=True):
        super().__init__()
        if action not in ACTIONS:
            raise ValueError(f"DivergenceGuard: action must be one of {', '.join(map(repr, ACTIONS))}, got {action!r}")
        self.action = action
        self.loss_factor = _checks.number("DivergenceGuard: loss_factor", loss_factor, low=1, low_open=True)
        self.window = _checks.positive_int("DivergenceGuard: window", window)
        self.check_every = _checks.positive_int("DivergenceGuard: check_every", check_every, allow_zero=True)
        self.lr_factor = _checks.number("DivergenceGuard: lr_factor", lr_factor, low=0, high=1, low_open=True,
                                        high_open=True)
        self.max_rollbacks = _checks.positive_int("DivergenceGuard: max_rollbacks", max_rollbacks, allow_zero=True)
        self.snapshot_every = (None if snapshot_every is None
                               else _checks.positive_int("DivergenceGuard: snapshot_every", snapshot_every))
        self.min_loss = _checks.number("DivergenceGuard: min_loss", min_loss, low=0)
        self.collapse_fraction = _checks.number("DivergenceGuard: collapse_fraction", collapse_fraction, low=0,
                                                high=1, low_open=True, high_open=True)
        self.chance = None if chance is None else _checks.number("DivergenceGuard: chance", chance, low=0, high=1,
                                                                 high_open=True)
        self.restore_weights = bool(restore_weights)
        self.rollbacks = 0

    # -- state ---------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        model = self.model
        if not _all_finite(p for _, p, _ in model.trainable_params()):
            raise ValueError("DivergenceGuard: the model's weights contain NaN/inf before training starts, so "
                             "there is no good state to return to; rebuild or reload the model")
        self.rollbacks = 0
        self._steps = (logs or {}).get("steps")
        self._batches = 0
        self._losses = deque(maxlen=self.window)
        self._accs = deque(maxlen=self.window)
        self._best_loss = None
        self._best_acc = None
        self._snapshot = None  # the confirmed good state: what a rollback restores
        self._candidate = None  # a newer snapshot on probation
        self._probation = max(1, self.window // 4)
        self._acc_key, self._chance = self._accuracy_and_chance()
        self._epoch = model.epochs_trained
        self._epoch_sums, self._epoch_count, self._restored_this_epoch = {}, 0, False

    def _accuracy_and_chance(self):
        accuracy = self.model.accuracy
        if accuracy is None:
            return None, None
        if self.chance is not None:
            return accuracy.name, self.chance
        if isinstance(accuracy, CategoricalAccuracy):
            classes = self.model.output_shape[-1]
            return accuracy.name, (1.0 / classes if classes > 1 else None)
        if isinstance(accuracy, BinaryAccuracy):
            return accuracy.name, 0.5
        return accuracy.name, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_sums, self._epoch_count, self._restored_this_epoch = {}, 0, False
        self._maybe_snapshot(0)

    def _maybe_snapshot(self, step):
        if self._candidate is not None:
            return  # let the one on probation finish first, or none would ever be confirmed
        if not self._healthy() or not _all_finite(p for _, p, _ in self.model.trainable_params()):
            return
        snapshot = _Snapshot(self.model, self._epoch, step, self._epoch_sums, self._epoch_count)
        if self._snapshot is None:
            self._snapshot = snapshot  # the starting point: there is nothing better to fall back on
            snapshot.first = True
        else:
            # The losses so far were measured at earlier weights, and the last update may already have
            # thrown these far off: a snapshot becomes the rollback target only once the batches that
            # follow it (the first measures exactly its weights) show it healthy.
            self._candidate = snapshot

    def _references(self):
        """(good loss, good accuracy): what "much worse" is measured against, or None while unknown.

        A divergence is a state much worse than the one a rollback would return to, so the references
        are the worse of the best seen so far and the level measured at the snapshot: rolling back to a
        state that is itself "diverged" by the test would only loop.
        """
        snapshot = self._snapshot
        losses = [v for v in (self._best_loss, snapshot and snapshot.level) if v is not None]
        # No accuracy verdict before the first full window: a window that still holds the first, near-chance
        # batches says nothing about a collapse.
        accs = [v for v in (self._best_acc, snapshot and snapshot.accuracy) if v is not None]
        return (max(losses) if losses else None), (min(accs) if self._best_acc is not None else None)

    def _thresholds(self, scale=1.0):
        """(loss limit, accuracy floor); ``scale=0.5`` gives the halfway marks that healthy states meet."""
        ref_loss, ref_acc = self._references()
        loss_limit = None
        if ref_loss is not None:
            loss_limit = (1 + (self.loss_factor - 1) * scale) * max(ref_loss, self.min_loss)
        acc_floor = None
        if self._chance is not None and ref_acc is not None:
            gain = ref_acc - self._chance
            # Until the model has clearly learned, a dip near chance is noise, not a collapse.
            if gain >= 0.1 * (1 - self._chance):
                fraction = self.collapse_fraction + (1 - self.collapse_fraction) * (1 - scale)
                acc_floor = self._chance + fraction * gain
        return loss_limit, acc_floor

    def _healthy(self, losses=None, accs=None):
        # Judged on whatever the window holds: a partial window is noisier, but a false "unhealthy" only
        # skips one snapshot, while a false "healthy" would save a blown-up state as the good one.
        losses = self._losses if losses is None else losses
        accs = self._accs if accs is None else accs
        loss_limit, acc_floor = self._thresholds(scale=0.5)
        if loss_limit is not None and losses and statistics.median(losses) > loss_limit:
            return False
        if acc_floor is not None and accs and sum(accs) / len(accs) < acc_floor:
            return False
        return True

    # -- the checks ----------------------------------------------------------------------------------
    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None:
            return
        loss = float(loss)
        self._batches += 1
        if not math.isfinite(loss):
            return self._diverged(batch, "nonfinite_loss", f"the loss became {loss}", loss)
        if self.check_every and self._batches % self.check_every == 0:
            if not _all_finite(g for _, _, g in self.model.trainable_params()):
                return self._diverged(batch, "nonfinite_gradients", "the gradients contain NaN/inf", loss)
        acc = logs.get(self._acc_key) if self._acc_key else None
        acc = None if acc is None else float(acc)
        size = logs.get("size", 1)
        self._epoch_count += size
        self._epoch_sums["loss"] = self._epoch_sums.get("loss", 0.0) + loss * size
        self._losses.append(loss)
        if acc is not None:
            self._accs.append(acc)
            self._epoch_sums[self._acc_key] = self._epoch_sums.get(self._acc_key, 0.0) + acc * size
        if self._best_loss is None:
            self._best_loss = loss  # the untrained model's loss: a yardstick before the first full window
        # Judging starts once a quarter of the window is in, so a blow-up at the start or right after a
        # rollback is caught within a few batches; the best values move only on full windows, which are
        # steady enough to define "good".
        count = len(self._losses)
        if count >= self._probation:
            median = statistics.median(self._losses)
            mean_acc = sum(self._accs) / len(self._accs) if len(self._accs) == count else None
            loss_limit, acc_floor = self._thresholds()
            if loss_limit is not None and median > loss_limit:
                return self._diverged(batch, "loss_blowup",
                                      f"the loss rose to {median:.4g} (median of the last {count} batches), over "
                                      f"{self.loss_factor:g} x the good level {loss_limit / self.loss_factor:.4g}",
                                      median)
            if acc_floor is not None and mean_acc is not None and mean_acc < acc_floor:
                return self._diverged(batch, "accuracy_collapse",
                                      f"the {self._acc_key} fell to {mean_acc:.3f} (mean of the last {count} "
                                      f"batches), near chance ({self._chance:.3f}), from {self._references()[1]:.3f}",
                                      median)
            if count == self.window:
                self._best_loss = min(self._best_loss, median)
                if mean_acc is not None:
                    self._best_acc = mean_acc if self._best_acc is None else max(self._best_acc, mean_acc)
        self._probe(loss, acc)
        if self.snapshot_every and (batch + 1) % self.snapshot_every == 0:
            self._maybe_snapshot(batch + 1)

    def _probe(self, loss, acc):
        """Feeds a batch that passed every check to the snapshots still measuring their level."""
        for snapshot in (self._snapshot, self._candidate):
            if snapshot is None or snapshot.loss is not None:
                continue
            snapshot.probe_losses.append(loss)
            if acc is not None:
                snapshot.probe_accs.append(acc)
            if len(snapshot.probe_losses) < self._probation:
                continue
            if snapshot is self._candidate:
                self._candidate = None
                if not self._healthy(snapshot.probe_losses, snapshot.probe_accs):
                    continue  # the state had already slid; keep the older, confirmed one
                self._snapshot = snapshot
            snapshot.loss = snapshot.level
            if snapshot.probe_accs:
                accs = snapshot.probe_accs
                snapshot.accuracy = accs[0] if snapshot.first else sum(accs) / len(accs)  # as for the loss

    def on_epoch_end(self, epoch, logs=None):
        # The updates of the discarded batches were undone; the epoch's means should not count them.
        if logs is not None and self._restored_this_epoch and self._epoch_count > 0:
            for key, total in self._epoch_sums.items():
                logs[key] = total / self._epoch_count

    # -- acting --------------------------------------------------------------------------------------
    def _restore(self, snapshot):
        self.model.set_weights(snapshot.weights)
        self.model.optimizer.set_state(snapshot.optimizer_state)
        if snapshot.epoch == self._epoch:
            self._epoch_sums, self._epoch_count = dict(snapshot.epoch_sums), snapshot.epoch_count
        else:
            self._epoch_sums, self._epoch_count = {}, 0
        self._restored_this_epoch = True
        self._candidate = None
        # The window described the diverged trajectory; judging restarts from the restored state.
        self._losses.clear()
        self._accs.clear()

    def _diverged(self, step, cause, what, loss):
        model, optimizer, snapshot = self.model, self.model.optimizer, self._snapshot
        lr_before = optimizer.current_learning_rate
        where = f"epoch {self._epoch + 1}, batch {step + 1}" + (f"/{self._steps}" if self._steps else "")
        common = dict(cause=cause, loss_before=loss, learning_rate_before=lr_before,
                      restored_epoch=None if snapshot is None else snapshot.epoch,
                      restored_step=None if snapshot is None else snapshot.step)
        # With LayerHealth on, its record says which layer blew up first since the state a rollback returns to
        # (the snapshot holds the weights from before its batch, so that batch's sample counts as after it).
        origin = blowup_origin(getattr(model.history, "meta", {}).get(HEALTH_KEY),
                               since=None if snapshot is None else (snapshot.epoch, snapshot.step - 1))
        if origin is not None:
            what = f"{what}; {origin['text']}"
            common.update(layer=origin["layer"], layer_metric=origin["metric"])
        if snapshot is not None:
            back_to = f"epoch {snapshot.epoch + 1}, batch {snapshot.step + 1}"
            if snapshot.step == 0:
                back_to = f"the start of epoch {snapshot.epoch + 1}"
        if self.action == "rollback" and snapshot is not None and self.rollbacks < self.max_rollbacks:
            multiplier = optimizer.lr_multiplier
            self._restore(snapshot)
            # set_state brought back the snapshot's multiplier; lower the one in force when it diverged.
            optimizer.lr_multiplier = multiplier * self.lr_factor
            self.rollbacks += 1
            lr = optimizer.current_learning_rate
            record_event(model, "rollback", self._epoch, step,
                         f"{where}: {what}; rolled back to {back_to} and lowered the learning rate "
                         f"{lr_before:.3g} -> {lr:.3g} (rollback {self.rollbacks}/{self.max_rollbacks})",
                         loss_after=snapshot.level, learning_rate=lr, lr_multiplier=optimizer.lr_multiplier,
                         rollbacks=self.rollbacks, **common)
            return

        restored = snapshot is not None and (self.restore_weights or self.action == "rollback")
        if restored:
            multiplier = optimizer.lr_multiplier
            self._restore(snapshot)
            optimizer.lr_multiplier = multiplier  # keep the reductions made since; a resumed run wants them
        after = f"; the weights of {back_to} were restored" if restored else ""
        advice = f"Lower the learning rate (it is {lr_before:.3g})"
        if self.action == "rollback":
            why = (f"still diverging after {self.rollbacks} rollback(s) (max_rollbacks={self.max_rollbacks})"
                   if snapshot is not None else "no good state saved yet to roll back to")
            message = f"{where}: {what}; {why}, training stopped{after}. {advice} or raise max_rollbacks"
        elif self.action == "stop":
            message = (f"{where}: {what}; training stopped{after}. {advice} or use "
                       "DivergenceGuard(action='rollback') to lower it automatically")
        else:
            message = (f"training diverged at {where}: {what}{after}. {advice}, or use "
                       "DivergenceGuard(action='rollback') to roll back and lower it automatically")
        kind = "divergence_error" if self.action == "raise" else "divergence_stop"
        record_event(model, kind, self._epoch, step, message, loss_after=snapshot.level if restored else None,
                     learning_rate=optimizer.current_learning_rate, rollbacks=self.rollbacks, **common)
        if self.action == "raise":
            raise DivergenceError(message, epoch=self._epoch, step=step, cause=cause, loss=loss)
        model.stop_training = True
        warnings.warn(f"DivergenceGuard: {message}", RuntimeWarning, stacklevel=2)

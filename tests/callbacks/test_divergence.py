"""DivergenceGuard: a run that diverges without it recovers with it; each action; each check; no false alarms."""
import copy
import math
import warnings

import numpy as np
import pytest

from nnscratch import Model
from nnscratch.callbacks import Callback, DivergenceError, DivergenceGuard
from nnscratch.layers import Dense, ReLU, Softmax
from nnscratch.optimizers import SGD, Adam


def blobs(n=300, seed=0):
    """Three Gaussian blobs in 2-D: easy (~98 %) at a sane learning rate."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.5], [-2.2, -1.3], [2.2, -1.3]])
    y = np.arange(n) % 3
    return (centers[y] + rng.standard_normal((n, 2))).astype(np.float32), y


def mlp(optimizer, seed=0):
    model = Model([Dense(32, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer=optimizer)
    model.finalize()
    return model


def weights_finite(model):
    return all(np.isfinite(w).all() for w in model.get_weights().values())


def events(model, kind):
    return [e for e in model.history.events if e["kind"] == kind]


def quiet_fit(model, *args, **kwargs):
    # The diverging steps overflow inside NumPy before the guard can see their loss.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return model.fit(*args, **kwargs)


# -- the demonstration -----------------------------------------------------------------------------------
def test_plain_sgd_at_a_huge_learning_rate_diverges_without_the_guard_and_recovers_with_it():
    x, y = blobs()
    x_test, y_test = blobs(seed=1)

    unguarded = mlp(SGD(learning_rate=5.0))  # ~5x more than this problem takes
    quiet_fit(unguarded, x, y, epochs=10, batch_size=16, verbose=0)
    with np.errstate(all="ignore"):
        result = unguarded.validate(x_test, y_test)
    assert math.isnan(result["loss"]) and result["accuracy"] < 0.4  # NaN weights: chance (1/3) at best

    guarded = mlp(SGD(learning_rate=5.0))
    quiet_fit(guarded, x, y, epochs=10, batch_size=16, verbose=0, callbacks=[DivergenceGuard()])
    result = guarded.validate(x_test, y_test)
    assert result["accuracy"] > 0.95 and weights_finite(guarded)
    rollbacks = events(guarded, "rollback")
    assert 1 <= len(rollbacks) <= 5
    for event in rollbacks:
        assert event["loss_before"] > 4 * event["loss_after"]
        assert event["learning_rate"] == pytest.approx(event["learning_rate_before"] / 2)
        assert {"epoch", "step", "cause", "restored_epoch", "restored_step", "message"} <= set(event)
    assert guarded.optimizer.current_learning_rate == pytest.approx(5.0 / 2 ** len(rollbacks))
    # The epoch logs count only the batches whose updates were kept: no NaN or blown-up epoch loss.
    assert max(guarded.history.history["loss"]) < 5


# -- rollback restores weights and optimizer state -------------------------------------------------------
class DivergenceTestPoison(Callback):
    """From batch ``step`` of the fit's ``epoch``-th epoch on, ``times`` times, puts a NaN into the first
    kernel (or, with ``grad=True``, into its gradient only)."""

    def __init__(self, epoch, step, grad=False, times=1):
        super().__init__()
        self.at, self.grad, self.times, self.index = (epoch, step), grad, times, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.index += 1

    def on_batch_end(self, batch, logs=None):
        if self.index == self.at[0] and batch >= self.at[1] and self.times:
            self.times -= 1
            store = self.model.layers[0].grads if self.grad else self.model.layers[0].params
            store["kernel"][0, 0] = np.nan


class DivergenceTestStates(Callback):
    """Keeps the weights and optimizer state at each epoch start and after every batch."""

    def __init__(self):
        super().__init__()
        self.at_epoch_start, self.after_batch = {}, []

    def on_epoch_begin(self, epoch, logs=None):
        self.at_epoch_start[epoch] = (self.model.get_weights(), copy.deepcopy(self.model.optimizer.get_state()))

    def on_batch_end(self, batch, logs=None):
        self.after_batch.append((batch, self.model.get_weights(), copy.deepcopy(self.model.optimizer.get_state())))


def test_a_nan_loss_rolls_back_to_the_snapshot_with_its_optimizer_state_and_halves_the_rate():
    model = mlp(SGD(0.1, momentum=0.9))
    x, y = blobs(96)
    states = DivergenceTestStates()
    guard = DivergenceGuard(window=4, snapshot_every=None)  # probation of one batch: epoch-start snapshots
    quiet_fit(model, x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[DivergenceTestPoison(1, 2), guard, states])
    (event,) = events(model, "rollback")
    assert (event["epoch"], event["step"], event["cause"]) == (1, 3, "nonfinite_loss")
    assert (event["restored_epoch"], event["restored_step"]) == (1, 0)
    # Right after the rollback (batch 3 of epoch 1) the model is exactly as at the start of epoch 1.
    batch, weights, state = states.after_batch[6 + 3]
    start_weights, start_state = states.at_epoch_start[1]
    assert batch == 3
    assert all(np.array_equal(weights[k], start_weights[k]) for k in weights)
    assert state["iterations"] == start_state["iterations"]
    for key, slots in start_state["slots"].items():
        np.testing.assert_array_equal(state["slots"][key]["velocity"], slots["velocity"])
    assert state["lr_multiplier"] == 0.5 and guard.rollbacks == 1
    assert model.epochs_trained == 3 and weights_finite(model)
    assert math.isfinite(model.history.history["loss"][1])


def test_non_finite_gradients_are_caught_even_when_the_loss_is_finite():
    model = mlp(SGD(0.1))
    x, y = blobs(96)
    quiet_fit(model, x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[DivergenceTestPoison(0, 2, grad=True), DivergenceGuard(check_every=1)])
    (event,) = events(model, "rollback")
    assert event["cause"] == "nonfinite_gradients" and (event["epoch"], event["step"]) == (0, 2)
    assert weights_finite(model)


def test_action_raise_restores_the_last_good_weights_and_says_where_it_happened():
    model = mlp(SGD(0.1))
    x, y = blobs(96)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 2, batch 4/6: the loss became nan.*restored.*"
                                              r"Lower the learning rate \(it is 0.1\)") as info:
        quiet_fit(model, x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[DivergenceTestPoison(1, 2), DivergenceGuard(action="raise", window=4)])
    assert (info.value.epoch, info.value.step, info.value.cause) == (1, 3, "nonfinite_loss")
    assert weights_finite(model)
    assert [e["kind"] for e in model.history.events] == ["divergence_error"]


def test_action_stop_stops_with_a_warning_and_can_leave_the_diverged_weights_for_inspection():
    x, y = blobs(96)
    model = mlp(SGD(0.1))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="training stopped"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[DivergenceTestPoison(1, 2), DivergenceGuard(action="stop", window=4)])
    assert model.epochs_trained == 2 and weights_finite(model)
    assert events(model, "divergence_stop")[0]["loss_after"] is not None

    model = mlp(SGD(0.1))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[DivergenceTestPoison(1, 2),
                             DivergenceGuard(action="stop", window=4, restore_weights=False)])
    assert not weights_finite(model)


def test_after_max_rollbacks_it_restores_and_stops():
    model = mlp(SGD(0.1))
    x, y = blobs(96)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match=r"after 2 rollback\(s\)"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[DivergenceGuard(window=4, max_rollbacks=2), DivergenceTestPoison(1, 2, times=3)])
    assert [e["kind"] for e in model.history.events] == ["rollback", "rollback", "divergence_stop"]
    assert model.epochs_trained == 2 and weights_finite(model)
    assert model.optimizer.current_learning_rate == pytest.approx(0.1 / 4)


# -- the windowed checks, driven with synthetic batch logs ---------------------------------------------------
def drive(guard, model, losses, accuracies=None, batches_per_epoch=50):
    """Feeds the guard batch logs as fit would, without training; returns the events recorded."""
    guard.set_model(model)
    guard.on_train_begin({"epochs": 1, "steps": batches_per_epoch})
    for i, loss in enumerate(losses):
        epoch, step = divmod(i, batches_per_epoch)
        if step == 0:
            guard.on_epoch_begin(epoch)
        logs = {"loss": float(loss), "size": 16}
        if accuracies is not None:
            logs["accuracy"] = float(accuracies[i])
        guard.on_batch_end(step, logs)
    return model.history.events


def fresh_model():
    return mlp(SGD(0.1))


def test_a_loss_blow_up_is_detected_against_the_good_level():
    rng = np.random.default_rng(0)
    losses = np.r_[0.5 + 0.05 * rng.standard_normal(120), np.full(20, 3.0)]
    event = drive(DivergenceGuard(action="rollback", window=20), fresh_model(), losses)[0]
    # The window's median turns once more than half of it is bad: the 11th bad batch, index 130.
    assert event["cause"] == "loss_blowup" and (event["epoch"], event["step"]) == (2, 30)
    assert "over 4 x the good level 0.5" in event["message"]


def test_an_accuracy_collapse_to_chance_is_detected():
    rng = np.random.default_rng(0)
    accuracy = np.r_[np.clip(0.95 + 0.03 * rng.standard_normal(150), 0, 1), np.full(30, 0.33)]
    losses = np.full(180, 0.3)  # the loss alone would not tell
    event = drive(DivergenceGuard(window=20), fresh_model(), losses, accuracy)[0]
    assert event["cause"] == "accuracy_collapse" and "near chance (0.333)" in event["message"]
    # The floor is a quarter of the way from chance to ~0.95: 15 of the 20 batches must be at chance.
    assert event["epoch"] * 50 + event["step"] == 150 + 14


def test_noisy_but_healthy_training_raises_no_alarm():
    rng = np.random.default_rng(0)
    n = 2000
    # Loss falling from ln 3 towards 0.02 with heavy batch noise, accuracy rising towards 1.
    level = 0.02 + 1.08 * np.exp(-np.arange(n) / 200)
    losses = level * rng.lognormal(0, 0.6, n)
    accuracy = np.clip(1 - level / 1.6 + 0.08 * rng.standard_normal(n), 0, 1)
    assert drive(DivergenceGuard(snapshot_every=25), fresh_model(), losses, accuracy) == []


def test_real_training_at_a_sane_learning_rate_raises_no_alarm():
    x, y = blobs()
    for optimizer in (Adam(1e-2), SGD(0.5)):
        model = mlp(optimizer)
        guard = DivergenceGuard(snapshot_every=5)
        model.fit(x, y, epochs=15, batch_size=16, verbose=0, callbacks=[guard])
        assert model.history.events == [] and guard.rollbacks == 0
        assert model.validate(x, y)["accuracy"] > 0.95


# -- arguments ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"action": "panic"}, "action must be one of 'rollback', 'stop', 'raise'"),
    ({"lr_factor": 1.5}, "lr_factor"),
    ({"loss_factor": 1.0}, "loss_factor"),
    ({"window": 0}, "window"),
    ({"snapshot_every": 0}, "snapshot_every"),
    ({"chance": 1.0}, "chance"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DivergenceGuard(**kwargs)


def test_a_model_that_is_already_nan_is_refused_before_training():
    model = fresh_model()
    model.layers[0].params["kernel"][0, 0] = np.inf
    with pytest.raises(ValueError, match="contain NaN/inf before training"):
        model.fit(*blobs(32), epochs=1, verbose=0, callbacks=[DivergenceGuard()])

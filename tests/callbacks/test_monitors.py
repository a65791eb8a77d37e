"""EarlyStopping, ReduceLROnPlateau, LearningRateScheduler and TerminateOnNaN."""
import math

import numpy as np
import pytest

from nnscratch.callbacks import Callback, EarlyStopping, LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN
from nnscratch.optimizers import SGD
from nnscratch.schedules import StepDecay
from nnscratch.callbacks import CSVLogger
from small_models import CallbacksTestScript, CallbacksTestWeights, blobs, kinds, same_weights, small_model


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model = small_model()
    x, y = blobs()
    values = [5.0, 4.0, 3.0, 3.5, 3.2, 1.0, 0.5]  # best at epoch 2, then two worse epochs
    stop = EarlyStopping(monitor="score", patience=2)
    model.fit(x, y, epochs=7, batch_size=32, verbose=0, callbacks=[CallbacksTestScript("score", values), stop])
    assert model.epochs_trained == 5 and stop.stopped_epoch == 4
    assert stop.best == 3.0 and stop.best_epoch == 2
    (event,) = kinds(model, "early_stop")
    assert event["epoch"] == 4 and event["best_epoch"] == 2 and "epoch 3" in event["message"]


def test_best_epoch_indexes_the_history_and_the_message_names_the_epoch_line_that_showed_it(capsys):
    """best_epoch counts from 0 (History.epoch, Keras); the messages count from 1 (the progress lines)."""
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # a resumed run: epochs are counted over its life
    values = [5.0, 4.0, 3.0, 3.5, 3.2]
    stop = EarlyStopping(monitor="score", patience=2)
    model.fit(x, y, epochs=5, batch_size=32, verbose=2, callbacks=[CallbacksTestScript("score", values), stop])
    assert stop.best_epoch == 3 and model.history.history["score"][stop.best_epoch] == stop.best == 3.0
    lines = capsys.readouterr().out.splitlines()
    (best_line,) = [line for line in lines if line.startswith(f"Epoch {stop.best_epoch + 1}/")]
    assert "score 3.0000" in best_line
    assert lines[-1] == "  [early_stop] early stopping after epoch 6: score has not improved for 2 epoch(s); best 3 at epoch 4"


def test_early_stopping_patience_zero_stops_at_the_first_epoch_that_does_not_improve():
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=6, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [3, 2, 2.5, 1, 1, 1]), EarlyStopping("score", patience=0)])
    assert model.epochs_trained == 3


def test_early_stopping_min_delta_and_max_mode():
    model = small_model()
    x, y = blobs()
    # Gains of 0.01 do not count with min_delta=0.05: epochs 1 and 2 do not improve on epoch 0.
    stop = EarlyStopping("val_acc_like", patience=2, min_delta=0.05, mode="max")
    model.fit(x, y, epochs=6, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("val_acc_like", [0.5, 0.51, 0.52, 0.9, 0.9, 0.9]), stop])
    assert model.epochs_trained == 3 and stop.best == 0.5
    assert EarlyStopping("val_accuracy").mode == "max" and EarlyStopping("val_loss").mode == "min"


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    model = small_model()
    x, y = blobs()
    weights = CallbacksTestWeights()
    values = [1.0, 0.4, 0.6, 0.7, 0.8]
    stop = EarlyStopping("score", patience=3, restore_best_weights=True)
    model.fit(x, y, epochs=10, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", values), weights, stop])
    assert model.epochs_trained == 5
    assert same_weights(model.get_weights(), weights.by_epoch[1])
    assert not same_weights(model.get_weights(), weights.by_epoch[4])
    (event,) = kinds(model, "restore_best_weights")
    assert event["best_epoch"] == 1


def test_early_stopping_restores_the_best_weights_even_when_it_never_stops():
    model = small_model()
    x, y = blobs()
    weights = CallbacksTestWeights()
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [1.0, 0.2, 0.3]), weights,
                         EarlyStopping("score", patience=5, restore_best_weights=True)])
    assert model.epochs_trained == 3
    assert same_weights(model.get_weights(), weights.by_epoch[1])


def test_early_stopping_with_a_baseline_stops_when_the_baseline_is_never_reached():
    model = small_model()
    x, y = blobs()
    stop = EarlyStopping("score", patience=2, baseline=0.1)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), stop])
    assert model.epochs_trained == 2
    assert "baseline" in kinds(model, "early_stop")[0]["message"]


def test_a_missing_monitored_key_is_an_error_that_lists_the_available_ones():
    model = small_model()
    x, y = blobs()
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*loss, accuracy.*validation_data"):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match=r"'val_los'.*val_loss"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_data=(x, y),
                  callbacks=[ReduceLROnPlateau(monitor="val_los")])


@pytest.mark.parametrize("make, match", [
    (lambda: EarlyStopping(mode="bigger"), "mode must be"),
    (lambda: EarlyStopping(patience=-1), "patience"),
    (lambda: EarlyStopping(monitor=""), "monitor"),
    (lambda: ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: ReduceLROnPlateau(min_lr=-1), "min_lr"),
    (lambda: CSVLogger("x.csv", separator=";;"), "separator"),
    (lambda: LearningRateScheduler(0.1), "function"),
])
def test_bad_arguments_are_refused_with_the_name_and_value(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# -- ReduceLROnPlateau -----------------------------------------------------------------------------------
def reduction_epochs(model):
    return [e["epoch"] for e in kinds(model, "reduce_lr")]


# Keras' counting: the epoch in which the cooldown runs out already counts towards the patience again.
@pytest.mark.parametrize("patience, cooldown, expected", [(2, 0, [2, 4, 6, 8]), (1, 0, list(range(1, 10))),
                                                          (1, 2, [1, 3, 5, 7, 9]), (2, 3, [2, 6])])
def test_reduce_lr_on_plateau_reduces_at_the_right_epochs(patience, cooldown, expected):
    model = small_model(SGD(0.1))
    x, y = blobs()
    model.fit(x, y, epochs=10, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [1.0] * 10),
                         ReduceLROnPlateau("score", factor=0.5, patience=patience, cooldown=cooldown)])
    assert reduction_epochs(model) == expected
    lrs = model.history.history["learning_rate"]
    # The log of epoch e holds the rate used during e; a cut at the end of e shows from e + 1 on.
    assert lrs[expected[0]] == pytest.approx(0.1) and lrs[expected[0] + 1] == pytest.approx(0.05)
    assert model.optimizer.current_learning_rate == pytest.approx(0.1 * 0.5 ** len(expected))
    event = kinds(model, "reduce_lr")[0]
    assert event["learning_rate_before"] == pytest.approx(0.1) and event["learning_rate"] == pytest.approx(0.05)


def test_reduce_lr_on_plateau_waits_while_the_metric_improves_and_respects_min_lr():
    model = small_model(SGD(0.1))
    x, y = blobs()
    model.fit(x, y, epochs=4, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [4, 3, 2, 1]), ReduceLROnPlateau("score", patience=1)])
    assert reduction_epochs(model) == []
    model = small_model(SGD(0.1))
    model.fit(x, y, epochs=8, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [1.0] * 8),
                         ReduceLROnPlateau("score", factor=0.1, patience=1, min_lr=0.005)])
    assert reduction_epochs(model) == [1, 2]  # 0.1 -> 0.01 -> 0.005 (floor), then nothing more
    assert model.optimizer.current_learning_rate == pytest.approx(0.005)


def test_reduce_lr_on_plateau_scales_a_schedule_instead_of_replacing_it():
    model = small_model(SGD(StepDecay(0.1, step_size=3, gamma=0.5)))
    x, y = blobs()  # 3 steps per epoch: the schedule halves every epoch
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [1.0] * 3), ReduceLROnPlateau("score", factor=0.1, patience=1)])
    assert reduction_epochs(model) == [1, 2]
    assert model.optimizer.lr_multiplier == pytest.approx(0.01)
    assert model.optimizer.current_learning_rate == pytest.approx(0.1 * 0.5 ** 3 * 0.01)


# -- LearningRateScheduler -------------------------------------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_from_a_function_of_the_global_epoch():
    model = small_model(SGD(0.5))
    x, y = blobs()
    seen = []
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch: (seen.append(epoch), 0.1 / (epoch + 1))[1])])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[LearningRateScheduler(lambda e: 0.1 / (e + 1))])
    assert seen == [0, 1, 2]
    assert model.history.history["learning_rate"] == pytest.approx([0.1 / (e + 1) for e in range(5)])


def test_learning_rate_scheduler_takes_a_schedule_per_epoch_and_the_keras_two_argument_form():
    model = small_model(SGD(0.5))
    x, y = blobs()
    model.fit(x, y, epochs=5, batch_size=32, verbose=0,
              callbacks=[LearningRateScheduler(StepDecay(0.1, step_size=2, gamma=0.5))])
    assert model.history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    model = small_model(SGD(0.8))
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2)])
    assert model.history.history["learning_rate"] == pytest.approx([0.4, 0.2, 0.1])


def test_learning_rate_scheduler_errors():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"returned nan for epoch 0"):
        small_model().fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e: float("nan"))])
    with pytest.raises(ValueError, match="already follows the schedule"):
        small_model(SGD(StepDecay(0.1, 10))).fit(x, y, epochs=1, verbose=0,
                                                 callbacks=[LearningRateScheduler(lambda e: 0.1)])


# -- CSVLogger ---------------------------------------------------------------------------------------------
class CallbacksTestPoison(Callback):
    """Puts a NaN into the first kernel after batch ``step`` of (fit-relative) epoch ``epoch``."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.layers[0].params["kernel"][0, 0] = np.nan


def test_terminate_on_nan_stops_at_the_first_nan_batch():
    model = small_model()
    x, y = blobs()
    steps = []

    class CallbacksTestSteps(Callback):
        def on_batch_end(self, batch, logs=None):
            steps.append(batch)

    with np.errstate(invalid="ignore"):
        model.fit(x, y, epochs=5, batch_size=16, verbose=0,
                  callbacks=[CallbacksTestPoison(1, 2), TerminateOnNaN(), CallbacksTestSteps()])
    assert model.epochs_trained == 2 and steps[-1] == 3  # batch 3 of epoch 1 was the first to see the NaN
    (event,) = kinds(model, "terminate_on_nan")
    assert (event["epoch"], event["step"]) == (1, 3) and math.isnan(event["loss"])
    assert math.isnan(model.history.history["loss"][1])


def test_terminate_on_nan_lets_a_healthy_run_finish():
    model = small_model()
    model.fit(*blobs(), epochs=3, batch_size=32, verbose=0, callbacks=[TerminateOnNaN()])
    assert model.epochs_trained == 3 and not model.history.events


# -- history JSON ------------------------------------------------------------------------------------------


def test_restore_best_weights_restores_batch_normalization_state_too():
    import nnscratch
    from nnscratch.layers import BatchNormalization, Dense, Softmax
    x, y = blobs()
    inp = nnscratch.Input((2,))
    bn = BatchNormalization(momentum=0.5)
    model = nnscratch.Model(inp, Softmax()(Dense(3)(bn(inp))), seed=0)
    model.set(loss="categorical_crossentropy", optimizer=SGD(0.1))
    model.finalize()
    stop = EarlyStopping(monitor="score", mode="min", patience=5, restore_best_weights=True)
    seen = []

    class Remember(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(bn.state["moving_mean"].copy())

    model.fit(x * 3 + 1, y, epochs=4, batch_size=32, verbose=0,
              callbacks=[CallbacksTestScript("score", [3.0, 1.0, 2.0, 2.5]), stop, Remember()])
    assert stop.best_epoch == 1
    np.testing.assert_array_equal(bn.state["moving_mean"], seen[1])  # the moving averages of the best epoch
    assert not np.array_equal(seen[1], seen[3])

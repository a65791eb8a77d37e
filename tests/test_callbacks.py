"""Callbacks: History, EarlyStopping, ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN,
per-step statistics and the history JSON files."""
import csv
import json
import math
import os

import numpy as np
import pytest

from nnscratch import Model
from nnscratch.callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler,
                                 ReduceLROnPlateau, TerminateOnNaN, read_history_json, write_history_json)
from nnscratch.layers import Dense, ReLU, Softmax
from nnscratch.optimizers import SGD
from nnscratch.schedules import StepDecay


def blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.5], [-2.2, -1.3], [2.2, -1.3]])
    y = np.arange(n) % 3
    return (centers[y] + rng.standard_normal((n, 2))).astype(np.float32), y


def small_model(optimizer=None, seed=0):
    model = Model([Dense(8, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer=optimizer or SGD(0.1))
    model.finalize()
    return model


class CallbacksTestScript(Callback):
    """Puts scripted values under ``key`` in the epoch logs (by position in this fit), so monitors see them."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.i = key, list(values), 0

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[self.i]
        self.i += 1


class CallbacksTestWeights(Callback):
    """Keeps a copy of the weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = self.model.get_weights()


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def kinds(model, kind):
    return [e for e in model.history.events if e["kind"] == kind]


# -- History ---------------------------------------------------------------------------------------------
def test_history_keeps_every_list_aligned_with_epoch_when_keys_come_and_go():
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_data=(x[:30], y[:30]))
    h = model.history
    assert h.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in h.history.values())
    assert math.isnan(h.history["val_loss"][0]) and math.isnan(h.history["val_loss"][1])
    assert math.isfinite(h.history["val_loss"][2])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # and a key that goes missing again
    assert all(len(v) == 4 for v in h.history.values()) and math.isnan(h.history["val_accuracy"][3])


def test_history_records_what_callbacks_add_to_the_logs_and_gets_its_calls_events():
    model = small_model()
    x, y = blobs()
    run = model.fit(x, y, epochs=3, batch_size=32, verbose=0,
                    callbacks=[CallbacksTestScript("score", [3.0, 2.0, 2.0]),
                               ReduceLROnPlateau(monitor="score", patience=1, factor=0.5)])
    assert run.history["score"] == [3.0, 2.0, 2.0] == model.history.history["score"]
    assert [e["kind"] for e in run.events] == ["reduce_lr"] == [e["kind"] for e in model.history.events]


def test_fit_records_per_step_time_statistics():
    model = small_model()
    x, y = blobs()
    h = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    steps = -(-len(x) // 16)
    for mean, median, total, rate in zip(h.history["step_time_mean"], h.history["step_time_median"],
                                         h.history["epoch_time"], h.history["samples_per_second"]):
        assert 0 < median and 0 < mean
        assert mean * steps <= total  # the steps are part of the epoch's wall time
        assert rate == pytest.approx(len(x) / total)


# -- EarlyStopping ---------------------------------------------------------------------------------------
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
def read_csv(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


def test_csv_logger_writes_a_header_and_one_full_precision_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    model = small_model()
    x, y = blobs()
    h = model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_data=(x, y), callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch"] + list(h.history)
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, row in enumerate(rows[1:]):
        assert [float(v) for v in row[1:]] == [h.history[k][i] for k in rows[0][1:]]  # exact, via repr


def test_csv_logger_flushes_each_row_as_it_is_written(tmp_path):
    path = tmp_path / "log.csv"
    rows_seen = []

    class CallbacksTestReader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            rows_seen.append(len(read_csv(path)))

    small_model().fit(*blobs(), epochs=3, batch_size=32, verbose=0, callbacks=[CSVLogger(path), CallbacksTestReader()])
    assert rows_seen == [2, 3, 4]  # header + every finished epoch, readable while training runs


def test_csv_logger_appends_under_the_existing_header(tmp_path):
    path = tmp_path / "log.tsv"
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    with pytest.warns(RuntimeWarning, match="val_loss"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_data=(x, y),
                  callbacks=[CSVLogger(path, separator="\t", append=True)])
    rows = read_csv(path, "\t")
    assert len(rows) == 4 and rows[0][0] == "epoch" and "val_loss" not in rows[0]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    assert len(read_csv(path, "\t")) == 2  # append=False starts over


def test_csv_logger_refuses_to_append_to_a_foreign_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("name,value\na,1\n")
    with pytest.raises(ValueError, match="does not look like a CSVLogger file"):
        small_model().fit(*blobs(), epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert path.read_text() == "name,value\na,1\n"


# -- TerminateOnNaN ----------------------------------------------------------------------------------------
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
def trained_history():
    model = small_model()
    x, y = blobs()
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_data=(x, y),
              callbacks=[CallbacksTestScript("score", [1.0] * 3), ReduceLROnPlateau("score", patience=1)])
    model.history.history["val_loss"][0] = float("nan")
    return model


def test_history_json_round_trip_and_layout(tmp_path):
    model = trained_history()
    path = tmp_path / "run.history.json"
    assert write_history_json(model.history, path, meta={"dataset": "blobs"}) == str(path)
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert set(data) == {"history", "epoch", "events", "meta"}
    assert data["epoch"] == [0, 1, 2] and data["history"]["val_loss"][0] is None
    assert data["meta"]["dataset"] == "blobs" and data["meta"]["format"] == "nnscratch.history"
    assert data["meta"]["epochs"] == 3 and "written_at" in data["meta"]
    again = read_history_json(path)
    assert isinstance(again, History) and again.epoch == model.history.epoch
    assert again.events == model.history.events
    for key, values in model.history.history.items():
        np.testing.assert_array_equal(again.history[key], values)  # NaN compares equal here
    assert again.meta["dataset"] == "blobs"


def test_write_history_json_takes_a_model_and_writes_atomically(tmp_path, monkeypatch):
    model = trained_history()
    path = tmp_path / "run.json"
    write_history_json(model, path)
    assert json.loads(path.read_text())["meta"]["model"] == model.name
    before = path.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_history_json(model, path, meta={"new": True})
    assert path.read_text() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["run.json"]  # and no temporary file is left behind


def test_read_history_json_accepts_a_plain_keras_style_mapping(tmp_path):
    path = tmp_path / "keras.json"
    path.write_text(json.dumps({"loss": [1.0, 0.5], "val_loss": [1.1, None]}))
    h = read_history_json(path)
    assert h.epoch == [0, 1] and h.history["loss"] == [1.0, 0.5] and math.isnan(h.history["val_loss"][1])


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"history": {"loss": [1, 2]}, "epoch": [0]}', r"history\['loss'\] has 2 values but 'epoch' has 1"),
    ('{"history": {"loss": ["a"]}, "epoch": [0]}', "numbers or null"),
    ('{"meta": {}}', "no 'history' key"),
])
def test_read_history_json_says_what_is_wrong(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_history_json(path)

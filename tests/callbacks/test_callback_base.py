"""History, the callback list and per-step statistics."""
import math

import pytest

from nnscratch.callbacks import ReduceLROnPlateau
from small_models import CallbacksTestScript, blobs, small_model


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

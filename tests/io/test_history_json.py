"""History JSON files."""
import json
import math
import os

import numpy as np
import pytest

from nnscratch.callbacks import History
from nnscratch.io.history_json import read_history_json, write_history_json
from nnscratch.callbacks import ReduceLROnPlateau
from small_models import CallbacksTestScript, blobs, small_model


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

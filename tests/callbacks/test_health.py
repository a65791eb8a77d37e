"""LayerHealth: what it records, that threads see the same batch, dead and saturated units, BN drift,
the history file, and the divergence guard naming the layer where a blow-up started."""
import math

import numpy as np
import pytest

from nnscratch import Model
from nnscratch.callbacks import DivergenceGuard, LayerHealth, read_history_json, write_history_json
from nnscratch.callbacks.health import blowup_origin
from nnscratch.engine.parallel import split_every_batch
from nnscratch.layers import Conv2D, Dense, Flatten, ReLU, Sigmoid, Softmax, Tanh
from nnscratch.models import resnet
from nnscratch.optimizers import SGD

from small_models import blobs


def images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype(np.float32)
    return x, (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(int)


def cnn(threads=1, seed=0, optimizer=None):
    model = Model([Conv2D(4, 3, input_shape=(8, 8, 1)), ReLU(), Flatten(), Dense(8), Tanh(), Dense(2), Softmax()],
                  seed=seed, threads=threads)
    model.set(loss="categorical_crossentropy", optimizer=optimizer or SGD(0.1))
    model.finalize()
    return model


def test_records_every_metric_of_every_kind_of_layer():
    model = cnn()
    x, y = images()
    health = LayerHealth(every=3)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[health])  # 16 steps: samples at 0, 3, ... 15
    record = model.history.meta["layer_health"]
    assert record is health.record and record["every"] == 3
    assert record["step"] == [0, 3, 6, 1, 4, 7] and record["epoch"] == [0, 0, 0, 1, 1, 1]
    assert record["x"][0] == pytest.approx(1 / 8) and record["x"][-1] == pytest.approx(2.0)
    layers = record["layers"]
    assert set(layers) == {"conv2d_1", "re_lu_1", "dense_1", "tanh_1", "dense_2"}
    assert set(layers["conv2d_1"]) == {"type", "grad_norm", "update_ratio"}
    assert set(layers["re_lu_1"]) == {"type", "dead_fraction"}
    assert set(layers["tanh_1"]) == {"type", "saturated_fraction"}
    for entry in layers.values():
        for key, series in entry.items():
            if key != "type":
                assert len(series) == 6 and all(v is not None and math.isfinite(v) and v >= 0 for v in series)
    assert all(0 <= v <= 1 for v in layers["re_lu_1"]["dead_fraction"])
    # SGD(0.1): the update is 0.1 x the gradient, so the ratio follows from the two norms
    w = model.layers[0].params
    assert layers["conv2d_1"]["update_ratio"][-1] == pytest.approx(
        0.1 * layers["conv2d_1"]["grad_norm"][-1] / math.sqrt(sum(float((v ** 2).sum()) for v in w.values())), rel=0.05)


def test_gradient_norms_are_the_whole_batchs_with_threads():
    x, y = images(64)
    norms = []
    for threads in (1, 2):
        model = cnn(threads=threads)
        with split_every_batch():
            model.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False, callbacks=[LayerHealth(every=1)])
        norms.append(model.history.meta["layer_health"]["layers"]["dense_1"]["grad_norm"])
    assert norms[0] == pytest.approx(norms[1], rel=1e-4)  # a chunk's gradient alone would be about half


def test_dead_relus_and_saturated_units_are_counted():
    x, y = blobs(64)
    model = Model([Dense(6, input_shape=(2,)), ReLU(), Dense(4), Sigmoid(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer=SGD(0.0))
    model.finalize()
    model.layers[0].params["bias"][:3] = -100.0  # three of six units can never fire
    model.layers[2].params["kernel"][...] *= 1000.0  # the sigmoid pinned at 0 or 1
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[LayerHealth(every=1)])
    layers = model.history.meta["layer_health"]["layers"]
    assert layers["re_lu_1"]["dead_fraction"] == [0.5] * 4
    assert min(layers["sigmoid_1"]["saturated_fraction"]) > 0.9


def test_batch_normalization_drift():
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype(np.float32) * 5 + 3  # far from BN's starting statistics (0, 1)
    y = rng.integers(0, 3, 32)
    model = resnet(input_shape=(8, 8, 1), num_classes=3, filters=(2,), seed=0, bn_momentum=0.5, threads=1)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[LayerHealth(every=2)])
    bn = model.history.meta["layer_health"]["layers"]["batch_normalization_1"]
    assert bn["type"] == "BatchNormalization" and bn["bn_mean_drift"][0] is None  # nothing to compare with yet
    drift = bn["bn_mean_drift"][1:]
    assert all(v > 0 for v in drift) and drift[0] > drift[-1]  # large while the statistics catch up, then less


def test_the_record_survives_the_history_file_and_grows_across_fits(tmp_path):
    model = cnn()
    x, y = images()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[LayerHealth(every=4)])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[LayerHealth(every=4, layers=["dense_2"])])
    record = model.history.meta["layer_health"]
    assert record["epoch"] == [0, 0, 1, 1]
    assert record["layers"]["conv2d_1"]["grad_norm"][2:] == [None, None]  # not watched in the second fit
    again = read_history_json(write_history_json(model.history, tmp_path / "h.json"))
    assert again.meta["layer_health"] == record


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="every"):
        LayerHealth(every=0)
    with pytest.raises(TypeError, match="list of layer names"):
        LayerHealth(layers="dense_1")
    model = cnn()
    x, y = images(8)
    with pytest.raises(ValueError, match=r"no layer named 'dense_9'; its layers are: conv2d_1, re_lu_1"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LayerHealth(layers=["dense_9"])])


def synthetic(series_by_layer, epochs=None):
    n = len(next(iter(series_by_layer.values())))
    return {"every": 1, "x": list(range(n)), "epoch": epochs or [0] * n, "step": list(range(n)), "loss": [1.0] * n,
            "layers": {name: {"type": "Dense", "grad_norm": s} for name, s in series_by_layer.items()}}


def test_blowup_origin_names_the_first_layer_to_jump():
    record = synthetic({"a": [1, 1, 1, 1, 1, 1, 50, 900], "b": [2, 2, 2, 2, 2, 400, 800, float("inf")],
                        "c": [1, 1, 1, 1, 1, 1, 1, 1]})
    origin = blowup_origin(record)
    assert origin["layer"] == "b" and origin["step"] == 5 and origin["before"] == 2 and origin["after"] == 400
    assert "points at b: its gradient norm rose from 2 to 400 (x200) at epoch 1, batch 6" in origin["text"]
    later = synthetic({"a": [1, 1, 1, 1, 1, 1, 30, 1, 1, 1], "b": [2, 2, 2, 2, 2, 2, 2, 2, 90, 2]})
    assert blowup_origin(later)["layer"] == "a"
    assert blowup_origin(later, since=(0, 6))["layer"] == "b"  # a's jump came before the restored state
    assert blowup_origin(synthetic({"a": [1, 1, 1, 1, 1, 1, 2, 3]})) is None
    assert blowup_origin(None) is None and blowup_origin({"x": []}) is None
    same_time = synthetic({"a": [1, 1, 1, 1, 1, 1, 20], "b": [1, 1, 1, 1, 1, 1, float("inf")]})
    assert blowup_origin(same_time)["layer"] == "b"  # at the same sample, the larger jump


def test_the_divergence_guard_names_the_layer():
    x, y = blobs(320)
    model = Model([Dense(32, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer=SGD(learning_rate=5.0))
    model.finalize()
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[LayerHealth(every=1), DivergenceGuard()])
    rollbacks = [e for e in model.history.events if e["kind"] == "rollback"]
    assert rollbacks
    named = [e for e in rollbacks if "layer" in e]
    assert named and named[0]["layer"] in ("dense_1", "dense_2")
    assert f"the layer health record points at {named[0]['layer']}: its " in named[0]["message"]
    assert "rolled back to" in named[0]["message"]


def test_without_layer_health_the_guard_says_nothing_of_layers():
    x, y = blobs(320)
    model = Model([Dense(32, input_shape=(2,)), ReLU(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer=SGD(learning_rate=5.0))
    model.finalize()
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[DivergenceGuard()])
    assert all("layer" not in e and "layer health" not in e["message"] for e in model.history.events)

"""HDF5 model files: exact resumption, every layer's round trip, the documented layout, safety and errors."""
import json
import os
import re

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.callbacks import History
from nnscratch.io import hdf5
from nnscratch.io.hdf5 import (FORMAT_VERSION, ModelFileError, load_model, load_weights, read_header, save_model,
                                save_weights)
from nnscratch.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU, Softmax, Tanh
from nnscratch.optimizers import SGD, Adagrad, Adam, RMSprop
from nnscratch.schedules import ExponentialDecay, StepDecay
from problems import blobs

try:  # shared with tests/test_common.py: {class name: [(config, input_shape)]}
    from layer_configs import LAYER_CONFIGS
except ImportError:  # pragma: no cover - depends on what the checkout has
    LAYER_CONFIGS = {}
try:  # the library's own list (``nnscratch gradcheck`` uses it), for layers the test list lacks
    from nnscratch.layer_cases import LAYER_CASES as LIBRARY_CASES
except ImportError:  # pragma: no cover
    LIBRARY_CASES = {}

#: keys of the epoch logs that measure time, so differ between two otherwise identical runs
TIMING_KEYS = {"epoch_time", "samples_per_second", "step_time_mean", "step_time_median"}


# -- helpers ----------------------------------------------------------------------------------------------
def dense_model(optimizer, seed=3, dtype="float32"):
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dropout(0.3), Dense(3), Softmax()], seed=seed,
                            dtype=dtype)
    model.set(loss="categorical_crossentropy", optimizer=optimizer, accuracy="categorical_accuracy")
    model.finalize()
    return model


def conv_model(optimizer, seed=3):
    model = nnscratch.Model([Conv2D(3, 3, padding="same", input_shape=(6, 6, 1)), Tanh(), MaxPool2D(2),
                             Dropout(0.25), Flatten(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer=optimizer)
    model.finalize()
    return model


def dense_data():
    return blobs(n=96, classes=3, dims=4, seed=2)


def image_data():
    rng = np.random.default_rng(5)
    return rng.standard_normal((48, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 48)


def snapshot(model):
    """Everything a model file must restore, in a form that compares exactly (dtypes and bits included)."""
    state = model.optimizer.get_state()
    history = model.history
    return {
        "config": json.dumps(model.get_config(), sort_keys=True),
        "training": json.dumps(model.get_training_config(), sort_keys=True),
        "arrays": {f"{layer.name}/{store}/{k}": (v.dtype.str, v.shape, v.tobytes()) for layer in model.layers
                   for store, d in (("params", layer.params), ("state", layer.state)) for k, v in d.items()},
        "trainable": [layer.trainable for layer in model.layers],
        "optimizer": (state["iterations"], state["lr_multiplier"],
                      {k: {n: (a.dtype.str, a.shape, a.tobytes()) for n, a in s.items()}
                       for k, s in state["slots"].items()}),
        "seed": model.seed,
        "epochs_trained": model.epochs_trained,
        "history": json.dumps([history.history, history.epoch, history.events]),
        "metadata": json.dumps(model.metadata),
    }


def assert_same_model(a, b):
    sa, sb = snapshot(a), snapshot(b)
    for key in sa:
        assert sa[key] == sb[key], f"{key} differs after the round trip"


def without_timing(history):
    return {k: v for k, v in history.history.items() if k not in TIMING_KEYS}


# -- exact resumption -------------------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd-momentum": lambda: SGD(0.05, momentum=0.9),
    "sgd-nesterov-exp-schedule": lambda: SGD(ExponentialDecay(0.05, gamma=0.9, decay_steps=2), momentum=0.8,
                                             nesterov=True),
    "adam": lambda: Adam(0.01),
    "adam-step-schedule": lambda: Adam(StepDecay(0.02, step_size=5, gamma=0.5)),
    "rmsprop-weight-decay": lambda: RMSprop(0.005, weight_decay=1e-3),
    "adagrad": lambda: Adagrad(0.05, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("builder, data", [(dense_model, dense_data), (conv_model, image_data)],
                         ids=["dense", "conv"])
def test_train_save_load_train_equals_training_without_stopping(tmp_path, opt, builder, data):
    x, y = data()
    straight = builder(OPTIMIZERS[opt]())
    straight.fit(x, y, epochs=3, batch_size=16, verbose=0)

    first = builder(OPTIMIZERS[opt]())
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first.save(tmp_path / "two.h5")
    resumed = nnscratch.load_model(tmp_path / "two.h5")
    resumed.fit(x, y, epochs=1, batch_size=16, verbose=0)

    for key, value in straight.get_weights().items():
        got = resumed.get_weights()[key]
        assert got.dtype == value.dtype == np.float32
        np.testing.assert_array_equal(got, value, err_msg=key)
    assert snapshot(resumed)["optimizer"] == snapshot(straight)["optimizer"]
    assert resumed.epochs_trained == 3 and resumed.history.epoch == [0, 1, 2]
    assert without_timing(resumed.history) == without_timing(straight.history)


SABOTAGE = {
    "epochs_trained": lambda m: setattr(m, "epochs_trained", 0),
    "seed": lambda m: setattr(m, "seed", m.seed + 1),
    "optimizer_slots": lambda m: m.optimizer.set_state({"iterations": m.optimizer.iterations,
                                                        "lr_multiplier": 1.0, "slots": {}}),
    "optimizer_iterations": lambda m: setattr(m.optimizer, "iterations", 0),
}


@pytest.mark.parametrize("what", list(SABOTAGE))
def test_resumption_test_detects_each_missing_piece_of_state(tmp_path, what):
    """The exactness check above can fail: losing any one piece of restored state changes the weights."""
    x, y = dense_data()
    make = OPTIMIZERS["adam-step-schedule"]
    straight = dense_model(make())
    straight.fit(x, y, epochs=3, batch_size=16, verbose=0)
    first = dense_model(make())
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first.save(tmp_path / "two.h5")
    resumed = load_model(tmp_path / "two.h5")
    SABOTAGE[what](resumed)
    resumed.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert any(not np.array_equal(v, resumed.get_weights()[k]) for k, v in straight.get_weights().items())


def test_round_trip_keeps_everything_and_float64(tmp_path):
    x, y = dense_data()
    model = dense_model(Adam(0.01), dtype="float64", seed=11)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_data=(x[:20], y[:20]))
    model.layers[0].trainable = False
    model.history.record_event({"kind": "note", "epoch": 1, "step": None, "message": "hand-made", "value": 0.1})
    model.history.history["val_loss"][0] = float("nan")  # NaN and inf survive the JSON too
    model.history.history["samples_per_second"][1] = float("inf")
    model.metadata.update(dataset="blobs", class_names=["a", "b", "c"], preprocess={"scale": 0.5, "pad_to": None})
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.dtype == np.float64 and loaded.layers[1].params == {} and loaded.finalized
    assert loaded.layers[0].params["kernel"].dtype == np.float64
    assert_same_model(model, loaded)
    assert loaded.layers[0].trainable is False
    assert loaded.metadata == {"dataset": "blobs", "class_names": ["a", "b", "c"],
                               "preprocess": {"scale": 0.5, "pad_to": None}}
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# -- the layout documented in docs/file-format.md --------------------------------------------------------
def test_file_layout_matches_the_documentation(tmp_path):
    x, y = dense_data()
    model = dense_model(Adam(StepDecay(0.01, 10)), seed=42)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    path = tmp_path / "model.h5"
    model.save(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == b"nnscratch"
        assert f.attrs["format_version"] == FORMAT_VERSION == 2
        assert f.attrs["nnscratch_version"].decode() == nnscratch.__version__
        assert f.attrs["contents"] == b"model"
        assert f.attrs["seed"] == 42 and f.attrs["epochs_trained"] == 2
        assert json.loads(f["model_config"][0]) == json.loads(json.dumps(model.get_config()))
        training = json.loads(f["training_config"][0])
        assert training["optimizer"] == {"class_name": "Adam", "config": {
            "learning_rate": {"class_name": "StepDecay", "config": {"learning_rate": 0.01, "step_size": 10,
                                                                    "gamma": 0.1}},
            "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}}
        assert training["loss"]["class_name"] == "CategoricalCrossEntropy"
        assert json.loads(f["metadata"][0]) == {}
        history = json.loads(f["history"][0])
        assert history["epoch"] == [0, 1] and history["history"]["loss"] == model.history.history["loss"]
        assert list(f["weights"]) == ["dense_1", "re_lu_1", "dropout_1", "dense_2", "softmax_1"]
        kernel = f["weights/dense_1/kernel"]
        assert kernel.dtype == np.float32 and kernel.fletcher32
        np.testing.assert_array_equal(kernel[()], model.layers[0].params["kernel"])
        assert f["weights/dense_1"].attrs["class_name"] == b"Dense"
        assert bool(f["weights/dense_1"].attrs["trainable"]) is True
        opt = f["optimizer"]
        assert opt.attrs["class_name"] == b"Adam"
        assert opt.attrs["iterations"] == model.optimizer.iterations == 6
        assert opt.attrs["lr_multiplier"] == 1.0
        assert set(opt["slots"]) == {"dense_1", "dense_2"} and set(opt["slots/dense_1"]) == {"kernel", "bias"}
        np.testing.assert_array_equal(opt["slots/dense_1/kernel/m"][()], model.optimizer.slots["dense_1/kernel"]["m"])

        # nothing but numbers and byte strings anywhere: no pickled or opaque objects, no code
        kinds = set()
        f.visititems(lambda name, obj: kinds.add(obj.dtype.kind) if isinstance(obj, h5py.Dataset) else None)
        f.visititems(lambda name, obj: kinds.update(np.asarray(v).dtype.kind for v in obj.attrs.values()))
        kinds.update(np.asarray(v).dtype.kind for v in f.attrs.values())
        assert kinds <= set("biufS"), kinds


def test_the_same_model_saves_to_the_same_bytes(tmp_path):
    model = dense_model(Adam(0.01))
    model.fit(*dense_data(), epochs=1, verbose=0)
    model.save(tmp_path / "a.h5")
    model.save(tmp_path / "b.h5")  # no timestamps in the file: identical models diff and cache as equal
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_layer_and_parameter_names_that_are_not_valid_hdf5_names(tmp_path):
    model = nnscratch.Model([Dense(4, input_shape=(3,), name="encoder/dense"), Dense(2, name="100%"),
                             Dense(2, name="."), Softmax(name="..")], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.fit(np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    assert_same_model(model, load_model(tmp_path / "m.h5"))
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert list(f["weights"]) == ["encoder%2Fdense", "100%25", "%2E", "%2E%2E"]


# -- a user's layer (the save/load of every registered layer is part of the contract check, tests/test_common.py) --
class HDF5TestGain(Layer):
    """A user's layer: ``y = x * gain``, one trainable gain per feature."""

    def __init__(self, init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = float(init)

    def build(self, input_shape):
        self.params["gain"] = np.full(input_shape, self.init)

    def forward(self, x, training=False):
        self._x = x
        return x * self.params["gain"]

    def backward(self, dout):
        self.grads["gain"][...] = (dout * self._x).sum(axis=0)
        return dout * self.params["gain"]


def test_a_users_own_layer_loads_once_its_class_is_defined(tmp_path):
    model = nnscratch.Model([Dense(3, input_shape=(2,)), HDF5TestGain(0.5), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    model.fit(np.ones((4, 2), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    model.save(tmp_path / "custom.h5")
    loaded = load_model(tmp_path / "custom.h5")
    assert isinstance(loaded.layers[1], HDF5TestGain) and loaded.layers[1].init == 0.5
    assert_same_model(model, loaded)


def _rewrite_json(path, name, edit):
    with h5py.File(path, "r+") as f:
        value = json.loads(f[name][0])
        edit(value)
        del f[name]
        data = json.dumps(value).encode()
        f.create_dataset(name, data=np.array([data], dtype=f"S{len(data)}"))


def test_unknown_layer_class_is_refused_with_the_known_ones_and_how_to_register(tmp_path):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    _rewrite_json(path, "model_config", lambda c: c["layers"][1].update(class_name="Maxout"))
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    message = str(err.value)
    assert str(path) in message and "'Maxout'" in message and "re_lu_1" in message
    assert "Known layers: " in message and "Dense" in message and "Softmax" in message
    assert "subclass of nnscratch.layers.Layer" in message and "before calling load_model" in message


def test_unknown_optimizer_or_bad_layer_config_is_a_clear_error(tmp_path):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    _rewrite_json(path, "training_config", lambda c: c["optimizer"].update(class_name="Lion"))
    with pytest.raises(ModelFileError, match=r"cannot be rebuilt.*unknown optimizer 'Lion'.*Adam"):
        load_model(path)
    dense_model("sgd").save(path)
    _rewrite_json(path, "model_config", lambda c: c["layers"][0]["config"].update(units=-3))
    with pytest.raises(ModelFileError, match=r"m\.h5: .*units must be a positive integer, got -3"):
        load_model(path)


# -- atomic saving ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_crash_mid_save_leaves_the_previous_file_intact(tmp_path, monkeypatch, exc):
    path = tmp_path / "model.h5"
    old = dense_model(Adam(0.01), seed=1)
    old.save(path)
    new = dense_model(Adam(0.01), seed=2)
    x, y = dense_data()
    new.fit(x, y, epochs=1, verbose=0)

    def crash(*args, **kwargs):  # the weights are written by then: the temporary file is half done
        raise exc("disk full")

    monkeypatch.setattr(hdf5, "_write_optimizer", crash)
    with pytest.raises(exc, match="disk full"):
        new.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]  # no temporary file left behind
    assert_same_model(old, load_model(path))


def test_saving_into_a_missing_folder_or_an_unfinalized_model_says_why(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it"):
        dense_model("sgd").save(tmp_path / "no" / "such" / "m.h5")
    model = nnscratch.Model([Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match=r"call model.finalize\(\) before model.save\(\)"):
        model.save(tmp_path / "m.h5")
    assert os.listdir(tmp_path) == []


def test_saved_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        dense_model("sgd").save(tmp_path / "m.h5")
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "m.h5").st_mode & 0o777) == 0o644


def test_a_history_that_is_not_json_fails_before_anything_is_written(tmp_path):
    model = dense_model("sgd")
    model.history.history["note"] = [object()]
    with pytest.raises(TypeError, match=r"training history is not plain JSON \(object .*is not a number"):
        model.save(tmp_path / "m.h5")
    del model.history.history["note"]
    model.metadata["opened"] = open
    with pytest.raises(TypeError, match=r"metadata \(model.metadata\) is not plain JSON"):
        model.save(tmp_path / "m.h5")
    assert os.listdir(tmp_path) == []


# -- damaged, foreign and mismatching files --------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    model = dense_model(Adam(0.01), seed=5)
    x, y = dense_data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "model.h5"
    model.save(path)
    return model, path


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 0.999])
def test_a_truncated_file_is_a_clear_error(saved, fraction):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match=str(path)):
        load_model(path)


def _chunk_offset(path, name):
    with h5py.File(path, "r") as f:
        return f[name].id.get_chunk_info(0).byte_offset


@pytest.mark.parametrize("name, what", [("weights/dense_2/kernel", "/weights/dense_2/kernel"),
                                        ("optimizer/slots/dense_1/bias/v", "/optimizer/slots/dense_1/bias/v"),
                                        ("model_config", "the model description"),
                                        ("history", "the model description")])
def test_overwritten_bytes_in_the_data_are_caught_by_the_checksums(saved, name, what):
    _, path = saved
    offset = _chunk_offset(path, name)
    data = bytearray(path.read_bytes())
    data[offset:offset + 4] = b"\x00\x01\x02\x03"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{path}: cannot read {what} .*checksum mismatch.*corrupted"):
        load_model(path)


def test_no_single_flipped_byte_anywhere_loads_as_a_different_model(saved):
    """Every byte is covered by a checksum: a damaged file loads identically or fails, never silently."""
    model, path = saved
    data = path.read_bytes()
    failures = 0
    for offset in np.linspace(0, len(data) - 1, 150).astype(int):
        damaged = bytearray(data)
        damaged[offset] ^= 0xA5
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_model(path)
        except ModelFileError:
            failures += 1
            continue
        assert_same_model(model, loaded)
    assert failures > 100  # most bytes matter; the rest are padding and free space


def test_a_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "model.h5"
    path.write_text("this is not a model")
    with pytest.raises(ModelFileError, match=rf"{path}: not a readable HDF5 file"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.h5")


def test_an_hdf5_file_that_is_not_an_nnscratch_model(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3))
    with pytest.raises(ModelFileError, match=rf"{path}: an HDF5 file, but not an nnscratch model file"):
        load_model(path)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
    with pytest.raises(ModelFileError, match="looks like a Keras file"):
        load_model(path)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "onnx"
    with pytest.raises(ModelFileError, match="format is 'onnx', expected 'nnscratch'"):
        load_model(path)


@pytest.mark.skipif(os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE", reason="HDF5 locking is off")
def test_a_file_open_for_writing_elsewhere_says_so(saved):
    import subprocess
    import sys

    _, path = saved
    with h5py.File(path, "a"):  # HDF5 locks it against other processes
        result = subprocess.run([sys.executable, "-c", f"import nnscratch; nnscratch.load_model({str(path)!r})"],
                                capture_output=True, text=True, timeout=60)
    assert "another program has it open for writing" in result.stderr, result.stderr


def test_a_file_from_a_newer_format_version(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = np.int64(FORMAT_VERSION + 1)
        f.attrs["nnscratch_version"] = np.bytes_(b"9.0.0")
    with pytest.raises(ModelFileError, match=rf"{path}: written in file format version {FORMAT_VERSION + 1} by nnscratch "
                                             rf"9\.0\.0; this nnscratch .* reads format versions up to {FORMAT_VERSION}\. "
                                             "Upgrade"):
        load_model(path)


def test_weights_whose_shape_does_not_fit_the_architecture(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f["weights/dense_2/kernel"]
        f["weights/dense_2/kernel"] = np.zeros((8, 4), np.float32)
    # refused when the layer declares the weight, before anything of that size is allocated
    with pytest.raises(ModelFileError, match=rf"{path}: layer dense_2 \(Dense\): weight 'kernel' has shape "
                                             r"\(8, 4\) in the file but \(8, 3\) in the saved architecture"):
        load_model(path)


def test_missing_or_extra_weights_and_wrong_dtypes(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f["weights/dense_2/scale"] = np.ones(3, np.float32)
    with pytest.raises(ModelFileError, match=r"dense_2 \(Dense\): the file has weights \['bias', 'kernel', "
                                             r"'scale'\] but the saved architecture has \['bias', 'kernel'\]"):
        load_model(path)
    with h5py.File(path, "r+") as f:
        del f["weights/dense_2/scale"]
        bias = f["weights/dense_2/bias"][()]
        del f["weights/dense_2/bias"]
        f["weights/dense_2/bias"] = bias.astype(np.float64)
    with pytest.raises(ModelFileError, match=r"weight 'bias' is float64 in the file but float32"):
        load_model(path)


# -- weights only -----------------------------------------------------------------------------------------
def test_save_weights_and_load_weights_into_the_same_architecture(tmp_path):
    x, y = dense_data()
    trained = dense_model(Adam(0.01), seed=1)
    trained.fit(x, y, epochs=1, verbose=0)
    save_weights(trained, tmp_path / "w.h5")
    fresh = dense_model("sgd", seed=99)
    fresh.load_weights(tmp_path / "w.h5")
    for key, value in trained.get_weights().items():
        np.testing.assert_array_equal(fresh.get_weights()[key], value)
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))
    assert fresh.optimizer.iterations == 0  # weights only: the optimizer is not touched

    trained.save(tmp_path / "full.h5")  # a full model file provides weights too
    other = dense_model("sgd", seed=98)
    load_weights(other, tmp_path / "full.h5")
    np.testing.assert_array_equal(other.predict(x), trained.predict(x))

    as64 = dense_model("sgd", seed=97, dtype="float64")  # cast to the receiving model's dtype
    as64.load_weights(tmp_path / "w.h5")
    assert as64.layers[0].params["kernel"].dtype == np.float64
    np.testing.assert_array_equal(as64.layers[0].params["kernel"], trained.layers[0].params["kernel"])

    with pytest.raises(ModelFileError, match=r"w\.h5: holds weights only.*model\.load_weights\(path\)"):
        load_model(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert f.attrs["contents"] == b"weights" and set(f) == {"weights", "state"}


def test_load_weights_refuses_another_architecture_and_leaves_the_model_unchanged(tmp_path):
    dense_model("sgd", seed=1).save_weights(tmp_path / "w.h5")
    wider = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dropout(0.3), Dense(5), Softmax()], seed=2)
    wider.set(loss="categorical_crossentropy", optimizer="sgd")
    wider.finalize()
    before = wider.get_weights()
    with pytest.raises(ModelFileError, match=r"w\.h5: layer dense_2 \(Dense\): weight 'kernel' has shape \(8, 3\) "
                                             r"in the file but \(8, 5\) in this model; build the model"):
        wider.load_weights(tmp_path / "w.h5")
    for key, value in before.items():  # dense_1 matched, but nothing was copied
        np.testing.assert_array_equal(wider.get_weights()[key], value)

    shorter = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(3), Softmax()], seed=2)
    shorter.set(loss="categorical_crossentropy", optimizer="sgd")
    shorter.finalize()
    with pytest.raises(ModelFileError, match=r"layers do not match this model \(layers are matched by name\).*"
                                             r"the file has \['dropout_1'\] that this model lacks"):
        shorter.load_weights(tmp_path / "w.h5")

    unfinalized = nnscratch.Model([Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match=r"finalize\(\) before model.load_weights"):
        unfinalized.load_weights(tmp_path / "w.h5")


def test_history_is_restored_as_a_history_and_can_be_given_explicitly(tmp_path):
    model = dense_model("sgd")
    model.fit(*dense_data(), epochs=2, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert isinstance(loaded.history, History)
    assert loaded.history.history == model.history.history and loaded.history.epoch == [0, 1]

    other = History()
    other.on_epoch_end(0, {"loss": 0.5})
    save_model(model, tmp_path / "m.h5", history=other)
    assert load_model(tmp_path / "m.h5").history.history == {"loss": [0.5]}


# -- files of earlier format versions ------------------------------------------------------------------
DATA = __import__("pathlib").Path(__file__).parent / "data"


def test_a_format_1_file_still_loads_predicts_and_resumes():
    # written by nnscratch at format version 1 (commit a725d34): a LeNet-like network with a connection table,
    # trainable subsampling, RBF codes (then "constants") and Adam's slots after 2 epochs
    saved = np.load(DATA / "format1_lenet_like.npz")
    model = load_model(DATA / "format1_lenet_like.h5")
    assert read_header(DATA / "format1_lenet_like.h5")["format_version"] == 1
    assert model.epochs_trained == 2 and model.optimizer.iterations == 8
    assert set(model.layers[-1].state) == {"codes"}
    np.testing.assert_array_equal(model.predict(saved["x"]), saved["predictions"])
    model.threads = 1
    model.fit(saved["x"], saved["y"], epochs=1, batch_size=8, verbose=0)
    after = np.load(DATA / "format1_lenet_like_after.npz")
    for key, value in model.get_weights().items():
        # the same shuffling and updates as the old code's third epoch (BLAS summation order aside)
        np.testing.assert_allclose(value, after[key.replace("/", "__")], rtol=1e-5, atol=1e-6, err_msg=key)


def test_a_lowered_learning_rate_multiplier_survives_save_and_load(tmp_path):
    x, y = dense_data()
    model = dense_model(Adam(0.01), seed=1)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.optimizer.lr_multiplier = 0.25  # what ReduceLROnPlateau or the divergence guard leave behind
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.optimizer.lr_multiplier == 0.25
    assert loaded.optimizer.current_learning_rate == pytest.approx(0.0025)


def test_slots_go_back_to_their_own_parameter_when_shapes_are_alike(tmp_path):
    # three 4x4 kernels: a loader that mixed up slots of equal shape would pass every shape check
    from nnscratch.layers import Softmax
    model = nnscratch.Model([Dense(4, input_shape=(4,)), Dense(4), Dense(4), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer=Adam(0.01))
    model.finalize()
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 4, 32), epochs=2, verbose=0)
    model.save(tmp_path / "alike.h5")
    loaded = load_model(tmp_path / "alike.h5")
    mine, theirs = model.optimizer.get_state()["slots"], loaded.optimizer.get_state()["slots"]
    assert sorted(mine) == sorted(theirs)
    assert len({mine[k]["m"].shape for k in mine if k.endswith("kernel")}) == 1
    for key in mine:
        for slot in ("m", "v"):
            np.testing.assert_array_equal(theirs[key][slot], mine[key][slot], err_msg=f"{key} {slot}")


@pytest.mark.parametrize("builder, edit, pattern", [
    # a file whose config asks for a Dense of 10**12 units: refused when the layer's output shape is computed
    (dense_model, lambda c: c["layers"][0]["config"].update(units=10**12),
     r"does not finalize: dense_1 \(Dense\) would output \(1000000000000,\) per sample, more than"),
    # ... and 10**5 units (a 400 KB output, but a 1.6 MB kernel the file does not hold): refused on declaration
    (dense_model, lambda c: c["layers"][0]["config"].update(units=10**5),
     r"layer dense_1 \(Dense\): weight 'kernel' has shape \(4, 8\) in the file but \(4, 100000\) in the saved"),
    # ... and 10**6 units: loading the file's shapes into the layers is what refuses it (found by mutation
    # testing: without them the same message came later, from the reader, after 28 MB were allocated)
    (dense_model, lambda c: c["layers"][0]["config"].update(units=10**6),
     r"layer dense_1 \(Dense\): weight 'kernel' has shape \(4, 8\) in the file but \(4, 1000000\) in the saved"),
    # an input of 10**12 values per sample: refused when the first layer's output shape is computed
    (conv_model, lambda c: c["layers"][0]["config"].update(input_shape=[10**6, 10**6, 1]),
     r"conv2d_1 \(Conv2D\) would output \(1000000, 1000000, 3\) per sample, more than"),
])
def test_a_config_asking_for_absurd_sizes_is_refused_before_allocating(tmp_path, builder, edit, pattern):
    import tracemalloc
    path = tmp_path / "m.h5"
    builder(Adam(0.01)).save(path)
    _rewrite_json(path, "model_config", edit)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=pattern):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # before issue 12: terabytes asked for, MemoryError


# --- found by mutation testing (docs/mutation-testing.md) ---

@pytest.mark.parametrize("doc", [
    [], {"history": {"loss": 1.0}, "epoch": [], "events": []}, {"history": [], "epoch": [], "events": []},
    {"history": {}, "epoch": {}, "events": []}, {"history": {}, "epoch": [], "events": {}},
    {"history": {}, "epoch": [], "events": [], "meta": []},
])
def test_a_malformed_history_document_is_refused(tmp_path, doc):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    with h5py.File(path, "r+") as f:
        del f["history"]
        data = json.dumps(doc).encode()
        f.create_dataset("history", data=np.array([data], dtype=f"S{len(data)}"))
    expected = (f"{path}: /history must hold {{'history': {{name: [values]}}, 'epoch': [ints], "
                "'events': [dicts]}")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == expected


def test_the_history_meta_is_restored(tmp_path):
    model = dense_model("sgd")
    model.history.meta = {"run": "blobs-3", "threads": 2}
    model.save(tmp_path / "m.h5")
    assert load_model(tmp_path / "m.h5").history.meta == {"run": "blobs-3", "threads": 2}


class HDF5TestAveragedSGD(SGD):
    """An optimizer with state beyond iterations, lr_multiplier and slots: a running average of the loss."""

    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.average_loss = 0.0

    def get_state(self):
        return {**super().get_state(), "average_loss": self.average_loss}

    def set_state(self, state):
        super().set_state(state)
        self.average_loss = state["average_loss"]


def test_an_optimizers_extra_state_is_saved_and_restored(tmp_path):
    model = dense_model(HDF5TestAveragedSGD(0.1))
    model.optimizer.average_loss = 0.625
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert type(loaded.optimizer) is HDF5TestAveragedSGD and loaded.optimizer.average_loss == 0.625
    with h5py.File(tmp_path / "m.h5", "r+") as f:     # a JSON list where an object belongs
        del f["optimizer/extra_state"]
        f.create_dataset("optimizer/extra_state", data=np.array([b"[0.625]"], dtype="S7"))
    with pytest.raises(ModelFileError) as info:
        load_model(tmp_path / "m.h5")
    assert str(info.value) == f"{tmp_path / 'm.h5'}: /optimizer/extra_state must hold a JSON object"


@pytest.mark.parametrize("iterations, lr_multiplier, refused", [(0, 0.0, False), (-1, 1.0, True), (0, -0.5, True),
                                                               (0, float("nan"), True)])
def test_the_optimizer_state_bounds(tmp_path, iterations, lr_multiplier, refused):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    with h5py.File(path, "r+") as f:
        f["optimizer"].attrs["iterations"] = np.int64(iterations)
        f["optimizer"].attrs["lr_multiplier"] = np.float64(lr_multiplier)
    if not refused:
        assert load_model(path).optimizer.lr_multiplier == lr_multiplier
        return
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (f"{path}: invalid optimizer state: iterations={iterations}, "
                               f"lr_multiplier={lr_multiplier}")


def test_optimizer_state_of_another_optimizer_class_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    with h5py.File(path, "r+") as f:
        f["optimizer"].attrs["class_name"] = np.bytes_(b"Adam")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: the optimizer state belongs to Adam but training_config names SGD"


def _adam_model_with_slots(path):
    model = dense_model("adam")
    x, y = dense_data()
    model.train_on_batch(x[:8], y[:8])
    model.save(path)


def test_optimizer_state_for_something_that_is_not_a_parameter_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    _adam_model_with_slots(path)
    with h5py.File(path, "r+") as f:
        f["optimizer/slots/dense_1"].create_group("gamma")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: the optimizer has state for dense_1/gamma, which is not a parameter of the model"


def test_optimizer_state_missing_a_slot_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    _adam_model_with_slots(path)
    with h5py.File(path, "r+") as f:
        del f["optimizer/slots/dense_1/kernel/v"]
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == f"{path}: optimizer state for dense_1/kernel has slots ['m'], but Adam keeps ['m', 'v']"


# -- found by mutation testing, the rest of io/hdf5.py (docs/mutation-testing.md) --------------------------
# Every refusal's whole message, so that a message, the path it starts with or the object it names cannot
# change unnoticed. Each case edits one file saved from an Adam model with slots.
def _set_json(name, value):
    def edit(f):
        del f[name]
        data = json.dumps(value).encode()
        f.create_dataset(name, data=np.array([data], dtype=f"S{len(data)}"))
    return edit


def _edit_json(name, change):
    def edit(f):
        value = json.loads(f[name][0])
        change(value)
        _set_json(name, value)(f)
    return edit


def _replace(name, make):
    """Replaces the object ``name`` by what ``make(parent group, link)`` creates."""
    def edit(f):
        parent, link = name.rsplit("/", 1) if "/" in name else ("/", name)
        del f[name]
        make(f[parent], link)
    return edit


def _a_group(group, link):
    group.create_group(link)


def _a_dataset(group, link):
    group.create_dataset(link, data=np.zeros(2))


def _set_attr(name, key, value):
    def edit(f):
        f[name].attrs[key] = value
    return edit


_HINT = "the file's weights do not fit its own architecture; it was edited or written by a broken writer"
_READ = "; the file is truncated, corrupted or was edited"
_ARCH = "['dense_1', 're_lu_1', 'dropout_1', 'dense_2', 'softmax_1']"

REFUSALS = {
    "model_config a list": (_set_json("model_config", []),
                            "model_config must be an object with a non-empty 'layers' list, found list"),
    "no layers": (_edit_json("model_config", lambda c: c.update(layers=[])),
                  "model_config must be an object with a non-empty 'layers' list, found dict"),
    "layers an object": (_edit_json("model_config", lambda c: c.update(layers={"dense": 1})),
                         "model_config must be an object with a non-empty 'layers' list, found dict"),
    "a layer a string": (_edit_json("model_config", lambda c: c["layers"].__setitem__(1, "ReLU")),
                         "model_config layer 1 must be {'class_name': str, 'config': dict}, found 'ReLU'"),
    "a layer config a list": (_edit_json("model_config", lambda c: c["layers"][1].update(config=[])),
                              "model_config layer 1 must be {'class_name': str, 'config': dict}, found "
                              "{'class_name': 'ReLU', 'config': []}"),
    "a class name a number": (_edit_json("model_config", lambda c: c["layers"][1].update(class_name=3)),
                              "model_config layer 1 must be {'class_name': str, 'config': dict}, found "
                              "{'class_name': 3, 'config': {'input_shape': None, 'name': 're_lu_1'}}"),
    "training_config a list": (_set_json("training_config", []), "training_config must be an object, found list"),
    "an unknown training key": (_edit_json("training_config", lambda c: c.update(momentum=0.9)),
                                "training_config has unknown keys ['momentum']; expected loss, optimizer, accuracy, "
                                "loss_weights, metrics"),
    "no loss": (_edit_json("training_config", lambda c: c.pop("loss")),
                "training_config has no loss; a saved model always has a loss and an optimizer"),
    "no optimizer": (_edit_json("training_config", lambda c: c.pop("optimizer")),
                     "training_config has no optimizer; a saved model always has a loss and an optimizer"),
    "/metadata a list": (_set_json("metadata", [1]), "/metadata must hold a JSON object, found list"),
    "a negative seed": (_set_attr("/", "seed", np.int64(-1)), "seed (-1) and epochs_trained (0) must be >= 0"),
    "negative epochs": (_set_attr("/", "epochs_trained", np.int64(-2)),
                        "seed (3) and epochs_trained (-2) must be >= 0"),
    "a float seed": (_set_attr("/", "seed", 1.5),
                     "cannot read the model description (/model_config, /training_config, /history, /metadata, seed, "
                     "epochs_trained) (TypeError: attribute 'seed' of / should be an integer, found float64 (1.5))"
                     + _READ),
    "/model_config a group": (_replace("model_config", _a_group), "/model_config should be a Dataset, found a Group"),
    "/training_config a group": (_replace("training_config", _a_group),
                                 "/training_config should be a Dataset, found a Group"),
    "no /history": (lambda f: f.__delitem__("history"), "/history is missing; the file is incomplete or was edited"),
    "/metadata a group": (_replace("metadata", _a_group), "/metadata should be a Dataset, found a Group"),
    "contents unknown": (_set_attr("/", "contents", np.bytes_(b"data")),
                         "contents is 'data', expected 'model' or 'weights'"),
    "format version 0": (_set_attr("/", "format_version", np.int64(0)),
                         "format_version is 0; valid versions start at 1"),
    "format version text": (_set_attr("/", "format_version", np.bytes_(b"2")),
                            "cannot read the file header (TypeError: attribute 'format_version' of / should be an "
                            "integer, found bytes_ (b'2'))" + _READ),
    "no /weights": (lambda f: f.__delitem__("weights"), "/weights is missing; the file is incomplete or was edited"),
    "/weights a dataset": (_replace("weights", _a_dataset), "/weights should be a Group, found a Dataset"),
    "a layer's state a dataset": (lambda f: _a_dataset(f["state"], "dense_1"),
                                  "/state/dense_1 should be a Group, found a Dataset"),
    "a state array too many": (lambda f: f.create_group("state/dense_1").create_dataset("mean", data=np.zeros(2)),
                               "layer dense_1 (Dense): the file has state arrays ['mean'] but the saved architecture "
                               f"has []; {_HINT}"),
    "no /state": (lambda f: f.__delitem__("state"), "/state is missing; the file is incomplete or was edited"),
    "a layer missing": (lambda f: f.__delitem__("weights/dense_2"),
                        "the layers do not match the saved architecture (layers are matched by name): the saved "
                        "architecture has ['dense_2'] that the file lacks, and the file has nothing that the saved "
                        "architecture lacks. File layers: ['dense_1', 're_lu_1', 'dropout_1', 'softmax_1']; the saved "
                        f"architecture: {_ARCH}"),
    "a layer too many": (lambda f: f["weights"].create_group("dense_9"),
                         "the layers do not match the saved architecture (layers are matched by name): the saved "
                         "architecture has nothing that the file lacks, and the file has ['dense_9'] that the saved "
                         "architecture lacks. File layers: ['dense_1', 're_lu_1', 'dropout_1', 'dense_2', "
                         f"'softmax_1', 'dense_9']; the saved architecture: {_ARCH}"),
    "state of a layer too many": (lambda f: f["state"].create_group("dense_9"),
                                  "the layers do not match the saved architecture (layers are matched by name): the "
                                  "saved architecture has nothing that the file lacks, and the file has ['dense_9'] "
                                  f"that the saved architecture lacks. File layers: {_ARCH}; the saved architecture: "
                                  f"{_ARCH}"),
    "a layer of another class": (_set_attr("weights/dense_2", "class_name", np.bytes_(b"Conv2D")),
                                 f"layer 'dense_2' is a Conv2D in the file but a Dense in the saved architecture; {_HINT}"),
    "a layer class a number": (_set_attr("weights/dense_2", "class_name", np.int64(3)),
                               "cannot read the weights (TypeError: attribute 'class_name' of /weights/dense_2 should "
                               "be a string, found int64 (3))" + _READ),
    "trainable a 5": (_set_attr("weights/dense_2", "trainable", np.int64(5)),
                      "cannot read the weights (TypeError: attribute 'trainable' of /weights/dense_2 should be a "
                      "boolean, found int64 (5))" + _READ),
    "a layer's group a dataset": (_replace("weights/re_lu_1", _a_dataset),
                                  "/weights/re_lu_1 should be a Group, found a Dataset"),
    "a weight a group": (_replace("weights/dense_2/bias", _a_group),
                         "/weights/dense_2/bias should be a Dataset, found a Group"),
    "an integer weight": (_replace("weights/dense_2/bias", lambda g, k: g.create_dataset(k, data=np.zeros(3, np.int32))),
                          f"layer dense_2 (Dense): weight 'bias' is int32 in the file but float32 in the saved "
                          f"architecture; {_HINT}"),
    "no /optimizer": (lambda f: f.__delitem__("optimizer"),
                      "/optimizer is missing; the file is incomplete or was edited"),
    "no slots": (lambda f: f.__delitem__("optimizer/slots"),
                 "/optimizer/slots is missing; the file is incomplete or was edited"),
    "an optimizer class a number": (_set_attr("optimizer", "class_name", np.int64(3)),
                                    "cannot read the optimizer state (TypeError: attribute 'class_name' of /optimizer "
                                    "should be a string, found int64 (3))" + _READ),
    "extra state a group": (lambda f: f["optimizer"].create_group("extra_state"),
                            "/optimizer/extra_state should be a Dataset, found a Group"),
    "a layer's slots a dataset": (_replace("optimizer/slots/dense_1", _a_dataset),
                                  "/optimizer/slots/dense_1 should be a Group, found a Dataset"),
    "a parameter's slots a dataset": (_replace("optimizer/slots/dense_1/bias", _a_dataset),
                                      "/optimizer/slots/dense_1/bias should be a Group, found a Dataset"),
    "a slot a group": (_replace("optimizer/slots/dense_1/bias/m", _a_group),
                       "/optimizer/slots/dense_1/bias/m should be a Dataset, found a Group"),
    "a slot of another shape": (_replace("optimizer/slots/dense_1/bias/m",
                                         lambda g, k: g.create_dataset(k, data=np.zeros(3, np.float32))),
                                "optimizer slot 'm' of dense_1/bias is float32 (3,) but the parameter is float32 (8,)"),
    "a slot of another dtype": (_replace("optimizer/slots/dense_1/bias/m", lambda g, k: g.create_dataset(k, data=np.zeros(8))),
                                "optimizer slot 'm' of dense_1/bias is float64 (8,) but the parameter is float32 (8,)"),
}


@pytest.fixture(scope="module")
def adam_file_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("adam") / "m.h5"
    _adam_model_with_slots(path)
    return path.read_bytes()


def _edited_file(tmp_path, data, edit):
    """``tmp_path / "m.h5"`` holding ``data`` (a file's bytes), then changed by ``edit(h5py.File)``."""
    path = tmp_path / "m.h5"
    path.write_bytes(data)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _refusal(path, load=load_model):
    with pytest.raises(ModelFileError) as info:
        load(path)
    assert info.value.path == str(path)
    return str(info.value)


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_says_exactly_what_is_wrong_after_the_files_path(tmp_path, adam_file_bytes, case):
    edit, reason = REFUSALS[case]
    path = _edited_file(tmp_path, adam_file_bytes, edit)
    assert _refusal(path) == f"{path}: {reason}"


def test_an_unregistered_layer_without_a_config_is_named_unnamed_and_the_known_layers_listed(tmp_path,
                                                                                               adam_file_bytes):
    from nnscratch.layers.base import LAYERS
    path = _edited_file(tmp_path, adam_file_bytes,
                        _edit_json("model_config", lambda c: c["layers"].__setitem__(1, {"class_name": "Maxout"})))
    assert _refusal(path) == (f"{path}: layer 1 (unnamed) is of class 'Maxout', which is not a registered layer. "
                              f"Known layers: {', '.join(LAYERS.names())}. A custom layer is registered by defining "
                              "its class (a subclass of nnscratch.layers.Layer): import or define it before calling "
                              "load_model.")


def test_load_weights_and_read_header_refuse_with_the_path_and_this_models_words(tmp_path, adam_file_bytes):
    path = _edited_file(tmp_path, adam_file_bytes,
                        lambda f: f["weights/dense_2"].attrs.__setitem__("class_name", np.bytes_(b"Conv2D")))
    assert _refusal(path, lambda p: load_weights(dense_model("adam"), p)) == (
        f"{path}: layer 'dense_2' is a Conv2D in the file but a Dense in this model; build the model with the same "
        "layers and sizes as the saved one (layer names are assigned in order: dense_1, dense_2...)")
    with h5py.File(path, "r+") as f:
        f.attrs["contents"] = np.bytes_(b"data")
    assert _refusal(path, read_header) == f"{path}: contents is 'data', expected 'model' or 'weights'"
    assert _refusal(path, lambda p: load_weights(dense_model("adam"), p)) == (
        f"{path}: contents is 'data', expected 'model' or 'weights'")


@pytest.mark.parametrize("case", ["a layer's group a dataset", "a weight a group", "no /weights", "no /state",
                                  "a layer's state a dataset"])
def test_load_weights_refuses_what_load_model_refuses_with_the_same_words(tmp_path, adam_file_bytes, case):
    # load_model meets these while it reads the file's shapes for the architecture; load_weights only in its reader
    edit, reason = REFUSALS[case]
    path = _edited_file(tmp_path, adam_file_bytes, edit)
    assert _refusal(path, lambda p: load_weights(dense_model("adam"), p)) == f"{path}: {reason}"


def test_loss_weights_and_further_metrics_are_saved_and_restored(tmp_path):
    model = dense_model("sgd")
    model.set(loss_weights=[2.0], metrics=["accuracy"])
    model.finalize()
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert {"loss_weights", "metrics"} <= set(model.get_training_config())
    assert loaded.get_training_config() == model.get_training_config()


def test_load_weights_casts_a_float64_file_into_a_float32_model(tmp_path):
    path = tmp_path / "w.h5"
    source = dense_model("sgd", seed=1, dtype="float64")
    source.save_weights(path)
    target = dense_model("sgd", seed=2)
    load_weights(target, path)
    for name, value in source.get_weights().items():
        assert target.get_weights()[name].dtype == np.float32
        np.testing.assert_array_equal(target.get_weights()[name], value.astype(np.float32))


def test_the_non_finite_warning_names_the_file_the_array_and_what_to_do(tmp_path):
    # the stacklevel is checked by tests/io/test_h5_safety.py; this pins the category and the whole message
    path = tmp_path / "m.h5"
    model = dense_model("adam")
    model.layers[3].params["bias"][1] = np.nan
    model.save(path)
    with pytest.warns(RuntimeWarning) as caught:
        load_model(path)
    assert [(w.category, str(w.message)) for w in caught] == [(RuntimeWarning, (
        f"{path}: layer dense_2 (Dense): weight 'bias' has 1 non-finite value(s) (NaN or infinity) out of 3; the "
        "model was probably saved after training diverged and will predict NaN. Load an earlier checkpoint, or "
        "retrain with a lower learning rate (DivergenceGuard stops training when the loss diverges)"))]
    _adam_model_with_slots(path)
    with h5py.File(path, "r+") as f:
        m = f["optimizer/slots/dense_1/bias/m"][()]
        m[0] = np.inf
        del f["optimizer/slots/dense_1/bias/m"]
        f["optimizer/slots/dense_1/bias"].create_dataset("m", data=m)
    with pytest.warns(RuntimeWarning) as caught:
        load_model(path)
    assert [str(w.message) for w in caught] == [
        f"{path}: optimizer slot 'm' of dense_1/bias has 1 non-finite value(s) (NaN or infinity) out of 8; the "
        "model was probably saved after training diverged and will predict NaN. Load an earlier checkpoint, or "
        "retrain with a lower learning rate (DivergenceGuard stops training when the loss diverges)"]


def test_a_model_file_error_pickles_with_its_path_and_reason(tmp_path):
    import pickle
    error = pickle.loads(pickle.dumps(ModelFileError(tmp_path / "m.h5", "it is broken")))
    assert (type(error), error.path, error.reason, str(error)) == (
        ModelFileError, str(tmp_path / "m.h5"), "it is broken", f"{tmp_path / 'm.h5'}: it is broken")


@pytest.mark.parametrize("error, says", [
    (OSError("Unable to synchronously open file (unable to lock file, errno = 11, error message = 'Resource "
             "temporarily unavailable')"), "cannot open it"),
    (BlockingIOError("Resource temporarily unavailable"), "cannot open it"),
    (OSError("Unable to open file (truncated file: eof = 1000, sblock->base_addr = 0, stored_eof = 5000)"),
     "the file is truncated: it has 1000 bytes but its HDF5 header says 5000"),
    (OSError("Unable to open file (bad superblock version number)"), "not a readable HDF5 file"),
])
def test_why_a_file_cannot_be_opened_is_told_from_hdf5s_error(tmp_path, monkeypatch, error, says):
    path = tmp_path / "m.h5"
    path.write_bytes(b"")

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(hdf5.h5py, "File", refuse)
    message = _refusal(path)
    assert message.startswith(f"{path}: {says}")
    if says == "cannot open it":
        assert message == (f"{path}: cannot open it ({error}): another program has it open for writing (HDF5 file "
                           "locking); close it there, or set HDF5_USE_FILE_LOCKING=FALSE on file systems without locks")


def test_save_weights_writes_the_checksummed_format_in_layer_order_and_needs_a_finalized_model(tmp_path):
    path = tmp_path / "w.h5"
    dense_model("sgd").save_weights(path)
    assert path.read_bytes()[8] >= 2     # superblock version 2 or later: the HDF5 1.10 format, checksummed
    with h5py.File(path, "r") as f:
        assert list(f) == ["weights", "state"]     # in the order written, as in a model file
        assert list(f["weights"]) == ["dense_1", "re_lu_1", "dropout_1", "dense_2", "softmax_1"]
    with pytest.raises(RuntimeError) as info:
        hdf5.save_weights(nnscratch.Model([Dense(2, input_shape=(3,))]), tmp_path / "x.h5")
    assert str(info.value) == ("call model.finalize() before model.save_weights(): the weights exist only once the "
                               "layers are built (finalize again after add/set changes; built layers keep their "
                               "weights)")


# -- found by mutation testing, the run to the end of io/hdf5.py and io/_h5.py (docs/mutation-testing.md) --------
def test_damage_met_while_reading_the_files_shapes_says_so(tmp_path):
    # the kernel's digest attribute lives in its checksummed object header: one changed hex digit there makes
    # opening the dataset fail, which load_model first does when it hands the file's shapes to the layers
    path = tmp_path / "m.h5"
    dense_model("adam").save(path)
    with h5py.File(path, "r") as f:
        digest = bytes(f["weights/dense_1/kernel"].attrs["sha256"])
    data = path.read_bytes()
    assert data.count(digest) == 1
    at = data.index(digest)
    path.write_bytes(data[:at] + (b"1" if digest[:1] == b"0" else b"0") + data[at + 1:])
    message = _refusal(path)
    assert re.fullmatch(re.escape(f"{path}: cannot read the weights' shapes (checksum mismatch, the stored bytes have "
                                  "changed; ") + r"\w+: .*checksum.*" + re.escape(_READ.replace("; ", "); ", 1)),
                        message), message


def _pair_layer():
    """A user's layer holding two Dense layers, ``a`` and ``b`` (defined, and so registered, when a test runs:
    the contract check of tests/test_common.py covers the layers registered when it is collected)."""
    class HDF5TestPair(Layer):
        """``b(a(x))`` with ``a`` and ``b`` two Dense layers held by this one."""

        def __init__(self, hidden=5, units=3, **kwargs):
            super().__init__(**kwargs)
            self.hidden, self.units = hidden, units
            self.a, self.b = Dense(hidden), Dense(units)

        def build(self, input_shape):
            self.b.initialize(self.a.initialize(input_shape, self.dtype, self.rng), self.dtype, self.rng)

        def compute_output_shape(self, input_shape):
            return (self.units,)

        def forward(self, x, training=False):
            return self.b.forward(self.a.forward(x, training), training)

        def backward(self, dout):
            return self.a.backward(self.b.backward(dout))

    return HDF5TestPair


def test_a_layer_holding_two_dense_layers_loads_each_ones_shapes_from_its_own_path(tmp_path):
    # the sublayers' paths "a/" and "b/" have one length: "b/kernel" minus the prefix "a/" is "kernel" too,
    # so only the prefix itself tells a's weights from b's
    HDF5TestPair = _pair_layer()
    model = nnscratch.Model([HDF5TestPair(input_shape=(4,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.fit(np.ones((4, 4), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    path = tmp_path / "pair.h5"
    model.save(path)
    group = f"weights/{model.layers[0].name}"
    with h5py.File(path, "r") as f:
        assert list(f[group]) == ["a%2Fkernel", "a%2Fbias", "b%2Fkernel", "b%2Fbias"]
    assert_same_model(model, load_model(path))
    with h5py.File(path, "r+") as f:
        del f[f"{group}/b%2Fkernel"]
        f[group].create_dataset("b%2Fkernel", data=np.zeros((6, 3), np.float32))
    assert _refusal(path) == (f"{path}: layer {model.layers[0].b.describe()}: weight 'kernel' has shape (6, 3) in the "
                              f"file but (5, 3) in the saved architecture; {_HINT}")



def _hdf5_file_with(**attrs):
    def make(path):
        with h5py.File(path, "w") as f:
            f["images"] = np.zeros((2, 3))
            f.attrs.update(attrs)
    return make


_NOT_OURS = "an HDF5 file, but not an nnscratch model file (it has no 'format' attribute)."
_KERAS = (" It looks like a Keras file: load it with nnscratch.load_model (or model.load_weights), which read Keras "
          "files")

HEADER_REFUSALS = {
    "no format": (_hdf5_file_with(), _NOT_OURS),
    "a Keras file": (_hdf5_file_with(keras_version="2.15.0"), _NOT_OURS + _KERAS),
    "a Keras file naming only its backend": (_hdf5_file_with(backend="tensorflow"), _NOT_OURS + _KERAS),
    "another format": (_hdf5_file_with(format=np.bytes_(b"onnx")),
                       "the file's format is 'onnx', expected 'nnscratch'; not an nnscratch model file"),
    "a newer format from an unknown writer": (
        _hdf5_file_with(format=np.bytes_(b"nnscratch"), format_version=np.int64(FORMAT_VERSION + 1)),
        f"written in file format version {FORMAT_VERSION + 1} by nnscratch unknown; this nnscratch "
        f"({nnscratch.__version__}) reads format versions up to {FORMAT_VERSION}. Upgrade nnscratch (pip install "
        "--upgrade nnscratch) to load it"),
    "a weights file": (lambda path: dense_model("sgd").save_weights(path),
                       "holds weights only (written by save_weights), without an architecture; build the same model "
                       "in code, finalize it and call model.load_weights(path)"),
}


@pytest.mark.parametrize("case", list(HEADER_REFUSALS))
def test_each_header_refusal_says_exactly_what_the_file_is(tmp_path, case):
    make, reason = HEADER_REFUSALS[case]
    path = tmp_path / "m.h5"
    make(path)
    assert _refusal(path) == f"{path}: {reason}"


def _loads_as_saved(path, saved, save, optimizer):
    """What ``saved.<save>(path)`` wrote gives back ``saved``: the whole model, or its weights in a fresh model."""
    if save == "save":
        assert_same_model(load_model(path), saved)
        return
    loaded = dense_model(optimizer, seed=3)
    load_weights(loaded, path)
    assert all(np.array_equal(v, saved.get_weights()[k]) for k, v in loaded.get_weights().items())


@pytest.mark.skipif(os.name != "posix", reason="sends itself SIGINT")
@pytest.mark.parametrize("save, writer, file, optimizer", [("save", "_write_optimizer", "m.h5", "adam"),
                                                           ("save_weights", "_write_layer_arrays", "w.h5", "sgd")])
def test_ctrl_c_during_a_save_lets_the_save_finish_then_raises(tmp_path, monkeypatch, save, writer, file, optimizer):
    import signal
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else in this process")
    path = tmp_path / file
    getattr(dense_model(optimizer, seed=1), save)(path)
    write = getattr(hdf5, writer)

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGINT)
        write(*args)

    monkeypatch.setattr(hdf5, writer, interrupted)
    new = dense_model(optimizer, seed=2)
    with pytest.raises(KeyboardInterrupt):
        getattr(new, save)(path)
    monkeypatch.undo()
    _loads_as_saved(path, new, save, optimizer)


def test_state_arrays_round_trip_and_every_group_keeps_its_members_and_attributes_in_creation_order(tmp_path):
    # docs/file-format.md: groups list their members in creation order. Where that order is also alphabetical
    # (/optimizer's class_name, iterations, lr_multiplier and slots; Adam's m and v; moving_mean, moving_variance)
    # only the group's own flags tell a file that guarantees it from one that happens to have it.
    from nnscratch.layers import BatchNormalization
    model = nnscratch.Model([Dense(8, input_shape=(4,)), BatchNormalization(), ReLU(), Dense(3), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    x, y = dense_data()
    model.fit(x[:16], y[:16], epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    assert_same_model(model, load_model(path))
    tracked = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
    with h5py.File(path, "r") as f:
        assert list(f["state"]) == ["batch_normalization_1"]
        assert list(f["state/batch_normalization_1"]) == ["moving_mean", "moving_variance"]
        groups = []
        f.visititems(lambda name, obj: groups.append(obj) if isinstance(obj, h5py.Group) else None)
        assert "/optimizer/slots/dense_1/kernel" in [g.name for g in groups]
        for group in groups:
            plist = group.id.get_create_plist()
            assert (plist.get_link_creation_order(), plist.get_attr_creation_order()) == (tracked, tracked), group.name


def test_read_header_tells_what_a_file_holds_without_loading_it(tmp_path):
    model = dense_model("sgd")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "w.h5")
    header = {"format": "nnscratch", "format_version": FORMAT_VERSION, "nnscratch_version": nnscratch.__version__}
    assert read_header(tmp_path / "m.h5") == {**header, "contents": "model"}
    assert read_header(tmp_path / "w.h5") == {**header, "contents": "weights"}


def test_a_frozen_first_sublayer_does_not_hide_the_optimizer_state_of_the_next(tmp_path):
    # a fine-tuned layer: its first sublayer frozen, so only the second has optimizer slots
    model = nnscratch.Model([_pair_layer()(input_shape=(4,)), Softmax()], seed=0)
    model.layers[0].a.trainable = False
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.fit(np.ones((4, 4), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    assert sorted(model.optimizer.get_state()["slots"]) == [f"{model.layers[0].name}/b/bias",
                                                            f"{model.layers[0].name}/b/kernel"]
    model.save(tmp_path / "m.h5")
    assert_same_model(model, load_model(tmp_path / "m.h5"))


class _NotJSON:
    def __repr__(self):
        return "_NotJSON()"


def _set_attr_of(get, name):
    def edit(model):
        setattr(get(model), name, _NotJSON())
    return edit


@pytest.mark.parametrize("edit, what", [
    (_set_attr_of(lambda m: m.layers[0], "units"), "architecture (model.get_config())"),
    (_set_attr_of(lambda m: m.optimizer, "momentum"), "training configuration (model.get_training_config())"),
    (lambda m: m.history.history.update(note=[_NotJSON()]), "training history"),
    (lambda m: m.metadata.update(note=_NotJSON()), "metadata (model.metadata)"),
    (_set_attr_of(lambda m: m.optimizer, "average_loss"), "optimizer state"),
], ids=["config", "training config", "history", "metadata", "optimizer state"])
def test_what_is_not_json_is_named_word_for_word_and_nothing_is_written(tmp_path, edit, what):
    model = dense_model(HDF5TestAveragedSGD(0.1))
    model.optimizer.average_loss = 0.5
    edit(model)
    path = tmp_path / "m.h5"
    with pytest.raises(TypeError) as info:
        model.save(path)
    assert str(info.value) == (f"cannot save {str(path)!r}: the {what} is not plain JSON (_NotJSON (_NotJSON()) is not a "
                               "number, string, list or dict); keep it to numbers, strings, booleans, None, lists and "
                               "dicts")
    assert os.listdir(tmp_path) == []


def test_a_model_without_an_optimizer_is_not_saved_and_says_how_to_set_one(tmp_path):
    model = nnscratch.Model([Dense(2, input_shape=(3,))])
    model.set(loss="mse")
    model.finalize()
    with pytest.raises(RuntimeError) as info:
        model.save(tmp_path / "m.h5")
    assert str(info.value) == "the model has no optimizer; call model.set(optimizer=...) and model.finalize() first"
    assert os.listdir(tmp_path) == []


def test_a_model_files_root_lists_its_attributes_and_members_in_the_documented_order(tmp_path):
    path = tmp_path / "m.h5"
    dense_model("sgd").save(path)
    with h5py.File(path, "r") as f:
        assert list(f.attrs) == ["format", "format_version", "nnscratch_version", "contents", "seed", "epochs_trained"]
        assert list(f) == ["model_config", "training_config", "history", "metadata", "weights", "state", "optimizer"]


def test_a_layer_with_a_scalar_weight_saves_and_loads(tmp_path):
    # write_array stored a 0-d array as shape (1,) (np.ascontiguousarray makes at least 1-d), so such a model saved
    # but could not be loaded: "weight 'scale' has shape (1,) in the file but () in the saved architecture"
    class HDF5TestScale(Layer):
        """``y = x * scale``, one trainable scalar."""

        def build(self, input_shape):
            self.add_weight("scale", (), 1.5)

        def forward(self, x, training=False):
            self._x = x
            return x * self.params["scale"]

        def backward(self, dout):
            self.grads["scale"][...] = (dout * self._x).sum()
            return dout * self.params["scale"]

    model = nnscratch.Model([Dense(3, input_shape=(2,)), HDF5TestScale(), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    model.fit(np.ones((4, 2), np.float32), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.layers[1].params["scale"].shape == ()
    assert_same_model(model, loaded)

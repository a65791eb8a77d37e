"""ModelCheckpoint: file names from the logs, best-only saving, weights-only files, exact resumption."""
import math
import os

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.callbacks import CALLBACKS, Callback
from nnscratch.io import ModelCheckpoint, load_model
from nnscratch.layers import Dense, Dropout, ReLU, Softmax
from nnscratch.optimizers import SGD
from problems import blobs


def model(seed=4):
    m = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dropout(0.2), Dense(3), Softmax()], seed=seed)
    m.set(loss="categorical_crossentropy", optimizer=SGD(0.05, momentum=0.9), accuracy="categorical_accuracy")
    m.finalize()
    return m


DATA = blobs(n=80, classes=3, dims=4, seed=1)
VAL = blobs(n=30, classes=3, dims=4, seed=2)


def test_is_a_registered_callback():
    assert issubclass(ModelCheckpoint, Callback) and CALLBACKS.get("ModelCheckpoint") is ModelCheckpoint


def test_every_epoch_with_epoch_and_log_keys_in_the_name(tmp_path):
    m = model()
    pattern = str(tmp_path / "runs" / "e{epoch:02d}-{val_loss:.3f}-{accuracy:.2f}.h5")  # folder is created
    history = m.fit(*DATA, epochs=3, batch_size=16, validation_data=VAL, verbose=0,
                    callbacks=[ModelCheckpoint(pattern)])
    expected = sorted(f"e{e + 1:02d}-{v:.3f}-{a:.2f}.h5" for e, (v, a) in
                      enumerate(zip(history.history["val_loss"], history.history["accuracy"])))
    assert sorted(os.listdir(tmp_path / "runs")) == expected
    last = load_model(tmp_path / "runs" / expected[-1])
    assert last.epochs_trained == 3
    np.testing.assert_array_equal(last.predict(VAL[0]), m.predict(VAL[0]))


def test_a_checkpoint_resumes_exactly_and_carries_the_history_of_its_epoch(tmp_path):
    straight = model()
    straight.fit(*DATA, epochs=3, batch_size=16, verbose=0,
                 callbacks=[ModelCheckpoint(tmp_path / "epoch{epoch}.h5")])
    resumed = load_model(tmp_path / "epoch2.h5")
    assert resumed.epochs_trained == 2 and resumed.history.epoch == [0, 1]
    assert resumed.history.history["loss"] == straight.history.history["loss"][:2]
    resumed.fit(*DATA, epochs=1, batch_size=16, verbose=0)
    for key, value in straight.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value)


def test_save_best_only_saves_on_improvement_only(tmp_path, capsys):
    m = model()
    path = tmp_path / "best.h5"
    ckpt = ModelCheckpoint(path, save_best_only=True, verbose=1)
    ckpt.set_model(m)
    ckpt.on_epoch_end(0, {"val_loss": 1.0})
    assert path.exists() and ckpt.best == 1.0 and ckpt.best_epoch == 0
    os.remove(path)
    ckpt.on_epoch_end(1, {"val_loss": 1.5})
    ckpt.on_epoch_end(2, {"val_loss": math.nan})
    assert not path.exists()
    ckpt.on_epoch_end(3, {"val_loss": 0.25})
    assert path.exists() and ckpt.best == 0.25 and ckpt.best_epoch == 3 and ckpt.last_path == str(path)
    ckpt.on_train_end()  # the last line waits for the end of training (after the epoch's progress line)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"Epoch 1: val_loss improved from inf to 1, saving model to {path}",
                   "Epoch 2: val_loss did not improve from 1",
                   "Epoch 3: val_loss did not improve from 1",
                   f"Epoch 4: val_loss improved from 1 to 0.25, saving model to {path}"]


def test_the_checkpoint_line_follows_its_epochs_progress_line(tmp_path, capsys):
    m = model()
    m.fit(*DATA, epochs=2, batch_size=16, validation_data=VAL, verbose=2,
          callbacks=[ModelCheckpoint(tmp_path / "e{epoch}.h5", verbose=1)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0].split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 1", "Epoch 2/2", "Epoch 2"]
    assert lines[1] == f"Epoch 1: saving model to {tmp_path / 'e1.h5'}"


def test_mode_auto_maximises_accuracies_and_threshold_gates_the_first_save(tmp_path):
    ckpt = ModelCheckpoint(tmp_path / "best.h5", monitor="val_accuracy", save_best_only=True,
                           initial_value_threshold=0.8)
    assert ckpt.mode == "max" and ModelCheckpoint("x.h5", monitor="loss").mode == "min"
    ckpt.set_model(model())
    ckpt.on_epoch_end(0, {"val_accuracy": 0.7})
    assert not (tmp_path / "best.h5").exists()
    ckpt.on_epoch_end(1, {"val_accuracy": 0.9})
    assert (tmp_path / "best.h5").exists() and ckpt.best == 0.9


def test_weights_only(tmp_path):
    m = model()
    m.fit(*DATA, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "w.h5", save_weights_only=True)])
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert f.attrs["contents"] == b"weights"
    other = model(seed=9)
    other.load_weights(tmp_path / "w.h5")
    np.testing.assert_array_equal(other.predict(VAL[0]), m.predict(VAL[0]))


def test_missing_keys_are_explained(tmp_path):
    m = model()
    # the same message as every monitoring callback (EarlyStopping, ReduceLROnPlateau) gives
    with pytest.raises(ValueError, match=r"ModelCheckpoint monitors 'val_loss', but the epoch logs only have: "
                                         r"loss, accuracy.*validation_data=\(x_val, y_val\)"):
        m.fit(*DATA, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "b.h5", save_best_only=True)])
    with pytest.raises(ValueError, match=r"needs 'val_acc' but the epoch logs"):
        m.fit(*DATA, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_acc:.2f}.h5")])
    assert os.listdir(tmp_path) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'best'"):
        ModelCheckpoint("m.h5", mode="best")
    with pytest.raises(ValueError, match="path must not be empty"):
        ModelCheckpoint("")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        ModelCheckpoint(3)

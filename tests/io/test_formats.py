"""Telling file formats apart by content, and the format= of Model.save."""
import zipfile

import numpy as np
import pytest

import nnscratch
from nnscratch.io import ModelFileError
from nnscratch.io.formats import FORMATS, file_format
from nnscratch.layers import Dense


@pytest.fixture
def model():
    model = nnscratch.Model([Dense(2, activation="softmax", input_shape=(3,), name="dense")], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    return model


@pytest.mark.parametrize("name, format, kind", [("m.h5", None, "nnscratch"), ("m.h5", "nnscratch", "nnscratch"),
                                                ("m.h5", "keras_h5", "keras_h5"), ("m.keras", None, "keras"),
                                                ("m.zip", "keras", "keras")])
def test_each_format_is_told_by_content_and_loads_back(model, tmp_path, name, format, kind):
    path = tmp_path / name
    model.save(path, format=format)
    assert file_format(path) == kind
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(nnscratch.load_model(path).predict(x), model.predict(x))
    other = nnscratch.Model([Dense(2, activation="softmax", input_shape=(3,), name="dense")], seed=1)
    other.finalize()
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_nnscratch_stays_the_default_for_h5(model, tmp_path):
    model.save(tmp_path / "m.h5")
    assert nnscratch.io.read_header(tmp_path / "m.h5")["format"] == "nnscratch"


def test_an_unknown_format_is_refused(model, tmp_path):
    with pytest.raises(ValueError, match=f"format='onnx' is not one nnscratch writes; use one of {', '.join(FORMATS)}"):
        model.save(tmp_path / "m.onnx", format="onnx")


def test_a_zip_that_is_no_keras_file(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="the .keras archive has no 'config.json'"):
        nnscratch.load_model(path)


def test_other_files_keep_nnscratch_errors(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not a model")
    assert file_format(path) == "nnscratch"
    with pytest.raises(ModelFileError, match="not a readable HDF5 file"):
        nnscratch.load_model(path)
    with pytest.raises(FileNotFoundError):
        nnscratch.load_model(tmp_path / "missing.h5")


def test_the_command_line_reads_keras_files(model, tmp_path, capsys):
    from nnscratch.cli import main
    model.save(tmp_path / "m.keras")
    assert main(["summary", str(tmp_path / "m.keras")]) == 0
    assert "Total params: 8" in capsys.readouterr().out

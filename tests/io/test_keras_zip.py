"""Keras 3's ``.keras`` zip and ``.weights.h5`` files: Keras' files read here, files written here read by Keras
(in test_keras_h5's round trip), and damaged or hostile archives."""
import json
import struct
import zipfile

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.io import ModelFileError
from nnscratch.io import keras_zip
from nnscratch.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D

TOLERANCE = 1e-5


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_a_keras_zip_model_predicts_as_in_keras(keras_models, name):
    with pytest.warns(RuntimeWarning, match="loaded uncompiled because the file names no optimizer"):
        model = nnscratch.load_model(keras_models.files[name, "keras"])
    x, y = getattr(keras_models, f"{name}_x"), getattr(keras_models, f"{name}_y")
    np.testing.assert_allclose(model.predict(x), y, rtol=0, atol=TOLERANCE)


def _cnn_here():
    model = nnscratch.Model([Conv2D(4, 3, activation="relu", input_shape=(12, 12, 1), name="conv2d"),
                             MaxPool2D(name="max_pooling2d"), Flatten(name="flatten"), Dropout(0.3, name="dropout"),
                             Dense(5, activation="softmax", name="dense")], seed=1)
    model.finalize()
    return model


@pytest.mark.parametrize("kind", ["weights.h5", "keras"])
def test_load_weights_reads_keras3_weights_and_keras_files(keras_models, tmp_path, kind):
    path = keras_models.files["cnn", "keras"]
    if kind == "weights.h5":
        path = tmp_path / "cnn.weights.h5"
        keras_models.cnn.save_weights(path)
        assert nnscratch.io.formats.file_format(path) == "keras_vars_h5"
    model = _cnn_here()
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(keras_models.cnn_x), keras_models.cnn_y, rtol=0, atol=TOLERANCE)


def test_a_keras3_weights_file_given_to_load_model_says_what_to_do(keras_models, tmp_path):
    path = tmp_path / "cnn.weights.h5"
    keras_models.cnn.save_weights(path)
    with pytest.raises(ModelFileError, match=r"a Keras weights file \(.weights.h5.*model.load_weights\(path\)"):
        nnscratch.load_model(path)


def test_weights_of_another_layer_in_the_same_place_are_refused(keras_models):
    model = _cnn_here()
    model.layers[0].name = "other"
    with pytest.raises(ModelFileError, match="layers/conv2d holds the weights of layer 'conv2d', but the model's "
                                             "layer in that place is 'other'"):
        model.load_weights(keras_models.files["cnn", "keras"])


# -- damaged and hostile archives -------------------------------------------------------------------------------
@pytest.fixture
def keras_zip_file(tmp_path):
    model = nnscratch.Model([Conv2D(2, 3, input_shape=(6, 6, 1), name="conv"), Flatten(name="flat"),
                             Dense(3, name="dense")], seed=0)
    model.finalize()
    path = tmp_path / "m.keras"
    model.save(path)
    return path


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rewrite(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_the_written_archive_has_keras_members(keras_zip_file):
    members = _members(keras_zip_file)
    assert sorted(members) == ["config.json", "metadata.json", "model.weights.h5"]
    config = json.loads(members["config.json"])
    assert config["class_name"] == "Sequential" and config["config"]["layers"][1]["module"] == "keras.layers"


def test_a_truncated_archive(keras_zip_file):
    data = keras_zip_file.read_bytes()
    keras_zip_file.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelFileError, match="truncated or damaged"):
        keras_zip.load_keras_zip(keras_zip_file)


def test_config_json_that_is_not_json(keras_zip_file):
    members = _members(keras_zip_file)
    members["config.json"] = b'{"class_name": "Sequential", '
    _rewrite(keras_zip_file, members)
    with pytest.raises(ModelFileError, match="config.json is not JSON text"):
        nnscratch.load_model(keras_zip_file)


def test_a_missing_member(keras_zip_file):
    members = _members(keras_zip_file)
    del members["model.weights.h5"]
    _rewrite(keras_zip_file, members)
    with pytest.raises(ModelFileError, match="the .keras archive has no 'model.weights.h5'"):
        nnscratch.load_model(keras_zip_file)


def _set_declared_size(path, member, size):
    """Rewrites the uncompressed size a member declares, in its central-directory entry (what zipfile trusts)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46: at + 46 + name_length] == name:
            struct.pack_into("<I", data, at + 24, size)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in the central directory")


def test_a_zip_bomb_is_refused_on_its_declared_size(keras_zip_file):
    members = _members(keras_zip_file)
    _rewrite(keras_zip_file, members, zipfile.ZIP_DEFLATED)
    _set_declared_size(keras_zip_file, "model.weights.h5", 0xFFFFFFF0)
    with pytest.raises(ModelFileError, match=r"model.weights.h5 declares 4,294,967,280 bytes from [\d,]+ compressed "
                                             r"bytes, a ratio above 1032:1.*zip bomb"):
        nnscratch.load_model(keras_zip_file)


def test_an_encrypted_member_is_refused(keras_zip_file):
    data = bytearray(keras_zip_file.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:  # the general-purpose flag of every central-directory entry: bit 0, encrypted
        struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | 1)
        at = data.find(b"PK\x01\x02", at + 4)
    keras_zip_file.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="config.json is encrypted"):
        nnscratch.load_model(keras_zip_file)


@pytest.mark.parametrize("member, says", [("model.weights.npz", "stored as .npz or in shards"),
                                          ("assets/vocabulary.txt", "the model has assets")])
def test_weights_keras_can_store_otherwise_are_refused(keras_zip_file, member, says):
    members = _members(keras_zip_file)
    if member.endswith(".npz"):
        del members["model.weights.h5"]
    members[member] = b"x"
    _rewrite(keras_zip_file, members)
    with pytest.raises(ModelFileError, match=says):
        nnscratch.load_model(keras_zip_file)


def test_a_member_larger_than_the_limit_is_refused(keras_zip_file, monkeypatch):
    monkeypatch.setattr(keras_zip, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"config.json declares [\d,]+ bytes, more than the limit of 100"):
        nnscratch.load_model(keras_zip_file)


def test_an_unknown_layer_class_in_config_json(keras_zip_file):
    members = _members(keras_zip_file)
    config = json.loads(members["config.json"])
    config["config"]["layers"][2]["class_name"] = "MultiHeadAttention"
    members["config.json"] = json.dumps(config).encode()
    _rewrite(keras_zip_file, members)
    with pytest.raises(ModelFileError, match="m.keras: layer 2 'flat' \\(MultiHeadAttention\\): nnscratch has no "
                                             "layer like Keras' MultiHeadAttention"):
        nnscratch.load_model(keras_zip_file)


def _edit_weights(path, tmp_path, edit):
    members = _members(path)
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as f:
        edit(f)
    members["model.weights.h5"] = weights.read_bytes()
    _rewrite(path, members)


def test_a_weight_of_the_wrong_shape_in_the_archive(keras_zip_file, tmp_path):
    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((5, 3), np.float32)
    _edit_weights(keras_zip_file, tmp_path, edit)
    with pytest.raises(ModelFileError, match=r"weight 'kernel' has shape \(5, 3\) in the file but \(32, 3\)"):
        nnscratch.load_model(keras_zip_file)


def test_a_missing_weight_in_the_archive(keras_zip_file, tmp_path):
    _edit_weights(keras_zip_file, tmp_path, lambda f: f.__delitem__("layers/dense/vars/1"))
    with pytest.raises(ModelFileError, match=r"layer dense \(Dense\): the file has 1 weight\(s\)"):
        nnscratch.load_model(keras_zip_file)


def test_an_external_link_in_the_archive_weights(keras_zip_file, tmp_path):
    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
    _edit_weights(keras_zip_file, tmp_path, edit)
    with pytest.raises(ModelFileError, match=r"/layers/dense/vars/0 is an external link to '/x' in the file "
                                             r"'/etc/passwd'"):
        nnscratch.load_model(keras_zip_file)


def test_weights_that_are_not_hdf5(keras_zip_file):
    members = _members(keras_zip_file)
    members["model.weights.h5"] = b"not hdf5 at all" * 10
    _rewrite(keras_zip_file, members)
    with pytest.raises(ModelFileError, match="model.weights.h5 is not a readable HDF5 file"):
        nnscratch.load_model(keras_zip_file)

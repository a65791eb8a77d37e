"""What reading a model file guarantees beyond the HDF5 checksums: a SHA-256 per dataset, no reading
outside the file, no allocation beyond the file's size, a word about NaN weights, and the right hint
when a file cannot be opened. (The catalogue of damaged files is ``tests/test_misuse_files.py``.)"""
import hashlib
import tracemalloc
import warnings

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.io import _h5
from nnscratch.io.hdf5 import ModelFileError, load_model, load_weights
from nnscratch.layers import Dense, ReLU, Softmax


def small_model(seed=5, train=True):
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    if train:
        rng = np.random.default_rng(0)
        model.fit(rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32), epochs=1, verbose=0)
    return model


def same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.fixture
def saved(tmp_path):
    model = small_model()
    path = tmp_path / "model.h5"
    model.save(path)
    return model, path


def datasets(path):
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


# -- why a file cannot be opened ----------------------------------------------------------------------------
@pytest.mark.parametrize("damage, says", [
    (lambda data: data[:len(data) // 2], r"the file is truncated: it has \d+ bytes but its HDF5 header says \d+"),
    (lambda data: data[:8] + b"\xab" * 2000, r"not a readable HDF5 file \(.*bad superblock version"),
    (lambda data: data[:8] + b"\x07" + data[9:], "not a readable HDF5 file"),
], ids=["truncated", "signature-and-garbage", "superblock-version"])
def test_a_damaged_file_is_not_said_to_be_locked(saved, damage, says):
    """HDF5's messages about the superblock ("sblock") contain "lock"; only a real lock is called one."""
    _, path = saved
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelFileError, match=says) as info:
        load_model(path)
    assert "locking" not in str(info.value) and "another program" not in str(info.value)

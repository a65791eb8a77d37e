"""load_fashion_mnist: the Debian location by default, path= otherwise, clear errors when absent."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nnscratch.datasets import FASHION_MNIST_CLASS_NAMES, fashion_mnist, load_fashion_mnist, save_idx
from nnscratch.datasets.idx import idx_sha256


@pytest.fixture
def fashion_arrays(monkeypatch):
    """Tiny Fashion-MNIST-shaped arrays, accepted as "the original" (the published hashes are swapped)."""
    rng = np.random.default_rng(3)
    arrays = {
        "x_train": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(20) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8),
        "y_test": np.arange(10, dtype=np.uint8),
    }
    monkeypatch.setattr(fashion_mnist, "IDX_SHA256", {k: idx_sha256(v) for k, v in arrays.items()})
    return arrays


def check(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(x_test, arrays["x_test"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_reads_a_directory_given_by_path(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "fashion", fashion_arrays, gz=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the content matches the expected hashes: no warning
        check(load_fashion_mnist(path=d), fashion_arrays)


def test_other_content_loads_with_a_warning(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "fashion", dict(fashion_arrays, y_train=fashion_arrays["y_train"][::-1].copy()))
    with pytest.warns(UserWarning, match="y_train differ from the original Fashion-MNIST files") as record:
        load_fashion_mnist(path=d)
    assert record[0].filename == __file__


def test_published_hashes_are_well_formed():
    assert set(fashion_mnist.IDX_SHA256) == {"x_train", "y_train", "x_test", "y_test"}
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in fashion_mnist.IDX_SHA256.values())


def test_default_is_the_debian_package_location(tmp_path, fakes, fashion_arrays, monkeypatch):
    assert str(fashion_mnist.DEFAULT_PATH) == "/usr/share/datasets/fashion-mnist"
    d = fakes.write_idx_dir(tmp_path / "usr-share", fashion_arrays, gz=True)  # Debian ships .gz files
    monkeypatch.setattr(fashion_mnist, "DEFAULT_PATH", d)
    check(load_fashion_mnist(), fashion_arrays)


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEFAULT_PATH", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "path=" in message
    assert "not-installed" in message and "train-images-idx3-ubyte[.gz]" in message


def test_one_missing_file_is_named(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "f", fashion_arrays)
    (d / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-images-idx3-ubyte\[\.gz\];"):
        load_fashion_mnist(path=d)


def test_wrongly_shaped_files_are_refused(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "f", fashion_arrays)
    save_idx(d / "train-labels-idx1-ubyte.gz", np.arange(21, dtype=np.uint8) % 10)
    with pytest.raises(ValueError, match="20 train images but 21 train labels"):
        load_fashion_mnist(path=d)


def test_corrupt_file_is_refused(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "f", fashion_arrays)
    data = (d / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(data[:-6])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz' is a broken gzip stream"):
        load_fashion_mnist(path=d)


def test_class_names():
    assert len(FASHION_MNIST_CLASS_NAMES) == 10 == len(set(FASHION_MNIST_CLASS_NAMES))
    assert FASHION_MNIST_CLASS_NAMES[0] == "T-shirt/top" and FASHION_MNIST_CLASS_NAMES[9] == "Ankle boot"
    assert fashion_mnist.CLASS_NAMES is FASHION_MNIST_CLASS_NAMES

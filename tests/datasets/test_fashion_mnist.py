"""load_fashion_mnist: the Debian location by default, path= otherwise, clear errors when absent."""
from __future__ import annotations

import numpy as np
import pytest

from nnscratch.datasets import FASHION_MNIST_CLASS_NAMES, fashion_mnist, load_fashion_mnist, save_idx


@pytest.fixture
def fashion_arrays():
    rng = np.random.default_rng(3)
    return {
        "x_train": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(20) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8),
        "y_test": np.arange(10, dtype=np.uint8),
    }


def check(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(x_test, arrays["x_test"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_reads_a_directory_given_by_path(tmp_path, fakes, fashion_arrays):
    d = fakes.write_idx_dir(tmp_path / "fashion", fashion_arrays, gz=False)
    check(load_fashion_mnist(path=d), fashion_arrays)


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

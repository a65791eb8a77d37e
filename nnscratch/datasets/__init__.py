"""Datasets: the IDX format, MNIST and Fashion-MNIST, and the sources they are loaded from.

Example:
    >>> from nnscratch.datasets import load_mnist
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
"""
from .fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASS_NAMES
from .fashion_mnist import load_fashion_mnist
from .idx import idx_sha256, load_idx, save_idx
from .mnist import load_mnist
from .sources import DatasetUnavailableError

__all__ = [
    "DatasetUnavailableError",
    "FASHION_MNIST_CLASS_NAMES",
    "idx_sha256",
    "load_fashion_mnist",
    "load_idx",
    "load_mnist",
    "save_idx",
]

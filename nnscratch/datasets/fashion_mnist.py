"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): Zalando article images in MNIST's exact format.

60,000 training and 10,000 test images, 28 x 28 uint8, 10 classes, stored as four IDX files with
MNIST's file names. The default location is where Debian's ``dataset-fashion-mnist`` package puts
them; there is no download here (install the package, or pass ``path=``).
"""
from __future__ import annotations

import os
from pathlib import Path

from .idx import load_idx
from .mnist import IDX_NAMES, Splits, check_split, warn_if_modified

#: Where ``apt-get install dataset-fashion-mnist`` installs the four gzipped IDX files.
DEFAULT_PATH = Path("/usr/share/datasets/fashion-mnist")

#: SHA-256 of the four original uncompressed IDX files (zalandoresearch/fashion-mnist). Debian
#: re-gzipped the files, so its .gz hashes differ from the publisher's, but the content matches these.
IDX_SHA256 = {
    "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Class index -> name, as published with the dataset (zalandoresearch/fashion-mnist README).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_fashion_mnist(path: str | os.PathLike | None = None) -> Splits:
    """Load Fashion-MNIST from a directory of IDX files.

    Args:
        path: directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``; default None means
            :data:`DEFAULT_PATH` (``/usr/share/datasets/fashion-mnist``, Debian's location).

    The structure is checked (uint8 28 x 28 images, labels 0-9, matching counts); content that
    differs from the published files loads with a ``UserWarning``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` and
        ``(10000, 28, 28)``, uint8 labels ``(60000,)`` and ``(10000,)`` indexing :data:`CLASS_NAMES`.

    Raises:
        FileNotFoundError: the directory or a file is missing; the message says how to get them.
        ValueError: a file is not valid IDX or not Fashion-MNIST-shaped.

    Example:
        >>> (x_train, y_train), _ = load_fashion_mnist()  # doctest: +SKIP
        >>> x_train.shape, CLASS_NAMES[y_train[0]]  # doctest: +SKIP
        ((60000, 28, 28), 'Ankle boot')
    """
    directory = DEFAULT_PATH if path is None else Path(path).expanduser()
    files, missing = {}, []
    for key, name in IDX_NAMES.items():
        candidates = (directory / name, directory / f"{name}.gz")
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(f"{name}[.gz]")
        files[key] = found
    if missing:
        hint = (
            "install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass "
            "path= a directory holding the four IDX files from https://github.com/zalandoresearch/fashion-mnist"
        )
        raise FileNotFoundError(f"Fashion-MNIST not found: {str(directory)!r} lacks {', '.join(missing)}; {hint}")
    arrays = {key: load_idx(file) for key, file in files.items()}
    for split in ("train", "test"):
        check_split(str(directory), split, arrays[f"x_{split}"], arrays[f"y_{split}"])
    warn_if_modified("Fashion-MNIST", directory, arrays, IDX_SHA256, stacklevel=2)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])

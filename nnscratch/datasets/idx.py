"""Reader and writer for the IDX format of MNIST-style datasets (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number -- two zero bytes, a dtype code, the number of dimensions --
followed by one big-endian unsigned 32-bit size per dimension and then the values, big-endian,
C order. MNIST, Fashion-MNIST, KMNIST and EMNIST are all distributed this way, usually gzipped.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import math
import os
import stat
import sys
import zlib
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_open

#: IDX dtype code -> element dtype (big-endian where it matters).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _supported() -> str:
    return ", ".join(f"0x{code:02X} {dt.newbyteorder('=').name}" for code, dt in IDX_DTYPES.items())


#: Deflate expands data at most 1032-fold (a 258-byte match costs at least 2 bits), so a gzip file of
#: n bytes never inflates past 1032 * n: a header declaring more is refused before inflating anything.
MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20  # bytes inflated or read per call: bounds the scratch memory beside the array


@contextlib.contextmanager
def _open(path: Path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"IDX path {str(path)!r} is a directory, expected a file") from None
    with f:
        yield f


@contextlib.contextmanager
def _gzip_errors(path: Path):
    try:
        yield
    except (OSError, EOFError, zlib.error) as exc:
        # OSError covers gzip.BadGzipFile (bad header, CRC or length check); EOFError a cut stream.
        raise ValueError(
            f"IDX file {str(path)!r} is a broken gzip stream ({type(exc).__name__}: {exc}); "
            "the download was probably interrupted or corrupted -- delete the file and fetch it again"
        ) from exc


def _read_up_to(stream, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, _CHUNK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_into(stream, buffer: np.ndarray) -> int:
    """Fills the uint8 ``buffer`` from ``stream`` a chunk at a time; returns the bytes read."""
    got = 0
    while got < buffer.size:
        n = stream.readinto(buffer[got:got + _CHUNK])
        if not n:
            break
        got += n
    return got


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or raw, into a NumPy array.

    The magic number, the dtype code, the dimension sizes and the payload length are all checked,
    so a truncated or corrupted file fails here with a message naming the file and the problem
    instead of producing a wrongly shaped array later. Memory stays at the size the header declares:
    the header is checked against the file's size before anything is allocated (a gzip file against
    the most it can inflate to), and a gzip stream is inflated straight into the array, never past
    the declared size by more than a megabyte.

    Args:
        path: the file; gzip compression is detected from the content, not the name.

    Returns:
        A writable array in native byte order with the shape stored in the header, e.g.
        ``(60000, 28, 28)`` uint8 for ``train-images-idx3-ubyte`` and ``(60000,)`` uint8 for the labels.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not valid IDX (message says what was wrong and where).

    Example:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
        >>> save_idx(path, np.array([5, 0, 4], dtype=np.uint8))
        >>> load_idx(path)
        array([5, 0, 4], dtype=uint8)
    """
    path = Path(path)
    with _open(path) as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):  # a pipe or device: its size is only known once read
            data = f.read()
            return _parse(io.BytesIO(data), path, size=len(data), compressed=False)
        if f.peek(2)[:2] != _GZIP_MAGIC:
            # Sniff the gzip magic rather than trusting the suffix: browsers and some mirrors decompress
            # `.gz` files on the fly but keep the name, and people gunzip without renaming.
            return _parse(f, path, size=info.st_size, compressed=False)
        with _gzip_errors(path), gzip.GzipFile(fileobj=f, mode="rb") as stream:
            return _parse(stream, path, size=info.st_size, compressed=True)


def _parse(stream, path: Path, size: int, compressed: bool) -> np.ndarray:
    """The array in ``stream``; ``size`` is the file's size (compressed, if ``compressed``)."""
    where = f"IDX file {str(path)!r}"
    length = "inflates to" if compressed else "is"
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise ValueError(f"{where} {length} {len(magic)} bytes long, too short for the 4-byte magic number "
                         "(truncated?)")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{where} has magic number 0x{magic.hex().upper()}, expected two zero bytes first "
            "(0x0000 followed by dtype code and number of dimensions); this is not an IDX file"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{where} has unknown dtype code 0x{code:02X}; IDX defines {_supported()}")
    header_len = 4 + 4 * ndim
    sizes = _read_up_to(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(
            f"{where} declares {ndim} dimension(s) whose sizes need {header_len} header bytes, "
            f"but the file holds only {4 + len(sizes)} bytes (truncated?)"
        )
    shape = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = IDX_DTYPES[code]
    described = f"shape {shape} of {dtype.newbyteorder('=').name}"
    # Python ints: a product of four 2**16 sizes is 2**64, which int64 arithmetic wraps to 0.
    expected = math.prod(shape) * dtype.itemsize
    if math.prod(n for n in shape if n) * dtype.itemsize > sys.maxsize:  # NumPy refuses it even with a 0
        raise ValueError(f"{where} has an impossible header: {described} would take "
                         f"{math.prod(n for n in shape if n) * dtype.itemsize} bytes, more than any array can "
                         "hold; the header is corrupted")
    if not compressed and size - header_len != expected:
        actual = size - header_len
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(
            f"{where} {problem}: header says {described} ({expected} payload bytes), "
            f"but {actual} payload bytes follow the header"
        )
    if compressed and header_len + expected > MAX_DEFLATE_RATIO * size:
        raise ValueError(
            f"{where} truncated or corrupted: header says {described} ({expected} payload bytes), but a "
            f"{size}-byte gzip file inflates to at most {MAX_DEFLATE_RATIO * size} bytes"
        )
    array = np.empty(math.prod(shape), dtype=dtype)
    got = _read_into(stream, array.view(np.uint8))
    if got < expected:
        raise ValueError(
            f"{where} truncated: header says {described} ({expected} payload bytes), "
            f"but {got} payload bytes follow the header"
        )
    if compressed:
        # Reading on to the end of the stream also checks the gzip CRC and length.
        extra = len(_read_up_to(stream, _CHUNK))
        if extra:
            raise ValueError(
                f"{where} has trailing bytes: header says {described} ({expected} payload bytes), "
                f"but at least {expected + extra} payload bytes follow the header (inflating stopped there)"
            )
    if not dtype.isnative:
        # In place, so the result is native-endian (full-speed arithmetic) without a second copy.
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array.reshape(shape)


def _encode_header(array: np.ndarray) -> tuple[bytes, np.dtype]:
    """The IDX header of ``array`` and the big-endian dtype of its payload."""
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; it supports uint8, int8, int16, int32, "
            "float32 and float64 -- cast first, e.g. array.astype(np.uint8)"
        )
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got an array with {array.ndim}")
    if any(s >= 2**32 for s in array.shape):
        raise ValueError(f"IDX stores dimension sizes below 2**32, got shape {array.shape}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header, IDX_DTYPES[code]


def idx_sha256(array) -> str:
    """SHA-256 of the uncompressed IDX file :func:`save_idx` would write for ``array``.

    Datasets publish the SHA-256 of their uncompressed IDX files; this compares an array in
    memory with them without writing anything.

    Args:
        array: array-like of a dtype :func:`save_idx` accepts.

    Returns:
        The hex digest.

    Example:
        >>> import hashlib, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
        >>> save_idx(path, np.arange(3, dtype=np.uint8))
        >>> with open(path, "rb") as f:
        ...     idx_sha256(np.arange(3, dtype=np.uint8)) == hashlib.sha256(f.read()).hexdigest()
        True
    """
    array = np.asarray(array)
    header, dtype = _encode_header(array)
    digest = hashlib.sha256(header)
    digest.update(memoryview(np.ascontiguousarray(array, dtype=dtype)).cast("B"))
    return digest.hexdigest()


def save_idx(path: str | os.PathLike, array, compress: bool | None = None) -> None:
    """Write an array as an IDX file, atomically (temporary file, then ``os.replace``).

    Args:
        path: the file to write; its directory must exist.
        array: array-like of dtype uint8, int8, int16, int32, float32 or float64, any number of
            dimensions up to 255, each dimension below 2**32.
        compress: gzip the file; default None means "if ``path`` ends with ``.gz``".

    Raises:
        TypeError: the dtype has no IDX code (cast first, e.g. ``labels.astype(np.uint8)``).
        ValueError: too many dimensions or a dimension too large for the format.

    Example:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "images-idx3-ubyte")
        >>> save_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
        >>> os.path.getsize(path)  # 16-byte header + 2 * 28 * 28 bytes
        1584
    """
    array = np.asarray(array)
    header, dtype = _encode_header(array)
    payload = np.ascontiguousarray(array, dtype=dtype).tobytes()
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    with atomic_open(path) as f:
        if compress:
            # mtime=0 keeps the output byte-identical across runs, so hashes of written files are stable.
            # Level 6, not gzip's default 9: on MNIST's training images 9 takes 19 s against 1.2 s
            # for a file only 2% smaller.
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)

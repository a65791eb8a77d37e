"""Checksummed HDF5 building blocks for nnscratch files: arrays, JSON documents, string attributes, names.

Every byte of a file written with these helpers is covered by a checksum, so a flipped bit is an error
on reading, never a silently different weight:

* files use the HDF5 1.10 format (``LIBVER``), whose object headers, superblock and chunk indexes
  carry checksums (attributes live in object headers);
* arrays are chunked with the Fletcher-32 filter; arrays that cannot be chunked (0-d or empty) are
  stored *compact*, that is inside their checksummed object header;
* text is stored as fixed-length bytes (in a Fletcher-32 dataset or in an attribute), never as
  variable-length strings, whose characters sit in an unchecksummed global heap;
* every dataset also carries the SHA-256 of its contents (attribute ``sha256``), because Fletcher-32
  misses some changes: a chunk zeroed together with its checksum passes it (the checksum of zeros is
  zero), and so does a 16-bit word turned from ``0x0000`` into ``0xFFFF`` (its sums are modulo 65535).

Reading refuses what nnscratch never writes and what could reach outside the file or its size: links
other than hard links (external links open other files), external storage and virtual datasets (they
read other files), filters other than Fletcher-32 (compression can inflate a small file into gigabytes;
unknown filters load plugins), chunks larger than their dataset, declared sizes the file cannot hold,
and chunks that were never written (they would read as zeros). These checks run before any data is
read, so a hostile file costs no more memory than its own size.

Nothing here pickles: datasets hold numeric arrays or UTF-8 bytes only.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from urllib.parse import unquote

import h5py
import numpy as np

#: lowest HDF5 format the files use: 1.10 (2016) is the first with checksums on all metadata
LIBVER = ("v110", "latest")

#: the attribute holding a dataset's content digest (64 lowercase hex digits of SHA-256)
DIGEST_ATTR = "sha256"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FILTER_NAMES = {h5py.h5z.FILTER_DEFLATE: "deflate (gzip)", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                 h5py.h5z.FILTER_SZIP: "szip", h5py.h5z.FILTER_NBIT: "nbit",
                 h5py.h5z.FILTER_SCALEOFFSET: "scale-offset", 32001: "blosc", 32004: "lz4", 32015: "zstd"}
#: a chunk may exceed its dataset by this much (chunking a (5,) array as (4,) stores 8 elements)
_CHUNK_SLACK = 1 << 20


class FileContentError(ValueError):
    """A dataset or link that nnscratch refuses to read, or whose contents fail their digest.

    The message names the HDF5 object and says what was found and what nnscratch expects.
    """


def h5_name(name: str) -> str:
    """A layer or parameter name as an HDF5 link name: ``/`` and ``%`` percent-encoded, ``.``/``..`` too.

    Example:
        >>> h5_name("conv2d_1"), h5_name("encoder/dense"), h5_name(".")
        ('conv2d_1', 'encoder%2Fdense', '%2E')
    """
    escaped = name.replace("%", "%25").replace("/", "%2F")
    if escaped in (".", ".."):
        escaped = escaped.replace(".", "%2E")
    return escaped


def from_h5_name(link: str) -> str:
    """Inverse of :func:`h5_name`."""
    return unquote(link)


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's values as little-endian bytes in C order; shape and dtype are not hashed.

    This is what the ``sha256`` attribute of every dataset holds, so any program can check it.

    Example:
        >>> array_digest(np.zeros(2, np.float32)) == hashlib.sha256(bytes(8)).hexdigest()
        True
        >>> array_digest(np.arange(3, dtype=">i4")) == array_digest(np.arange(3, dtype="<i4"))
        True
    """
    array = np.asarray(array)
    little = array.dtype.newbyteorder("<") if array.dtype.byteorder in "=<>" else array.dtype
    return hashlib.sha256(np.ascontiguousarray(array, dtype=little).reshape(-1).view(np.uint8)).hexdigest()


def write_array(group: h5py.Group, name: str, array: np.ndarray) -> h5py.Dataset:
    """Stores ``array`` (numeric, any shape) under ``name`` with a checksum and its SHA-256 digest.

    Dtype and shape are kept exactly.
    """
    array = np.asarray(array, order="C")  # not ascontiguousarray, which turns a 0-d array into shape (1,)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: only numeric arrays are stored, got dtype {array.dtype}")
    if array.ndim and array.size:
        dataset = group.create_dataset(name, data=array, fletcher32=True)
    else:
        # Fletcher-32 needs chunks, and 0-d or empty arrays cannot be chunked: keep them in the header.
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple(array.shape) if array.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
        dsid = h5py.h5d.create(group.id, name.encode("utf-8"), h5py.h5t.py_create(array.dtype), space, dcpl=dcpl)
        if array.size:
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, array)
        dataset = h5py.Dataset(dsid)
    set_text(dataset, DIGEST_ATTR, array_digest(array))
    return dataset


def check_link(group: h5py.Group, name: str) -> None:
    """Refuses a member of ``group`` that is not a plain (hard) link, *without following it*.

    nnscratch writes hard links only. An external link would open another file on the machine and a
    soft link can lead to one, so neither is followed. Checking ``name in group`` never follows the
    last link either; ``group[name]`` does, so call this first.

    Raises:
        FileContentError: ``name`` is a soft, external or user-defined link.
    """
    link = name.encode("utf-8")
    kind = group.id.links.get_info(link).type
    if kind == h5py.h5l.TYPE_HARD:
        return
    where = f"{group.name.rstrip('/')}/{name}"
    if kind == h5py.h5l.TYPE_EXTERNAL:
        target = group.get(name, getlink=True)
        found = f"an external link to {target.path!r} in the file {target.filename!r}"
    elif kind == h5py.h5l.TYPE_SOFT:
        found = f"a soft link to {group.get(name, getlink=True).path!r}"
    else:
        found = f"a user-defined link (type {kind})"
    raise FileContentError(f"{where} is {found}; nnscratch files keep every object in the file itself and "
                           "never follow links, so this file was edited or not written by nnscratch")


def _check_storage(dataset: h5py.Dataset) -> None:
    """Refuses storage nnscratch never writes, and sizes the file cannot hold, before any data is read."""
    # Low-level calls and dataset.name only on failure: this runs for every array of every load.
    dsid = dataset.id
    dcpl = dsid.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise FileContentError(f"{dataset.name} is a virtual dataset (it maps data from other datasets or files); "
                               "nnscratch files store every array in the file itself, refusing to read it")
    if dcpl.get_external_count():
        files = [dcpl.get_external(i)[0].decode("utf-8", "replace") for i in range(dcpl.get_external_count())]
        raise FileContentError(f"{dataset.name} keeps its data in external file(s) {files} (HDF5 external storage); "
                               "nnscratch files store every array in the file itself, refusing to read it")
    if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise FileContentError(f"{dataset.name} has HDF5 storage layout {layout}; expected compact, contiguous or "
                               "chunked")
    for i in range(dcpl.get_nfilters()):
        code = dcpl.get_filter(i)[0]
        if code != h5py.h5z.FILTER_FLETCHER32:
            raise FileContentError(
                f"{dataset.name} is stored through the HDF5 filter "
                f"{_FILTER_NAMES.get(code, 'number ' + str(code))}; nnscratch files use only the Fletcher-32 checksum "
                "filter (compression could inflate a small file into gigabytes, other filters load plugins), "
                "refusing to read it")
    shape = dataset.shape
    if shape is None:
        raise FileContentError(f"{dataset.name} has no shape (an HDF5 null dataspace); nnscratch never writes one")
    itemsize = dataset.dtype.itemsize
    nbytes = math.prod(shape) * itemsize
    file_size = h5py.h5i.get_file_id(dsid).get_filesize()
    if nbytes > file_size:
        raise FileContentError(f"{dataset.name} declares shape {shape} of {dataset.dtype} ({nbytes} bytes), but the "
                               f"whole file is {file_size} bytes; the file is truncated or its header was altered")
    if layout == h5py.h5d.CONTIGUOUS and nbytes and dsid.get_storage_size() < nbytes:
        raise FileContentError(f"{dataset.name}: {dsid.get_storage_size()} of its {nbytes} bytes are stored; its "
                               "data was never written (it would read as zeros) or the file is damaged")
    if layout == h5py.h5d.CHUNKED:
        chunks = dcpl.get_chunk()
        chunk_bytes = math.prod(chunks) * itemsize
        if chunk_bytes > nbytes + _CHUNK_SLACK:
            raise FileContentError(f"{dataset.name} has chunks of shape {chunks} ({chunk_bytes} bytes) for a dataset "
                                   f"of shape {shape} ({nbytes} bytes); nnscratch never writes chunks larger than "
                                   "their dataset, refusing to read it")
        # HDF5 stores whole chunks, edge chunks included, and Fletcher-32 adds 4 bytes to each: fewer
        # bytes than that means chunks that were never written, which would read as zeros. (Counting
        # them with get_num_chunks walks the chunk index and costs ten times more.)
        count = math.prod(-(-n // c) for n, c in zip(shape, chunks))
        needed = count * (chunk_bytes + 4 * dcpl.get_nfilters())
        stored = dsid.get_storage_size()
        if stored < needed:
            raise FileContentError(f"{dataset.name}: {stored} of its {needed} bytes of chunks are stored; chunks were "
                                   "never written (they would read as zeros) or the file is damaged")


def _recorded_digest(dataset: h5py.Dataset) -> str | None:
    """The ``sha256`` attribute, or None in files written before it existed."""
    key = DIGEST_ATTR.encode()
    if not h5py.h5a.exists(dataset.id, key):
        return None
    attr = h5py.h5a.open(dataset.id, key)
    kind = attr.get_type()
    # The fast path for what write_array writes, in low-level calls (attrs[...] costs 4x more on every
    # array of every load). Checked in full first: HDF5 converts whatever is stored into the buffer's
    # type, so an array of strings read into one string would write past the buffer.
    if (attr.get_space().get_simple_extent_type() == h5py.h5s.SCALAR and kind.get_class() == h5py.h5t.STRING
            and not kind.is_variable_str() and kind.get_size() == 64):
        value = np.empty((), "S64")
        attr.read(value)
        text = bytes(value[()]).decode("ascii", "replace")
    else:
        text = get_text(dataset, DIGEST_ATTR)  # a TypeError naming the attribute when it is no string
    if not _HEX64.fullmatch(text):
        raise FileContentError(f"attribute {DIGEST_ATTR!r} of {dataset.name} should be 64 lowercase hex digits (a "
                               f"SHA-256), found {text!r:.80}")
    return text


def _read_verified(dataset: h5py.Dataset) -> np.ndarray:
    """The dataset's data, checked against its ``sha256`` attribute when it has one."""
    _check_storage(dataset)
    recorded = _recorded_digest(dataset)
    array = np.asarray(dataset[()])
    # Files written before the digest existed have none: their data is checked by Fletcher-32 only.
    if recorded is not None:
        actual = array_digest(array)
        if actual != recorded:
            raise FileContentError(f"{dataset.name}: SHA-256 content digest mismatch, the stored bytes have changed "
                                   f"(the data read hashes to {actual[:16]}..., the file recorded "
                                   f"{recorded[:16]}...); the file is corrupted or was edited")
    return array


def read_array(dataset) -> np.ndarray:
    """The array stored by :func:`write_array`, after refusing unsafe storage and checking the digest.

    Check ``dataset.shape`` and ``dataset.dtype`` against what you expect *before* calling this: they
    cost nothing, while reading costs the declared size. Whatever the caller checks, no more than the
    file's own size is ever allocated. Read files opened read-only (or flushed): chunks still in
    HDF5's cache of a file being written count as never written.

    Raises:
        TypeError: not a dataset of numbers.
        FileContentError: unsafe or impossible storage (see the module docstring), or a digest mismatch.
        OSError: HDF5 found a checksum error or could not read the data.

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> with h5py.File(buffer, "w", libver=LIBVER) as f:
        ...     _ = write_array(f, "w", np.arange(3.0))
        >>> with h5py.File(buffer, "r") as f:
        ...     read_array(f["w"])
        array([0., 1., 2.])
    """
    if not isinstance(dataset, h5py.Dataset):
        raise TypeError(f"{dataset.name} should be a dataset, found a {type(dataset).__name__}")
    if dataset.dtype.kind not in "biuf":
        raise TypeError(f"{dataset.name} should hold numbers, found dtype {dataset.dtype}")
    return _read_verified(dataset)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} ({_show(value)}) is not a number, string, list or dict")


def to_json(value) -> str:
    """JSON text of ``value``; NumPy numbers and arrays become plain numbers and lists.

    Floats are written with ``repr`` precision, so they read back bit for bit; NaN and infinities use
    JavaScript's ``NaN``/``Infinity`` spelling (Python's ``json`` reads them back).
    """
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def write_json(group: h5py.Group, name: str, text: str) -> h5py.Dataset:
    """Stores JSON ``text`` (from :func:`to_json`) as UTF-8 in a one-element, checksummed byte-string dataset.

    Read it with h5py as ``json.loads(f[name][0])``.
    """
    encoded = text.encode("utf-8")
    data = np.array([encoded], dtype=f"S{len(encoded)}")
    dataset = group.create_dataset(name, data=data, chunks=(1,), fletcher32=True)
    set_text(dataset, DIGEST_ATTR, array_digest(data))
    return dataset


def read_json(dataset):
    """The value stored by :func:`write_json`."""
    if not isinstance(dataset, h5py.Dataset) or dataset.shape != (1,) or dataset.dtype.kind != "S":
        raise TypeError(f"{dataset.name} should be a one-element byte-string dataset holding JSON, found "
                        f"{type(dataset).__name__} of shape {getattr(dataset, 'shape', None)} and dtype "
                        f"{getattr(dataset, 'dtype', None)}")
    data = _read_verified(dataset)[0]
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        problem = "is nested too deeply" if isinstance(e, RecursionError) else f"does not parse ({e})"
        raise FileContentError(f"{dataset.name} should hold JSON text, but it {problem}; the file was edited or "
                               "written by another program") from e


def set_text(obj, name: str, text: str) -> None:
    """Sets a fixed-length UTF-8 string attribute (checksummed with its object header)."""
    obj.attrs[name] = np.bytes_(text.encode("utf-8"))


def get_text(obj, name: str) -> str:
    """A string attribute set by :func:`set_text` (also accepts h5py's variable-length strings)."""
    value = obj.attrs[name]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"attribute {name!r} of {obj.name} should be a string, found {type(value).__name__} "
                    f"({_show(value)})")


def _show(value) -> str:
    """A short repr of a value for a message, NumPy types shown as plain Python values."""
    return repr(value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value)[:80]


def _scalar(obj, name: str):
    """Attribute ``name``, with a 0-d array (how some writers store scalars) unwrapped to its value."""
    value = obj.attrs[name]
    return value[()] if isinstance(value, np.ndarray) and value.shape == () else value


def get_int(obj, name: str) -> int:
    """An integer attribute, refusing floats, booleans and arrays."""
    value = _scalar(obj, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"attribute {name!r} of {obj.name} should be an integer, found {type(value).__name__} "
                        f"({_show(value)})")
    return int(value)


def get_float(obj, name: str) -> float:
    """A real-number attribute."""
    value = _scalar(obj, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"attribute {name!r} of {obj.name} should be a number, found {type(value).__name__} "
                        f"({_show(value)})")
    return float(value)


def get_bool(obj, name: str) -> bool:
    """A boolean attribute (h5py stores ``np.bool_`` as an enum of 0/1)."""
    value = _scalar(obj, name)
    if not isinstance(value, (bool, np.bool_, np.integer)) or int(value) not in (0, 1):
        raise TypeError(f"attribute {name!r} of {obj.name} should be a boolean, found {type(value).__name__} "
                        f"({_show(value)})")
    return bool(value)

"""The IDX reader/writer: round trips, and a clear ValueError for every way a file can be broken."""
from __future__ import annotations

import doctest
import gzip
import hashlib
import os
import stat
import tracemalloc
import zlib

import numpy as np
import pytest

from nnscratch.datasets import idx, load_idx, save_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def header(code, shape):
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


# ------------------------------------------------------------------ valid files

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype_raw_and_gzip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    save_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = load_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_bytes_on_disk_follow_the_format(tmp_path):
    """Checked against a hand-built file, so a reader and writer that agree on a wrong layout fail."""
    path = tmp_path / "x"
    save_idx(path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    expected = header(0x0B, (2, 3)) + np.array([1, 2, 3, 4, 5, 6], dtype=">i2").tobytes()
    assert path.read_bytes() == expected


def test_reads_a_hand_built_big_endian_float_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(header(0x0D, (2,)) + np.array([1.5, -2.25], dtype=">f4").tobytes())
    np.testing.assert_array_equal(load_idx(path), np.array([1.5, -2.25], dtype=np.float32))


def test_gzip_is_detected_from_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    gz_named_plain = tmp_path / "labels"
    save_idx(gz_named_plain, array, compress=True)
    plain_named_gz = tmp_path / "labels.gz"
    save_idx(plain_named_gz, array, compress=False)
    np.testing.assert_array_equal(load_idx(gz_named_plain), array)
    np.testing.assert_array_equal(load_idx(plain_named_gz), array)


def test_loaded_array_is_writable_and_owns_its_data(tmp_path):
    save_idx(tmp_path / "a", np.zeros((2, 2), dtype=np.uint8))
    array = load_idx(tmp_path / "a")
    array[0, 0] = 7  # would raise on a read-only frombuffer view
    assert array[0, 0] == 7


def test_writer_accepts_non_contiguous_and_big_endian_input(tmp_path):
    base = np.arange(24, dtype=">i4").reshape(4, 6)
    view = base[:, ::2]
    save_idx(tmp_path / "v", view)
    np.testing.assert_array_equal(load_idx(tmp_path / "v"), view)


def test_zero_size_and_zero_dimensional_arrays(tmp_path):
    save_idx(tmp_path / "empty", np.zeros((0, 28, 28), dtype=np.uint8))
    assert load_idx(tmp_path / "empty").shape == (0, 28, 28)
    save_idx(tmp_path / "scalar", np.array(3.5))
    assert load_idx(tmp_path / "scalar") == 3.5


def test_gzip_output_is_deterministic(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    save_idx(tmp_path / "a.gz", array)
    save_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


# ------------------------------------------------------------------ broken files

def check_error(path, *fragments):
    with pytest.raises(ValueError) as info:
        load_idx(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_payload(tmp_path, compress):
    data = header(0x08, (3, 2)) + bytes(5)
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(data) if compress else data)
    check_error(path, "truncated", "(3, 2)", "6 payload bytes", "5 payload bytes")


def test_trailing_bytes(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(header(0x08, (2,)) + bytes(3))
    check_error(path, "trailing", "2 payload bytes", "3 payload bytes")


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    check_error(path, "magic number 0x504B0304", "not an IDX file")


@pytest.mark.parametrize("code", [0x00, 0x0A, 0x0F, 0xFF])
def test_unknown_dtype_code(tmp_path, code):
    path = tmp_path / "d"
    path.write_bytes(header(code, (1,)) + bytes(8))
    check_error(path, f"dtype code 0x{code:02X}", "0x08 uint8")


def test_header_shorter_than_its_dimensions(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(bytes([0, 0, 8, 3]) + np.asarray([60000], dtype=">u4").tobytes())
    check_error(path, "3 dimension(s)", "16 header bytes", "only 8 bytes")


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_file_too_short_for_the_magic_number(tmp_path, content):
    path = tmp_path / "s"
    path.write_bytes(content)
    check_error(path, "too short")


def test_payload_of_wider_dtype_checked_in_bytes(tmp_path):
    # int32 with 3 elements needs 12 bytes; 3 bytes (the element count) must not pass.
    path = tmp_path / "w"
    path.write_bytes(header(0x0C, (3,)) + bytes(3))
    check_error(path, "truncated", "12 payload bytes")


def test_cut_gzip_stream(tmp_path):
    path = tmp_path / "c.gz"
    save_idx(path, np.arange(5000, dtype=np.int32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    check_error(path, "broken gzip stream")


def test_corrupted_gzip_stream(tmp_path):
    path = tmp_path / "c.gz"
    save_idx(path, np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8))
    data = bytearray(path.read_bytes())
    for i in range(30, 60):  # inside the deflate data, past the 10-byte gzip header
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    check_error(path, "broken gzip stream")


def test_gzip_crc_mismatch(tmp_path):
    path = tmp_path / "c.gz"
    save_idx(path, np.arange(100, dtype=np.uint8))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path.write_bytes(bytes(data))
    check_error(path, "broken gzip stream", "CRC")


def gzip_of(*parts, level=9):
    """A gzip stream of ``parts`` written one at a time (so a large zero payload costs no memory here)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return b"".join([compressor.compress(part) for part in parts] + [compressor.flush()])


def peak_memory_of(function):
    tracemalloc.start()
    try:
        function()
    except ValueError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_dimension_sizes_multiply_without_wrapping_around(tmp_path):
    # 2**16 to the 4th is 2**64, which int64 arithmetic wraps to 0: with no payload that used to pass the
    # length check and end in NumPy's reshape error.
    path = tmp_path / "w"
    path.write_bytes(header(0x08, (2**16,) * 4))
    check_error(path, "impossible header", "(65536, 65536, 65536, 65536)", "18446744073709551616 bytes")


def test_a_zero_dimension_beside_impossible_ones(tmp_path):
    path = tmp_path / "z"
    path.write_bytes(header(0x0E, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)))
    check_error(path, "impossible header", "more than any array can hold")


def test_gzip_header_declaring_more_than_the_file_can_inflate_to(tmp_path):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip_of(header(0x08, (60000, 28, 28)), bytes(100)))
    message = check_error(path, "(60000, 28, 28)", "47040000 payload bytes",
                          f"a {path.stat().st_size}-byte gzip file inflates to at most")
    assert "truncated" in message


def test_gzip_bomb_is_never_inflated_beyond_the_declared_size(tmp_path):
    """64 MiB of zeros (65 KB compressed) behind a header declaring 7840 bytes: inflating stops at the
    header's size plus one read, instead of inflating all of it before comparing."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip_of(header(0x08, (10, 28, 28)), *[bytes(2**20)] * 64))
    check_error(path, "trailing bytes", "7840 payload bytes", "at least")
    assert peak_memory_of(lambda: load_idx(path)) < 4 * 2**20


@pytest.mark.parametrize("compress", [False, True])
def test_memory_is_the_array_plus_a_bounded_buffer(tmp_path, compress):
    array = np.random.default_rng(0).integers(0, 255, (2000, 28, 28), dtype=np.int32)  # 6 MiB
    path = tmp_path / ("a.gz" if compress else "a")
    save_idx(path, array, compress=compress)  # big-endian on disk: swapped in place, not copied
    assert peak_memory_of(lambda: load_idx(path)) < array.nbytes + 2 * 2**20  # it was twice the array
    np.testing.assert_array_equal(load_idx(path), array)


def test_gzip_trailing_bytes_are_found_without_inflating_them_all(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip_of(header(0x08, (2,)), bytes(5)))
    check_error(path, "trailing bytes", "2 payload bytes", "at least 5 payload bytes")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        load_idx(tmp_path / "nothing-here")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_idx(tmp_path)


# ------------------------------------------------------------------ the writer

@pytest.mark.parametrize("dtype", DTYPES)
def test_idx_sha256_is_the_hash_of_the_written_file(tmp_path, dtype):
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)[:, ::2]  # non-contiguous on purpose
    save_idx(tmp_path / "a", array)
    assert idx.idx_sha256(array) == hashlib.sha256((tmp_path / "a").read_bytes()).hexdigest()
    assert idx.idx_sha256(array) != idx.idx_sha256(array.reshape(-1))  # the header counts



@pytest.mark.parametrize("dtype", ["int64", "uint16", "bool", "complex64", "float16"])
def test_writer_refuses_dtypes_without_an_idx_code(tmp_path, dtype):
    with pytest.raises(TypeError, match=f"IDX cannot store dtype {dtype}.*astype"):
        save_idx(tmp_path / "x", np.zeros(3, dtype=dtype))
    assert not list(tmp_path.iterdir())


def test_writer_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "a.gz"
    save_idx(path, np.arange(3, dtype=np.uint8))
    before = path.read_bytes()

    def broken_write(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(gzip.GzipFile, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_idx(path, np.arange(50, dtype=np.uint8))
    assert path.read_bytes() == before  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]  # no temporary left behind


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_idx(tmp_path / "p", np.zeros(1, dtype=np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o644


def test_docstring_examples_run():
    for module in (idx,):  # the atomic writer's examples run with nnscratch.io's doctests
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__

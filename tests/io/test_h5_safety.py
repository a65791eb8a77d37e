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


# -- the content digest ---------------------------------------------------------------------------------
def test_every_dataset_records_the_sha256_of_its_little_endian_bytes(saved):
    _, path = saved
    names = datasets(path)
    assert {"model_config", "history", "weights/dense_1/kernel", "optimizer/slots/dense_2/bias/v"} <= set(names)
    with h5py.File(path, "r") as f:
        for name in names:
            data = np.asarray(f[name][()])
            little = data.astype(data.dtype.newbyteorder("<")) if data.dtype.byteorder in "=<>" else data
            assert f[name].attrs["sha256"] == hashlib.sha256(little.tobytes()).hexdigest().encode(), name


def _zero_first_chunk(path, name):
    """Zeroes a dataset's first chunk *and* its Fletcher-32 checksum, which then still matches."""
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[info.byte_offset:info.byte_offset + info.size] = bytes(info.size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["weights/dense_1/kernel", "weights/dense_2/bias", "optimizer/slots/dense_1/kernel/v",
                                  "model_config", "training_config", "history"])
def test_a_chunk_zeroed_together_with_its_checksum_is_detected(saved, name):
    _, path = saved
    _zero_first_chunk(path, name)
    with pytest.raises(ModelFileError, match=rf"{path}: /{name}: SHA-256 content digest mismatch, the stored bytes "
                                             "have changed"):
        load_model(path)


def test_zeros_turned_into_ffff_pass_fletcher32_but_not_the_digest(tmp_path):
    """Fletcher-32 sums 16-bit words modulo 65535, where 0xFFFF equals 0x0000 once the sums are nonzero."""
    model = small_model(train=False)
    model.layers[2].params["bias"][:] = [1, 0, 0]
    path = tmp_path / "model.h5"
    model.save(path)
    with h5py.File(path, "r") as f:
        offset = f["weights/dense_2/bias"].id.get_chunk_info(0).byte_offset + 10  # high half of bias[2]
    data = bytearray(path.read_bytes())
    assert data[offset:offset + 2] == b"\0\0"
    data[offset:offset + 2] = b"\xff\xff"
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as f:  # HDF5 itself reads the changed value without complaint
        assert np.isnan(f["weights/dense_2/bias"][2])
    with pytest.raises(ModelFileError, match="/weights/dense_2/bias: SHA-256 content digest mismatch"):
        load_model(path)


def test_files_written_before_the_digest_existed_still_load(saved):
    model, path = saved
    with h5py.File(path, "r+") as f:
        for name in datasets(path):
            del f[name].attrs["sha256"]
    assert same_weights(load_model(path), model)


@pytest.mark.parametrize("value, found", [
    (np.bytes_(b"abc"), "found 'abc'"), (np.int64(7), "should be a string"), (np.bytes_(b"A" * 64), "found 'AAAA"),
    ("0" * 64, None),  # a variable-length string holding a valid digest of other data
    (np.array([b"01234567"] * 8), "should be a string"),  # 64 bytes too, but eight strings: must not be read as one
    (np.array([b"0" * 64] * 2), "should be a string"),  # two strings of 64 bytes: neither is read as the digest
], ids=["short", "int", "upper-case", "vlen", "string-array", "array-of-64-byte-strings"])
def test_a_digest_attribute_that_is_not_64_hex_digits(saved, value, found):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f["weights/dense_1/kernel"].attrs["sha256"] = value
    message = (rf"{path}: .*'sha256' of /weights/dense_1/kernel .*{found}" if found else
               rf"{path}: /weights/dense_1/kernel: SHA-256 content digest mismatch")
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


# -- nothing read from outside the file, nothing allocated beyond it ---------------------------------------
def _replace(path, name, create):
    with h5py.File(path, "r+") as f:
        del f[name]
        create(f, name)


def test_external_storage_external_links_and_virtual_datasets_are_refused(saved, tmp_path):
    _, path = saved
    secret = tmp_path / "secret.bin"
    np.arange(32, dtype=np.float32).tofile(secret)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["k"] = np.full((4, 8), 7, np.float32)
    layout = h5py.VirtualLayout(shape=(4, 8), dtype="f4")
    layout[...] = h5py.VirtualSource(str(other), "k", shape=(4, 8))
    makers = {
        "keeps its data in external file": lambda f, n: f.create_dataset(n, (4, 8), "f4",
                                                                          external=[(str(secret), 0, 128)]),
        "is an external link to 'k' in the file": lambda f, n: f.__setitem__(n, h5py.ExternalLink(str(other), "k")),
        "is a virtual dataset": lambda f, n: f.create_virtual_dataset(n, layout),
        "is a soft link to '/weights/dense_1/bias'": lambda f, n: f.__setitem__(n, h5py.SoftLink("/weights/dense_1/bias")),
    }
    original = path.read_bytes()
    for what, make in makers.items():
        path.write_bytes(original)
        _replace(path, "weights/dense_1/kernel", make)
        with pytest.raises(ModelFileError, match=rf"{path}: /weights/dense_1/kernel {what}"):
            load_model(path)


def test_an_external_link_is_not_even_opened(saved, tmp_path):
    """The link's target is a file that cannot be opened at all: refusing must not try."""
    _, path = saved
    fifo = tmp_path / "fifo"
    import os
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(fifo)  # opening a FIFO for reading blocks until a writer comes: a hang if HDF5 tried
    with h5py.File(path, "r+") as f:
        del f["weights"]
        f["weights"] = h5py.ExternalLink(str(fifo), "/weights")
    with pytest.raises(ModelFileError, match=r"/weights is an external link"):
        load_model(path)


@pytest.mark.parametrize("where", ["weights/dense_1/kernel", "optimizer/slots/dense_1/kernel/m"])
def test_a_huge_declared_dataset_is_refused_before_reading_it(saved, where):
    _, path = saved
    _replace(path, where, lambda f, n: f.create_dataset(n, (10**6, 10**6), "f4", chunks=(1000, 1000),
                                                       fletcher32=True))
    tracemalloc.start()
    try:
        # both shapes named: the file's and the model's, in either order (a weight is refused when the layer
        # declares it, an optimizer slot when it is compared with its weight)
        with pytest.raises(ModelFileError, match=r"\(1000000, 1000000\) .*\(4, 8\)|\(4, 8\).*\(1000000, 1000000\)"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # before: a 3.6 TiB allocation (MemoryError)


def test_read_array_bounds_the_allocation_by_the_file_size_whatever_the_caller_checked(tmp_path):
    path = tmp_path / "h.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("huge", (10**5, 10**5), "f8", chunks=(100, 100))
        f.create_dataset("holes", (6, 6), "f8", chunks=(3, 3))
        f["holes"].id.write_direct_chunk((0, 0), np.ones((3, 3)).tobytes())  # 1 chunk of 4 written
        f.create_dataset("whole", data=np.ones((6, 6)), chunks=(3, 3))
        f.create_dataset("gzip", data=np.zeros((100, 100)), compression="gzip")
        f.create_dataset("big_chunks", (4,), "f4", maxshape=(None,), chunks=(2**20,))
        f.create_dataset("unwritten", (1000,), "f8")
    cases = {"huge": r"declares shape \(100000, 100000\) of float64 \(80000000000 bytes\), but the whole file is",
             "holes": r"72 of its 288 bytes of chunks are stored; chunks were never written",
             "gzip": r"HDF5 filter deflate \(gzip\); nnscratch files use only the Fletcher-32",
             "big_chunks": r"chunks of shape \(1048576,\) \(4194304 bytes\) for a dataset of shape \(4,\)",
             "unwritten": r"0 of its 8000 bytes are stored; its data was never written"}
    with h5py.File(path, "r") as f:
        for name, message in cases.items():
            with pytest.raises(_h5.FileContentError, match=rf"^/{name}\b.*{message}"):
                _h5.read_array(f[name])
        np.testing.assert_array_equal(_h5.read_array(f["whole"]), np.ones((6, 6)))


def test_a_chunk_that_was_never_written_is_not_read_as_zeros(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:  # a kernel whose only chunk is missing, and no digest
        del f["weights/dense_1/kernel"]
        f.create_dataset("weights/dense_1/kernel", (4, 8), "f4", chunks=(4, 8), fletcher32=True)
    with pytest.raises(ModelFileError, match=r"/weights/dense_1/kernel: 0 of its 132 bytes of chunks are stored"):
        load_model(path)


# -- non-finite weights ------------------------------------------------------------------------------------
def test_nan_and_infinite_weights_load_with_a_warning_naming_layer_weight_and_count(tmp_path):
    model = small_model()
    model.layers[2].params["kernel"][0, :2] = np.nan
    model.layers[2].params["bias"][1] = -np.inf
    path = tmp_path / "diverged.h5"
    model.save(path)
    with pytest.warns(RuntimeWarning) as caught:
        loaded = load_model(path)
    messages = [str(w.message) for w in caught]
    assert any("layer dense_2 (Dense): weight 'kernel' has 2 non-finite value(s) (NaN or infinity) out of 24" in m
               for m in messages), messages
    assert any("weight 'bias' has 1 non-finite value(s)" in m for m in messages), messages
    assert all(w.filename == __file__ for w in caught)  # points at the caller's line, not at nnscratch
    assert np.isnan(loaded.layers[2].params["kernel"][0, 0])  # loaded as saved: a warning, not a refusal
    fresh = small_model(seed=1)
    with pytest.warns(RuntimeWarning) as caught:
        load_weights(fresh, path)
    assert any("weight 'kernel' has 2 non-finite" in str(w.message) for w in caught)
    assert all(w.filename == __file__ for w in caught)


def test_finite_weights_load_without_a_warning(saved):
    _, path = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path)


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


# -- found by mutation testing (docs/mutation-testing.md): the helpers' refusals, word for word -------------
def test_a_soft_link_is_refused_naming_where_it_points(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f["weights/dense_1/kernel"]
        f["weights/dense_1/kernel"] = h5py.SoftLink("/weights/dense_2/kernel")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (f"{path}: /weights/dense_1/kernel is a soft link to '/weights/dense_2/kernel'; nnscratch "
                               "files keep every object in the file itself and never follow links, so this file was "
                               "edited or not written by nnscratch")


def test_read_array_and_read_json_refuse_what_they_cannot_read_by_name_type_shape_and_dtype(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        group = f.create_group("g")
        f["text"] = np.array([b"abc", b"de"])
        with pytest.raises(TypeError) as info:
            _h5.read_array(group)
        assert str(info.value) == "/g should be a dataset, found a Group"
        with pytest.raises(TypeError) as info:
            _h5.read_array(f["text"])
        assert str(info.value) == "/text should hold numbers, found dtype |S3"
        with pytest.raises(TypeError) as info:
            _h5.read_json(group)
        assert str(info.value) == ("/g should be a one-element byte-string dataset holding JSON, found Group of shape "
                                   "None and dtype None")
        with pytest.raises(TypeError) as info:
            _h5.read_json(f["text"])
        assert str(info.value) == ("/text should be a one-element byte-string dataset holding JSON, found Dataset of "
                                   "shape (2,) and dtype |S3")


def test_to_json_writes_sets_as_lists_and_names_what_it_cannot_write():
    assert _h5.to_json({"a": {3}, "b": frozenset(), "c": (1, 2)}) == '{"a": [3], "b": [], "c": [1, 2]}'
    with pytest.raises(TypeError) as info:
        _h5.to_json({"f": open})
    assert str(info.value) == ("builtin_function_or_method (<built-in function open>) is not a number, string, list "
                               "or dict")


@pytest.mark.parametrize("getter, value, says", [
    (_h5.get_int, 1.5, "should be an integer, found float64 (1.5)"),
    (_h5.get_int, True, "should be an integer, found bool (True)"),
    (_h5.get_float, np.bytes_(b"x"), "should be a number, found bytes_ (b'x')"),
    (_h5.get_float, True, "should be a number, found bool (True)"),
    (_h5.get_bool, 5, "should be a boolean, found int64 (5)"),
    (_h5.get_bool, 0.5, "should be a boolean, found float64 (0.5)"),
    (_h5.get_text, np.arange(40), "should be a string, found ndarray (" + repr(list(range(40)))[:80] + ")"),
])
def test_attribute_getters_refuse_other_types_showing_the_value_cut_to_80_characters(tmp_path, getter, value, says):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["a"] = value
        with pytest.raises(TypeError) as info:
            getter(f, "a")
        assert str(info.value) == f"attribute 'a' of / {says}"


@pytest.mark.parametrize("array", [np.float32(2.5), np.zeros((0, 3)), np.arange(6, dtype=np.int16).reshape(2, 3),
                                   np.array([True, False])], ids=["0-d", "empty", "2-d", "bool"])
def test_write_array_keeps_shape_dtype_and_values_in_checksummed_storage(tmp_path, array):
    # Fletcher-32 needs chunks, which 0-d and empty arrays cannot have: those live in their (checksummed) header
    array = np.asarray(array)
    with h5py.File(tmp_path / "a.h5", "w", libver=_h5.LIBVER) as f:
        _h5.write_array(f, "a", array)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        dataset = f["a"]
        back = _h5.read_array(dataset)
        plist = dataset.id.get_create_plist()
        layout = plist.get_layout()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        digest = bytes(dataset.attrs["sha256"]).decode()
    assert (back.shape, back.dtype) == (array.shape, array.dtype) and np.array_equal(back, array)
    assert digest == _h5.array_digest(array)
    if array.ndim and array.size:
        assert (layout, filters) == (h5py.h5d.CHUNKED, [h5py.h5z.FILTER_FLETCHER32])
    else:
        assert (layout, filters) == (h5py.h5d.COMPACT, [])


def test_write_array_refuses_what_is_not_numbers_by_name_and_dtype(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        with pytest.raises(TypeError) as info:
            _h5.write_array(f, "names", np.array(["a", "bc"]))
        assert str(info.value) == "names: only numeric arrays are stored, got dtype <U2"
        assert "names" not in f


def test_each_storage_refusal_says_what_was_found_word_for_word(tmp_path):
    path = tmp_path / "s.h5"
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["k"] = np.zeros(4)
    layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
    layout[...] = h5py.VirtualSource(str(other), "k", shape=(4,))
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("virtual", layout)
        f.create_dataset("external", (4,), "f8", external=[(b"\xff.bin", 0, 32)])
        f.create_dataset("lzf", data=np.zeros(100), compression="lzf")
        f.create_dataset("gzip", data=np.zeros(100), compression="gzip")
        f.create_dataset("null", data=h5py.Empty("f8"))
        f.create_dataset("odd", (5,), "f8", chunks=(2,))
        f["odd"].id.write_direct_chunk((0,), np.ones(2).tobytes())  # 1 chunk of 3 written
    stored = " nnscratch files store every array in the file itself, refusing to read it"
    filters = ("; nnscratch files use only the Fletcher-32 checksum filter (compression could inflate a small file into "
               "gigabytes, other filters load plugins), refusing to read it")
    cases = {
        "virtual": "/virtual is a virtual dataset (it maps data from other datasets or files);" + stored,
        "external": "/external keeps its data in external file(s) ['\ufffd.bin'] (HDF5 external storage);" + stored,
        "lzf": "/lzf is stored through the HDF5 filter number 32000" + filters,
        "gzip": "/gzip is stored through the HDF5 filter deflate (gzip)" + filters,
        "null": "/null has no shape (an HDF5 null dataspace); nnscratch never writes one",
        "odd": "/odd: 16 of its 48 bytes of chunks are stored; chunks were never written (they would read as zeros) or "
               "the file is damaged",
    }
    with h5py.File(path, "r") as f:
        for name, message in cases.items():
            with pytest.raises(_h5.FileContentError) as info:
                _h5.read_array(f[name])
            assert str(info.value) == message


def test_chunks_up_to_a_mebibyte_larger_than_their_dataset_are_read(tmp_path):
    # the bound is inclusive: 16 bytes of data in one chunk of 16 bytes + 1 MiB
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("a", data=np.arange(4, dtype=np.float32), maxshape=(None,), chunks=(4 + 2**18,))
        f.create_dataset("b", data=np.arange(4, dtype=np.float32), maxshape=(None,), chunks=(5 + 2**18,))
    with h5py.File(tmp_path / "c.h5", "r") as f:
        np.testing.assert_array_equal(_h5.read_array(f["a"]), np.arange(4, dtype=np.float32))
        with pytest.raises(_h5.FileContentError) as info:
            _h5.read_array(f["b"])
    assert str(info.value) == ("/b has chunks of shape (262149,) (1048596 bytes) for a dataset of shape (4,) (16 bytes); "
                               "nnscratch never writes chunks larger than their dataset, refusing to read it")



def test_a_digest_of_65_characters_or_of_non_ascii_bytes_is_refused_word_for_word(saved):
    _, path = saved
    name = "weights/dense_1/kernel"
    with h5py.File(path, "r") as f:
        digest = bytes(f[name].attrs["sha256"])
    start = f"{path}: attribute 'sha256' of /{name} should be 64 lowercase hex digits (a SHA-256), found "
    for value, text in [(digest + b"0", (digest + b"0").decode()), (b"\xff" * 64, "\ufffd" * 64)]:
        with h5py.File(path, "r+") as f:
            f[name].attrs["sha256"] = np.bytes_(value)
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        assert str(info.value) == start + f"{text!r:.80}"


def test_a_digest_mismatch_shows_the_first_16_digits_of_both(saved):
    _, path = saved
    name = "weights/dense_1/kernel"
    with h5py.File(path, "r+") as f:
        actual = bytes(f[name].attrs["sha256"]).decode()
        f[name].attrs["sha256"] = np.bytes_(b"0123456789abcdef" * 4)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (f"{path}: /{name}: SHA-256 content digest mismatch, the stored bytes have changed (the "
                               f"data read hashes to {actual[:16]}..., the file recorded 0123456789abcdef...); the "
                               "file is corrupted or was edited")


@pytest.mark.parametrize("dtype", [">f8", ">i4", "<f4", "u1"])
def test_the_digest_is_of_the_little_endian_bytes_whatever_the_byte_order_in_memory(tmp_path, dtype):
    array = np.arange(6, dtype=dtype).reshape(2, 3)
    expected = hashlib.sha256(array.astype(np.dtype(dtype).newbyteorder("<")).tobytes()).hexdigest()
    assert _h5.array_digest(array) == expected
    with h5py.File(tmp_path / "a.h5", "w", libver=_h5.LIBVER) as f:
        _h5.write_array(f, "a", array)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert bytes(f["a"].attrs["sha256"]).decode() == expected
        np.testing.assert_array_equal(_h5.read_array(f["a"]), array)

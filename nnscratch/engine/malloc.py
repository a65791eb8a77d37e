"""Keeps freed memory in the process instead of handing it back to the OS after every batch (glibc only).

Training and inference free and reallocate the same megabyte-sized activations on every batch. glibc's
``free`` returns the top of its heap to the OS once more than ``M_TRIM_THRESHOLD`` bytes lie free there;
that threshold starts at twice the largest array freed so far (about 2.4 MB for LeNet-5 at batch 64),
so it trips on every batch, and the next batch faults the same memory back in page by page. Measured
on LeNet-5 inference: ~850 page faults per 64 images, and the GEMM writing into fresh pages ran at a
third of its speed. With both thresholds at glibc's own ceiling for its dynamic adjustment (32 MB
for ``M_MMAP_THRESHOLD``, so twice that for trimming), freed blocks are simply reused.

The price: up to 64 MB of freed memory per heap stays with the process. Set the environment variable
``NNSCRATCH_MALLOC=system`` to leave glibc's settings alone. Elsewhere (macOS, Windows, musl) nothing
changes.

Example:
    >>> isinstance(keep_freed_memory(), bool)
    True
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems: the ceiling of its own dynamic threshold
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raises glibc's mmap and trim thresholds once per process; True when they are (now) raised."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("NNSCRATCH_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done

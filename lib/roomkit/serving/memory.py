"""Giving a worker's memory back to the system after a large plan (glibc only; a no-op elsewhere).

A worker is a long-lived process with many threads. glibc gives busy threads their own heap
arenas and, after the first large block is freed, raises its mmap threshold (up to 32 MB), so
later bodies, decoded images and numpy temporaries come from those heaps; freed, the pages stay
in the process. Six 300 MB bodies left a worker holding 2.45 GB until a hundred small requests
later. :func:`release` (``malloc_trim(0)``) hands the free pages inside every arena back; it takes
milliseconds, so only requests that moved more than ``RELEASE_AFTER_BYTES`` pay it.

Considered and not taken: a fixed small mmap threshold (``mallopt``) returns blocks on free
too, but made every detection temporary a fresh mapping and detection measurably slower;
recycling the worker after a memory watermark costs a detector import and leaves a window
where the worker is restarting.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

#: A request that read or decoded more than this many bytes is followed by :func:`release`.
RELEASE_AFTER_BYTES = 32 << 20

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(lib, "malloc_trim"):
                _libc = lib
        except OSError:
            pass
    return _libc or None


def release() -> bool:
    """Return the free memory inside the process's heaps to the system (False: not glibc)."""
    lib = _glibc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


def rss_bytes() -> int:
    """This process's resident set size (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0

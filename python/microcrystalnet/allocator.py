"""Freed memory kept for the next allocation while a network runs, handed back after it.

glibc's ``malloc`` (Linux) gives a freed block above its mmap threshold (at most 32 MB, raised
by glibc as large blocks are freed) straight back to the system, and trims the free top of its
heap beyond twice that. PyTorch takes its CPU tensors from ``malloc``; the learned segmenter's
activations on one tile (up to ~190 MB per layer on a 1216-px tile) are allocated and freed at
every layer of every tile, so each new one is faulted in afresh from the system, page by page.
Inside :func:`freed_memory_kept` freed blocks of up to 256 MB stay in the process; on leaving it
they go back (``malloc_trim``) and glibc's own settled thresholds return, so the rest of an
analysis (watershed, overlay) peaks no higher. On the 2-core AMD EPYC machine of BENCHMARKS.md
("Learned segmenter: speed") the segmenter's network ran 1.1-1.4 times faster with freed memory
kept (two threads, 1024-px image: 0.75 against 1.02 s), the whole learned segmentation (network,
seeded watershed, rescaling: inside the block too) 1.15 times.
Keeping it for the whole process instead raised the peak memory of ``analyze`` by 6-29 %.

Elsewhere (macOS, Windows, musl) the block changes nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import sys
import threading
from collections.abc import Iterator

#: ``mallopt`` parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: freed blocks up to this size stay in the process inside the block, and so does this much free
#: memory at the top of the heap, bytes
KEPT_BLOCK_BYTES = 256 * 2**20
#: glibc's thresholds once it has raised them itself (its largest automatic mmap threshold, and
#: twice that for trimming): what they are after the first large block of any analysis is freed
SETTLED_MMAP_THRESHOLD_BYTES = 32 * 2**20

_depth = 0
_depth_lock = threading.Lock()


@functools.cache  # found once per process (find_library runs ldconfig: 1.5 ms), not at every block
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):  # not glibc: no mallopt
        return None
    return libc


def _set_thresholds(libc: ctypes.CDLL, mmap_bytes: int) -> bool:
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_bytes)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * mmap_bytes))


@contextlib.contextmanager
def freed_memory_kept(block_bytes: int = KEPT_BLOCK_BYTES) -> Iterator[bool]:
    """Within this block the process's ``malloc`` keeps freed blocks of up to ``block_bytes`` for
    later allocations; after it they are handed back. Yields True where it takes effect (glibc),
    False elsewhere. Blocks may nest: the outermost one hands the memory back."""
    global _depth
    libc = _glibc()
    with _depth_lock:
        _depth += 1
        active = libc is not None and (_depth > 1 or _set_thresholds(libc, block_bytes))
    try:
        yield active
    finally:
        with _depth_lock:
            _depth -= 1
            if libc is not None and _depth == 0:
                _set_thresholds(libc, SETTLED_MMAP_THRESHOLD_BYTES)
                libc.malloc_trim(0)

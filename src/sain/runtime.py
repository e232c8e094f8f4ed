"""Process-level settings for running the networks fast: the allocator and threads.

Large tensors (a dense block's buffers on a photo are hundreds of MB) are allocated and
freed many times per image. glibc serves every allocation above its mmap threshold with a
fresh ``mmap`` and returns it to the kernel on ``free``, so each one is paid again as page
faults and zeroing by the kernel: on a 3 MP decode that was 40 s of system time in a 48 s
run (issue 10). :func:`configure_allocator` tells glibc, from inside the process, to serve
large blocks from its heap and keep freed memory for reuse (``mallopt(M_MMAP_MAX, 0)`` and
a high ``M_TRIM_THRESHOLD``): the same effect as the environment variables
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``, without asking users to set them. The
peak memory is unchanged (freed blocks are reused, not added to); the memory is returned
when the process ends. It does nothing on other C libraries or when
``SAIN_KEEP_MALLOC=1`` is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["configure_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done: bool | None = None


def configure_allocator() -> bool:
    """Keep large freed blocks in the process (glibc only); idempotent. True if applied."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("SAIN_KEEP_MALLOC") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu = ctypes.CDLL(None).gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError):
        return False
    del gnu
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    _done = ok
    return ok

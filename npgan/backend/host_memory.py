"""An opt-in, process-wide setting of glibc's malloc, for the programs that own their process.

The library never calls keep_freed_host_memory(); examples/train_mnist.py and the
benchmarks do, and say so in their banner.
"""
from __future__ import annotations

import os

# Where the user tunes glibc's malloc themselves, we leave it alone.
MALLOC_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                   "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")

_freed_memory_kept = None    # keep_freed_host_memory's answer, once per process


def keep_freed_host_memory() -> bool:
    """Opt-in, process-wide: ask glibc's malloc to keep the memory that arrays free.

    A training step makes and frees arrays of a few MB each; at glibc's defaults the
    freed blocks go back to the kernel and the next step's arrays fault fresh pages in
    (a DCGAN step at base 64: 6,000 to 13,000 page faults, 14 to 38 ms of kernel time;
    docs/performance.md). This sets two documented mallopt(3) knobs, M_MMAP_THRESHOLD
    = 32 MiB and M_TRIM_THRESHOLD = 1 GiB, for the WHOLE process and everything in it,
    for good: the library never calls it. The command-line programs do (and say so in
    their banner), as may a user who owns their process.

    Does nothing, and returns False, where the user tunes malloc already (any of
    MALLOC_SETTINGS in the environment), where NPGAN_KEEP_FREED_MEMORY=0, where the C
    library is not glibc, where glibc refuses the values, or where another malloc is
    preloaded (LD_PRELOAD jemalloc, tcmalloc). True when applied.
    """
    global _freed_memory_kept
    if _freed_memory_kept is None:
        _freed_memory_kept = False
        import platform
        if (platform.libc_ver()[0] == "glibc"
                and os.environ.get("NPGAN_KEEP_FREED_MEMORY") != "0"
                and not any(var in os.environ for var in MALLOC_SETTINGS)
                and "malloc" not in os.environ.get("LD_PRELOAD", "")):
            import ctypes
            try:
                mallopt = ctypes.CDLL(None).mallopt              # int mallopt(int, int)
            except (OSError, AttributeError):
                return False
            M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # from <malloc.h>
            _freed_memory_kept = bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and \
                bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))         # 1 = accepted
    return _freed_memory_kept

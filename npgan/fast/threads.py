"""A small thread pool for elementwise updates (the optimizers' steps) on NumPy.

NumPy's elementwise loops release the GIL, so cutting a big array into blocks and
sharing them out to threads uses every core, as BLAS does for the matmuls. On CuPy
(one kernel per op is best) and other namespaces the function runs once per array.
The pool is made at the first call that needs it, never at import.
"""
from __future__ import annotations

import math
import os

from npgan.backend import get_array_module, is_numpy

_pool = None        # (process id, ThreadPoolExecutor): a forked child makes its own
_threads = None


def num_threads() -> int:
    """Threads npgan uses for its own elementwise loops (see map_blocks): the BLAS
    setting (OPENBLAS/MKL/OMP_NUM_THREADS) if one is set, else the CPUs we may use."""
    global _threads
    if _threads is None:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
                _threads = int(os.environ[var])
                break
        else:
            _threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
    return _threads


def set_num_threads(n: int):
    """Use n threads in map_blocks (1 = run everything on the calling thread)."""
    global _threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"number of threads must be an int >= 1, got {n!r}")
    if n != _threads and _pool is not None:
        _pool[1].shutdown(wait=False)                   # its threads end when idle
        _pool = None
    _threads = n


def map_blocks(fn, groups, block=1 << 16):
    """Call fn(*arrays) for every tuple of same-shaped arrays in `groups` (in place).

    On NumPy, contiguous arrays are cut into aligned flat blocks of `block` elements,
    shared out to num_threads() threads. Elsewhere fn runs once per tuple.
    fn must be elementwise, so that blocks give bit-identical results.
    """
    global _pool
    groups = list(groups)
    if not groups or num_threads() == 1 or not is_numpy(get_array_module(groups[0][0])):
        return _run_share(fn, groups)                   # (CuPy queues kernels: no threads)
    tasks = []
    for arrays in groups:
        n = math.prod(arrays[0].shape)
        if n <= block or not all(a.flags.c_contiguous for a in arrays):
            tasks.append(arrays)
            continue
        flat = [a.reshape(-1) for a in arrays]          # views: a is contiguous
        tasks += [tuple(f[i:i + block] for f in flat) for i in range(0, n, block)]
    shares = _split(tasks, min(num_threads(), len(tasks)))
    if len(shares) > 1 and (_pool is None or _pool[0] != os.getpid()):
        from concurrent.futures import ThreadPoolExecutor

        _pool = (os.getpid(), ThreadPoolExecutor(num_threads() - 1, thread_name_prefix="npgan"))
    # one share per thread (a hand-off costs far more than a block), one on this thread
    futures = [_pool[1].submit(_run_share, fn, share) for share in shares[1:]]
    _run_share(fn, shares[0])
    for future in futures:
        future.result()                                 # re-raises fn's exceptions


def _run_share(fn, share):
    for arrays in share:
        fn(*arrays)


def _split(tasks, n):
    """tasks cut into n consecutive shares of about the same number of elements."""
    sizes = [math.prod(t[0].shape) for t in tasks]
    total, shares, done = sum(sizes), [[]], 0
    for task, size in zip(tasks, sizes):
        if done + size / 2 > total * len(shares) / n and len(shares) < n and shares[-1]:
            shares.append([])
        shares[-1].append(task)
        done += size
    return shares

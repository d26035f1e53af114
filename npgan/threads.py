"""How many threads a run uses: one fixed default, held only while the run lasts.

The matrix products (BLAS) and npgan's own elementwise loops both run on threads. On
this project's 2-core machine with one other job running, a second thread never paid
off and often cost 3x or more (benchmarks/bench_threads.py; the table is in
docs/performance.md#threads). A thread count can also change the last bits of a
matrix product, and with them a whole GAN run. So npgan uses one fixed default,
DEFAULT_THREADS, on every machine: the same seed gives the same numbers whatever else
the machine is doing. `--threads N` (TrainConfig.threads) asks for another count.

limit_threads(n) is a context manager (threadpoolctl's threadpool_limits, which knows
OpenBLAS, MKL, BLIS and OpenMP): the limit holds inside it, and what was set before
comes back after, so the library leaves the rest of the process as it found it.
"""
from __future__ import annotations

from contextlib import contextmanager

from npgan.fast import num_threads, set_num_threads

DEFAULT_THREADS = 1


def check_threads(n) -> int:
    """n as a thread count (an int >= 1), or a ValueError that names it."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    return n


@contextmanager
def limit_threads(n: int | None = None):
    """Run the body with n threads (default DEFAULT_THREADS) for BLAS and npgan's loops."""
    from threadpoolctl import threadpool_limits

    n = check_threads(DEFAULT_THREADS if n is None else n)
    before = num_threads()
    with threadpool_limits(limits=n):
        set_num_threads(n)
        try:
            yield n
        finally:
            set_num_threads(before)

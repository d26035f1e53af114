"""One training run per output folder: a lock file that dies with its process.

Two runs writing one folder would replace each other's checkpoint and interleave
their metrics. train() therefore takes an exclusive lock on OUT/.npgan.lock for as
long as it runs, and writes its process id into the file. The lock is flock(2):
the kernel releases it when the process ends, however it ends (kill -9 included),
so a lock can never outlive its run and there is no "force" flag to clear a stale
one. A clean exit also deletes the file; after kill -9 the file stays, unlocked,
and the next run takes it over.

    >>> lock = RunLock("runs/mnist").acquire()     # FolderInUse if another run has it
    >>> lock.release()

POSIX only (Linux, macOS): where there is no fcntl (Windows), or the file system
cannot lock (some network mounts), we warn and run without the lock.
"""
from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:              # Windows
    fcntl = None

LOCK_NAME = ".npgan.lock"


class FolderInUse(RuntimeError):
    """Another live process is training into the same output folder."""


class RunLock:
    """An exclusive, process-lifetime lock on a run folder (see the module docstring)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd = None

    def acquire(self):
        if fcntl is None:
            warnings.warn(f"cannot lock {self.folder} on this system (no fcntl): nothing "
                          f"stops a second run from writing into it", stacklevel=2)
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    raise FolderInUse(
                        f"the folder {self.folder} is in use by another training run "
                        f"(process {holder or 'starting, id not yet written'}); wait for it "
                        f"to end, stop it, or write this run elsewhere (another --out)") from None
                warnings.warn(f"cannot lock {self.folder} ({err.strerror}): nothing stops "
                              f"a second run from writing into it", stacklevel=2)
                return self
            # a releasing run deletes the file after we opened it: lock the new one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self):
        """Delete the file, then unlock (in that order: see acquire's re-check)."""
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)                  # closing the descriptor releases the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

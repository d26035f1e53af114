"""Writing files so that a failure leaves no half file behind and names the file.

A long run meets a full disk, a quota or a file-size limit (`ulimit -f`) sooner or
later. What we promise then (docs/faults.md):
  * a file is written to a temporary file beside it, then os.replace()d over the old
    one: the old file stays whole until the new one is complete, and a failed write
    removes its temporary file (write_atomically, NpyWriter; checkpoint.py the same);
  * the error is a WriteError: an OSError whose filename is the file we were writing
    (not the temporary one), which describe_write_error turns into one line;
  * the metrics log is appended line by line; when a run resumes, AppendLog first drops
    what the stopped run logged after its checkpoint, and a line torn by a failed write.

    >>> write_atomically("runs/x/grid.png", png_bytes)       # all of it, or the old file
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import secrets
from pathlib import Path

from npgan.backend import host as np

npformat = np.lib.format


class WriteError(OSError):
    """Writing `filename` failed (errno and strerror as the OS said); nothing was left
    half-written under that name."""


def as_write_error(err: OSError, path) -> WriteError:
    """`err`, raised while writing `path`, as a WriteError that names `path`."""
    if isinstance(err, WriteError):
        return err
    return WriteError(err.errno, err.strerror or str(err), str(path))


CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large: the file-size limit (ulimit -f) was reached",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
}


def describe_write_error(err: OSError) -> str:
    """One line: 'cannot write runs/x/checkpoint.npz: no space left on the device'."""
    cause = CAUSES.get(err.errno) or err.strerror or str(err)
    return f"cannot write {err.filename}: {cause}" if err.filename else f"cannot write: {cause}"


def not_a_folder(folder):
    """Why `folder` cannot be a folder, in words ("runs/x is a file, not a folder", or
    "... cannot be made, because runs is a file"), or None when it is or can be one."""
    folder = Path(folder)
    blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocking is None:
        return None
    if blocking == folder:
        return f"{folder} is a file, not a folder"
    return f"{folder} cannot be made, because {blocking} is a file, not a folder"


def open_temporary(path):
    """(fd, name) of a new temporary file beside `path`: in the same folder, so that
    os.replace(name, path) is atomic. Unlike tempfile.mkstemp (mode 0600) it gets the
    permissions open() would give `path` (0666 less the umask)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise as_write_error(err, path) from err
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:                  # a name already taken: draw another
            continue
        except OSError as err:                   # no room even for an empty file
            raise as_write_error(err, path) from err


def is_temporary(name: str) -> bool:
    """Is `name` one of the temporary files that open_temporary makes?"""
    return name.startswith(".") and name.endswith(".tmp")


def write_atomically(path, data: bytes):
    """Write `data` to `path`: all of it, or (on any error) the old file untouched."""
    path = Path(path)
    fd, tmp = open_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise as_write_error(err, path) from err
        raise
    return path


def remove_temporaries(folder) -> list:
    """Delete the temporary files a killed writer left in `folder` and its samples/
    (kill -9 skips our clean-up). Call it only while holding the folder's lock
    (npgan.runlock): then no live writer owns them. Returns the paths removed."""
    removed = []
    for sub in (Path(folder), Path(folder) / "samples"):
        if sub.is_dir():
            for p in sub.iterdir():
                if is_temporary(p.name) and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
    return removed


class AppendLog:
    """metrics.jsonl, one JSON record a line; every write error is a WriteError.

    resume_step: the step of the checkpoint a run resumes from. The stopped run may
    have logged steps after it (lost with kill -9, and about to be run again) or a
    line torn by a full disk; we keep only the whole records up to resume_step.
    """

    def __init__(self, path, mode="w", resume_step=None):
        self.path = Path(path)
        try:
            if mode == "a" and resume_step is not None and self.path.exists():
                kept = [line for line in self.path.read_text().splitlines(keepends=True)
                        if _record_step(line) is not None and _record_step(line) <= resume_step]
                write_atomically(self.path, "".join(kept).encode())
            self.file = open(self.path, mode)
        except OSError as err:
            raise as_write_error(err, self.path) from err

    def _named(self, method, *args):
        try:
            return method(*args)
        except OSError as err:
            raise as_write_error(err, self.path) from err

    def write(self, text):
        self._named(self.file.write, text)

    def flush(self):
        self._named(self.file.flush)

    def close(self):
        self._named(self.file.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        except WriteError:
            if exc[0] is None:          # a failure inside the block is the one to report
                raise


def _record_step(line):
    """The step of a whole metrics record, or None for a torn or empty line."""
    if not line.endswith("\n"):
        return None
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------- .npy files of any size
NPY_HEADER = 128    # bytes: numpy's header for a 2-D float32 array (padded to 64)


def free_room(folder):
    """(bytes a new file in `folder` may hold, why): the free disk space, or the
    file-size limit (ulimit -f) where that is smaller."""
    folder = Path(folder)
    free = shutil.disk_usage(folder).free
    room, why = free, f"{folder} has {format_bytes(free)} free"
    try:
        import resource                           # POSIX only
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        limit = None if limit == resource.RLIM_INFINITY else limit
    except (ImportError, OSError, ValueError):
        limit = None
    if limit is not None and limit < room:
        room, why = limit, f"the file-size limit (ulimit -f) is {format_bytes(limit)}"
    return room, why


def format_bytes(n) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as disks are sold and df -H shows)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


class NpyWriter:
    """A float32 .npy file of shape (n, width), written a block of rows at a time,
    so that no more than one block is in memory, whatever n is. The header goes first
    (numpy's own format, numpy.lib.format), then the rows. Atomic like
    write_atomically: on any error the temporary file is removed (WriteError).

        with NpyWriter("samples.npy", n, 784) as out:
            for block in blocks:              # host float32 (b, 784)
                out.write(block)
    """

    def __init__(self, path, n, width):
        self.path, self.n, self.width, self.rows = Path(path), n, width, 0
        self.fd, self.tmp = open_temporary(self.path)
        self.file = os.fdopen(self.fd, "wb")
        header = {"descr": npformat.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (n, width)}
        self._guard(npformat.write_array_header_1_0, self.file, header)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except OSError as err:
            self.abort()
            raise as_write_error(err, self.path) from err

    def write(self, block):
        block = np.ascontiguousarray(block, dtype=np.float32)          # (b, width)
        if block.ndim != 2 or block.shape[1] != self.width or self.rows + len(block) > self.n:
            self.abort()
            raise ValueError(f"{self.path}: a block of shape {block.shape} does not fit "
                             f"({self.rows} of ({self.n}, {self.width}) rows written)")
        self._guard(self.file.write, block.tobytes())
        self.rows += len(block)

    def abort(self):
        if not self.file.closed:
            try:
                self.file.close()
            except OSError:
                pass
        Path(self.tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:                     # an error or Ctrl-C: no half file
            self.abort()
            return False
        if self.rows != self.n:
            self.abort()
            raise ValueError(f"{self.path}: {self.rows} rows written, {self.n} promised")
        self._guard(self.file.close)
        self._guard(os.replace, self.tmp, self.path)
        return False

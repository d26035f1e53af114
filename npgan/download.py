"""Downloading MNIST and Fashion-MNIST into a local cache, checked and atomic.

    >>> folder = download_dataset("mnist")   # ~/.cache/npgan/mnist, or $NPGAN_DATA/mnist

Each file is fetched from the first mirror that works and accepted only if its
checksum matches (see `verify`). We write into a temporary file in the cache folder
and rename it into place, so an interrupted or rejected download never leaves a
half file behind. When every mirror fails, the DataError lists each one and why.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from npgan.idx import DataError


class Checksum(NamedTuple):
    """How we recognise a file: the md5 of the .gz as published, or the sha256 of
    its decompressed bytes. A file passes if either matches (None = not known).

    We need both because the .gz bytes depend on who compressed them (Debian's
    Fashion-MNIST .gz files differ from upstream's) while the data inside do not.
    """
    gz_md5: str | None
    raw_sha256: str | None


MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # the one torchvision uses
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

CHECKSUMS = {
    # The md5 values of the published .gz files (as listed by torchvision). We have
    # not yet recorded the sha256 of MNIST's decompressed bytes, so those are None.
    "mnist": {
        "train-images-idx3-ubyte.gz": Checksum("f68b3c2dcbeaaa9fbdd348bbdeb94873", None),
        "train-labels-idx1-ubyte.gz": Checksum("d53e105ee54ea40749a09fcbcd1e9432", None),
        "t10k-images-idx3-ubyte.gz": Checksum("9fb629c4189551a2d022fa330f9573f3", None),
        "t10k-labels-idx1-ubyte.gz": Checksum("ec29112dd5afa0611ce80d1b7f02629c", None),
    },
    # md5 of the upstream .gz files; sha256 of the decompressed files, computed from
    # Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": Checksum(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte.gz": Checksum(
            "25c81989df183df01b3e8a0aad5dffbe",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte.gz": Checksum(
            "bef4ecab320f06d8554ea6380940ec79",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte.gz": Checksum(
            "bb300cfdad3c16e7a12a480ee83cd310",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}


def cache_dir(name: str) -> Path:
    """Where data set `name` is cached: $NPGAN_DATA/<name>, else ~/.cache/npgan/<name>."""
    root = os.environ.get("NPGAN_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "npgan"
    return base / name


def verify(path, checksum: Checksum) -> str | None:
    """None if the file at `path` matches `checksum`, else the reason it does not."""
    data = Path(path).read_bytes()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if md5 == checksum.gz_md5:
        return None
    if checksum.raw_sha256 is None:
        return f"checksum mismatch (md5 {md5}, expected {checksum.gz_md5})"
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as err:
        return f"corrupt gzip data ({err})"
    sha = hashlib.sha256(raw).hexdigest()
    if sha == checksum.raw_sha256:
        return None
    return (f"checksum mismatch (md5 {md5}, sha256 of the decompressed bytes {sha}; "
            f"expected md5 {checksum.gz_md5} or sha256 {checksum.raw_sha256})")


def _fetch(url: str, dest: Path, timeout: float, progress: bool):
    """Stream `url` into the file `dest`; raise if the server sends less than it said."""
    request = urllib.request.Request(url, headers={"User-Agent": "npgan (urllib)"})
    with urllib.request.urlopen(request, timeout=timeout) as response, \
            open(dest, "wb") as out:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=not progress) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if total is not None and got != total:
        raise ConnectionError(f"connection dropped after {got} of {total} bytes")


def _describe(err: Exception) -> str:
    """A one-line reason for a failed request."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    return f"{type(err).__name__}: {err}"


def download_file(filename: str, folder: Path, mirrors, checksum: Checksum,
                  timeout: float = 30, progress: bool = True) -> Path:
    """Fetch `filename` into `folder` from the first mirror giving a verified copy."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
        os.close(fd)
        part = Path(name)
        try:
            _fetch(url, part, timeout, progress)
            problem = verify(part, checksum)
            if problem is None:
                os.replace(part, folder / filename)  # atomic: whole file or none
                return folder / filename
            failures.append(f"{url}: {problem}")
        except (OSError, http.client.HTTPException, ValueError) as err:
            # URLError, timeouts and dropped connections are OSErrors; a bad URL is
            # a ValueError. Any of them: we try the next mirror.
            failures.append(f"{url}: {_describe(err)}")
        finally:
            part.unlink(missing_ok=True)  # also on Ctrl-C
    tried = "".join(f"\n  {f}" for f in failures) or " (no mirrors given)"
    raise DataError(f"could not download {filename} into {folder}; mirrors tried:{tried}")


def download_dataset(name: str, folder=None, mirrors=None, checksums=None,
                     timeout: float = 30, progress: bool = True) -> Path:
    """Make sure `folder` (default cache_dir(name)) holds the verified files; return it.

    Files already cached and matching their checksum are not fetched again. `mirrors`
    (base URLs) and `checksums` ({file name: Checksum}) default to MIRRORS[name] and
    CHECKSUMS[name]; tests pass their own.
    """
    if (mirrors is None or checksums is None) and name not in MIRRORS:
        raise ValueError(f"no mirrors known for {name!r}; known: {', '.join(MIRRORS)}")
    folder = Path(folder) if folder is not None else cache_dir(name)
    mirrors = MIRRORS[name] if mirrors is None else mirrors
    checksums = CHECKSUMS[name] if checksums is None else checksums
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data folder {folder} ({err.strerror or err}); "
                        f"set NPGAN_DATA to a writable folder") from None
    for filename, checksum in checksums.items():
        target = folder / filename
        if target.is_file():
            problem = verify(target, checksum)
            if problem is None:
                continue
            warnings.warn(f"{target}: {problem}; downloading it again", stacklevel=2)
        download_file(filename, folder, mirrors, checksum, timeout, progress)
    return folder

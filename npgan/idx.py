"""The IDX file format of MNIST and Fashion-MNIST: parse, read, find a folder's four files.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data, row-major:

    >>> images = read_idx("train-images-idx3-ubyte.gz", IDX_IMAGES)   # uint8 (60000, 28, 28)

Every problem is a DataError that names the file and what is wrong with it; npgan.data
(the data sets) and npgan.download (the cache) both raise it.
reference: http://yann.lecun.com/exdb/mnist/ (the format, at the bottom of the page)
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from npgan.backend import host as np

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number
# of dimensions. Images are (N, rows, cols), labels are (N,).
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
IDX_TYPES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32",
             0x0D: "float32", 0x0E: "float64"}
# The four files of an MNIST-format folder, by role -> (file stem, IDX kind).
IDX_FILES = {
    "train_images": ("train-images", "idx3"), "train_labels": ("train-labels", "idx1"),
    "test_images": ("t10k-images", "idx3"), "test_labels": ("t10k-labels", "idx1"),
}


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or of the wrong kind; says which."""


def parse_idx(raw: bytes, source: str = "<bytes>", expect_magic: int | None = None):
    """Decode the bytes of an IDX file (gzip-compressed or not) into a uint8 array.

    The array has the shape the header gives, e.g. (60000, 28, 28) for images or
    (60000,) for labels. `expect_magic` (IDX_IMAGES or IDX_LABELS) also checks the
    kind. Every problem is a DataError naming `source` and what is wrong.
    """
    if raw[:2] == b"\x1f\x8b":  # the gzip magic: we go by content, not by file name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            raise DataError(f"{source}: corrupt or truncated gzip data ({err})") from None
    if len(raw) < 4:
        raise DataError(f"{source}: only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{source}: not an IDX file (bad magic number 0x{magic:08X})")
    if IDX_TYPES[type_code] != "uint8":
        raise DataError(f"{source}: IDX data type {IDX_TYPES[type_code]}; npgan reads "
                        f"only unsigned-byte (uint8) IDX files")
    if expect_magic is not None and magic != expect_magic:
        want = "images (3 dims)" if expect_magic == IDX_IMAGES else "labels (1 dim)"
        raise DataError(f"{source}: expected an IDX {want} file with magic "
                        f"0x{expect_magic:08X}, found magic 0x{magic:08X} ({ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source}: truncated header ({len(raw)} of {header} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    # We count in Python ints, so absurd headers cannot overflow or allocate memory.
    expected = 1
    for d in dims:
        expected *= d
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has extra bytes"
        shape = " x ".join(map(str, dims))
        raise DataError(f"{source}: {what}: the header says {shape} = {expected} data "
                        f"bytes but {got} follow")
    # frombuffer views the read-only bytes; the copy gives the caller a normal array.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx(path, expect_magic: int | None = None):
    """Read one IDX file (plain or .gz) from disk; see parse_idx. Errors: DataError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from None
    return parse_idx(raw, str(path), expect_magic)


def find_idx_files(folder) -> dict:
    """The paths of the four MNIST-format files in `folder`, by role (see IDX_FILES).

    Accepts "train-images-idx3-ubyte", the ".idx3-ubyte" spelling, and either with
    ".gz". Raises DataError listing every file that is missing.
    """
    folder = Path(folder)
    found, missing = {}, []
    for role, (stem, kind) in IDX_FILES.items():
        names = [f"{stem}{sep}{kind}-ubyte{gz}" for sep in "-." for gz in ("", ".gz")]
        hits = [folder / n for n in names if (folder / n).is_file()]
        if hits:
            found[role] = hits[0]
        else:
            missing.append(f"{stem}-{kind}-ubyte[.gz]")
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}; a data folder must hold "
                        f"the four MNIST-format IDX files")
    return found


def load_idx_folder(path, flatten: bool = False):
    """Load a folder with the four MNIST-format IDX files.

    Returns (train_images, train_labels, test_images, test_labels), host uint8:
    images (N, rows, cols), or (N, rows * cols) with flatten=True; labels (N,).
    """
    files = find_idx_files(path)
    out = []
    for part in ("train", "test"):
        images = read_idx(files[f"{part}_images"], IDX_IMAGES)
        labels = read_idx(files[f"{part}_labels"], IDX_LABELS)
        if len(images) != len(labels):
            raise DataError(f"{files[f'{part}_images']} has {len(images)} images but "
                            f"{files[f'{part}_labels']} has {len(labels)} labels")
        out += [images.reshape(len(images), -1) if flatten else images, labels]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise DataError(f"{path}: train images are {out[0].shape[1:]} but test images "
                        f"are {out[2].shape[1:]}")
    return tuple(out)


def has_idx_files(folder) -> bool:
    """True if `folder` holds the four MNIST-format files (see find_idx_files)."""
    try:
        find_idx_files(folder)
    except DataError:
        return False
    return True

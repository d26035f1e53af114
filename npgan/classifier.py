"""A convolutional classifier built from npgan's own layers, to judge what a GAN draws.

    CNN:  x (B, P) -> (1, 28, 28) -> Conv 4x4/2 (32) -> ReLU -> (32, 14, 14)
          -> Conv 4x4/2 (64) -> ReLU -> (64, 7, 7) -> Flatten (3136)
          -> Linear (128) -> ReLU -> [features (B, 128)] -> Linear -> logits (B, 10)

a LeNet-sized net (strided convolutions instead of pooling), trained with softmax
cross-entropy and Adam on the training split of the GAN's own data set, with pixels
scaled to [-1, 1] like G's output. npgan.metrics reads two things from it: the softmax
(which class does a sample look like?) and the penultimate activations (B, 128), the
feature space of the Frechet distance and of precision and recall, as FID uses the
pool features of Inception.

    >>> model = load_or_train_classifier("mnist-5k", be)   # shipped weights: no training
    >>> logits, feats = logits_and_features(model, x)      # (B, 10), (B, 128)

Weights are .npz files with flat keys ("1.W", "1.b", ...: the Sequential's names), the
architecture in 'meta.*' entries, and no pickled objects. load_or_train_classifier
looks for them shipped inside npgan (npgan/datasets), then in the data cache
($NPGAN_DATA or ~/.cache/npgan), and only then trains and caches.
"""
from __future__ import annotations

import math
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

from npgan.backend import Backend, astype, concat, get_array_module, to_numpy
from npgan.backend import host as np
from npgan.conditional import check_labels
from npgan.conv import Conv2d, Flatten, Reshape
from npgan.data import iterate_batches, load_dataset, to_device
from npgan.layers import Linear, ReLU, Sequential
from npgan.norm import Dropout
from npgan.losses import softmax_cross_entropy
from npgan.optim import Adam

SHIPPED = Path(__file__).resolve().parent / "datasets"
SIDE = 28  # images are SIDE x SIDE = P pixels
ARCH = "cnn"  # the architecture this module builds (stored in the weights files)
# Training recipes. 4,500 digits are few for 440k weights, so on mnist-5k we also
# shift every image by up to 2 pixels each way (new digits for free) and drop half of
# the features while training (98.2% held-out against 98.0% without, seed 0).
RECIPES = {
    "mnist-5k": dict(epochs=60, max_shift=2, lr=1e-3, batch_size=64, dropout=0.5),
    "mnist": dict(epochs=15, max_shift=0, lr=1e-3, batch_size=128),
    "fashion-mnist": dict(epochs=15, max_shift=0, lr=1e-3, batch_size=128),
}


def build_classifier(backend, channels=(32, 64), hidden=128, n_classes=10, side=SIDE,
                     dropout=0.0):
    """The CNN of the module docstring: channels (c1, c2) of the two stride-2
    convolutions, `hidden` features, `n_classes` logits. Images are side x side, side
    divisible by 4. dropout > 0: a Dropout on the features while training (eval mode,
    which computes the features, is unaffected)."""
    c1, c2 = channels
    quarter = side // 4                                    # 7: two stride-2 halvings
    drop = [Dropout(dropout, backend)] if dropout else []
    return Sequential(
        Reshape((1, side, side)),                          # (B, P) -> (B, 1, 28, 28)
        Conv2d(1, c1, 4, 2, 1, backend=backend),           # -> (B, c1, 14, 14)
        ReLU(),
        Conv2d(c1, c2, 4, 2, 1, backend=backend),          # -> (B, c2, 7, 7)
        ReLU(),
        Flatten(),                                         # -> (B, c2 * 49)
        Linear(c2 * quarter * quarter, hidden, backend),   # -> (B, H)
        ReLU(),                                            # features: (B, H)
        *drop,
        Linear(hidden, n_classes, backend),                # -> (B, K): logits
    )


def logits_and_features(model, x):
    """x (B, P) -> (logits (B, K), features (B, H)): the features are the input of the
    last Linear, so one forward pass gives both."""
    feats = x
    for layer in model.layers[:-1]:
        feats = layer.forward(feats)                       # ... -> (B, H)
    return model.layers[-1].forward(feats), feats          # (B, H) -> (B, K)


def reseeded(backend, seed):
    """A Backend like `backend` (same library, device, dtype) with its own generator,
    so that a seeded job does not depend on, nor disturb, the caller's random stream."""
    return Backend(backend.name, backend.xp, backend.dtype_name, seed, backend.device)


def random_shift(x, backend, max_shift=2):
    """Each image of x (B, P) moved by its own random (dy, dx), |dy|, |dx| <= max_shift;
    pixels shifted in are background (-1). Made of slices and concats only, so it runs
    on every backend: for each offset s we shift the whole batch and keep the rows that
    drew s (a mask), which costs (2 max_shift + 1) passes over the batch per axis."""
    xp = backend.xp
    batch = x.shape[0]
    img = xp.reshape(x, (batch, SIDE, SIDE))                           # (B, 28, 28)
    for axis in (1, 2):
        draw = xp.floor(backend.uniform(0.0, 2 * max_shift + 1.0, (batch,)))  # (B,) in 0..2m
        moved = xp.zeros_like(img)
        for s in range(-max_shift, max_shift + 1):
            pick = astype(draw == float(s + max_shift), img.dtype)     # (B,) 1 where s drawn
            moved += xp.reshape(pick, (batch, 1, 1)) * _shift(img, s, axis)
        img = moved
    return xp.reshape(img, (batch, SIDE * SIDE))                       # (B, P)


def _shift(img, s, axis):
    """img (B, 28, 28) moved by s pixels along axis 1 (down) or 2 (right), -1 filled."""
    xp = get_array_module(img)
    if s == 0:
        return img
    n = abs(s)
    if axis == 1:
        fill = xp.zeros_like(img[:, :n, :]) - 1.0                      # (B, n, 28)
        kept = img[:, :SIDE - n, :] if s > 0 else img[:, n:, :]
    else:
        fill = xp.zeros_like(img[:, :, :n]) - 1.0                      # (B, 28, n)
        kept = img[:, :, :SIDE - n] if s > 0 else img[:, :, n:]
    parts = [fill, kept] if s > 0 else [kept, fill]
    return concat(parts, axis=axis)


# ----------------------------------------------------------------------- training
def train_classifier(dataset, backend, epochs=None, seed=0, channels=(32, 64), hidden=128,
                     batch_size=None, lr=None, max_shift=None, dropout=None, data=None,
                     on_epoch=None):
    """Train build_classifier(...) on `dataset`'s training split; returns the model.

    Recipe defaults come from RECIPES[dataset]; any argument given overrides them.
    Adam with a cosine-decayed lr; minibatches reshuffled every epoch. `seed` fixes the
    initial weights, the order and the shifts (a generator of its own, see reseeded).
    data: (images uint8 (N, P), labels (N,)) on the host, instead of load_dataset.
    on_epoch(epoch, mean_loss): called after each epoch (the loss read is a host sync).
    """
    recipe = dict(RECIPES.get(dataset, RECIPES["mnist"]))
    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, max_shift=max_shift,
                 dropout=dropout)
    recipe.update({k: v for k, v in given.items() if v is not None})
    be = reseeded(backend, seed)
    xp = be.xp
    images, labels = load_dataset(dataset, split="train") if data is None else data
    x = to_device(images, be)                                  # (N, P) in [-1, 1]
    side = math.isqrt(x.shape[1])
    model = build_classifier(be, channels, hidden, side=side, dropout=recipe.get("dropout", 0.0))
    classes = model.layers[-1].out_features
    y = be.asarray(check_labels(labels, classes).astype(np.int32))   # (N,), checked once
    opt = Adam(model.parameters(), lr=recipe["lr"])
    # We shuffle an index vector with iterate_batches, so images and labels stay paired.
    rows = be.asarray(np.arange(x.shape[0], dtype=np.int32))  # (N,)
    batch = min(recipe["batch_size"], x.shape[0])
    for epoch in range(recipe["epochs"]):
        # cosine decay from lr to 0: big steps first, fine ones at the end
        opt.hyper["lr"] = recipe["lr"] * 0.5 * (1.0 + math.cos(math.pi * epoch / recipe["epochs"]))
        total = 0.0
        for idx in iterate_batches(rows, batch, be):
            xb = xp.take(x, idx, axis=0)                       # (B, P)
            if recipe["max_shift"]:
                xb = random_shift(xb, be, recipe["max_shift"])
            model.zero_grad()
            loss, dlogits = softmax_cross_entropy(model.forward(xb), xp.take(y, idx, axis=0))
            model.backward(dlogits, input_grad=False)          # the images need no dx
            opt.step()
            total = total + loss                               # stays on the device
        if on_epoch is not None:
            on_epoch(epoch, be.item(total) / (x.shape[0] // batch))
    return model.eval()


def predict(model, images, backend, batch_size=1000):
    """Predicted classes (host int array (N,)) of host uint8 images (N, P)."""
    out = []
    for start in range(0, len(images), batch_size):
        logits = model.forward(to_device(images[start:start + batch_size], backend))
        out.append(to_numpy(backend.xp.argmax(logits, axis=1)))   # (b,) on the host
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(model, images, labels, backend) -> float:
    """Fraction of host images (N, P) whose predicted class equals labels (N,)."""
    return float(np.mean(predict(model, images, backend) == np.asarray(labels)))


# ------------------------------------------------------------------ saving, loading
def save_classifier(model, path, weights_dtype="float32", **meta):
    """Write the weights (the Sequential's names: '1.W', '1.b', ...), the architecture
    ('meta.arch', 'meta.channels', 'meta.hidden', ...) and `meta` (strings and numbers, keys
    'meta.<name>') to the .npz `path`, atomically: a temporary file in the same folder,
    renamed into place, so readers never see half a file. weights_dtype="float16"
    halves the file (the weights shipped inside npgan are stored that way)."""
    path = Path(path)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2d)]
    drops = [layer.p for layer in model.layers if isinstance(layer, Dropout)]
    arch = {"arch": ARCH, "channels": np.asarray([c.out_ch for c in convs]),
            "hidden": model.layers[-1].in_features, "side": model.layers[0].shape[-1],
            "dropout": drops[0] if drops else 0.0}
    arrays = {name: np.asarray(to_numpy(p.data), dtype=weights_dtype)
              for name, p in model.named_parameters()}
    arrays.update({f"meta.{k}": np.asarray(v) for k, v in {**arch, **meta}.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_classifier(path, backend):
    """(model, meta) from a save_classifier file; the sizes come from its 'meta.*'.

    Weights are cast to the backend's dtype. A file that is not such an .npz (or holds
    another architecture) raises ValueError naming it (np.load runs with
    allow_pickle=False).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a classifier weights file ({err})") from None
    meta = {k[5:]: (v.tolist() if v.ndim else v.item())
            for k, v in arrays.items() if k.startswith("meta.")}
    if meta.get("arch") != ARCH:
        raise ValueError(f"{path}: not a classifier weights file of this npgan (architecture "
                         f"{meta.get('arch')!r}, expected {ARCH!r})")
    model = build_classifier(backend, tuple(meta["channels"]), meta["hidden"], side=meta["side"],
                             dropout=meta.get("dropout", 0.0))
    for name, p in model.named_parameters():
        if name not in arrays or arrays[name].shape != tuple(p.shape):
            raise ValueError(f"{path}: weight {name!r} is missing or has the wrong shape")
        p.data[...] = backend.asarray(arrays[name])
    for key in ("arch", "channels", "hidden", "side", "dropout"):
        meta.pop(key, None)
    return model.eval(), meta


def weights_filename(dataset) -> str:
    return f"classifier_cnn_{dataset.replace('-', '_')}.npz"  # classifier_cnn_mnist_5k.npz


def classifier_path(dataset, cache_dir=None) -> Path:
    """Where load_or_train_classifier caches the weights for `dataset`:
    cache_dir, else $NPGAN_DATA/classifiers, else ~/.cache/npgan/classifiers."""
    from npgan.download import cache_dir as data_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else data_cache_dir("classifiers")
    return folder / weights_filename(dataset)


def load_or_train_classifier(dataset, backend, cache_dir=None, **train_kwargs):
    """The classifier for `dataset` on `backend`, trained at most once per machine.

    Looks for weights shipped in npgan/datasets, then in classifier_path(dataset,
    cache_dir); otherwise trains (train_classifier(dataset, backend, **train_kwargs)),
    records the test accuracy and saves the weights there for next time.
    """
    shipped = SHIPPED / weights_filename(dataset)
    if shipped.is_file():
        return load_classifier(shipped, backend)[0]
    path = classifier_path(dataset, cache_dir)
    if path.is_file():
        try:
            return load_classifier(path, backend)[0]
        except ValueError as err:
            warnings.warn(f"{err}; training a new classifier", stacklevel=2)
    data = train_kwargs.pop("data", None)
    if data is None:
        data = load_dataset(dataset, split="train")
        if dataset == "mnist" and len(data[0]) < 60000:
            # load_dataset fell back to the bundled subset (and said so): use its classifier
            return load_or_train_classifier("mnist-5k", backend, cache_dir, **train_kwargs)
    model = train_classifier(dataset, backend, data=data, **train_kwargs)
    test_x, test_y = load_dataset(dataset, split="test")
    acc = accuracy(model, test_x, test_y, backend)
    try:
        save_classifier(model, path, dataset=dataset, test_accuracy=acc)
    except OSError as err:
        warnings.warn(f"could not cache the classifier at {path} ({err}); it will be "
                      f"trained again next time. Set NPGAN_DATA to a writable folder.",
                      stacklevel=2)
    return model

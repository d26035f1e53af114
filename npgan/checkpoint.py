"""Checkpoints: one .npz with flat keys, written atomically, read without pickle.

Layout (every value a plain numeric array; metadata is a JSON string):
    G/0.W, G/0.b, ...          generator parameters        (Sequential names)
    G@buffers/1.running_mean   generator buffers (BatchNorm running statistics)
    D/..., D@buffers/...       the same for the discriminator
    opt_g/m/0, opt_g/v/0, ...  optimizer state arrays, one per parameter
    extra/NAME                 anything else the caller keeps (e.g. fixed noise)
    meta                       JSON: format, config, step, epoch, rng state, optimizer
                               hyperparameters and step counts, architecture shapes

Writing goes to a temporary file in the same folder, then os.replace(): a crash
mid-write leaves the previous checkpoint intact. Reading uses allow_pickle=False,
so a checkpoint cannot run code, and reads each array's header before its data: a
corrupt or crafted header (a shape of 100000 x 100000, 37 GiB) is refused against the
model built from the checkpoint's config before anything is allocated. Weights or
optimizer state holding NaN/inf are refused as they are read (Checkpoint.finite). A
failed write (a full disk) raises npgan.files.WriteError naming the checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from npgan.backend import host as np
from npgan.backend import to_numpy
from npgan.files import as_write_error, open_temporary

npformat = np.lib.format          # the .npy header reader: shapes before data

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model; says which and why."""


def _model_arrays(prefix, model):
    arrays = {f"{prefix}/{name}": to_numpy(p.data) for name, p in model.named_parameters()}
    arrays.update({f"{prefix}@buffers/{name}": to_numpy(b) for name, b in model.named_buffers()})
    return arrays


def architecture(model) -> dict:
    """{name: shape} of every parameter and buffer: what must match to load weights."""
    shapes = {name: list(p.data.shape) for name, p in model.named_parameters()}
    shapes.update({f"@{name}": list(b.shape) for name, b in model.named_buffers()})
    return shapes


def save_checkpoint(path, models: dict, optimizers: dict, meta: dict, extra: dict | None = None):
    """Write models ({"G": G, "D": D}), optimizers ({"opt_g": ...}), meta and extra arrays."""
    path = Path(path)
    arrays = {}
    for prefix, model in models.items():
        arrays.update(_model_arrays(prefix, model))
    opt_meta = {}
    for prefix, opt in optimizers.items():
        state = opt.state_dict()
        opt_meta[prefix] = {"hyper": state["hyper"], "step": state["step"]}
        for key, value in state.items():
            if isinstance(value, list):
                arrays.update({f"{prefix}/{key}/{i}": to_numpy(a) for i, a in enumerate(value)})
    for name, value in (extra or {}).items():
        arrays[f"extra/{name}"] = to_numpy(value)
    full_meta = dict(meta, format=FORMAT, optimizers=opt_meta,
                     architecture={k: architecture(m) for k, m in models.items()})
    arrays["meta"] = np.array(json.dumps(full_meta))          # a unicode array, not an object
    fd, tmp = open_temporary(path)                             # creates the folder
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)                                  # atomic on POSIX and Windows
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)                     # never leave a half file
        if isinstance(err, OSError):                          # a full disk: name the file
            raise as_write_error(err, path) from err
        raise
    return path


def last_good(path) -> str:
    """What survives a failed write, in words: 'the last good checkpoint, PATH (step N),
    is intact', or that there is none yet."""
    try:
        step = load_checkpoint(path).meta["step"]
    except CheckpointError:
        return f"no checkpoint had been saved to {path} yet"
    return f"the last good checkpoint, {path} (step {step}), is intact"


def _expected_dtype(backend) -> str:
    """The dtype name a model's parameters have on `backend` ('float32' or 'float64')."""
    return backend.dtype_name


class Checkpoint:
    """An opened checkpoint: .meta (dict), .headers {key: (shape, dtype)} of every
    array, and .arrays, which reads an array from the file only when it is asked for.
    restore_model / restore_optimizer check the headers against the model first."""

    def __init__(self, path, meta, headers):
        self.path, self.meta, self.headers = Path(path), meta, headers
        self.arrays = _Entries(self.path, headers)

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    def check(self, key, shape, dtype=None):
        """Refuse, before a byte of its data is read, an entry whose header disagrees
        with the shape (and dtype name) that the model built from the config needs."""
        if key not in self.headers:
            raise CheckpointError(f"{self.path}: the entry {key} is missing")
        have_shape, have_dtype = self.headers[key]
        if have_shape != tuple(shape) or (dtype is not None and have_dtype.name != dtype):
            want = f"{dtype} {tuple(shape)}" if dtype else f"shape {tuple(shape)}"
            raise CheckpointError(
                f"{self.path}: {key} is declared as {have_dtype.name} {have_shape}, but the "
                f"model built from the checkpoint's config needs {want}; the file is "
                f"corrupt or was not written for this model, so we do not read it")

    def extra(self, name, shape=None, dtype=None):
        """The extra array `name` (None if absent); with `shape`, checked before reading."""
        key = f"extra/{name}"
        if key not in self.headers:
            return None
        if shape is not None:
            self.check(key, shape, dtype)
        return self.arrays[key]

    def restore_model(self, prefix, model, backend):
        """Copy the saved parameters and buffers of `prefix` into `model` (in place)."""
        saved, have = self.meta["architecture"].get(prefix), architecture(model)
        if saved != have:
            diff = sorted(set(saved or {}) ^ set(have)) or [
                k for k in have if saved.get(k) != have[k]]
            k = diff[0]
            raise CheckpointError(
                f"{self.path}: the checkpoint's {prefix} has another architecture than this "
                f"model ({prefix}.{k}: saved {(saved or {}).get(k)}, model {have.get(k)}). "
                f"Build the model with the checkpoint's config: {self.config}"
            )
        targets = [(f"{prefix}/{name}", p.data) for name, p in model.named_parameters()]
        targets += [(f"{prefix}@buffers/{name}", b) for name, b in model.named_buffers()]
        for key, target in targets:                  # every header first, then the data
            self.check(key, target.shape, _expected_dtype(backend))
        for key, target in targets:
            target[...] = backend.asarray(self.finite(key, f"{prefix}'s weights hold"))

    def finite(self, key, whose):
        """The array `key`, refused if it holds NaN or inf: a model that computes NaN
        samples NaN images and trains no further. Training never saves such a file
        (train.py checks first), so it was edited, or written by something else."""
        a = self.arrays[key]
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            name = key.split("/", 1)[1]          # "0.W", "1.running_var", "m/0" (optimizers)
            layer, _, param = name.rpartition(".")
            where = f"in layer {layer} ({param}: " if layer else f"in {name} ("
            raise CheckpointError(
                f"{self.path}: {whose} NaN/inf {where}{bad} of {a.size} values); this "
                f"checkpoint cannot be used: take an earlier one")
        return a

    def restore_optimizer(self, prefix, opt, backend):
        info = self.meta["optimizers"][prefix]
        state = {"hyper": info["hyper"], "step": info["step"]}
        for key, arrays in opt.state_arrays().items():
            count = sum(1 for k in self.headers if k.startswith(f"{prefix}/{key}/"))
            if count != len(arrays):
                raise CheckpointError(f"{self.path}: optimizer {prefix}: state '{key}' has "
                                      f"{count} arrays, expected {len(arrays)}")
            for i, a in enumerate(arrays):
                self.check(f"{prefix}/{key}/{i}", a.shape, _expected_dtype(backend))
        for key in opt.state_arrays():
            state[key] = [backend.asarray(self.finite(f"{prefix}/{key}/{i}",
                                                      f"{prefix}'s state holds"))
                          for i in range(len(opt.state_arrays()[key]))]
        if "betas" in state["hyper"]:
            state["hyper"]["betas"] = tuple(state["hyper"]["betas"])
        try:
            opt.load_state_dict(state)
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{self.path}: optimizer {prefix}: {err}") from err


class _Entries(Mapping):
    """The checkpoint's arrays by key, each read from the file when asked for (host)."""

    def __init__(self, path, headers):
        self.path, self.headers = path, headers

    def __getitem__(self, key):
        if key not in self.headers:
            raise KeyError(key)
        try:
            with np.load(self.path, allow_pickle=False) as f:
                return f[key]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise CheckpointError(f"{self.path}: cannot read {key} "
                                  f"({type(err).__name__}: {err})") from err

    def __iter__(self):
        return iter(self.headers)

    def __len__(self):
        return len(self.headers)


META_LIMIT = 64 * 2**20        # bytes: the JSON metadata of a checkpoint is a few KiB


def _read_headers(path, zf) -> dict:
    """{key: (shape, dtype)} from each entry's .npy header, reading no array data.

    Each header must describe plain numbers (no Python objects: reading those would
    unpickle) and agree with the bytes the zip file stores for the entry."""
    headers = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise CheckpointError(f"{path}: unexpected entry {info.filename!r}; "
                                  f"not an npgan checkpoint")
        key = info.filename[:-4]
        with zf.open(info) as f:
            version = npformat.read_magic(f)
            read = npformat.read_array_header_1_0 if version == (1, 0) \
                else npformat.read_array_header_2_0
            shape, _, dtype = read(f)
            header_bytes = f.tell()
        if dtype.hasobject:
            raise CheckpointError(
                f"{path} is not a readable npgan checkpoint ({key} holds Python objects, "
                f"which only unpickling could read; npgan loads with allow_pickle=False)")
        declared = math.prod(shape) * dtype.itemsize
        if declared != info.file_size - header_bytes:
            raise CheckpointError(
                f"{path}: {key} is declared as {dtype.name} {shape} ({declared} bytes), but "
                f"the file holds {info.file_size - header_bytes} bytes for it: corrupt")
        headers[key] = (tuple(shape), dtype)
    return headers


def load_checkpoint(path) -> Checkpoint:
    """Open a checkpoint written by save_checkpoint: its metadata and the header of each
    array, not yet their data. A clear CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":                       # every .npz is a zip file
            raise CheckpointError(f"{path} is not an .npz file, so not an npgan checkpoint")
    try:
        with zipfile.ZipFile(path) as zf:
            headers = _read_headers(path, zf)
    except CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise CheckpointError(
            f"{path} is not a readable npgan checkpoint ({type(err).__name__}: {err})"
        ) from err
    if "meta" not in headers:
        raise CheckpointError(f"{path} is an .npz file but not an npgan checkpoint (no 'meta')")
    shape, dtype = headers.pop("meta")
    if shape != () or dtype.kind != "U" or dtype.itemsize > META_LIMIT:
        raise CheckpointError(f"{path}: corrupt metadata (a {dtype.name} {shape} entry)")
    try:
        meta = json.loads(str(_Entries(path, {"meta": None})["meta"]))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: corrupt metadata ({err})") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')}, expected {FORMAT}")
    return Checkpoint(path, meta, headers)

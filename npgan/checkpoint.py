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
so a checkpoint cannot run code.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

from npgan.backend import host as np
from npgan.backend import to_numpy

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)                                  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)                     # never leave a half file
        raise
    return path


class Checkpoint:
    """A loaded checkpoint: .meta (dict) and host arrays by key; restore() fills models."""

    def __init__(self, path, meta, arrays):
        self.path, self.meta, self.arrays = Path(path), meta, arrays

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    def extra(self, name):
        return self.arrays.get(f"extra/{name}")

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
        for name, p in model.named_parameters():
            p.data[...] = backend.asarray(self.arrays[f"{prefix}/{name}"])
        for name, b in model.named_buffers():
            b[...] = backend.asarray(self.arrays[f"{prefix}@buffers/{name}"])

    def restore_optimizer(self, prefix, opt, backend):
        info = self.meta["optimizers"][prefix]
        state = {"hyper": info["hyper"], "step": info["step"]}
        for key in opt._state_arrays():
            count = sum(1 for k in self.arrays if k.startswith(f"{prefix}/{key}/"))
            state[key] = [backend.asarray(self.arrays[f"{prefix}/{key}/{i}"]) for i in range(count)]
        if "betas" in state["hyper"]:
            state["hyper"]["betas"] = tuple(state["hyper"]["betas"])
        try:
            opt.load_state_dict(state)
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{self.path}: optimizer {prefix}: {err}") from err


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by save_checkpoint; clear CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":                       # every .npz is a zip file
            raise CheckpointError(f"{path} is not an .npz file, so not an npgan checkpoint")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(
            f"{path} is not a readable npgan checkpoint ({type(err).__name__}: {err})"
        ) from err
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not an npgan checkpoint (no 'meta')")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: corrupt metadata ({err})") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')}, expected {FORMAT}")
    return Checkpoint(path, meta, arrays)

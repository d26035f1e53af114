"""The cures for an over-strong D, in training: separate learning rates (TTUR), instance
noise, spectral normalization of D, the prior of z. Each resumes exactly, and an older
checkpoint without their settings still loads with the defaults."""
import json

import numpy as np
import pytest

from npgan.checkpoint import load_checkpoint
from npgan.backend import get_backend
from npgan.train import ConfigError, TrainConfig, build_models, load_generator, train
from tests.backends import host

STEPS_PER_EPOCH = 4500 // 64    # mnist-5k's training split, batch 64: 70 steps


def tiny(tmp_path, **overrides):
    """A tiny GAN on the bundled digits (as in test_train.py)."""
    settings = dict(dataset="mnist-5k", epochs=2, latent_dim=8, g_hidden=(16,), d_hidden=(16,),
                    log_every=10, seed=3, out=str(tmp_path / "run"))
    settings.update(overrides)
    return TrainConfig(**settings)


def params(summary):
    return [p.data.copy() for m in (summary["G"], summary["D"]) for p in m.parameters()]


def strip_config(checkpoint, keys):
    """Rewrite a checkpoint as an older npgan wrote it: without the config keys `keys`."""
    with np.load(checkpoint, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    for key in keys:
        meta["config"].pop(key)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(checkpoint, "wb") as f:
        np.savez(f, **arrays)


# ------------------------------------------------------------------ TTUR
def test_each_optimizer_uses_its_own_learning_rate_and_a_resumed_run_keeps_them(tmp_path):
    rates = []
    record = lambda run: rates.append((run.opt_d.hyper["lr"], run.opt_g.hyper["lr"]))  # noqa: E731
    train(tiny(tmp_path, lr_d=4e-4, lr_g=1e-4, max_steps=1), progress=False, on_step=record)
    assert rates == [(4e-4, 1e-4)]
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert ck.config["lr_d"] == 4e-4 and ck.config["lr_g"] == 1e-4
    assert ck.meta["optimizers"]["opt_d"]["hyper"]["lr"] == 4e-4
    assert ck.meta["optimizers"]["opt_g"]["hyper"]["lr"] == 1e-4
    # read back from the optimizers of a resumed run (started here without the rates:
    # the checkpoint's optimizer state carries them)
    rates.clear()
    train(tiny(tmp_path, max_steps=3), resume=tmp_path / "run" / "checkpoint.npz",
          progress=False, on_step=record)
    assert rates == [(4e-4, 1e-4)] * 2


def test_the_rates_move_the_weights_by_their_size(tmp_path):
    """Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g), so after one step the
    largest change of a weight of D is lr_d, and of G, lr_g. Control: with one rate
    for both, G's weights move by lr_d too."""
    for lr_g in (1e-4, 4e-4):
        config = tiny(tmp_path / str(lr_g), lr_d=4e-4, lr_g=lr_g, max_steps=1)
        G, D = build_models(config, get_backend("numpy", seed=config.seed))  # the run's start
        before = {"G": [host(p.data) for p in G.parameters()],
                  "D": [host(p.data) for p in D.parameters()]}
        summary = train(config, progress=False)
        for name, lr in (("D", 4e-4), ("G", lr_g)):
            change = max(float(np.max(np.abs(host(p.data) - b)))
                         for p, b in zip(summary[name].parameters(), before[name]))
            assert abs(change - lr) < 0.01 * lr, (name, lr, change)  # float32 weights


def test_learning_rates_default_to_lr_and_must_be_positive(tmp_path):
    assert TrainConfig(lr=3e-4).learning_rates() == (3e-4, 3e-4)
    assert TrainConfig(lr=3e-4, lr_g=1e-4).learning_rates() == (3e-4, 1e-4)
    with pytest.raises(ConfigError, match=r"lr_d must be > 0 \(or None: the same as lr\), got 0"):
        train(tiny(tmp_path, lr_d=0), progress=False)


# ------------------------------------------------------------------ older checkpoints
NEW_KEYS = ("lr_d", "lr_g")


def test_a_checkpoint_without_the_new_settings_loads_with_the_defaults(tmp_path):
    train(tiny(tmp_path, max_steps=2), progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    strip_config(checkpoint, NEW_KEYS)
    assert not set(NEW_KEYS) & set(load_checkpoint(checkpoint).config)
    _, _, config = load_generator(checkpoint)
    defaults = TrainConfig()
    assert all(getattr(config, k) == getattr(defaults, k) for k in NEW_KEYS)
    resumed = train(tiny(tmp_path, max_steps=4), resume=checkpoint, progress=False)
    assert resumed["steps"] == 4

"""Checkpoints: round trip, atomic writes, no pickle, clear errors on bad files."""
import json
import os

import numpy as np
import pytest

from npgan import Adam, RMSprop, build_discriminator, build_generator, get_backend
from npgan import checkpoint as checkpoint_module
from npgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def models(be, hidden=(8,)):
    G = build_generator(be, latent_dim=4, hidden=hidden, out_dim=6)
    D = build_discriminator(be, in_dim=6, hidden=(5,))
    return G, D


def save(path, be, G, D, opt):
    return save_checkpoint(path, {"G": G, "D": D}, {"opt_g": opt},
                           {"config": {"latent_dim": 4}, "step": 7}, {"fixed_z": be.randn((2, 4))})


def test_round_trip_restores_parameters_and_optimizer_state(tmp_path):
    be = get_backend("numpy", seed=0)
    G, D = models(be)
    opt = Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for p in G.parameters():
        p.grad[...] = 1.0
    opt.step()
    save(tmp_path / "ck.npz", be, G, D, opt)

    G2, D2 = models(get_backend("numpy", seed=99))
    opt2 = Adam(G2.parameters(), lr=0.5)
    ck = load_checkpoint(tmp_path / "ck.npz")
    ck.restore_model("G", G2, be)
    ck.restore_model("D", D2, be)
    ck.restore_optimizer("opt_g", opt2, be)
    for a, b in zip(G.parameters() + D.parameters(), G2.parameters() + D2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert opt2.t == 1 and opt2.hyper["lr"] == 1e-3 and opt2.hyper["betas"] == (0.5, 0.999)
    for m1, m2 in zip(opt.m + opt.v, opt2.m + opt2.v):
        np.testing.assert_array_equal(m1, m2)
    assert ck.meta["step"] == 7 and ck.extra("fixed_z").shape == (2, 4)


def test_round_trip_restores_rmsprop_state(tmp_path):
    be = get_backend("numpy", seed=0)
    G, D = models(be)
    opt = RMSprop(G.parameters(), lr=5e-5, momentum=0.5, centered=True)
    for step in range(2):
        for p in G.parameters():
            p.grad[...] = be.randn(p.shape)
        opt.step()
    save(tmp_path / "ck.npz", be, G, D, opt)
    G2, _ = models(get_backend("numpy", seed=99))
    opt2 = RMSprop(G2.parameters(), lr=0.5, momentum=0.1, centered=True)
    load_checkpoint(tmp_path / "ck.npz").restore_optimizer("opt_g", opt2, be)
    assert opt2.t == 2 and opt2.hyper["lr"] == 5e-5 and opt2.hyper["momentum"] == 0.5
    for name, arrays in opt._state_arrays().items():
        for a, b in zip(arrays, opt2._state_arrays()[name]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="opt_g: saved with centered=True"):
        load_checkpoint(tmp_path / "ck.npz").restore_optimizer(
            "opt_g", RMSprop(G2.parameters(), momentum=0.5), be)
    with pytest.raises(CheckpointError, match="opt_g: "):          # an Adam state: no square_avg
        load_checkpoint(tmp_path / "ck.npz").restore_optimizer("opt_g", Adam(G2.parameters()), be)


def test_another_architecture_is_refused_with_the_reason(tmp_path):
    be = get_backend("numpy")
    G, D = models(be)
    save(tmp_path / "ck.npz", be, G, D, Adam(G.parameters()))
    G_wide, _ = models(be, hidden=(16,))
    with pytest.raises(CheckpointError, match=r"another architecture .*G\.0\.W: saved \[8, 4\], model \[16, 4\]"):
        load_checkpoint(tmp_path / "ck.npz").restore_model("G", G_wide, be)


def test_write_is_atomic_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    be = get_backend("numpy")
    G, D = models(be)
    path = save(tmp_path / "ck.npz", be, G, D, Adam(G.parameters()))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save(path, be, G, D, Adam(G.parameters()))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]             # no temporary file left behind


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array(json.dumps({"format": 1})), payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="not a readable npgan checkpoint.*allow_pickle=False"):
        load_checkpoint(path)


@pytest.mark.parametrize("content,message", [
    (None, "no checkpoint at"),
    (b"hello", "is not an .npz file"),
    ("truncated", "is not a readable npgan checkpoint"),
    ("no-meta", "not an npgan checkpoint \\(no 'meta'\\)"),
])
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "ck.npz"
    be = get_backend("numpy")
    G, D = models(be)
    if content == "truncated":
        full = save(tmp_path / "full.npz", be, G, D, Adam(G.parameters())).read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif content == "no-meta":
        np.savez(path, x=np.zeros(3))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)

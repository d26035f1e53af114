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
    for name, arrays in opt.state_arrays().items():
        for a, b in zip(arrays, opt2.state_arrays()[name]):
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


def rewrite_entry(src, dst, key, shape, data=None):
    """A copy of checkpoint `src` whose entry `key` declares `shape` (float32) in its
    .npy header; its data are `data` (raw bytes), or the old bytes if None."""
    import io
    import zipfile
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            raw = zin.read(info.filename)
            if info.filename == key + ".npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": shape})
                old = io.BytesIO(raw)
                np.lib.format.read_magic(old)
                np.lib.format.read_array_header_1_0(old)
                raw = header.getvalue() + (raw[old.tell():] if data is None else data)
            zout.writestr(info, raw)
    return dst


def test_an_enormous_declared_shape_is_refused_before_any_data_is_read(tmp_path):
    be = get_backend("numpy")
    G, D = models(be)
    good = save(tmp_path / "ck.npz", be, G, D, Adam(G.parameters()))
    bad = rewrite_entry(good, tmp_path / "bad.npz", "G/0.W", (100000, 100000))
    with pytest.raises(CheckpointError, match=r"G/0.W is declared as float32 \(100000, 100000\) "
                                              r"\(40000000000 bytes\), but the file holds 128"):
        load_checkpoint(bad)


def test_a_header_that_disagrees_with_the_model_is_refused_before_reading(tmp_path, monkeypatch):
    """A consistent entry (header and data agree) of the wrong shape: the model built
    from the config needs (8, 4); the file says (16, 4). Refused from the header alone."""
    be = get_backend("numpy")
    G, D = models(be)
    good = save(tmp_path / "ck.npz", be, G, D, Adam(G.parameters()))
    bad = rewrite_entry(good, tmp_path / "bad.npz", "G/0.W", (16, 4),
                        data=np.ones((16, 4), np.float32).tobytes())
    ck = load_checkpoint(bad)
    reads = []
    monkeypatch.setattr(type(ck.arrays), "__getitem__", lambda self, key: reads.append(key))
    G2, _ = models(get_backend("numpy", seed=1))
    with pytest.raises(CheckpointError, match=r"G/0.W is declared as float32 \(16, 4\), but the "
                                              r"model built from the checkpoint's config needs "
                                              r"float32 \(8, 4\)"):
        ck.restore_model("G", G2, be)
    assert reads == []                                     # not one array was read
    with pytest.raises(CheckpointError, match=r"extra/fixed_z is declared as float32 \(2, 4\), "
                                              r"but .* needs shape \(3, 4\)"):
        ck.extra("fixed_z", shape=(3, 4))


@pytest.mark.slow
def test_sample_refuses_a_crafted_checkpoint_in_one_line(tmp_path):
    """The command a user runs, with 4 GiB of address space: before the fix it tried
    to allocate 37 GiB and ended in a MemoryError traceback."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from npgan.config import TrainConfig
    from npgan.train import train
    train(TrainConfig(dataset="mnist-5k", max_steps=1, out=str(tmp_path / "run")), progress=False)
    bad = rewrite_entry(tmp_path / "run" / "checkpoint.npz", tmp_path / "bad.npz", "G/0.W",
                        (100000, 100000))

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    result = subprocess.run([sys.executable, "-m", "npgan", "sample", str(bad), "-n", "4",
                             "-o", str(tmp_path / "x.npy")], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=120,
                            preexec_fn=limit_memory)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert result.stderr.startswith(f"error: {bad}: G/0.W is declared as float32 (100000, 100000)")
    assert not (tmp_path / "x.npy").exists()

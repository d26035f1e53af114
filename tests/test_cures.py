"""The cures for an over-strong D, in training: separate learning rates (TTUR), instance
noise, spectral normalization of D, the prior of z. Each resumes exactly, and an older
checkpoint without their settings still loads with the defaults."""
import json

import numpy as np
import pytest

from npgan.checkpoint import CheckpointError, load_checkpoint
from npgan import (SpectralNorm, build_discriminator, build_generator, d_loss, d_step, g_step,
                   get_g_loss, numerical_grad)
from npgan.backend import get_backend
from npgan.config import ConfigError, TrainConfig, resume_config
from npgan.noise import instance_noise_sigma, sample_z
from npgan.gradcheck import assert_gradients_ok, compare
from npgan.models import build_models, generate, load_generator
from npgan.train import train
from tests.backends import ALL_SPECS, FLOAT64_SPECS, host, make_backend
from tests.test_train import STEPS_PER_EPOCH, params, tiny   # the tiny GAN of the loop tests


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
@pytest.mark.slow
def test_each_optimizer_uses_its_own_learning_rate_and_a_resumed_run_keeps_them(tmp_path):
    rates = []
    record = lambda run: rates.append((run.opt_d.hyper["lr"], run.opt_g.hyper["lr"]))  # noqa: E731
    train(tiny(tmp_path, lr_d=4e-4, lr_g=1e-4, max_steps=1), progress=False, on_step=record)
    assert rates == [(4e-4, 1e-4)]
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert ck.config["lr_d"] == 4e-4 and ck.config["lr_g"] == 1e-4
    assert ck.meta["optimizers"]["opt_d"]["hyper"]["lr"] == 4e-4
    assert ck.meta["optimizers"]["opt_g"]["hyper"]["lr"] == 1e-4
    # read back from the optimizers of a resumed run, whose settings come from the checkpoint
    rates.clear()
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    config = resume_config(checkpoint, max_steps=3)[0]
    assert (config.lr_d, config.lr_g) == (4e-4, 1e-4)
    train(config, resume=checkpoint, progress=False, on_step=record)
    assert rates == [(4e-4, 1e-4)] * 2
    with pytest.raises(CheckpointError, match=r"saved with lr_d=0.0004, lr_g=0.0001, but this "
                                              r"run has lr_d=None, lr_g=None"):
        train(tiny(tmp_path, max_steps=3), resume=checkpoint, progress=False)


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
NEW_KEYS = ("lr_d", "lr_g", "instance_noise", "spectral_norm", "prior")


@pytest.mark.slow
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


# ------------------------------------------------------------------ instance noise
def test_the_noise_schedule_falls_linearly_to_zero_at_the_last_step():
    T = 101
    sigmas = [instance_noise_sigma(0.3, t, T) for t in range(T)]
    assert sigmas[0] == 0.3 and sigmas[-1] == 0.0 and sigmas[50] == pytest.approx(0.15)
    assert np.allclose(np.diff(sigmas), -0.3 / (T - 1))                 # linear
    assert instance_noise_sigma(0.0, 0, T) == 0.0 and instance_noise_sigma(0.3, 0, 1) == 0.0


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_noisy_updates_have_the_gradients_of_the_noisy_losses(spec):
    """D-update: D's grads == numerical gradient of d_loss(D(x + n_r), D(G(z) + n_f)).
    G-update: G's grads == numerical gradient of L_G(D(G(z) + n)) with n fixed: the
    gradient passes through the noisy input unchanged. Control: a G-update that ignores
    the noise fails the same check."""
    from npgan import SGD
    be = make_backend(spec, "float64", seed=21)
    G = build_generator(be, latent_dim=3, hidden=(6,), out_dim=5)
    D = build_discriminator(be, in_dim=5, hidden=(7,))
    x_real, z = be.uniform(-1, 1, (4, 5)), be.randn((4, 3))
    n_real, n_fake = be.randn((4, 5)), be.randn((4, 5))
    d_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, 0.9, noise=(n_real, n_fake))
    x_fake = G.forward(z)

    def loss_d():
        return d_loss(D.forward(x_real + n_real), D.forward(x_fake + n_fake), 0.9)[0]

    assert_gradients_ok([compare(f"D.{k}", p.grad, numerical_grad(loss_d, p.data), 1e-5, 1e-8)
                         for k, p in D.named_parameters()])

    loss_fn = get_g_loss("non-saturating")

    def loss_g():
        return loss_fn(D.forward(G.forward(z) + n_fake))[0]

    for noise, ok in ((n_fake, True), (None, False)):
        g_step(G, D, SGD(G.parameters(), lr=0.0), z, noise=noise)
        reports = [compare(f"G.{k}", p.grad, numerical_grad(loss_g, p.data), 1e-5, 1e-8)
                   for k, p in G.named_parameters()]
        assert all(r.ok for r in reports) == ok, "\n".join(map(str, reports))


@pytest.mark.slow
def test_instance_noise_is_logged_reaches_zero_and_resumes_exactly(tmp_path):
    full = train(tiny(tmp_path / "a", instance_noise=0.3), progress=False)
    records = [json.loads(line) for line in
               (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()]
    T = 2 * STEPS_PER_EPOCH
    assert records[0]["step"] == 10
    assert records[0]["instance_noise"] == pytest.approx(0.3 * (T - 1 - 9) / (T - 1))
    assert records[-1]["step"] == T and records[-1]["instance_noise"] == 0.0
    first = train(tiny(tmp_path / "b", instance_noise=0.3, max_steps=45), progress=False)
    resumed = train(tiny(tmp_path / "b", instance_noise=0.3),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    assert first["steps"] == 45 and resumed["steps"] == full["steps"]
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    # control: the noise changes the run, and a run without it logs no sigma
    clean = train(tiny(tmp_path / "c", max_steps=45), progress=False)
    assert not all(np.array_equal(a, b) for a, b in zip(params(first), params(clean)))
    line = (tmp_path / "c" / "run" / "metrics.jsonl").read_text().splitlines()[0]
    assert "instance_noise" not in json.loads(line)


def test_instance_noise_must_be_a_small_non_negative_sigma(tmp_path):
    with pytest.raises(ConfigError, match=r"instance_noise must be a sigma in \[0, 10\)"):
        train(tiny(tmp_path, instance_noise=-0.1), progress=False)


# ------------------------------------------------------------------ spectral normalization
@pytest.mark.slow
def test_spectral_norm_trains_checkpoints_u_and_resumes_exactly(tmp_path):
    full = train(tiny(tmp_path / "a", spectral_norm=True), progress=False)
    first = train(tiny(tmp_path / "b", spectral_norm=True, max_steps=45), progress=False)
    resumed = train(tiny(tmp_path / "b", spectral_norm=True),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    assert first["steps"] == 45 and resumed["steps"] == full["steps"]
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    for (name, a), (_, b) in zip(full["D"].named_buffers(), resumed["D"].named_buffers()):
        np.testing.assert_array_equal(a, b, err_msg=name)                  # u and v too
    ck = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")
    assert {"D@buffers/0.u", "D@buffers/0.v", "D@buffers/2.u"} <= set(ck.arrays)
    # every D weight's largest singular value, W / sigma, is about 1 after training
    for layer in full["D"].layers[::2]:
        W_sn = host(layer.layer.W.data)
        assert abs(np.linalg.svd(W_sn, compute_uv=False)[0] - 1.0) < 0.05
    from npgan.checkpoint import CheckpointError
    # without spectral norm, the MLP's D takes R1 by default: both differences are named
    with pytest.raises(CheckpointError, match="saved with spectral_norm=True, r1=0.0, but this "
                                              "run has spectral_norm=False, r1=10.0"):
        train(tiny(tmp_path / "a"), resume=tmp_path / "a" / "run" / "checkpoint.npz",
              progress=False)


def test_a_dcgan_with_spectral_norm_trains_and_resumes(tmp_path):
    config = dict(model="dcgan", base_channels=4, spectral_norm=True)
    train(tiny(tmp_path, max_steps=3, **config), progress=False)
    resumed = train(tiny(tmp_path, max_steps=5, **config),
                    resume=tmp_path / "run" / "checkpoint.npz", progress=False)
    assert resumed["steps"] == 5
    assert sum(isinstance(layer, SpectralNorm) for layer in resumed["D"].layers) == 3


# ------------------------------------------------------------------ the prior of z
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_the_uniform_prior_lies_in_minus_1_1_and_the_normal_one_does_not(spec):
    be = make_backend(spec, "float32", seed=12)
    z = host(sample_z(be, 2000, 8, "uniform"))
    assert z.shape == (2000, 8) and z.dtype == np.float32
    assert -1.0 <= z.min() < -0.99 and 0.99 < z.max() < 1.0
    assert abs(z.std() - 1 / np.sqrt(3)) < 0.01                     # U(-1, 1): 1/sqrt(3)
    normal = host(sample_z(be, 2000, 8, "normal"))
    assert np.abs(normal).max() > 2.5 and abs(normal.std() - 1.0) < 0.02
    with pytest.raises(ValueError, match="unknown prior 'cauchy'; valid: normal, uniform"):
        sample_z(be, 2, 8, "cauchy")


def test_training_draws_z_from_the_prior(monkeypatch):
    """Every z that G gets in a train step (D- and G-update) is uniform."""
    be = get_backend("numpy", seed=13)
    G, D = build_generator(be, latent_dim=8, hidden=(16,)), build_discriminator(be, hidden=(16,))
    seen = []
    forward = G.forward
    monkeypatch.setattr(G, "forward", lambda z: seen.append(z.copy()) or forward(z))
    from npgan import Adam, train_step
    train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), [be.uniform(-1, 1, (64, 784))] * 2,
               be, latent_dim=8, prior="uniform")
    assert len(seen) == 3
    z = np.concatenate(seen)
    assert np.abs(z).max() <= 1.0 and abs(z.std() - 1 / np.sqrt(3)) < 0.03


def test_sample_and_evaluate_draw_from_the_checkpoints_prior(tmp_path, monkeypatch):
    from npgan import __main__ as cli
    train(tiny(tmp_path, prior="uniform", max_steps=2), progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    assert np.abs(load_checkpoint(checkpoint).extra("fixed_z")).max() <= 1.0
    cli.main(["sample", str(checkpoint), "-n", "6", "-o", str(tmp_path / "s.npy")])
    images = np.load(tmp_path / "s.npy")
    G, be, config = load_generator(checkpoint, seed=0)
    assert config.prior == "uniform"
    np.testing.assert_array_equal(images, generate(G, be, 6, 8, prior="uniform"))
    G, be, _ = load_generator(checkpoint, seed=0)
    assert not np.array_equal(images, generate(G, be, 6, 8, prior="normal"))     # control
    calls = []
    import npgan.metrics
    monkeypatch.setattr(npgan.metrics, "evaluate_generator",
                        lambda *a, **k: calls.append(k) or {"stop": True})
    monkeypatch.setattr(npgan.metrics, "format_table", lambda result: "")
    monkeypatch.setattr(npgan.metrics, "collapse_warning", lambda result: None)
    cli.main(["evaluate", str(checkpoint), "--n", "10"])
    assert calls[0]["prior"] == "uniform"


@pytest.mark.slow
def test_evaluate_generator_feeds_g_the_prior_it_is_given():
    from npgan.classifier import load_or_train_classifier
    from npgan.metrics import evaluate_generator, reference_statistics
    be = get_backend("numpy", seed=14)
    model = load_or_train_classifier("mnist-5k", be)                  # shipped: no training
    G = build_generator(be, latent_dim=8, hidden=(16,))
    seen = []
    forward = G.forward
    G.forward = lambda z: seen.append(z.copy()) or forward(z)
    reference = reference_statistics(model, be, "mnist-5k")
    for prior in ("uniform", "normal"):
        seen.clear()
        evaluate_generator(G, be, "mnist-5k", n=200, classifier=model, reference=reference,
                           prior=prior)
        z = np.concatenate(seen)
        assert z.shape == (200, 8) and (np.abs(z).max() <= 1.0) == (prior == "uniform")


# ------------------------------------------------------------------ all of them, on a "GPU"
def test_every_cure_trains_on_device1_reading_the_device_only_at_logging_points(tmp_path,
                                                                               monkeypatch):
    """array-api-strict's device1 refuses implicit conversion to NumPy, like CuPy: the
    cures run there, and add no host transfer between logging points (sigma is a host
    float computed from the step count)."""
    from npgan import train as train_module
    monkeypatch.setattr(train_module, "get_backend",
                        lambda name, dtype, seed: get_backend("array-api-strict", dtype=dtype,
                                                              seed=seed, device="device1"))
    transfers = []
    summary = train(tiny(tmp_path, epochs=1, max_steps=12, log_every=5, lr_d=4e-4, lr_g=1e-4,
                         instance_noise=0.1, spectral_norm=True, prior="uniform"),
                    progress=False, on_step=lambda run: transfers.append(run.be.host_transfers))
    per_step = np.diff([0] + transfers)
    assert list(np.nonzero(per_step)[0]) == [5, 10], per_step
    assert summary["steps"] == 12
    records = [json.loads(line) for line in
               (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 12]
    assert 0.0 < records[-1]["instance_noise"] < records[0]["instance_noise"] < 0.1


def test_the_flags_reach_the_checkpoint_from_the_command_line(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "train_mnist.py"
    spec = importlib.util.spec_from_file_location("train_mnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--dataset", "mnist-5k", "--dry-run", "--out", str(tmp_path), "--lr-d", "4e-4",
                  "--lr-g", "1e-4", "--instance-noise", "0.1", "--spectral-norm",
                  "--prior", "uniform"])
    assert "done: 3 steps" in capsys.readouterr().out
    config = load_checkpoint(tmp_path / "checkpoint.npz").config
    assert (config["lr_d"], config["lr_g"], config["instance_noise"], config["spectral_norm"],
            config["prior"]) == (4e-4, 1e-4, 0.1, True, "uniform")


def test_the_cure_studies_of_compare_settings_are_valid_settings():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "compare_settings.py"
    spec = importlib.util.spec_from_file_location("compare_settings", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for study in ("cures", "cures-on-default", "critics"):
        settings = script.STUDIES[study]
        assert len(settings) >= (4 if study == "critics" else 6)
        for name, (changes, variant) in settings.items():
            TrainConfig(**changes).validate()
            assert variant in ("raw", "ema"), name
    names = [script.run_name(c, 0) for c, _ in script.STUDIES["cures"].values()]
    assert len(set(names)) == len(names)                  # no two settings share a run

"""The cures of issue 25 in training: R1, differentiable augmentation and minibatch stddev
wired into d_step, g_step and critic_step (gradients against central differences in
float64, with the augmentation's random draws held fixed), into the models, the config,
the command line and the checkpoint (exact resume, older checkpoints)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from npgan import SGD, Adam, build_discriminator, build_generator, d_loss, d_step, g_step
from npgan import get_g_loss, numerical_grad, train_step
from npgan.augment import POLICIES, DiffAugment
from npgan.backend import get_backend
from npgan.checkpoint import CheckpointError, load_checkpoint
from npgan.config import DIFFAUG_POLICIES, R1_DEFAULTS, ConfigError, TrainConfig, resume_config
from npgan.dcgan import build_dcgan_discriminator
from npgan.gan import StepSettings
from npgan.gradcheck import compare, directional_check
from npgan.losses import wasserstein_d_loss
from npgan.mbstd import MinibatchStd
from npgan.models import build_models, load_generator
from npgan.norm import BatchNorm2d
from npgan.train import train
from npgan.wgan import critic_step, interpolate
from tests.backends import FLOAT64_SPECS, host, make_backend
from tests.test_cures import strip_config
from tests.test_double_backward import penalty_of
from tests.test_r1 import r1_of
from tests.test_train import params, tiny

ROOT = Path(__file__).resolve().parents[1]
SIDE = 4                                   # tiny 1 x 4 x 4 images: P = 16
P, Z = SIDE * SIDE, 3
CURES = dict(r1=10.0, diffaug="translation,cutout,color", mbstd=True)


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """A DiffAugment that keeps what it showed D, so the numerical side of a check can
    score the very same augmented images."""

    def __init__(self, augment):
        self.augment, self.policy, self.shown = augment, augment.policy, []

    def forward(self, x):
        self.shown.append(self.augment.forward(x))
        return self.shown[-1]

    def backward(self, dout):
        return self.augment.backward(dout)


class ForgetsTheLink(DiffAugment):
    """The control: an augmentation whose backward does not go back through the
    transform (it returns the gradient at the augmented image as it is)."""

    def backward(self, dout, param_grads=True, input_grad=True):
        super().backward(dout, input_grad=input_grad)
        return dout


def tiny_gan(be, mbstd=False):
    G = build_generator(be, latent_dim=Z, hidden=(6,), out_dim=P)
    D = build_discriminator(be, in_dim=P, hidden=(7,), mbstd=mbstd)
    return G, D


def grad_reports(model, loss, prefix, be):
    """Every parameter's grad vs central differences of loss(); elementwise on NumPy, along
    one random direction per parameter elsewhere (two calls of loss, not 2 per element:
    array-api-strict is slow, and CuPy's per-element loop would be too)."""
    if be.name == "numpy":
        return [compare(f"{prefix}.{name}", p.grad, numerical_grad(loss, p.data), 1e-5, 1e-8)
                for name, p in model.named_parameters()]
    return [directional_check(f"{prefix}.{name}", loss, p.data, p.grad,
                              be.randn(tuple(p.shape)), rtol=1e-5, atol=1e-8)
            for name, p in model.named_parameters()]


# ------------------------------------------------------------------ the steps
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("mbstd", [False, True], ids=["D", "D+mbstd"])
def test_d_step_has_the_gradient_of_bce_plus_r1_at_the_augmented_images(spec, mbstd):
    """D's grads == central differences of
        d_loss(D(T(x)), D(T'(G(z)))) + gamma/2 mean ||grad D(T(x))||^2
    with T, T' the two draws the step made. Control: the same step without R1 fails."""
    be = make_backend(spec, "float64", seed=31)
    G, D = tiny_gan(be, mbstd)
    x_real, z = be.uniform(-1, 1, (5, P)), be.randn((5, Z))
    for gamma, ok in ((10.0, True), (0.0, False)):
        augment = Recorder(DiffAugment("translation,cutout,color", be, (1, SIDE, SIDE)))
        stats = d_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, 0.9, augment=augment,
                       r1=gamma)
        seen_real, seen_fake = augment.shown

        def loss():
            return d_loss(D.forward(seen_real), D.forward(seen_fake), 0.9)[0] + \
                r1_of(D, seen_real, 10.0)

        reports = grad_reports(D, loss, "D", be)
        assert all(r.ok for r in reports) == ok, "\n".join(map(str, reports))
        assert ("r1" in stats) == ok
    assert float(stats["loss_d"]) == pytest.approx(
        float(d_loss(D.forward(seen_real), D.forward(seen_fake), 0.9)[0]))   # the BCE alone
    assert not np.array_equal(host(seen_real), host(x_real))                # it did augment


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("mbstd", [False, True], ids=["D", "D+mbstd"])
def test_g_step_gradient_comes_back_through_the_augmentation(spec, mbstd):
    """G's grads == central differences of L_G(D(T(G(z)))) with T's draw held fixed (the
    generator's state is rewound before each evaluation); D is left bit-identical.
    Control: an augmentation whose backward skips T's Jacobian fails the check."""
    be = make_backend(spec, "float64", seed=32)
    G, D = tiny_gan(be, mbstd)
    z = be.randn((6, Z))
    loss_fn = get_g_loss("non-saturating")
    D_before = [host(p.data).copy() for p in D.parameters()]
    for make, ok in ((DiffAugment, True), (ForgetsTheLink, False)):
        augment = make("translation,cutout,color", be, (1, SIDE, SIDE))
        state = be.rng_state()
        g_step(G, D, SGD(G.parameters(), lr=0.0), z, augment=augment)

        def loss():
            be.set_rng_state(state)                       # the same draw of T
            return loss_fn(D.forward(augment.forward(G.forward(z))))[0]

        reports = grad_reports(G, loss, "G", be)
        assert all(r.ok for r in reports) == ok, "\n".join(map(str, reports))
    for before, p in zip(D_before, D.parameters()):
        np.testing.assert_array_equal(host(p.data), before)
        assert not np.any(host(p.grad))                   # D frozen: no grads computed


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_wgan_gp_critic_scores_and_interpolates_the_augmented_images(spec):
    """The critic's grads == central differences of mean D(T'(G(z))) - mean D(T(x))
    + lambda mean (||grad D(x_hat)|| - 1)^2, x_hat between T(x) and T'(G(z)).
    Control: interpolates between the images before augmentation fail it."""
    be = make_backend(spec, "float64", seed=33)
    G, D = tiny_gan(be)
    x_real, z, eps = be.uniform(-1, 1, (5, P)), be.randn((5, Z)), be.uniform(0, 1, (5, 1))
    augment = Recorder(DiffAugment("translation,cutout", be, (1, SIDE, SIDE)))
    critic_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, "wgan-gp", eps, 10.0,
                augment=augment)
    seen_real, seen_fake = augment.shown
    for ends, ok in (((seen_real, seen_fake), True), ((x_real, G.forward(z)), False)):
        def loss():
            return wasserstein_d_loss(D.forward(seen_real), D.forward(seen_fake))[0] + \
                penalty_of(D, interpolate(*ends, eps), 10.0)

        reports = grad_reports(D, loss, "D", be)
        assert all(r.ok for r in reports) == ok, "\n".join(map(str, reports))


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_a_conditional_gan_takes_every_cure_in_one_train_step(model):
    be = get_backend("numpy", dtype="float64", seed=34)
    config = TrainConfig(model=model, conditional=True, latent_dim=4, g_hidden=(8,),
                         d_hidden=(8,), base_channels=2, **CURES)
    G, D = build_models(config, be)
    assert sum(isinstance(layer, MinibatchStd) for layer in D.layers) == 1
    stats = train_step(G, D, Adam(G.parameters()), Adam(D.parameters()),
                       [be.uniform(-1, 1, (6, 784))], be, StepSettings.from_config(config),
                       real_labels=[be.asarray(np.arange(6) % 10)])
    assert {"r1", "r1_grad_norm", "loss_g", "d_fake_g"} <= set(stats)
    assert all(np.isfinite(float(v)) for v in stats.values())
    assert float(stats["r1"]) > 0.0


def test_steps_refuse_noise_with_augmentation_and_a_policy_that_is_not_the_settings():
    be = get_backend("numpy", dtype="float64", seed=35)
    G, D = tiny_gan(be)
    augment = DiffAugment("translation", be, (1, SIDE, SIDE))
    x, z = be.uniform(-1, 1, (4, P)), be.randn((4, Z))
    with pytest.raises(ValueError, match="instance noise and differentiable augmentation"):
        d_step(G, D, SGD(D.parameters()), x, z, noise=(x * 0.0, x * 0.0), augment=augment)
    with pytest.raises(ValueError, match="instance noise and differentiable augmentation"):
        StepSettings(latent_dim=Z, instance_noise=0.1, diffaug="cutout")
    with pytest.raises(ValueError, match=r"r1 is a gamma >= 0 for the GAN's D .* loss 'hinge'"):
        StepSettings(latent_dim=Z, loss="hinge", r1=1.0)
    with pytest.raises(ValueError, match=r"settings.diffaug is 'cutout'; make them the same"):
        train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), [x], be, latent_dim=Z,
                   diffaug="cutout", augment=augment)


# ------------------------------------------------------------------ the models
def test_mbstd_sits_before_the_last_linear_which_takes_one_more_input():
    be = get_backend("numpy", seed=36)
    D = build_discriminator(be, hidden=(16, 8), mbstd=True)
    assert isinstance(D.layers[-2], MinibatchStd) and D.layers[-1].W.shape == (1, 9)
    assert D.forward(be.uniform(-1, 1, (5, 784))).shape == (5, 1)
    c = 3
    D = build_dcgan_discriminator(be, base_channels=c, mbstd=True)
    kinds = [type(layer).__name__ for layer in D.layers]
    assert kinds[-4:] == ["LeakyReLU", "MinibatchStd", "Flatten", "Linear"]
    assert D.layers[-1].W.shape == (1, (2 * c + 1) * 7 * 7)
    assert D.forward(be.uniform(-1, 1, (5, 784))).shape == (5, 1)
    assert not any(isinstance(layer, MinibatchStd)                 # control: off by default
                   for layer in build_dcgan_discriminator(be, base_channels=c).layers)


@pytest.mark.parametrize("changes, batchnorm", [
    ({"r1": 0.0}, True), ({}, False), ({"r1": 10.0}, False),
    ({"r1": 0.0, "d_batchnorm": False}, False), ({"loss": "wgan-gp", "label_smoothing": 0.0}, False),
    ({"r1": 0.0, "mbstd": True}, True), ({"spectral_norm": True}, True)])
def test_the_dcgan_d_has_batchnorm_unless_a_penalty_or_the_flag_removes_it(changes, batchnorm):
    config = TrainConfig(model="dcgan", base_channels=2, **changes)
    config.validate()
    _, D = build_models(config, get_backend("numpy", seed=37))
    assert any(isinstance(layer, BatchNorm2d) for layer in D.layers) == batchnorm


def test_r1_refuses_a_d_it_cannot_pass_through_naming_the_layer():
    be = get_backend("numpy", seed=38)
    G = build_generator(be, latent_dim=Z, hidden=(6,), out_dim=784)
    D = build_dcgan_discriminator(be, base_channels=2)                 # with BatchNorm
    with pytest.raises(NotImplementedError, match=r"layer 4 of D, BatchNorm2d.*batchnorm=False"):
        d_step(G, D, SGD(D.parameters()), be.uniform(-1, 1, (4, 784)), be.randn((4, Z)), r1=1.0)


# ------------------------------------------------------------------ config and command line
def test_the_config_names_the_same_policies_as_the_augmentation():
    assert DIFFAUG_POLICIES == tuple(POLICIES)


@pytest.mark.parametrize("changes, message", [
    ({"r1": -1.0}, r"r1 must be a gamma >= 0 \(0 = off; e.g. 10\), got -1.0"),
    ({"r1": True}, r"r1 must be a gamma >= 0"),
    ({"r1": 10.0, "spectral_norm": True},
     r"r1=10.0 \(--r1\) needs the double backward .* spectral_norm \(--spectral-norm\) has none"),
    ({"r1": 1.0, "loss": "hinge", "label_smoothing": 0.0},
     r"r1=1.0 \(--r1\) is a penalty on the GAN's D .* not on the hinge critic"),
    ({"diffaug": "translation,rotate"},
     r"diffaug='translation,rotate': give each of translation, cutout, color at most once"),
    ({"diffaug": "cutout,cutout"}, r"diffaug='cutout,cutout': give each"),
    ({"diffaug": 3}, r"diffaug must be a policy string"),
    ({"diffaug": "cutout", "instance_noise": 0.1},
     r"diffaug='cutout' \(--diffaug\) and instance_noise=0.1 \(--instance-noise\) both change"),
    ({"mbstd": 1}, r"mbstd must be True or False, got 1"),
    ({"d_batchnorm": False}, r"d_batchnorm=False \(--no-d-batchnorm\) is for the DCGAN's D"),
])
def test_bad_cure_settings_are_refused_naming_what_was_typed(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_good_cure_settings_pass_and_are_described_at_the_start():
    config = TrainConfig(model="dcgan", **CURES)
    config.validate()
    line = config.describe_loss()
    assert ("with R1 gamma 10, DiffAugment translation,cutout,color, minibatch stddev in D, "
            "D without BatchNorm") in line
    # the default: R1 on both models (R1_DEFAULTS), and so the DCGAN's D without BatchNorm
    assert TrainConfig().describe_loss().split("k = 1")[1] == "; with R1 gamma 10"
    assert TrainConfig(model="dcgan").describe_loss().split("k = 1")[1] == (
        "; with R1 gamma 10, D without BatchNorm")
    assert "with" not in TrainConfig(model="dcgan", r1=0.0).describe_loss().split("k = 1")[1]


def test_the_flags_set_the_fields():
    example = load_example("train_mnist")
    args, typed = example.parse_args(["--r1", "10", "--diffaug", "translation,cutout",
                                      "--mbstd", "--model", "dcgan", "--no-d-batchnorm"])
    assert (args.r1, args.diffaug, args.mbstd, args.d_batchnorm) == (
        10.0, "translation,cutout", True, False)
    assert {"r1", "diffaug", "mbstd", "d_batchnorm"} <= typed
    args, typed = example.parse_args([])
    assert (args.r1, args.diffaug, args.mbstd, args.d_batchnorm) == (None, "", False, True)
    assert not {"r1", "diffaug", "mbstd", "d_batchnorm"} & typed     # None: the model's default


def test_r1_defaults_to_the_measured_gamma_where_r1_can_be():
    """r1=None takes R1_DEFAULTS[model] for the GAN's D, 0 for a critic or a spectrally
    normalized D (no double backward), and is fixed at construction, so the run and
    its checkpoint say the gamma used; a given gamma, 0 included, stays."""
    assert TrainConfig().r1 == R1_DEFAULTS["mlp"] == 10.0
    assert TrainConfig(model="dcgan").r1 == R1_DEFAULTS["dcgan"] == 10.0
    assert TrainConfig(conditional=True).r1 == 10.0
    for config in (TrainConfig.for_loss("wgan-gp"), TrainConfig.for_loss("hinge"),
                   TrainConfig(spectral_norm=True)):
        assert config.r1 == 0.0
        config.validate()                                     # the default never clashes
    assert TrainConfig(r1=0.0).r1 == 0.0 and TrainConfig(r1=3.0, model="dcgan").r1 == 3.0
    assert TrainConfig().to_dict()["r1"] == 10.0


def test_the_new_studies_of_compare_settings_are_valid_and_distinct():
    script = load_example("compare_settings")
    for study, model in (("data-efficient", "mlp"), ("data-efficient-dcgan", "dcgan")):
        settings = script.STUDIES[study]
        assert len(settings) >= 5
        for name, (changes, variant) in settings.items():
            TrainConfig(model=model, **changes).validate()
            assert variant == "ema", name
        names = [script.run_name(c, 0) for c, _ in settings.values()]
        assert len(set(names)) == len(names)
    dcgan = script.STUDIES["data-efficient-dcgan"]
    assert any(c.get("d_batchnorm") is False and not c.get("r1") for c, _ in dcgan.values())


# ------------------------------------------------------------------ training, resuming
@pytest.mark.slow
def test_r1_is_logged_only_when_on_and_a_resume_cannot_change_a_cure(tmp_path):
    train(tiny(tmp_path / "a", max_steps=2, log_every=1, **CURES), progress=False)
    record = json.loads((tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["r1"] > 0 and record["r1_grad_norm"] > 0
    checkpoint = tmp_path / "a" / "run" / "checkpoint.npz"
    assert {k: load_checkpoint(checkpoint).config[k] for k in CURES} == CURES
    for change in ({"r1": 1.0}, {"diffaug": "cutout"}, {"mbstd": False}):
        with pytest.raises(ConfigError, match=f"cannot resume .* with {next(iter(change))}="):
            resume_config(checkpoint, **change)
    with pytest.raises(CheckpointError, match=r"saved with r1=10.0, diffaug=.*mbstd=True"):
        train(tiny(tmp_path / "a", max_steps=3, r1=0.0), resume=checkpoint, progress=False)
    train(tiny(tmp_path / "b", max_steps=1, log_every=1, r1=0.0), progress=False)  # control
    record = json.loads((tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "r1" not in record and "r1_grad_norm" not in record


@pytest.mark.slow
def test_a_checkpoint_without_the_cure_settings_loads_with_them_off(tmp_path):
    """An MLP run saved before npgan had the cures ran without them: it loads and
    resumes with R1 off, although R1 is on by default on the MLP today."""
    keys = ("r1", "diffaug", "mbstd", "d_batchnorm")
    train(tiny(tmp_path, max_steps=2, r1=0.0), progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    strip_config(checkpoint, keys)
    assert not set(keys) & set(load_checkpoint(checkpoint).config)
    _, _, config = load_generator(checkpoint)
    assert (config.r1, config.diffaug, config.mbstd, config.d_batchnorm) == (0.0, "", False, True)
    assert TrainConfig().r1 == 10.0                                   # not today's default
    config, _, _ = resume_config(checkpoint, max_steps=3)             # as --resume builds it
    assert config.r1 == 0.0 and train(config, resume=checkpoint, progress=False)["steps"] == 3


@pytest.mark.slow
def test_the_mlp_with_every_cure_resumes_bit_identically_mid_epoch(tmp_path):
    full = train(tiny(tmp_path / "a", epochs=1, **CURES), progress=False)
    first = train(tiny(tmp_path / "b", epochs=1, max_steps=30, **CURES), progress=False)
    resumed = train(tiny(tmp_path / "b", epochs=1, **CURES),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    assert first["steps"] == 30 and resumed["steps"] == full["steps"] == 70
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    plain = train(tiny(tmp_path / "c", epochs=1), progress=False)           # control
    assert not any(np.array_equal(a, b) for a, b in zip(params(full)[:2], params(plain)[:2]))


@pytest.mark.slow
def test_the_dcgan_with_r1_and_diffaug_resumes_bit_identically(tmp_path):
    cures = dict(model="dcgan", base_channels=4, r1=10.0, diffaug="translation,cutout,color")
    full = train(tiny(tmp_path / "a", max_steps=6, **cures), progress=False)
    train(tiny(tmp_path / "b", max_steps=3, **cures), progress=False)
    resumed = train(tiny(tmp_path / "b", max_steps=6, **cures),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    assert resumed["steps"] == full["steps"] == 6
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_the_cures_run_on_device1_reading_the_device_only_at_logging_points(tmp_path,
                                                                           monkeypatch):
    """array-api-strict's device1 refuses implicit conversion to NumPy, as CuPy does."""
    from npgan import train as train_module
    monkeypatch.setattr(train_module, "get_backend",
                        lambda name, dtype, seed: get_backend("array-api-strict", dtype=dtype,
                                                              seed=seed, device="device1"))
    transfers = []
    summary = train(tiny(tmp_path, epochs=1, max_steps=10, log_every=4, **CURES),
                    progress=False, on_step=lambda run: transfers.append(run.be.host_transfers))
    # on_step runs before the step's logging: the reads after steps 4 and 8 show at 5 and 9
    assert list(np.nonzero(np.diff([0] + transfers))[0]) == [4, 8]
    assert summary["steps"] == 10


@pytest.mark.slow
def test_the_flags_reach_the_checkpoint_from_the_command_line(tmp_path, capsys):
    example = load_example("train_mnist")
    example.main(["--dataset", "mnist-5k", "--dry-run", "--out", str(tmp_path), "--r1", "10",
                  "--diffaug", "translation,cutout", "--mbstd"])
    out = capsys.readouterr().out
    assert "done: 3 steps" in out
    config = load_checkpoint(tmp_path / "checkpoint.npz").config
    assert (config["r1"], config["diffaug"], config["mbstd"]) == (10.0, "translation,cutout", True)
    with pytest.raises(SystemExit, match=r"error: cannot resume .* with --r1=5.0"):
        example.main(["--out", str(tmp_path), "--resume", "--r1", "5", "--dry-run"])

"""The GAN step: gradients through D into G, frozen means frozen, determinism, parity."""
import dataclasses

import numpy as np
import pytest

from npgan import (Adam, StepSettings, build_discriminator, build_generator, d_loss, d_step,
                   g_step, get_backend, get_g_loss, numerical_grad, train_step)
from npgan.config import TrainConfig
from npgan.gradcheck import assert_gradients_ok, compare, directional_check
from tests.backends import ALL_SPECS, FLOAT64_SPECS, copy_params, host, make_backend

Z, P = 3, 5   # a tiny GAN: gradients are checked element by element


def tiny_gan(be, init="default"):
    G = build_generator(be, latent_dim=Z, hidden=(6, 4), out_dim=P, init=init)
    D = build_discriminator(be, in_dim=P, hidden=(7, 4), init=init)
    return G, D


def adam(model):
    return Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))


def snapshot(model):
    return [host(p.data).copy() for p in model.parameters()]


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax"])
def test_generator_gradients_through_D_match_numerical(spec, g_loss):
    """End to end: dL_G/dtheta_G by backprop through D == central differences of the
    whole chain z -> G -> D -> loss, for every parameter of G."""
    be = make_backend(spec, "float64", seed=11)
    G, D = tiny_gan(be)
    z = be.randn((4, Z))
    loss_fn = get_g_loss(g_loss)

    G.zero_grad()
    D.zero_grad()
    logits = D.forward(G.forward(z))
    _, dlogits = loss_fn(logits)
    G.backward(D.backward(dlogits, param_grads=False))

    def chain_loss():
        return loss_fn(D.forward(G.forward(z)))[0]

    reports = [compare(f"G.{name}", p.grad, numerical_grad(chain_loss, p.data), 1e-5, 1e-8)
               for name, p in G.named_parameters()]
    assert len(reports) == 6
    assert_gradients_ok(reports)
    # D was only passed through: its weight gradients were not computed at all
    assert all(not np.any(host(p.grad)) for p in D.parameters())


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_d_step_gradients_match_numerical(spec, real_label):
    """d_step's two forward/backward pairs (real, then fake) leave in D's grads the
    numerical gradient of d_loss(D(x_real), D(G(z))): no fake activations leak into
    the real half. (SGD with lr = 0 runs the step but keeps D where it was.)"""
    from npgan import SGD
    be = make_backend(spec, "float64", seed=12)
    G, D = tiny_gan(be)
    x_real, z = be.uniform(-1, 1, (5, P)), be.randn((4, Z))
    d_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, real_label)
    x_fake = G.forward(z)

    def loss():
        return d_loss(D.forward(x_real), D.forward(x_fake), real_label)[0]

    assert_gradients_ok([compare(f"D.{name}", p.grad, numerical_grad(loss, p.data), 1e-5, 1e-8)
                         for name, p in D.named_parameters()])


def test_generator_gradient_of_the_full_size_model_along_random_directions():
    """The default MNIST G and D (1.5M + 0.5M parameters): one random direction per G
    tensor (Chainer's directional check) instead of 1.5M finite differences."""
    be = get_backend("numpy", dtype="float64", seed=17)
    G, D = build_generator(be), build_discriminator(be)
    z = be.randn((4, 100))
    loss_fn = get_g_loss("non-saturating")
    G.zero_grad()
    _, dlogits = loss_fn(D.forward(G.forward(z)))
    G.backward(D.backward(dlogits, param_grads=False))

    def unit_direction(shape):
        # unit length, so the perturbation per weight is tiny and no LeakyReLU input
        # crosses its kink between the two evaluations
        r = be.randn(shape)
        return r / np.sqrt(np.sum(r * r))

    reports = [directional_check(f"G.{name}", lambda: loss_fn(D.forward(G.forward(z)))[0],
                                 p.data, p.grad, unit_direction(p.shape), h=1e-6, rtol=1e-5,
                                 atol=1e-10)
               for name, p in G.named_parameters()]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_d_step_leaves_G_bit_identical_and_g_step_leaves_D_bit_identical(spec):
    be = make_backend(spec, "float32", seed=14)
    G, D = tiny_gan(be)
    opt_g, opt_d = adam(G), adam(D)
    x_real = be.uniform(-1, 1, (8, P))

    g_before, d_before = snapshot(G), snapshot(D)
    d_step(G, D, opt_d, x_real, be.randn((8, Z)))
    assert all(np.array_equal(a, b) for a, b in zip(snapshot(G), g_before))
    assert not all(np.array_equal(a, b) for a, b in zip(snapshot(D), d_before))

    for p in D.parameters():           # a sentinel: g_step must not write D's grads at all
        p.grad[...] = 7.0
    g_before, d_before = snapshot(G), snapshot(D)
    g_step(G, D, opt_g, be.randn((8, Z)))
    assert all(np.array_equal(a, b) for a, b in zip(snapshot(D), d_before))
    assert all(np.all(host(p.grad) == 7.0) for p in D.parameters())
    assert not all(np.array_equal(a, b) for a, b in zip(snapshot(G), g_before))
    assert opt_d.t == 1 and opt_g.t == 1


@pytest.mark.parametrize("k", [1, 3])
def test_train_step_does_k_d_updates_then_one_g_update(k):
    be = get_backend("numpy", seed=15)
    G, D = tiny_gan(be)
    opt_g, opt_d = adam(G), adam(D)
    batches = [be.uniform(-1, 1, (8, P)) for _ in range(k)]
    stats = train_step(G, D, opt_g, opt_d, batches, be, latent_dim=Z)
    assert (opt_d.t, opt_g.t) == (k, 1)
    assert set(stats) == {"loss_d", "d_real", "d_fake", "acc_real", "acc_fake", "loss_g",
                          "d_fake_g", "dx_fake_norm"}
    with pytest.raises(ValueError, match="at least one real batch"):
        train_step(G, D, opt_g, opt_d, [], be, latent_dim=Z)


def test_train_step_takes_one_settings_object_or_its_fields_as_keywords():
    """A StepSettings and the same fields as keywords give bit-identical steps; a bad
    settings argument (the old positional latent_dim) says what to give instead."""
    runs = []
    for call in ({"settings": StepSettings(Z, g_loss="minimax", real_label=0.9)},
                 {"latent_dim": Z, "g_loss": "minimax", "real_label": 0.9},
                 {"settings": StepSettings(Z), "g_loss": "minimax", "real_label": 0.9}):
        be = get_backend("numpy", seed=21)
        G, D = tiny_gan(be)
        stats = train_step(G, D, adam(G), adam(D), [be.uniform(-1, 1, (8, P))] * 2, be, **call)
        runs.append(snapshot(G) + snapshot(D) + [host(v) for v in stats.values()])
    for other in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(runs[0], other))
    default = StepSettings(Z)                              # the control: another setting differs
    be = get_backend("numpy", seed=21)
    G, D = tiny_gan(be)
    train_step(G, D, adam(G), adam(D), [be.uniform(-1, 1, (8, P))] * 2, be, default)
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], snapshot(G) + snapshot(D)))
    with pytest.raises(TypeError, match="must be a StepSettings, got 3; or give its fields"):
        train_step(G, D, adam(G), adam(D), [be.uniform(-1, 1, (8, P))], be, Z)
    with pytest.raises(ValueError, match="unknown loss 'wgangp'"):
        StepSettings(Z, loss="wgangp")


def test_step_settings_from_a_config_set_every_field():
    """from_config fills every field from the TrainConfig: across a GAN config and a
    critic's, each field takes a value other than its default. A new field that
    from_config forgets fails here."""
    gan = TrainConfig(latent_dim=7, g_loss="minimax", label_smoothing=0.2, prior="uniform",
                      instance_noise=0.3, gp_weight=5.0, clip=0.02, r1=0.0)
    critic = TrainConfig.for_loss("wgan-gp")
    cured = TrainConfig(r1=10.0, diffaug="translation,cutout")
    made = [StepSettings.from_config(c) for c in (gan, critic, cured)]
    assert made[0] == StepSettings(7, "gan", "minimax", 0.8, "uniform", 0.3, 5.0, 0.02)
    assert made[1].loss == "wgan-gp" and made[1].real_label == 1.0
    assert (made[2].r1, made[2].diffaug) == (10.0, "translation,cutout")
    for f in dataclasses.fields(StepSettings):
        default = getattr(StepSettings(100), f.name)
        assert any(getattr(m, f.name) != default for m in made), f.name


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_step_statistics_stay_on_the_device_until_read(spec):
    """Stats are 0-d device arrays; the step makes no host transfer (array-api-strict's
    device1 would raise on any conversion to NumPy, as CuPy forbids implicit ones)."""
    be = make_backend(spec, "float32", seed=16)
    G, D = tiny_gan(be)
    opt_g, opt_d = adam(G), adam(D)
    for _ in range(3):
        stats = train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (8, P))], be, latent_dim=Z)
    assert be.host_transfers == 0
    for name, value in stats.items():
        assert tuple(value.shape) == () and value.dtype == be.dtype, name
    values = {k: be.item(v) for k, v in stats.items()}          # the logging point
    assert be.host_transfers == (0 if be.name == "numpy" else len(stats))
    for key in ("d_real", "d_fake", "acc_real", "acc_fake", "d_fake_g"):
        assert 0.0 <= values[key] <= 1.0, key
    assert values["loss_d"] > 0 and values["loss_g"] > 0 and values["dx_fake_norm"] > 0


@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax"])
def test_dx_fake_norm_is_the_mean_norm_of_each_samples_own_gradient(g_loss):
    """g_step's dx_fake_norm = mean_i ||d loss_i / d x_i|| at x = G(z), checked against
    central differences of the per-sample losses (rows are independent, so the gradient
    of their sum holds each sample's own gradient in its row). Doubling the batch with
    the same rows leaves it unchanged: it does not carry the loss's 1/B."""
    be = get_backend("numpy", dtype="float64", seed=21)
    G, D = tiny_gan(be)
    z = be.randn((4, Z))
    x = G.forward(z).copy()                                     # (4, P), before G moves
    loss_fn = get_g_loss(g_loss)
    total = lambda: loss_fn(D.forward(x))[0] * x.shape[0]       # sum_i loss_i
    per_sample = numerical_grad(total, x)                        # (4, P)
    expected = np.mean(np.linalg.norm(per_sample, axis=1))
    stats = g_step(G, D, Adam(G.parameters(), lr=0.0), z, g_loss)
    assert float(stats["dx_fake_norm"]) == pytest.approx(expected, rel=1e-6)
    doubled = g_step(G, D, Adam(G.parameters(), lr=0.0), np.concatenate([z, z]), g_loss)
    assert float(doubled["dx_fake_norm"]) == pytest.approx(expected, rel=1e-6)
    assert float(stats["dx_fake_norm"]) != pytest.approx(expected / 4, rel=1e-3)


def test_default_architecture_is_the_classic_mnist_mlp():
    be = get_backend("numpy", seed=0)
    G, D = build_generator(be), build_discriminator(be)
    assert [tuple(p.shape) for n, p in G.named_parameters() if n.endswith("W")] == [
        (256, 100), (512, 256), (1024, 512), (784, 1024)]
    assert [tuple(p.shape) for n, p in D.named_parameters() if n.endswith("W")] == [
        (512, 784), (256, 512), (1, 256)]
    z = be.randn((2, 100))
    x = G.forward(z)
    assert x.shape == (2, 784) and np.all(np.abs(x) <= 1.0)   # Tanh output
    assert D.forward(x).shape == (2, 1)


def run_training(be, steps=5):
    G, D = tiny_gan(be)
    opt_g, opt_d = adam(G), adam(D)
    data = be.uniform(-1, 1, (16, P))
    for _ in range(steps):
        train_step(G, D, opt_g, opt_d, [data[:8, :], data[8:, :]], be, latent_dim=Z)
    return snapshot(G) + snapshot(D)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_same_seed_same_backend_same_numbers(spec):
    first = run_training(make_backend(spec, seed=21))
    second = run_training(make_backend(spec, seed=21))
    other = run_training(make_backend(spec, seed=22))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def one_step(b, G, D, x, z_d, z_g, optimizer=None):
    """d_step then g_step on backend b: the statistics, D's gradients (from the
    D-update), G's gradients (from the G-update) and the parameters after both."""
    optimizer = optimizer or adam
    opt_g, opt_d = optimizer(G), optimizer(D)
    stats = d_step(G, D, opt_d, b.asarray(x), b.asarray(z_d))
    d_grads = [host(p.grad).copy() for p in D.parameters()]
    stats.update(g_step(G, D, opt_g, b.asarray(z_g)))
    g_grads = [host(p.grad).copy() for p in G.parameters()]
    return dict(stats=np.array([host(v) for v in stats.values()]), grads=d_grads + g_grads,
                params=snapshot(G) + snapshot(D))


def parity_inputs(spec, optimizer=None):
    """The same parameters, images and noise on NumPy and on `spec` (random generators
    differ between backends, so we copy), and one step on each."""
    ref_be, be = get_backend("numpy", seed=0), make_backend(spec, "float32", seed=0)
    (G0, D0), (G1, D1) = tiny_gan(ref_be), tiny_gan(be)
    copy_params(G0, G1, be)
    copy_params(D0, D1, be)
    rng = np.random.default_rng(5)
    x, z_d, z_g = (rng.uniform(-1, 1, (8, P)).astype(np.float32),
                   rng.standard_normal((8, Z)).astype(np.float32),
                   rng.standard_normal((8, Z)).astype(np.float32))
    return (one_step(ref_be, G0, D0, x, z_d, z_g),
            one_step(be, G1, D1, x, z_d, z_g, optimizer))


def assert_same_step(ref, got):
    """Statistics, every gradient and its norm, then the parameters. Adam's first step
    is about lr * sign(g): the parameters alone would not see a gradient of 3x its size."""
    np.testing.assert_allclose(got["stats"], ref["stats"], rtol=1e-5, atol=1e-6)
    for i, (a, b) in enumerate(zip(got["grads"], ref["grads"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"gradient {i}")
        np.testing.assert_allclose(np.linalg.norm(a), np.linalg.norm(b), rtol=1e-4,
                                   err_msg=f"norm of gradient {i}")
    for a, b in zip(got["params"], ref["params"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", [s for s in ALL_SPECS if s.values[0][0] != "numpy"])
def test_gan_step_matches_numpy_reference(spec):
    """Backend parity: the same parameters, data and noise give the same gradients and
    the same step on every backend as on NumPy."""
    assert_same_step(*parity_inputs(spec))


def test_parity_sees_a_wrong_gradient_size_that_the_parameters_hide():
    """Control: a 'backend' whose gradients are 3x too big (an Adam that scales them
    before stepping). After one Adam step its parameters agree with NumPy's; the
    gradient comparison is what catches it."""
    class ThreeTimes(Adam):
        def step(self):
            for p in self.params:
                p.grad *= 3.0
            super().step()

    ref, wrong = parity_inputs(("numpy", None), lambda m: ThreeTimes(m.parameters(), lr=2e-4,
                                                                      betas=(0.5, 0.999)))
    for a, b in zip(wrong["params"], ref["params"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)      # blind to the 3x
    with pytest.raises(AssertionError, match="gradient 0"):
        assert_same_step(ref, wrong)

"""The critic steps (WGAN, WGAN-GP, hinge) and the G-step under every loss, tested as
the training loop calls them: gradients read back after the step (lr = 0) against
central differences of the loss, frozen means frozen, clipping, host transfers."""
import numpy as np
import pytest

from npgan import SGD, Adam, RMSprop, d_loss, d_step, g_step, get_g_loss, numerical_grad, train_step
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
from npgan.gan import build_discriminator, build_generator
from npgan.gradcheck import assert_gradients_ok, compare
from npgan.losses import gradient_penalty, hinge_d_loss, wasserstein_d_loss
from npgan.wgan import critic_step, interpolate
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend
from tests.kinks import off_the_kinks

Z, P = 3, 5
CRITIC_LOSSES = {"wgan": wasserstein_d_loss, "wgan-gp": wasserstein_d_loss, "hinge": hinge_d_loss}


def tiny(be, conditional=0):
    G = build_generator(be, latent_dim=Z, hidden=(6, 4), out_dim=P, num_classes=conditional)
    D = build_discriminator(be, in_dim=P, hidden=(7, 4), num_classes=conditional)
    return G, D


def snapshot(model):
    return [host(p.data).copy() for p in model.parameters()]


def grads(model):
    return [host(p.grad).copy() for p in model.parameters()]


def full_critic_loss(loss, D, x_real, x_fake, eps, weight, y_real=None, y_fake=None):
    """The whole critic objective from its definition: the critic loss of `loss`, plus
    for wgan-gp the penalty at the interpolates (its input gradient by forward+backward)."""
    fwd = (lambda x, y: D.forward(x)) if y_real is None else D.forward
    total = CRITIC_LOSSES[loss](fwd(x_real, y_real), fwd(x_fake, y_fake))[0]
    if loss == "wgan-gp":
        logits = fwd(interpolate(x_real, x_fake, eps), y_real)
        total = total + gradient_penalty(D.backward(logits * 0.0 + 1.0, param_grads=False),
                                         weight)[0]
    return total


def setup(spec, seed, conditional=0):
    """A tiny float64 GAN and a batch whose activations stay off LeakyReLU's kink and whose
    scores stay off the hinge's margins +-1 (the first seed that works). D's last layer
    is scaled up so that some scores lie beyond the margins: inside them all, the hinge
    loss would be the Wasserstein loss plus a constant, and the tests could not tell."""
    for s in range(seed, seed + 30):
        be = make_backend(spec, "float64", seed=s)
        G, D = tiny(be, conditional)
        D.layers[-1].W.data[...] = D.layers[-1].W.data * 30.0
        x_real, z, eps = be.uniform(-1, 1, (4, P)), be.randn((4, Z)), be.uniform(0, 1, (4, 1))
        y = be.asarray(np.array([0, 2, 1, 2])) if conditional else None
        x_fake = G.forward(z) if y is None else G.forward(z, y)
        points = [x_real, x_fake, interpolate(x_real, x_fake, eps)]
        scores = [host(D.forward(x) if y is None else D.forward(x, y)) for x in points]
        if all(off_the_kinks(D, x, y) for x in points) and \
                all(np.min(np.abs(np.abs(s) - 1.0)) > 1e-3 for s in scores) and \
                np.max(np.abs(scores[0])) > 1 and np.max(np.abs(scores[1])) > 1:
            return be, G, D, x_real, z, eps, y
    raise AssertionError("no seed kept the tiny GAN off its kinks")


# ------------------------------------------------------------------ the critic step
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
@pytest.mark.parametrize("conditional", [0, 3], ids=["plain", "conditional"])
def test_critic_step_gradients_match_numerical(spec, loss, conditional):
    """critic_step leaves in D's grads the full gradient of its objective (critic loss,
    plus the penalty under wgan-gp). SGD with lr = 0 runs the step without moving D;
    the clip is wide, so clipping moves nothing either (test_clipping checks it)."""
    be, G, D, x_real, z, eps, y = setup(spec, 20, conditional)
    critic_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, loss, eps, gp_weight=7.0,
                clip=1e6, y_real=y, y_fake=y)
    x_fake = G.forward(z) if y is None else G.forward(z, y)
    reports = [compare(f"D.{name}", p.grad, numerical_grad(
        lambda: full_critic_loss(loss, D, x_real, x_fake, eps, 7.0, y, y), p.data), 1e-5, 1e-8)
        for name, p in D.named_parameters()]
    assert_gradients_ok(reports)


def test_the_critic_gradient_check_can_fail():
    """Controls: without the penalty's second pass, or with the wrong loss, the same check
    fails (so the test above really tells the losses apart)."""
    be, G, D, x_real, z, eps, _ = setup(("numpy", None), 20)
    x_fake = G.forward(z)
    critic_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, "wgan", eps, clip=1e6)  # no GP
    W = D.layers[0].W
    numeric = numerical_grad(lambda: full_critic_loss("wgan-gp", D, x_real, x_fake, eps, 7.0), W.data)
    assert not compare("D.0.W", W.grad, numeric, 1e-5, 1e-8).ok
    critic_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, "hinge", eps)
    numeric = numerical_grad(lambda: full_critic_loss("wgan", D, x_real, x_fake, eps, 7.0), W.data)
    assert not compare("D.0.W", W.grad, numeric, 1e-5, 1e-8).ok


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_the_plain_d_step_gradients_as_the_loop_calls_it(spec):
    be, G, D, x_real, z, _, _ = setup(spec, 40)
    d_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, 0.9)
    x_fake = G.forward(z)
    assert_gradients_ok([compare(f"D.{name}", p.grad, numerical_grad(
        lambda: d_loss(D.forward(x_real), D.forward(x_fake), 0.9)[0], p.data), 1e-5, 1e-8)
        for name, p in D.named_parameters()])


# ------------------------------------------------------------------ the G step, every loss
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax", "wasserstein"])
def test_g_step_gradients_match_numerical(spec, g_loss):
    """g_step itself (not a chain composed here): G's grads after the step == central
    differences of the named loss of D(G(z)); G gets a real gradient through D (the
    step numpy-ml's WGAN-GP got wrong), and D's grads are not written."""
    be, G, D, _, z, _, _ = setup(spec, 60)
    for p in D.parameters():
        p.grad[...] = 7.0                                      # a sentinel
    g_step(G, D, SGD(G.parameters(), lr=0.0), z, g_loss)
    loss_fn = get_g_loss(g_loss)
    reports = [compare(f"G.{name}", p.grad, numerical_grad(
        lambda: loss_fn(D.forward(G.forward(z)))[0], p.data), 1e-5, 1e-8)
        for name, p in G.named_parameters()]
    assert_gradients_ok(reports)
    assert all(np.any(g != 0) for g in grads(G)[::2])          # every weight gets a signal
    assert all(np.all(g == 7.0) for g in grads(D))


def test_g_step_uses_its_loss():
    """The three G losses give three different gradients: a g_step that ignored g_loss
    would fail the test above for two of them."""
    be, G, D, _, z, _, _ = setup(("numpy", None), 60)
    seen = []
    for g_loss in ("non-saturating", "minimax", "wasserstein"):
        g_step(G, D, SGD(G.parameters(), lr=0.0), z, g_loss)
        seen.append(grads(G)[0])
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])
    assert not np.allclose(seen[0], seen[2])


# ------------------------------------------------------------------ frozen means frozen
@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
def test_critic_step_moves_only_D_and_g_step_moves_only_G(spec, loss):
    be = make_backend(spec, "float32", seed=3)
    G, D = tiny(be)
    opt_d = RMSprop(D.parameters(), lr=5e-5) if loss == "wgan" else \
        Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_g = Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    for p in G.parameters():
        p.grad[...] = 7.0                                      # a critic step never writes them
    g_before, d_before = snapshot(G), snapshot(D)
    critic_step(G, D, opt_d, be.uniform(-1, 1, (8, P)), be.randn((8, Z)), loss,
                be.uniform(0, 1, (8, 1)))
    assert all(np.array_equal(a, b) for a, b in zip(snapshot(G), g_before))
    assert all(np.all(g == 7.0) for g in grads(G))
    assert not all(np.array_equal(a, b) for a, b in zip(snapshot(D), d_before))

    for p in D.parameters():
        p.grad[...] = 7.0
    g_before, d_before = snapshot(G), snapshot(D)
    g_step(G, D, opt_g, be.randn((8, Z)), "wasserstein")
    assert all(np.array_equal(a, b) for a, b in zip(snapshot(D), d_before))
    assert all(np.all(g == 7.0) for g in grads(D))
    assert not all(np.array_equal(a, b) for a, b in zip(snapshot(G), g_before))


def test_clipping_bounds_every_parameter_after_the_step():
    be = make_backend(("numpy", None), "float32", seed=4)
    G, D = tiny(be)
    assert max(np.abs(a).max() for a in snapshot(D)) > 0.1      # the init is outside the box
    critic_step(G, D, RMSprop(D.parameters(), lr=5e-5), be.uniform(-1, 1, (8, P)),
                be.randn((8, Z)), "wgan", clip=0.01)
    assert all(np.abs(a).max() <= 0.01 for a in snapshot(D))
    assert any(np.any(np.abs(a) == 0.01) for a in snapshot(D))
    before = snapshot(D)
    critic_step(G, D, RMSprop(D.parameters(), lr=5e-5), be.uniform(-1, 1, (8, P)),
                be.randn((8, Z)), "wgan-gp", be.uniform(0, 1, (8, 1)), clip=1e-6)
    assert not all(np.abs(a).max() <= 1e-6 for a in snapshot(D))   # only wgan clips
    assert not all(np.array_equal(a, b) for a, b in zip(snapshot(D), before))


# ------------------------------------------------------------------ the loop's step
@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
def test_train_step_does_k_critic_updates_then_one_g_update(loss):
    be = make_backend(("numpy", None), "float32", seed=5)
    G, D = tiny(be)
    opt_g, opt_d = Adam(G.parameters()), Adam(D.parameters())
    stats = train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (8, P)) for _ in range(5)], be,
                       latent_dim=Z, loss=loss)
    assert (opt_d.t, opt_g.t) == (5, 1)
    expected = {"loss_d", "wasserstein", "critic_real", "critic_fake", "loss_g", "critic_fake_g",
                "dx_fake_norm"}                    # the size of what reaches G
    if loss == "wgan-gp":
        expected |= {"gp", "grad_norm"}
    assert set(stats) == expected                       # no D "accuracy" for a critic
    values = {k: be.item(v) for k, v in stats.items()}
    assert values["wasserstein"] == pytest.approx(values["critic_real"] - values["critic_fake"])
    with pytest.raises(ValueError, match="unknown loss 'wgangp'; valid: gan, wgan, wgan-gp, hinge"):
        train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (8, P))], be, latent_dim=Z, loss="wgangp")


def test_train_step_under_gan_is_unchanged():
    """loss='gan' is today's step: the same numbers as a call without the new argument."""
    results = []
    for kwargs in ({}, {"loss": "gan", "gp_weight": 3.0, "clip": 0.5}):
        be = make_backend(("numpy", None), "float32", seed=6)
        G, D = tiny(be)
        opt_g, opt_d = Adam(G.parameters()), Adam(D.parameters())
        for _ in range(3):
            train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (8, P))] * 2, be, latent_dim=Z,
                       **kwargs)
        results.append(snapshot(G) + snapshot(D))
    assert all(np.array_equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
@pytest.mark.parametrize("device", ["device1", "no_float64"])
def test_float32_critic_steps_make_no_host_transfer_and_no_float64(loss, device):
    """On array-api-strict's device1 (which refuses NumPy, as CuPy does) and no_float64
    (which has no float64): a conditional step under each loss, zero host transfers."""
    be = make_backend(("array-api-strict", device), "float32", seed=7)
    G, D = tiny(be, conditional=3)
    opt_g = Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = RMSprop(D.parameters(), lr=5e-5) if loss == "wgan" else Adam(D.parameters())
    labels = [be.asarray(np.array([0, 1, 2, 0, 1, 2, 0, 1])) for _ in range(2)]
    for _ in range(2):
        stats = train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (8, P)) for _ in range(2)], be,
                           latent_dim=Z, loss=loss, real_labels=labels)
    assert be.host_transfers == 0
    assert all(v.dtype == be.dtype and tuple(v.shape) == () for v in stats.values())


def test_the_wgan_gp_step_on_a_dcgan_critic_without_batchnorm():
    be = make_backend(("numpy", None), "float32", seed=8)
    G = build_dcgan_generator(be, latent_dim=Z, base_channels=2, image_size=8)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8, batchnorm=False)
    opt_g, opt_d = Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9)), Adam(D.parameters())
    stats = train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (4, 64))], be, latent_dim=Z,
                       loss="wgan-gp")
    assert be.item(stats["grad_norm"]) > 0 and be.item(stats["gp"]) >= 0
    D_bn = build_dcgan_discriminator(be, base_channels=2, image_size=8)
    with pytest.raises(NotImplementedError, match="BatchNorm2d"):
        train_step(G, D_bn, opt_g, Adam(D_bn.parameters()), [be.uniform(-1, 1, (4, 64))], be,
                   latent_dim=Z, loss="wgan-gp")


def test_critic_step_rejects_bad_arguments():
    be = make_backend(("numpy", None), "float32", seed=9)
    G, D = tiny(be)
    with pytest.raises(ValueError, match="unknown critic loss 'gan'; valid: wgan, wgan-gp, hinge"):
        critic_step(G, D, Adam(D.parameters()), be.uniform(-1, 1, (4, P)), be.randn((4, Z)), "gan")
    with pytest.raises(ValueError, match=r"wgan-gp needs eps"):
        critic_step(G, D, Adam(D.parameters()), be.uniform(-1, 1, (4, P)), be.randn((4, Z)),
                    "wgan-gp")

"""The GAN of Goodfellow et al. (2014): MLP builders and the adversarial training step.

    G: z (B, Z) -> x_fake (B, P)          D: x (B, P) -> logit (B, 1),  D(x) = sigmoid(logit)

One training step = k D-updates with G frozen, then one G-update with D frozen.
"Frozen" means "not stepped": in the G-update the gradient still flows back *through*
D (that is how G learns), but D's weight gradients are not even computed.
This module is the one place where the gradient crosses from D into G: g_step().
With num_classes > 0 the builders make a conditional GAN (npgan.conditional): the
steps then also take class labels, y (B,), which G and D both see.
Instance noise (Sonderby et al. 2016): D may see every image, real and fake, with
Gaussian noise added (instance_noise_sigma gives its annealed level).
reference: https://arxiv.org/abs/1406.2661 (Algorithm 1)
"""
from __future__ import annotations

from npgan.backend import astype, get_array_module
from npgan.conditional import Conditional, random_labels
from npgan.layers import LeakyReLU, Linear, Sequential, Tanh
from npgan.losses import bce_with_logits, get_g_loss, sigmoid
from npgan.spectral import spectral_norm_all


def build_generator(backend, latent_dim=100, hidden=(256, 512, 1024), out_dim=784,
                    slope=0.2, init="default", num_classes=0):
    """G: Z -> 256 -> 512 -> 1024 -> P with LeakyReLU(0.2), then Tanh (pixels in [-1, 1]).
    num_classes = C > 0: conditional, G(z, y) with input [z, onehot(y)] of width Z + C."""
    layers, width = [], latent_dim + num_classes
    for h in hidden:
        layers += [Linear(width, h, backend, init), LeakyReLU(slope)]   # (B, width) -> (B, h)
        width = h
    layers += [Linear(width, out_dim, backend, init), Tanh()]           # (B, H) -> (B, P)
    net = Sequential(*layers)
    return Conditional(net, num_classes, backend) if num_classes else net


def build_discriminator(backend, in_dim=784, hidden=(512, 256), slope=0.2, init="default",
                        num_classes=0, spectral_norm=False):
    """D: P -> 512 -> 256 -> 1 with LeakyReLU(0.2); outputs a logit (no Sigmoid layer:
    the loss fuses it, see losses.bce_with_logits).
    num_classes = C > 0: conditional, D(x, y) with input [x, onehot(y)] of width P + C.
    spectral_norm: every Linear divides its weight by its largest singular value
    (npgan.spectral, Miyato et al. 2018)."""
    layers, width = [], in_dim + num_classes
    for h in hidden:
        layers += [Linear(width, h, backend, init), LeakyReLU(slope)]   # (B, width) -> (B, h)
        width = h
    layers += [Linear(width, 1, backend, init)]                         # (B, H) -> (B, 1)
    if spectral_norm:
        layers = spectral_norm_all(layers, backend)
    net = Sequential(*layers)
    return Conditional(net, num_classes, backend) if num_classes else net


PRIORS = ("normal", "uniform")


def sample_z(backend, n, latent_dim, prior="normal"):
    """n latent vectors z (n, Z) from G's prior, on the backend's device:
    'normal': z ~ N(0, I) (the default); 'uniform': every coordinate ~ U(-1, 1)
    (the two common choices). The same seed gives the same z on the same backend."""
    if prior == "normal":
        return backend.randn((n, latent_dim))
    if prior == "uniform":
        return backend.uniform(-1.0, 1.0, (n, latent_dim))
    raise ValueError(f"unknown prior {prior!r}; valid: {', '.join(PRIORS)}")


def _forward(model, x, labels):
    """model(x), or model(x, labels) for a conditional model (labels: (B,) class indices)."""
    return model.forward(x) if labels is None else model.forward(x, labels)


def _mean(a):
    xp = get_array_module(a)
    return xp.mean(a)


def _per_sample_norm(dx, batch):
    """mean_i ||d loss_i / d x_i||: the batch mean of each sample's own gradient norm.

    dx = dL/dx for L = mean_i loss_i, so row i is (d loss_i / d x_i) / B and we multiply
    by B: the number does not depend on the batch size. dx: (B, ...) -> a 0-d array.
    """
    xp = get_array_module(dx)
    flat = xp.reshape(dx, (batch, -1))                             # (B, P)
    return xp.mean(xp.sqrt(xp.sum(flat * flat, axis=1))) * batch   # 0-d


def _fraction(mask, dtype):
    xp = get_array_module(mask)
    return xp.mean(astype(mask, dtype))


def d_step(G, D, opt_d, x_real, z, real_label=1.0, y_real=None, y_fake=None, noise=None):
    """One D-update: maximize log D(x) + log(1 - D(G(z))), G frozen.

    x_real: (B, P) real images; z: (B, Z) noise. Returns a dict of 0-d device arrays.
    Conditional GAN: y_real (B,) the real images' classes, y_fake (B,) the classes G
    is asked for; D then learns log D(x | y) + log(1 - D(G(z | y') | y')).
    noise: None, or (n_real, n_fake), two (B, P) arrays of instance noise that D sees
    added to the real and to the fake images: D(x + n_real), D(G(z) + n_fake).
    """
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1] (0.9 = one-sided smoothing), got {real_label}")
    D.zero_grad()
    if noise is not None:
        x_real = x_real + noise[0]                     # (B, P): D sees a noisy real image
    # (1a) real half: -log D(x). Backward right away, because the next D.forward
    # (the fake half) overwrites D's single-slot caches.
    logits_real = _forward(D, x_real, y_real)          # (B, P) -> (B, 1)
    loss_real, dlogits_real = bce_with_logits(logits_real, real_label)
    # input_grad=False: images are data, not parameters, so D skips dL/dx_real
    D.backward(dlogits_real, input_grad=False)         # D's grads += ...
    # (1b) fake half: -log(1 - D(G(z))). G is frozen: forward only, no G.backward.
    x_fake = _forward(G, z, y_fake)                    # (B, Z) -> (B, P)
    if noise is not None:
        x_fake = x_fake + noise[1]                     # (B, P): and a noisy fake one
    logits_fake = _forward(D, x_fake, y_fake)          # (B, P) -> (B, 1)
    loss_fake, dlogits_fake = bce_with_logits(logits_fake, 0.0)
    D.backward(dlogits_fake, input_grad=False)         # D's grads += ... (sum of both halves)
    opt_d.step()                                       # only D moves
    loss = loss_real + loss_fake                       # = losses.d_loss(...)[0]
    dtype = logits_real.dtype
    return {
        "loss_d": loss,
        "d_real": _mean(sigmoid(logits_real)),         # mean D(x), before the update
        "d_fake": _mean(sigmoid(logits_fake)),         # mean D(G(z))
        "acc_real": _fraction(logits_real > 0, dtype), # D says "real" to real images
        "acc_fake": _fraction(logits_fake < 0, dtype), # D says "fake" to fakes
    }


def g_step(G, D, opt_g, z, g_loss="non-saturating", labels=None, noise=None):
    """One G-update: minimize G's loss with D frozen; the gradient crosses D into G.

    z: (B, Z). g_loss: 'non-saturating' (-log D(G(z))) or 'minimax' (log(1 - D(G(z)))),
    or 'wasserstein' (-mean D(G(z))) against a critic (npgan.wgan).
    labels: (B,) classes for a conditional GAN; G makes them and D judges them as such.
    Returns 0-d device arrays: loss_g, d_fake_g (mean D(G(z))), and dx_fake_norm, the
    batch mean of ||d loss_i / d x_fake_i||, the gradient that reaches G's output.
    noise: None, or a (B, P) array of instance noise: D judges G(z) + noise.
    """
    loss_fn = get_g_loss(g_loss)
    G.zero_grad()
    x_fake = _forward(G, z, labels)                    # (B, Z) -> (B, P)
    # instance noise: D sees x_fake + noise. The noise is added, so d(x_fake + noise)/dx_fake
    # is the identity: the gradient D returns for its (noisy) input IS dL/dx_fake.
    x_seen = x_fake if noise is None else x_fake + noise    # (B, P)
    logits = _forward(D, x_seen, labels)               # (B, P) -> (B, 1)
    loss_g, dlogits = loss_fn(logits)                  # dL/dlogits, (B, 1)
    # the gradient crosses D here: dL/dx_fake = dL/dlogits * dlogits/dx_fake.
    # param_grads=False: D is frozen, so we compute only its input gradient.
    dx_fake = D.backward(dlogits, param_grads=False)   # (B, 1) -> (B, P), = dL/dx_seen
    # how loud D's feedback is: the size of the signal that reaches G's output
    dx_fake_norm = _per_sample_norm(dx_fake, logits.shape[0])
    G.backward(dx_fake, input_grad=False)              # fills G's grads (z needs no dz)
    opt_g.step()                                       # only G moves
    if g_loss == "wasserstein":                        # a critic's score, not a probability
        return {"loss_g": loss_g, "critic_fake_g": _mean(logits), "dx_fake_norm": dx_fake_norm}
    return {"loss_g": loss_g, "d_fake_g": _mean(sigmoid(logits)),
            "dx_fake_norm": dx_fake_norm}


def instance_noise_sigma(sigma0, step, total_steps):
    """The instance-noise level of G-update `step` (t = 0, 1, ..., T - 1) of a T-step run:

        sigma_t = sigma0 * (T - 1 - t) / (T - 1)

    sigma0 at the first step, falling linearly to 0 at the last (Sonderby et al. 2016
    anneal it so that D ends up judging the clean images). 0 when sigma0 is 0.
    reference: https://arxiv.org/abs/1610.04490 , https://arxiv.org/abs/1701.04862
    """
    return sigma0 * max(total_steps - 1 - step, 0) / max(total_steps - 1, 1)


def _instance_noise(backend, sigma, shape):
    """sigma * N(0, I) of `shape` from the backend's generator, on its device; None if sigma = 0."""
    if sigma <= 0.0:
        return None                                    # off: draw nothing, the stream is unchanged
    n = backend.randn(shape)
    n *= sigma                                         # a Python float keeps the dtype
    return n


def train_step(G, D, opt_g, opt_d, real_batches, backend, latent_dim,
               g_loss="non-saturating", real_label=1.0, real_labels=None, instance_noise=0.0,
               prior="normal", loss="gan", gp_weight=10.0, clip=0.01):
    """Algorithm 1 of Goodfellow et al.: len(real_batches) = k D-updates, then one G-update.

    real_batches: a list of k arrays (B, P) on the backend's device. Fresh noise for each
    update comes from the backend's generator. Returns the statistics of the last
    D-update and of the G-update as 0-d device arrays (no host sync here).
    Conditional GAN: real_labels, a list of k label arrays (B,) that go with the
    batches; the classes asked of G are drawn uniformly, fresh for each update.
    instance_noise: sigma > 0 adds N(0, sigma^2) to every image D sees in this step
    (real and fake, in the D- and the G-updates); see instance_noise_sigma.
    prior: where z comes from, 'normal' or 'uniform' (see sample_z).
    loss: 'gan' (d_step, and g_loss), or a critic, 'wgan' | 'wgan-gp' | 'hinge'
    (npgan.wgan.critic_step with gp_weight or clip, and G's loss -mean D(G(z))); the
    loop is the same, k = n_critic. Under wgan-gp a conditional G is asked for the real
    batch's classes in the critic step, and eps ~ U(0, 1) is drawn per sample.
    """
    from npgan.wgan import LOSSES, critic_step         # (npgan.wgan builds on this module)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if instance_noise > 0.0 and loss != "gan":
        raise ValueError(f"instance noise is a cure for the GAN's D (loss 'gan'), not for the "
                         f"{loss!r} critic; use one or the other")
    if not real_batches:
        raise ValueError("train_step needs at least one real batch (k >= 1)")
    conditional = real_labels is not None
    if conditional != isinstance(G, Conditional) or conditional != isinstance(D, Conditional):
        raise ValueError("a conditional GAN (models built with num_classes) needs real_labels, "
                         "and real_labels need conditional models")
    for i, x_real in enumerate(real_batches):          # (1) k times: update D
        b = x_real.shape[0]
        z = sample_z(backend, b, latent_dim, prior)
        noise = None
        if instance_noise > 0.0:                       # one draw for the real, one for the fake
            noise = (_instance_noise(backend, instance_noise, tuple(x_real.shape)),
                     _instance_noise(backend, instance_noise, tuple(x_real.shape)))
        y_real = real_labels[i] if conditional else None
        y_fake = None
        if conditional:
            y_fake = y_real if loss == "wgan-gp" else random_labels(backend, b, G.num_classes)
        if loss == "gan":
            stats = d_step(G, D, opt_d, x_real, z, real_label, y_real, y_fake, noise=noise)
        else:
            eps = backend.uniform(0.0, 1.0, (b, 1)) if loss == "wgan-gp" else None
            stats = critic_step(G, D, opt_d, x_real, z, loss, eps, gp_weight, clip,
                                y_real, y_fake)
    batch = real_batches[-1].shape[0]
    z = sample_z(backend, batch, latent_dim, prior)    # (2) once: update G
    labels = random_labels(backend, batch, G.num_classes) if conditional else None
    noise = _instance_noise(backend, instance_noise, tuple(real_batches[-1].shape))
    stats.update(g_step(G, D, opt_g, z, g_loss if loss == "gan" else "wasserstein", labels,
                        noise=noise))
    return stats

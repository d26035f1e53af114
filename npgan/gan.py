"""The GAN of Goodfellow et al. (2014): MLP builders and the adversarial training step.

    G: z (B, Z) -> x_fake (B, P)          D: x (B, P) -> logit (B, 1),  D(x) = sigmoid(logit)

One training step = k D-updates with G frozen, then one G-update with D frozen.
"Frozen" means "not stepped": in the G-update the gradient still flows back *through*
D (that is how G learns), but D's weight gradients are not even computed.
This module is the one place where the gradient crosses from D into G: g_step().
With num_classes > 0 the builders make a conditional GAN (npgan.conditional): the
steps then also take class labels, y (B,), which G and D both see.
Instance noise (Sonderby et al. 2016): D may see every image, real and fake, with
Gaussian noise added (npgan.noise); or each image randomly moved, cut and recoloured, and
G's gradient brought back through the same transform (npgan.augment, Zhao et al. 2020).
R1 (npgan.r1) penalizes D's gradient at the real images; a MinibatchStd layer in D
(npgan.mbstd) is a choice of model, built by the builders below.
A loss other than 'gan' makes D a critic (npgan.wgan).
What a step does (its loss, its cures) is one StepSettings.
reference: https://arxiv.org/abs/1406.2661 (Algorithm 1)
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from npgan.augment import DiffAugment
from npgan.backend import astype, get_array_module
from npgan.conditional import Conditional, forward, random_labels
from npgan.layers import LeakyReLU, Linear, Sequential, Tanh
from npgan.losses import LOSSES, bce_with_logits, get_g_loss, sigmoid
from npgan.mbstd import MinibatchStd
from npgan.noise import instance_noise, sample_z
from npgan.r1 import r1_penalty
from npgan.spectral import spectral_norm_all
from npgan.wgan import critic_step


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
                        num_classes=0, spectral_norm=False, mbstd=False):
    """D: P -> 512 -> 256 -> 1 with LeakyReLU(0.2); outputs a logit (no Sigmoid layer:
    the loss fuses it, see losses.bce_with_logits).
    num_classes = C > 0: conditional, D(x, y) with input [x, onehot(y)] of width P + C.
    spectral_norm: every Linear divides its weight by its largest singular value
    (npgan.spectral, Miyato et al. 2018).
    mbstd: the batch's spread as one more input of the last Linear (npgan.mbstd,
    Karras et al. 2018): (B, H) -> (B, H + 1) -> (B, 1)."""
    layers, width = [], in_dim + num_classes
    for h in hidden:
        layers += [Linear(width, h, backend, init), LeakyReLU(slope)]   # (B, width) -> (B, h)
        width = h
    if mbstd:
        layers += [MinibatchStd()]                                      # (B, H) -> (B, H + 1)
        width += 1
    layers += [Linear(width, 1, backend, init)]                         # (B, H) -> (B, 1)
    if spectral_norm:
        layers = spectral_norm_all(layers, backend)
    net = Sequential(*layers)
    return Conditional(net, num_classes, backend) if num_classes else net


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


def _shown(x, noise=None, augment=None):
    """What D is shown of the images x (B, P): x + instance noise, or augment(x) (a new
    random draw of the transform each call), or x itself."""
    if noise is not None and augment is not None:
        raise ValueError("instance noise and differentiable augmentation both change the "
                         "images D sees; give one or the other")
    if noise is not None:
        return x + noise                               # (B, P)
    return x if augment is None else augment.forward(x)    # (B, P)


def d_step(G, D, opt_d, x_real, z, real_label=1.0, y_real=None, y_fake=None, noise=None,
           augment=None, r1=0.0):
    """One D-update: maximize log D(x) + log(1 - D(G(z))), G frozen.

    x_real: (B, P) real images; z: (B, Z) noise. Returns a dict of 0-d device arrays.
    Conditional GAN: y_real (B,) the real images' classes, y_fake (B,) the classes G
    is asked for; D then learns log D(x | y) + log(1 - D(G(z | y') | y')).
    noise: None, or (n_real, n_fake), two (B, P) arrays of instance noise that D sees
    added to the real and to the fake images: D(x + n_real), D(G(z) + n_fake).
    augment: None, or a DiffAugment (npgan.augment): D sees T(x) and T'(G(z)), two draws.
    r1: gamma > 0 adds R1 = gamma/2 mean_b ||grad D(x_b)||^2 at the real images as D saw
    them (npgan.r1); the stats then hold r1 and r1_grad_norm, loss_d stays the BCE.
    """
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1] (0.9 = one-sided smoothing), got {real_label}")
    D.zero_grad()
    x_real = _shown(x_real, None if noise is None else noise[0], augment)  # (B, P): what D sees
    # (1a) real half: -log D(x). Backward right away, because the next D.forward
    # (the fake half) overwrites D's single-slot caches.
    logits_real = forward(D, x_real, y_real)           # (B, P) -> (B, 1)
    loss_real, dlogits_real = bce_with_logits(logits_real, real_label)
    # input_grad=False: images are data, not parameters, so D skips dL/dx_real
    D.backward(dlogits_real, input_grad=False)         # D's grads += ...
    # (1b) fake half: -log(1 - D(G(z))). G is frozen: forward only, no G.backward.
    x_fake = forward(G, z, y_fake)                     # (B, Z) -> (B, P)
    x_fake = _shown(x_fake, None if noise is None else noise[1], augment)  # and of the fake
    logits_fake = forward(D, x_fake, y_fake)           # (B, P) -> (B, 1)
    loss_fake, dlogits_fake = bce_with_logits(logits_fake, 0.0)
    D.backward(dlogits_fake, input_grad=False)         # D's grads += ... (sum of both halves)
    dtype = logits_real.dtype
    stats = {
        "loss_d": loss_real + loss_fake,               # = losses.d_loss(...)[0]
        "d_real": _mean(sigmoid(logits_real)),         # mean D(x), before the update
        "d_fake": _mean(sigmoid(logits_fake)),         # mean D(G(z))
        "acc_real": _fraction(logits_real > 0, dtype), # D says "real" to real images
        "acc_fake": _fraction(logits_fake < 0, dtype), # D says "fake" to fakes
    }
    if r1 > 0.0:
        # (1c) R1 on the real half, at the images D just saw: its own forward (the fake
        # half has overwritten the caches), backward and double backward (docs/r1.md)
        penalty, norms = r1_penalty(D, x_real, r1, y_real)   # D's grads += dR1/dtheta
        stats.update(r1=penalty, r1_grad_norm=_mean(norms))
    opt_d.step()                                       # only D moves
    return stats


def g_step(G, D, opt_g, z, g_loss="non-saturating", labels=None, noise=None, augment=None):
    """One G-update: minimize G's loss with D frozen; the gradient crosses D into G.

    z: (B, Z). g_loss: 'non-saturating' (-log D(G(z))) or 'minimax' (log(1 - D(G(z)))),
    or 'wasserstein' (-mean D(G(z))) against a critic (npgan.wgan).
    labels: (B,) classes for a conditional GAN; G makes them and D judges them as such.
    Returns 0-d device arrays: loss_g, d_fake_g (mean D(G(z))), and dx_fake_norm, the
    batch mean of ||d loss_i / d x_fake_i||, the gradient that reaches G's output.
    noise: None, or a (B, P) array of instance noise: D judges G(z) + noise.
    augment: None, or a DiffAugment: D judges T(G(z)), and the gradient comes back
    through T's backward (docs/backprop_through_d.md, section 8).
    """
    loss_fn = get_g_loss(g_loss)
    G.zero_grad()
    x_fake = forward(G, z, labels)                     # (B, Z) -> (B, P)
    # what D sees. Instance noise is added, so d(x_fake + noise)/dx_fake is the identity;
    # an augmentation T has a Jacobian, and its backward applies it (transposed)
    x_seen = _shown(x_fake, noise, augment)            # (B, P)
    logits = forward(D, x_seen, labels)                # (B, P) -> (B, 1)
    loss_g, dlogits = loss_fn(logits)                  # dL/dlogits, (B, 1)
    # the gradient crosses D here: dL/dx_seen = dL/dlogits * dlogits/dx_seen.
    # param_grads=False: D is frozen, so we compute only its input gradient.
    dx_seen = D.backward(dlogits, param_grads=False)   # (B, 1) -> (B, P)
    # ... and the augmentation: a shift moves it back, a cutout masks it
    dx_fake = dx_seen if augment is None else augment.backward(dx_seen)   # (B, P), dL/dx_fake
    # how loud D's feedback is: the size of the signal that reaches G's output
    dx_fake_norm = _per_sample_norm(dx_fake, logits.shape[0])
    G.backward(dx_fake, input_grad=False)              # fills G's grads (z needs no dz)
    opt_g.step()                                       # only G moves
    if g_loss == "wasserstein":                        # a critic's score, not a probability
        return {"loss_g": loss_g, "critic_fake_g": _mean(logits), "dx_fake_norm": dx_fake_norm}
    return {"loss_g": loss_g, "d_fake_g": _mean(sigmoid(logits)),
            "dx_fake_norm": dx_fake_norm}


@dataclass(frozen=True)
class StepSettings:
    """Everything a train_step does besides its data; one field per choice or cure.

    >>> StepSettings(latent_dim=100, loss="wgan-gp")     # or StepSettings.from_config(config)
    """
    latent_dim: int                    # Z, the width of G's input z
    loss: str = "gan"                  # 'gan' (d_step) or a critic (wgan.critic_step):
                                       # 'wgan' | 'wgan-gp' | 'hinge'; k = n_critic
    g_loss: str = "non-saturating"     # the GAN's G loss; against a critic: -mean D(G(z))
    real_label: float = 1.0            # D's target for real images (0.9: one-sided smoothing)
    prior: str = "normal"              # z ~ N(0, I) or U(-1, 1) (noise.sample_z)
    instance_noise: float = 0.0        # sigma of this step's instance noise; 0: off
    gp_weight: float = 10.0            # wgan-gp: lambda, the gradient penalty's weight
    clip: float = 0.01                 # wgan: c, D's parameters clipped to [-c, c]
    r1: float = 0.0                    # gamma of R1 on the real images (npgan.r1); 0: off
    diffaug: str = ""                  # DiffAugment policy, "translation,cutout,color"; "": off

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.instance_noise > 0.0 and self.loss != "gan":
            raise ValueError(f"instance noise is a cure for the GAN's D (loss 'gan'), not for "
                             f"the {self.loss!r} critic; use one or the other")
        if self.r1 < 0.0 or (self.r1 > 0.0 and self.loss != "gan"):
            raise ValueError(f"r1 is a gamma >= 0 for the GAN's D (loss 'gan'), got r1="
                             f"{self.r1!r} with loss {self.loss!r}")
        if self.diffaug and self.instance_noise > 0.0:
            raise ValueError("instance noise and differentiable augmentation both change the "
                             "images D sees; use one or the other")

    @classmethod
    def from_config(cls, config):
        """The settings of a TrainConfig's steps (npgan.config). instance_noise is its
        sigma0, the first step's level; train() anneals it (noise.instance_noise_sigma)."""
        return cls(latent_dim=config.latent_dim, loss=config.loss, g_loss=config.g_loss,
                   real_label=1.0 - config.label_smoothing, prior=config.prior,
                   instance_noise=config.instance_noise, gp_weight=config.gp_weight,
                   clip=config.clip, r1=config.r1, diffaug=config.diffaug)


def d_update(G, D, opt_d, x_real, backend, settings, y_real=None, augment=None):
    """One update of D as `settings` say, with fresh noise: d_step for the GAN, else
    wgan.critic_step. x_real: (B, P); y_real: (B,) its classes for a conditional GAN;
    augment: the DiffAugment of settings.diffaug (or None). Draws, in this order: z (B, Z),
    the instance noise, G's classes, wgan-gp's eps (B, 1), then the augmentation's (real
    images first, then fakes)."""
    s, b = settings, x_real.shape[0]
    z = sample_z(backend, b, s.latent_dim, s.prior)    # (B, Z)
    if s.loss == "gan":
        noise = None
        if s.instance_noise > 0.0:                     # one draw for the real, one for the fake
            noise = (instance_noise(backend, s.instance_noise, tuple(x_real.shape)),
                     instance_noise(backend, s.instance_noise, tuple(x_real.shape)))
        y_fake = None if y_real is None else random_labels(backend, b, G.num_classes)
        return d_step(G, D, opt_d, x_real, z, s.real_label, y_real, y_fake, noise=noise,
                      augment=augment, r1=s.r1)
    # a critic. Under wgan-gp a conditional G is asked for the real batch's classes, so
    # that both ends of each interpolation line belong to one class
    y_fake = y_real
    if y_real is not None and s.loss != "wgan-gp":
        y_fake = random_labels(backend, b, G.num_classes)
    eps = backend.uniform(0.0, 1.0, (b, 1)) if s.loss == "wgan-gp" else None
    return critic_step(G, D, opt_d, x_real, z, s.loss, eps, s.gp_weight, s.clip, y_real, y_fake,
                       augment=augment)


def train_step(G, D, opt_g, opt_d, real_batches, backend, settings=None, real_labels=None,
               augment=None, **fields):
    """Algorithm 1 of Goodfellow et al.: len(real_batches) = k D-updates, then one G-update.

    real_batches: a list of k arrays (B, P) on the backend's device. settings: a
    StepSettings; keywords set (or replace) its fields:
    train_step(G, D, opt_g, opt_d, [x], be, latent_dim=100). Fresh noise for each update
    comes from the backend's generator. Returns the statistics of the last D-update and
    of the G-update as 0-d device arrays (no host sync here).
    Conditional GAN: real_labels, a list of k label arrays (B,) that go with the
    batches; the classes asked of G are drawn uniformly, fresh for each update.
    augment: the DiffAugment of settings.diffaug, made once by the caller (train() does);
    None: made here for this call when settings.diffaug names one.
    """
    s = _step_settings(settings, fields)
    _check_batches(G, D, real_batches, real_labels)
    augment = _augmentation(s, augment, backend)
    for i, x_real in enumerate(real_batches):          # (1) k times: update D
        y_real = None if real_labels is None else real_labels[i]
        stats = d_update(G, D, opt_d, x_real, backend, s, y_real, augment)
    last = real_batches[-1]                            # (2) once: update G
    z = sample_z(backend, last.shape[0], s.latent_dim, s.prior)   # (B, Z)
    labels = None if real_labels is None else random_labels(backend, last.shape[0], G.num_classes)
    noise = instance_noise(backend, s.instance_noise, tuple(last.shape))
    g_loss = s.g_loss if s.loss == "gan" else "wasserstein"   # a critic: -mean D(G(z))
    stats.update(g_step(G, D, opt_g, z, g_loss, labels, noise=noise, augment=augment))
    return stats


def _augmentation(settings, augment, backend):
    """The DiffAugment of settings.diffaug: `augment` if given (it must follow that policy),
    else a new one; None when settings.diffaug is ''."""
    if augment is None:
        return DiffAugment(settings.diffaug, backend) if settings.diffaug else None
    if augment.policy != ",".join(n.strip() for n in settings.diffaug.split(",") if n.strip()):
        raise ValueError(f"train_step got {augment!r}, but settings.diffaug is "
                         f"{settings.diffaug!r}; make them the same policy")
    return augment


def _step_settings(settings, fields):
    if settings is None:
        return StepSettings(**fields)
    if not isinstance(settings, StepSettings):
        raise TypeError(f"train_step's settings must be a StepSettings, got {settings!r}; "
                        f"or give its fields as keywords: train_step(..., latent_dim=100)")
    return replace(settings, **fields) if fields else settings


def _check_batches(G, D, real_batches, real_labels):
    if not real_batches:
        raise ValueError("train_step needs at least one real batch (k >= 1)")
    conditional = real_labels is not None
    if conditional != isinstance(G, Conditional) or conditional != isinstance(D, Conditional):
        raise ValueError("a conditional GAN (models built with num_classes) needs real_labels, "
                         "and real_labels need conditional models")

"""The GAN of Goodfellow et al. (2014): MLP builders and the adversarial training step.

    G: z (B, Z) -> x_fake (B, P)          D: x (B, P) -> logit (B, 1),  D(x) = sigmoid(logit)

One training step = k D-updates with G frozen, then one G-update with D frozen.
"Frozen" means "not stepped": in the G-update the gradient still flows back *through*
D (that is how G learns), but D's weight gradients are not even computed.
This module is the one place where the gradient crosses from D into G: g_step().
With num_classes > 0 the builders make a conditional GAN (npgan.conditional): the
steps then also take class labels, y (B,), which G and D both see.
reference: https://arxiv.org/abs/1406.2661 (Algorithm 1)
"""
from __future__ import annotations

from npgan.backend import astype, get_array_module
from npgan.conditional import Conditional, random_labels
from npgan.layers import LeakyReLU, Linear, Sequential, Tanh
from npgan.losses import bce_with_logits, get_g_loss, sigmoid


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
                        num_classes=0):
    """D: P -> 512 -> 256 -> 1 with LeakyReLU(0.2); outputs a logit (no Sigmoid layer:
    the loss fuses it, see losses.bce_with_logits).
    num_classes = C > 0: conditional, D(x, y) with input [x, onehot(y)] of width P + C."""
    layers, width = [], in_dim + num_classes
    for h in hidden:
        layers += [Linear(width, h, backend, init), LeakyReLU(slope)]   # (B, width) -> (B, h)
        width = h
    layers += [Linear(width, 1, backend, init)]                         # (B, H) -> (B, 1)
    net = Sequential(*layers)
    return Conditional(net, num_classes, backend) if num_classes else net


def _forward(model, x, labels):
    """model(x), or model(x, labels) for a conditional model (labels: (B,) class indices)."""
    return model.forward(x) if labels is None else model.forward(x, labels)


def _mean(a):
    xp = get_array_module(a)
    return xp.mean(a)


def _fraction(mask, dtype):
    xp = get_array_module(mask)
    return xp.mean(astype(mask, dtype))


def d_step(G, D, opt_d, x_real, z, real_label=1.0, y_real=None, y_fake=None):
    """One D-update: maximize log D(x) + log(1 - D(G(z))), G frozen.

    x_real: (B, P) real images; z: (B, Z) noise. Returns a dict of 0-d device arrays.
    Conditional GAN: y_real (B,) the real images' classes, y_fake (B,) the classes G
    is asked for; D then learns log D(x | y) + log(1 - D(G(z | y') | y')).
    """
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1] (0.9 = one-sided smoothing), got {real_label}")
    D.zero_grad()
    # (1a) real half: -log D(x). Backward right away, because the next D.forward
    # (the fake half) overwrites D's single-slot caches.
    logits_real = _forward(D, x_real, y_real)          # (B, P) -> (B, 1)
    loss_real, dlogits_real = bce_with_logits(logits_real, real_label)
    # input_grad=False: images are data, not parameters, so D skips dL/dx_real
    D.backward(dlogits_real, input_grad=False)         # D's grads += ...
    # (1b) fake half: -log(1 - D(G(z))). G is frozen: forward only, no G.backward.
    x_fake = _forward(G, z, y_fake)                    # (B, Z) -> (B, P)
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


def g_step(G, D, opt_g, z, g_loss="non-saturating", labels=None):
    """One G-update: minimize G's loss with D frozen; the gradient crosses D into G.

    z: (B, Z). g_loss: 'non-saturating' (-log D(G(z))) or 'minimax' (log(1 - D(G(z)))),
    or 'wasserstein' (-mean D(G(z))) against a critic (npgan.wgan).
    labels: (B,) classes for a conditional GAN; G makes them and D judges them as such.
    """
    loss_fn = get_g_loss(g_loss)
    G.zero_grad()
    x_fake = _forward(G, z, labels)                    # (B, Z) -> (B, P)
    logits = _forward(D, x_fake, labels)               # (B, P) -> (B, 1)
    loss_g, dlogits = loss_fn(logits)                  # dL/dlogits, (B, 1)
    # the gradient crosses D here: dL/dx_fake = dL/dlogits * dlogits/dx_fake.
    # param_grads=False: D is frozen, so we compute only its input gradient.
    dx_fake = D.backward(dlogits, param_grads=False)   # (B, 1) -> (B, P)
    G.backward(dx_fake, input_grad=False)              # fills G's grads (z needs no dz)
    opt_g.step()                                       # only G moves
    if g_loss == "wasserstein":                        # a critic's score, not a probability
        return {"loss_g": loss_g, "critic_fake_g": _mean(logits)}
    return {"loss_g": loss_g, "d_fake_g": _mean(sigmoid(logits))}


def train_step(G, D, opt_g, opt_d, real_batches, backend, latent_dim,
               g_loss="non-saturating", real_label=1.0, real_labels=None, loss="gan",
               gp_weight=10.0, clip=0.01):
    """Algorithm 1 of Goodfellow et al.: len(real_batches) = k D-updates, then one G-update.

    real_batches: a list of k arrays (B, P) on the backend's device. Fresh noise for each
    update comes from the backend's generator. Returns the statistics of the last
    D-update and of the G-update as 0-d device arrays (no host sync here).
    Conditional GAN: real_labels, a list of k label arrays (B,) that go with the
    batches; the classes asked of G are drawn uniformly, fresh for each update.
    loss: 'gan' (d_step, and g_loss), or a critic, 'wgan' | 'wgan-gp' | 'hinge'
    (npgan.wgan.critic_step with gp_weight or clip, and G's loss -mean D(G(z))); the
    loop is the same, k = n_critic. Under wgan-gp a conditional G is asked for the real
    batch's classes in the critic step, and eps ~ U(0, 1) is drawn per sample.
    """
    from npgan.wgan import LOSSES, critic_step         # (npgan.wgan builds on this module)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if not real_batches:
        raise ValueError("train_step needs at least one real batch (k >= 1)")
    conditional = real_labels is not None
    if conditional != isinstance(G, Conditional) or conditional != isinstance(D, Conditional):
        raise ValueError("a conditional GAN (models built with num_classes) needs real_labels, "
                         "and real_labels need conditional models")
    for i, x_real in enumerate(real_batches):          # (1) k times: update D
        b = x_real.shape[0]
        z = backend.randn((b, latent_dim))
        y_real = real_labels[i] if conditional else None
        y_fake = None
        if conditional:
            y_fake = y_real if loss == "wgan-gp" else random_labels(backend, b, G.num_classes)
        if loss == "gan":
            stats = d_step(G, D, opt_d, x_real, z, real_label, y_real, y_fake)
        else:
            eps = backend.uniform(0.0, 1.0, (b, 1)) if loss == "wgan-gp" else None
            stats = critic_step(G, D, opt_d, x_real, z, loss, eps, gp_weight, clip,
                                y_real, y_fake)
    batch = real_batches[-1].shape[0]
    z = backend.randn((batch, latent_dim))             # (2) once: update G
    labels = random_labels(backend, batch, G.num_classes) if conditional else None
    stats.update(g_step(G, D, opt_g, z, g_loss if loss == "gan" else "wasserstein", labels))
    return stats

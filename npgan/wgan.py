"""The Wasserstein GAN family: a critic instead of a discriminator.

D outputs a score, not a probability, and learns to tell real from fake by a margin:
    wgan     (Arjovsky et al. 2017): min_D mean D(G(z)) - mean D(x), D's weights
             clipped to [-c, c] after every update (a crude 1-Lipschitz constraint);
    wgan-gp  (Gulrajani et al. 2017): the same loss plus a gradient penalty
             lambda * mean_b (||grad_x D(x_hat_b)|| - 1)^2 on x_hat between real and fake;
    hinge    (Lim & Ye 2017, SN-GAN, BigGAN): mean relu(1 - D(x)) + mean relu(1 + D(G(z))).
G's loss is -mean D(G(z)) for all three (losses.wasserstein_g_loss), so the G-update is
npgan.gan.g_step with g_loss="wasserstein": the gradient still crosses D there.

The penalty's gradient with respect to D's weights goes through D's *backward* pass:
penalty_backward runs D.backward with create_graph=True, then D.double_backward
(docs/wgan_gp.md derives it layer by layer). Each loss's optimizer settings, from its
paper, are npgan.config.LOSS_DEFAULTS.
references: https://arxiv.org/abs/1701.07875, https://arxiv.org/abs/1704.00028
"""
from __future__ import annotations

from npgan.backend import get_array_module
from npgan.conditional import forward
from npgan.losses import CRITIC_LOSSES, gradient_norms, gradient_penalty
from npgan.mbstd import backward_through_forward


def interpolate(x_real, x_fake, eps):
    """x_hat = eps * x_real + (1 - eps) * x_fake: a random point on the line between each
    real and fake sample. eps: (B, 1), one U(0, 1) draw per sample. (B, P) -> (B, P)."""
    return x_fake + eps * (x_real - x_fake)


def penalty_backward(D, x_hat, weight=10.0, labels=None):
    """Add the gradient penalty's gradient dP/dtheta into D's grads; return (P, norms).

    P = weight * mean_b (||grad_x D(x_hat)_b|| - 1)^2, norms = ||grad_x D(x_hat)_b||, (B,).
    Each sample's score depends on its own input only (no BatchNorm: the paper's rule),
    so one backward of sum_b D(x_hat_b) gives every per-sample input gradient at once.
    """
    xp = get_array_module(x_hat)
    logits = forward(D, x_hat, labels)                        # (B, P) -> (B, 1)
    # first pass: dx = grad_x sum_b D(x_hat_b); param_grads=False because this
    # gradient is not a loss we minimize, it is the *input* of the penalty
    dx = D.backward(xp.ones_like(logits), param_grads=False, create_graph=True)   # (B, P)
    penalty, g_dx = gradient_penalty(dx, weight)              # P and dP/d(dx), (B, P)
    # second pass: back through the first one, into D's weights (D's grads += dP/dtheta)
    D.double_backward(g_dx)
    # third pass, only for MinibatchStd layers: through their input, the forward way
    backward_through_forward(D, x_hat, labels)
    return penalty, gradient_norms(dx)


def clip_parameters(model, c):
    """WGAN's constraint: every parameter of `model` clipped to [-c, c], in place."""
    for p in model.parameters():
        xp = get_array_module(p.data)
        p.data[...] = xp.clip(p.data, -c, c)


def critic_step(G, D, opt_d, x_real, z, loss="wgan-gp", eps=None, gp_weight=10.0, clip=0.01,
                y_real=None, y_fake=None, augment=None):
    """One critic update, G frozen: minimize the critic loss of `loss` (see the module doc).

    x_real: (B, P); z: (B, Z); eps: (B, 1) U(0, 1) draws for wgan-gp's interpolates.
    clip: wgan's c. Conditional: y_real (B,), y_fake (B,); the interpolates take y_real,
    so train_step asks G for the real batch's classes under wgan-gp (both ends of each
    line then belong to one class). Returns a dict of 0-d device arrays.
    augment: None, or a DiffAugment (npgan.augment): the critic scores T(x) and T'(G(z)),
    and wgan-gp's interpolates lie between these two, the images it saw.
    """
    if loss not in CRITIC_LOSSES:
        raise ValueError(f"unknown critic loss {loss!r}; valid: {', '.join(CRITIC_LOSSES)}")
    if loss == "wgan-gp" and eps is None:
        raise ValueError("wgan-gp needs eps, one U(0, 1) draw per sample, shape (B, 1)")
    real_half, fake_half = CRITIC_LOSSES[loss]
    D.zero_grad()
    # (1a) real half: -mean D(x) (wgan), mean relu(1 - D(x)) (hinge); backward at once,
    # before the next forward overwrites D's caches
    if augment is not None:
        x_real = augment.forward(x_real)               # (B, P): what the critic sees
    logits_real = forward(D, x_real, y_real)           # (B, P) -> (B, 1)
    loss_real, dlogits_real = real_half(logits_real)
    D.backward(dlogits_real, input_grad=False)         # D's grads += ...
    # (1b) fake half: +mean D(G(z)) (wgan), mean relu(1 + D(G(z))) (hinge); G frozen
    x_fake = forward(G, z, y_fake)                     # (B, Z) -> (B, P)
    if augment is not None:
        x_fake = augment.forward(x_fake)               # (B, P): another draw of T
    logits_fake = forward(D, x_fake, y_fake)           # (B, P) -> (B, 1)
    loss_fake, dlogits_fake = fake_half(logits_fake)
    D.backward(dlogits_fake, input_grad=False)         # D's grads += ...
    xp = get_array_module(logits_real)
    stats = {"loss_d": loss_real + loss_fake,
             # the critic's estimate of the Wasserstein-1 distance, before the update
             "wasserstein": xp.mean(logits_real) - xp.mean(logits_fake),
             "critic_real": xp.mean(logits_real), "critic_fake": xp.mean(logits_fake)}
    if loss == "wgan-gp":
        # (1c) the penalty, on points between the real and the fake samples
        x_hat = interpolate(x_real, x_fake, eps)        # (B, P)
        penalty, norms = penalty_backward(D, x_hat, gp_weight, y_real)   # D's grads += ...
        stats.update(loss_d=stats["loss_d"] + penalty, gp=penalty, grad_norm=xp.mean(norms))
    opt_d.step()                                       # only D moves
    if loss == "wgan":
        clip_parameters(D, clip)                       # D back into the box [-c, c]
    return stats

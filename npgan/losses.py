"""GAN losses. Each takes D's logits and returns (loss, dlogits): the loss is where we
kick off the chain rule, so every function hands back dL/dlogits for backward().

D outputs a logit l per image; D(x) = sigmoid(l) is the probability "real".
Working on logits, not probabilities, lets us fuse sigmoid and log into the stable
softplus(l) = log(1 + exp(l)) = max(l, 0) + log1p(exp(-|l|)):
    -log sigmoid(l)     = softplus(-l)
    -log(1 - sigmoid(l)) = softplus(l)
Losses are means over the batch, so gradients carry a 1/N (N = number of logits):
the step size does not grow with the batch size.
Losses come back as 0-d arrays on the device: reading them (float(loss)) is a host
sync, which the training loop does only at logging points.
"""
from __future__ import annotations

import math

from npgan.backend import astype, get_array_module


def sigmoid(x):
    """sigmoid(x) = 0.5 * tanh(x / 2) + 0.5: no overflow at any x, in any float dtype."""
    xp = get_array_module(x)
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    xp = get_array_module(x)
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def _count(a) -> int:
    return math.prod(a.shape)


def bce_with_logits(logits, target):
    """Binary cross-entropy on logits, averaged: mean(-y log s(l) - (1-y) log(1-s(l))).

    logits: (B, 1) or (B,); target: a float (same label for all) or an array like logits.
    loss = mean(softplus(l) - y * l)            [the same thing, stable]
    dlogits = (sigmoid(l) - y) / N              [sigmoid and BCE fused]
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html
    """
    xp = get_array_module(logits, target)
    n = _count(logits)
    loss = xp.sum(softplus(logits) - target * logits) / n     # 0-d
    dlogits = (sigmoid(logits) - target) / n                  # like logits
    return loss, dlogits


def bce(probs, target, eps=1e-7):
    """Binary cross-entropy on probabilities, for teaching (pair it with a Sigmoid layer).

    probs: p in (0, 1), any shape; clipped to [eps, 1 - eps] so log never sees 0.
    loss = -mean(y log p + (1 - y) log(1 - p));   dprobs = (p - y) / (p (1 - p)) / N
    Through Sigmoid's backward (dp/dl = p (1 - p)) this becomes bce_with_logits's
    (p - y) / N; the tests check that both paths agree away from the clip.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html
    """
    xp = get_array_module(probs, target)
    n = _count(probs)
    p = xp.clip(probs, eps, 1.0 - eps)
    loss = -xp.sum(target * xp.log(p) + (1.0 - target) * xp.log(1.0 - p)) / n
    dprobs = (p - target) / (p * (1.0 - p)) / n
    return loss, dprobs


def d_loss(logits_real, logits_fake, real_label=1.0):
    """D's loss (Goodfellow et al. 2014): -log D(x) - log(1 - D(G(z))), each half averaged.

    real_label < 1 is one-sided label smoothing (Salimans et al. 2016): the real
    targets become e.g. 0.9, the fake targets stay 0.
    Returns (loss, dlogits_real, dlogits_fake).
    """
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1], got {real_label}")
    loss_real, dlogits_real = bce_with_logits(logits_real, real_label)  # -log D(x)
    loss_fake, dlogits_fake = bce_with_logits(logits_fake, 0.0)         # -log(1 - D(G(z)))
    return loss_real + loss_fake, dlogits_real, dlogits_fake


def g_loss_nonsaturating(logits_fake):
    """G's non-saturating loss: -log D(G(z)) = softplus(-l), averaged.

    dlogits = (sigmoid(l) - 1) / B: close to -1/B when D confidently rejects the fakes
    (D(G(z)) ~ 0), so G gets a strong signal early in training.
    """
    return bce_with_logits(logits_fake, 1.0)


def g_loss_minimax(logits_fake):
    """G's minimax (saturating) loss: log(1 - D(G(z))) = -softplus(l), averaged.

    dlogits = -sigmoid(l) / B: close to 0 when D(G(z)) ~ 0, which is exactly the
    start of training, so G learns slowly there (the loss "saturates").
    """
    xp = get_array_module(logits_fake)
    n = _count(logits_fake)
    loss = -xp.sum(softplus(logits_fake)) / n
    dlogits = -sigmoid(logits_fake) / n
    return loss, dlogits


# ------------------------------------------------------------- critics (WGAN, hinge)
# A critic outputs a score l = D(x), not a probability: no sigmoid anywhere below.
# Each critic loss is a sum of a real half and a fake half that do not interact, so
# a step can backward the real half before the fake forward (single-slot caches).
def wasserstein_real(logits_real):
    """The critic's real half, -mean(D(x)); dlogits = -1/N (every score pushed up)."""
    xp = get_array_module(logits_real)
    n = _count(logits_real)
    return -xp.sum(logits_real) / n, xp.full_like(logits_real, -1.0 / n)


def wasserstein_fake(logits_fake):
    """The critic's fake half, +mean(D(G(z))); dlogits = +1/N (every score pushed down)."""
    xp = get_array_module(logits_fake)
    n = _count(logits_fake)
    return xp.sum(logits_fake) / n, xp.full_like(logits_fake, 1.0 / n)


def wasserstein_d_loss(logits_real, logits_fake):
    """The WGAN critic's loss (Arjovsky et al. 2017): mean D(G(z)) - mean D(x).

    Its negative is the critic's estimate of the Wasserstein-1 distance, W ~ mean D(x)
    - mean D(G(z)), valid while D is 1-Lipschitz (clipping or the gradient penalty).
    Returns (loss, dlogits_real, dlogits_fake) like d_loss.
    reference: https://arxiv.org/abs/1701.07875 (Algorithm 1)
    """
    loss_real, dlogits_real = wasserstein_real(logits_real)
    loss_fake, dlogits_fake = wasserstein_fake(logits_fake)
    return loss_real + loss_fake, dlogits_real, dlogits_fake


def wasserstein_g_loss(logits_fake):
    """G's loss against a critic (WGAN, WGAN-GP and hinge alike): -mean D(G(z)).
    dlogits = -1/N whatever the score: a linear loss never saturates."""
    xp = get_array_module(logits_fake)
    n = _count(logits_fake)
    return -xp.sum(logits_fake) / n, xp.full_like(logits_fake, -1.0 / n)


def hinge_real(logits_real):
    """The hinge critic's real half, mean(relu(1 - D(x))); dlogits = -[l < 1] / N:
    real scores above the margin 1 get no gradient."""
    xp = get_array_module(logits_real)
    n = _count(logits_real)
    active = astype(logits_real < 1.0, logits_real.dtype)         # 1 inside the margin
    return xp.sum(xp.maximum(1.0 - logits_real, 0.0)) / n, active * (-1.0 / n)


def hinge_fake(logits_fake):
    """The hinge critic's fake half, mean(relu(1 + D(G(z)))); dlogits = [l > -1] / N."""
    xp = get_array_module(logits_fake)
    n = _count(logits_fake)
    active = astype(logits_fake > -1.0, logits_fake.dtype)
    return xp.sum(xp.maximum(1.0 + logits_fake, 0.0)) / n, active * (1.0 / n)


def hinge_d_loss(logits_real, logits_fake):
    """The hinge critic's loss (Lim & Ye 2017; SN-GAN, BigGAN):
    mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))). G's loss is wasserstein_g_loss.
    Returns (loss, dlogits_real, dlogits_fake).
    reference: https://arxiv.org/abs/1802.05957 (SN-GAN, eq. 16-17)
    """
    loss_real, dlogits_real = hinge_real(logits_real)
    loss_fake, dlogits_fake = hinge_fake(logits_fake)
    return loss_real + loss_fake, dlogits_real, dlogits_fake


def _norms(dx):
    """||dx_b||_2 for every row b of dx (B, ...): (B, 1)."""
    xp = get_array_module(dx)
    flat = xp.reshape(dx, (dx.shape[0], -1))                        # (B, P)
    return xp.sqrt(xp.sum(flat * flat, axis=1, keepdims=True))      # (B, 1)


def gradient_penalty(dx, weight=10.0):
    """WGAN-GP's penalty on D's input gradients dx = grad_x D(x_hat), (B, P):

    loss = weight * mean_b (||dx_b|| - 1)^2
    d_dx = weight * 2 (||dx_b|| - 1) / B * dx_b / ||dx_b||        [like dx: (B, P)]
    d_dx is what D.double_backward carries into D's weights. A zero row of dx (never
    seen in practice) gets the subgradient 0 instead of 0 / 0.
    Returns (loss, d_dx).
    reference: https://arxiv.org/abs/1704.00028 (eq. 3, Algorithm 1)
    """
    xp = get_array_module(dx)
    b = dx.shape[0]
    norms = _norms(dx)                                              # (B, 1)
    loss = weight * xp.sum((norms - 1.0) ** 2) / b                  # 0-d
    scale = (2.0 * weight / b) * (norms - 1.0) / xp.maximum(norms, 1e-30)   # (B, 1)
    d_dx = xp.reshape(xp.reshape(dx, (b, -1)) * scale, dx.shape)    # (B, P)
    return loss, d_dx


def gradient_norms(dx):
    """The per-sample norms ||dx_b|| as (B,): what the penalty pulls towards 1."""
    xp = get_array_module(dx)
    return xp.reshape(_norms(dx), (dx.shape[0],))


# The plain GAN's two G losses (--g-loss); a critic's G loss is always wasserstein_g_loss.
G_LOSSES = {
    "non-saturating": g_loss_nonsaturating,
    "minimax": g_loss_minimax,
}
# every G loss a step can call by name
_ALL_G_LOSSES = {**G_LOSSES, "wasserstein": wasserstein_g_loss}
# the critics' losses as (real half, fake half), by --loss (wgan-gp adds gradient_penalty)
CRITIC_LOSSES = {
    "wgan": (wasserstein_real, wasserstein_fake),
    "wgan-gp": (wasserstein_real, wasserstein_fake),
    "hinge": (hinge_real, hinge_fake),
}
# every --loss: the GAN's BCE (gan.d_step) and the critics (wgan.critic_step)
LOSSES = ("gan", *CRITIC_LOSSES)


def get_g_loss(name):
    """The generator loss function called `name`: 'non-saturating' or 'minimax' (the
    plain GAN), or 'wasserstein' (-mean D(G(z)), G's loss against every critic)."""
    if name not in _ALL_G_LOSSES:
        raise ValueError(f"unknown generator loss {name!r}; valid: {', '.join(_ALL_G_LOSSES)}")
    return _ALL_G_LOSSES[name]


def softmax_cross_entropy(logits, labels):
    """Multiclass cross-entropy on logits, averaged: mean(-log softmax(l)[y]).

    logits: (B, K); labels: integer class indices (B,), on the same device.
    log softmax(l) = (l - max l) - log sum exp(l - max l)   [the max only for stability]
    dlogits = (softmax(l) - onehot(y)) / B                   [softmax and log fused]
    reference: https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html
    """
    xp = get_array_module(logits, labels)
    batch, classes = logits.shape
    shifted = logits - xp.max(logits, axis=1, keepdims=True)               # (B, K), max 0
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    # onehot[b, k] = (labels[b] == k): the class indices must live on labels' device.
    # The Array API's arange takes that device; CuPy's has no `device` argument and
    # creates arrays on the current device, which is where labels are anyway.
    try:
        classes_row = xp.arange(classes, dtype=labels.dtype, device=labels.device)
    except (TypeError, AttributeError):
        classes_row = xp.arange(classes, dtype=labels.dtype)
    onehot = astype(xp.reshape(labels, (batch, 1)) == classes_row, logits.dtype)  # (B, K)
    loss = -xp.sum(onehot * log_probs) / batch                             # 0-d
    dlogits = (xp.exp(log_probs) - onehot) / batch                         # (B, K)
    return loss, dlogits

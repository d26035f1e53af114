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


G_LOSSES = {
    "non-saturating": g_loss_nonsaturating,
    "minimax": g_loss_minimax,
}


def get_g_loss(name):
    """The generator loss function called `name` ('non-saturating' or 'minimax')."""
    if name not in G_LOSSES:
        raise ValueError(f"unknown generator loss {name!r}; valid: {', '.join(G_LOSSES)}")
    return G_LOSSES[name]


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

"""R1 (Mescheder et al. 2018): a gradient penalty on the real data, so that D cannot grow steep
where the real images are.

    R1 = gamma / 2 * mean_b ||grad_x D(x_b)||^2        x_b real images, D(x) the logit

It is added to D's loss in the real half of D's step. At the equilibrium (G = data, D = 0)
a D with a steep slope along the data pushes G back and forth around it (the plain GAN
oscillates); the penalty damps that, and with it training converges locally
(the paper's Theorem 4.1). WGAN-GP penalizes (||grad|| - 1)^2 between real and fake;
R1 penalizes ||grad||^2 on the real images only, so D is pushed towards a flat score on
the data.

Its gradient with respect to D's weights goes through D's backward pass, exactly as
WGAN-GP's does (npgan.wgan.penalty_backward): D.backward(..., create_graph=True), then
D.double_backward. docs/r1.md derives it beside the code.
reference: https://arxiv.org/abs/1801.04406 (section 4.1)
"""
from __future__ import annotations

from npgan.backend import get_array_module
from npgan.layers import without_double_backward
from npgan.mbstd import backward_through_forward


def r1_loss(dx, gamma):
    """R1 from D's input gradients dx = grad_x sum_b D(x_b), (B, P) or (B, C, H, W):

    loss = gamma / 2 * sum(dx**2) / B          d_dx = gamma / B * dx    [like dx]
    Returns (loss, d_dx); d_dx is what D.double_backward carries into D's weights.
    """
    xp = get_array_module(dx)
    b = dx.shape[0]
    loss = (0.5 * gamma / b) * xp.sum(dx * dx)                    # 0-d
    return loss, (gamma / b) * dx                                 # like dx


def require_r1_critic(model):
    """Raise NotImplementedError naming the first layer of `model` without a double backward
    (so R1 cannot pass through it), before any work is done."""
    found = without_double_backward(model)
    if found:
        where, layer = found
        raise NotImplementedError(
            f"layer {where} of D, {layer!r}, has no double_backward: the R1 penalty "
            f"cannot pass through it. R1 needs a D built from Linear, LeakyReLU, Conv2d, "
            f"Reshape/Flatten and MinibatchStd: no BatchNorm (it would make each real "
            f"image's gradient depend on its batch, and it has no double backward), no "
            f"SpectralNorm, Dropout, Sigmoid or Tanh. For the DCGAN, build D with "
            f"build_dcgan_discriminator(..., batchnorm=False)."
        )


def r1_penalty(D, x_real, gamma, labels=None):
    """Add dR1/dtheta into D's grads; return (R1, norms), a 0-d array and ||grad_x D(x_b)|| (B,).

    x_real: (B, P) real images (D's input); labels: (B,) classes for a conditional D.
    Each score depends on its own image only (no BatchNorm), so one backward of
    sum_b D(x_b) gives every image's gradient at once. With MinibatchStd the scores share
    the batch's spread, and R1 is then the gradient of the sum (as StyleGAN2 computes it).
    D's caches: this runs its own forward, so call it after the real half's backward.
    """
    if gamma < 0:
        raise ValueError(f"R1's gamma must be >= 0, got {gamma}")
    require_r1_critic(D)
    xp = get_array_module(x_real)
    logits = D.forward(x_real) if labels is None else D.forward(x_real, labels)  # (B, 1)
    # first pass: dx = grad_x sum_b D(x_b); param_grads=False: it is not a loss we
    # minimize, it is the *input* of the penalty
    dx = D.backward(xp.ones_like(logits), param_grads=False, create_graph=True)  # (B, P)
    penalty, g_dx = r1_loss(dx, gamma)                            # R1 and dR1/d(dx)
    # second pass: back through the first one, into D's weights (D's grads += dR1/dtheta)
    D.double_backward(g_dx)
    # third pass, only for MinibatchStd layers: through their input, the forward way
    backward_through_forward(D, x_real, labels)
    flat = xp.reshape(dx, (dx.shape[0], -1))                      # (B, P)
    return penalty, xp.sqrt(xp.sum(flat * flat, axis=1))          # 0-d, (B,)

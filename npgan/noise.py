"""The noise a GAN step draws: G's input z from its prior, and D's instance noise.

    z ~ p(z): (B, Z), 'normal' N(0, I) or 'uniform' U(-1, 1)       sample_z
    n ~ N(0, sigma_t^2 I): (B, P), added to every image D sees       instance_noise

Both come from the backend's seeded generator, on its device, so the same seed gives the
same draws on the same backend. Instance noise (Sonderby et al. 2016) blurs real and
fake alike, so that their distributions overlap and D's gradient stays informative;
sigma_t is annealed to 0 over the run (instance_noise_sigma).
references: https://arxiv.org/abs/1406.2661 (z ~ p_z), https://arxiv.org/abs/1610.04490
"""
from __future__ import annotations

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


def instance_noise_sigma(sigma0, step, total_steps):
    """The instance-noise level of G-update `step` (t = 0, 1, ..., T - 1) of a T-step run:

        sigma_t = sigma0 * (T - 1 - t) / (T - 1)

    sigma0 at the first step, falling linearly to 0 at the last (Sonderby et al. 2016
    anneal it so that D ends up judging the clean images). 0 when sigma0 is 0.
    reference: https://arxiv.org/abs/1610.04490 , https://arxiv.org/abs/1701.04862
    """
    return sigma0 * max(total_steps - 1 - step, 0) / max(total_steps - 1, 1)


def instance_noise(backend, sigma, shape):
    """sigma * N(0, I) of `shape` from the backend's generator, on its device; None if sigma = 0."""
    if sigma <= 0.0:
        return None                                    # off: draw nothing, the stream is unchanged
    n = backend.randn(shape)
    n *= sigma                                         # a Python float keeps the dtype
    return n

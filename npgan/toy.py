"""2-D toy data for watching a GAN learn: Gaussian mixtures whose modes we can count.

    "ring": 8 Gaussians, centers on a circle of radius 2 at angles 0, 45, ..., 315 degrees
    "grid": 25 Gaussians, centers on the 5 x 5 grid {-2, -1, 0, 1, 2}^2
    every Gaussian has std 0.05 (STD) unless the caller asks for another

In two dimensions we can measure what MNIST only lets us eyeball: how many modes G
covers (mode collapse) and what share of its samples lie within 3 std of a mode
(mode_coverage).
The GAN works in units where the data fit inside Tanh's range (-1, 1), like MNIST
pixels: D sees points divided by SCALE, and G's outputs are multiplied by SCALE
before we measure or plot them.

    G, D, history = train_toy("ring", steps=3000, seed=0)
    history[-1]["covered"], history[-1]["hq_share"]    # modes hit, share within 3 std of a mode
reference: https://arxiv.org/abs/1611.02163 (Unrolled GANs, section 3.1: the ring)
"""
from __future__ import annotations

import math

from dataclasses import replace

from npgan.backend import Backend, astype, get_backend, to_numpy
from npgan.backend import host as np
from npgan.gan import StepSettings, build_discriminator, build_generator, d_update, train_step
from npgan.losses import sigmoid
from npgan.noise import instance_noise_sigma, sample_z
from npgan.optim import Adam, RMSprop

SHAPES = ("ring", "grid")
RADIUS = 2.0        # ring radius, in data units
STD = 0.05          # std of every Gaussian, in data units. Metz et al. use 0.02; our short,
                    # small runs cover modes that narrow much less reliably
SCALE = 2.5         # data units per GAN unit: every mode coordinate lies in [-2, 2], which
                    # maps to [-0.8, 0.8], inside Tanh's range (-1, 1)


# Named settings of the toy: train_toy(**TOY_SETTINGS[name]). The same budget of
# G-updates for every setting. The losses: Adam lr 1e-3 is the toy GAN's; the critics take
# n_critic = 5 from their papers, wgan-gp lambda = 0.1 and betas (0.5, 0.9) from the
# WGAN-GP authors' own toy script ("smaller lambda seems to help for toy tasks"), wgan the
# paper's clip 0.01. The cures of an over-strong D (issue 13), each on top of "gan":
# TTUR with D 4x faster than G around the toy's rate (as SAGAN's 4e-4 / 1e-4 around
# 2e-4), instance noise sigma0 = 0.1 and 0.3 in GAN units (the data span [-0.8, 0.8]
# there, as MNIST's pixels span [-1, 1]) annealed to 0, spectral norm on every layer of
# D, and z ~ U(-1, 1).
_GAN = dict(loss="gan", lr=1e-3, betas=(0.5, 0.999), d_steps=1)
TOY_SETTINGS = {
    "gan": _GAN,
    "wgan": dict(loss="wgan", optimizer="rmsprop", lr=1e-3, d_steps=5, clip=0.01),
    "wgan-gp": dict(loss="wgan-gp", lr=1e-3, betas=(0.5, 0.9), d_steps=5, gp_weight=0.1),
    "hinge": dict(loss="hinge", lr=1e-3, betas=(0.5, 0.999), d_steps=5),
    "gan+ttur": dict(_GAN, lr_d=2e-3, lr_g=5e-4),
    "gan+noise0.1": dict(_GAN, instance_noise=0.1),
    "gan+noise0.3": dict(_GAN, instance_noise=0.3),
    "gan+sn": dict(_GAN, spectral_norm=True),
    "gan+uniform": dict(_GAN, prior="uniform"),
}


def centers(shape="ring"):
    """The K mode centers of `shape` as a host array (K, 2), in data units."""
    if shape == "ring":
        angles = 2.0 * math.pi * np.arange(8) / 8
        return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)   # (8, 2)
    if shape == "grid":
        ticks = np.arange(-2.0, 3.0)                                         # -2 .. 2
        xs, ys = np.meshgrid(ticks, ticks, indexing="ij")                    # (5, 5) each
        return np.stack([xs.ravel(), ys.ravel()], axis=1)                    # (25, 2)
    raise ValueError(f"unknown toy shape {shape!r}; valid: {', '.join(SHAPES)}")


def sample(shape, n, backend, std=STD):
    """n points of the mixture on the backend's device, (n, 2), in data units.

    Each point picks a mode uniformly (mode = floor(K u), u ~ U[0, 1)) and adds
    N(0, std^2) noise; both draws come from the backend's seeded generator.
    """
    xp = backend.xp
    mus = backend.asarray(centers(shape))                            # (K, 2)
    k = mus.shape[0]
    u = backend.uniform(0.0, 1.0, (n,))                              # (n,)
    # we clip because K u may round up to K in float32
    idx = astype(xp.clip(xp.floor(u * k), 0.0, k - 1.0), xp.int64)    # (n,) mode index
    return xp.take(mus, idx, axis=0) + std * backend.randn((n, 2))    # (n, 2)


def mode_coverage(points, centers, std, min_share=None):
    """How well `points` (N, 2) cover the K modes at `centers` (K, 2), on the host.

    A point that lies within 3 std of its nearest center counts for that mode. A mode
    is covered when at least min_share * N points lie within 3 std of it; by default
    min_share = 1 / (4 K), a quarter of its fair share (points spread evenly along the
    ring, missing the modes, stay below that). Returns (covered modes: int, per-mode
    counts: int array (K,), hq_share: the share of points within 3 std of a mode).
    """
    pts = np.asarray(to_numpy(points), dtype=np.float64)             # (N, 2)
    mus = np.asarray(to_numpy(centers), dtype=np.float64)            # (K, 2)
    n, k = pts.shape[0], mus.shape[0]
    min_share = 1.0 / (4 * k) if min_share is None else min_share
    dist = np.linalg.norm(pts[:, None, :] - mus[None, :, :], axis=-1)   # (N, K)
    nearest = np.argmin(dist, axis=1)                                # (N,)
    good = np.min(dist, axis=1) <= 3.0 * std                         # (N,) within 3 std of a mode
    counts = np.bincount(nearest[good], minlength=k)                 # (K,)
    covered = int(np.sum(counts >= min_share * n))
    return covered, counts, float(np.mean(good))


def generate(G, z, backend):
    """G's samples for noise z (N, Z), as a host array (N, 2) in data units."""
    return backend.to_numpy(G.forward(z)) * SCALE                    # a host sync


def decision_surface(D, backend, lim=3.0, n=100, critic=False):
    """sigmoid(D(x)) on an n x n grid over [-lim, lim]^2 (data units), as a host (n, n)
    array whose row i is y = ys[i] (for imshow with origin="lower").
    critic=True: D's raw score instead (a critic's output is not a probability)."""
    ticks = np.linspace(-lim, lim, n)
    xs, ys = np.meshgrid(ticks, ticks)                               # (n, n) each
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1) / SCALE        # (n*n, 2), GAN units
    scores = D.forward(backend.asarray(grid))                        # (n*n, 1)
    return backend.to_numpy(scores if critic else sigmoid(scores)).reshape(n, n)


def train_toy(shape="ring", steps=3000, seed=0, backend="numpy", batch_size=256,
              hidden=64, latent_dim=4, lr=1e-3, betas=(0.5, 0.999), std=STD, d_steps=1,
              g_loss="non-saturating", train_generator=True, eval_every=500,
              eval_samples=2000, callback=None, loss="gan", optimizer="adam",
              gp_weight=10.0, clip=0.01, lr_d=None, lr_g=None, instance_noise=0.0,
              spectral_norm=False, prior="normal"):
    """Train a small MLP GAN on a toy shape with npgan.gan.train_step; return G, D, history.

    backend: a name ("numpy", "cupy", "array-api-strict") made with `seed`, or a Backend
    (which carries its own seed). hidden: the width H of G's and D's two hidden layers.
    Each step draws d_steps fresh real batches (B, 2) on the device, runs that many
    D-updates and one G-update. train_generator=False runs the D-updates only, so G
    stays at its initialization: a control that must not cover the modes.
    Every eval_every steps and after the last one we measure mode_coverage for a fixed
    noise batch, the only host syncs: history gets one dict per evaluation (step,
    covered, counts, hq_share, loss_d, and d_real, d_fake for a GAN or wasserstein for
    a critic); then callback(entry, G, D, be).
    loss: 'gan', or a critic, 'wgan' | 'wgan-gp' | 'hinge' (npgan.wgan), with gp_weight
    and clip; optimizer: 'adam' (lr, betas) or 'rmsprop' (lr), for both G and D.
    The cures, as in npgan.config.TrainConfig: lr_d, lr_g (TTUR; None: lr),
    instance_noise (sigma0 in GAN units, annealed by noise.instance_noise_sigma to 0 at
    the last step), spectral_norm (every Linear of D), prior ('normal' or 'uniform' z,
    also for the fixed evaluation noise).
    """
    settings = StepSettings(latent_dim, loss=loss, g_loss=g_loss, prior=prior,   # checked
                            instance_noise=instance_noise, gp_weight=gp_weight, clip=clip)
    be = backend if isinstance(backend, Backend) else get_backend(backend, seed=seed)
    G = build_generator(be, latent_dim=latent_dim, hidden=(hidden, hidden), out_dim=2)
    D = build_discriminator(be, in_dim=2, hidden=(hidden, hidden), spectral_norm=spectral_norm)
    opt_g, opt_d = _optimizers(G, D, optimizer, lr, betas, lr_d, lr_g)
    mus = centers(shape)                                             # (K, 2), host
    z_eval = sample_z(be, eval_samples, latent_dim, prior)           # fixed noise, (N, Z)
    history = []
    for step in range(1, steps + 1):
        reals = [sample(shape, batch_size, be, std) / SCALE          # k x (B, 2), GAN units
                 for _ in range(d_steps)]
        sigma = instance_noise_sigma(instance_noise, step - 1, steps)
        this_step = replace(settings, instance_noise=sigma)
        if train_generator:
            stats = train_step(G, D, opt_g, opt_d, reals, be, this_step)
        else:  # the control: the same D-updates, and no G-update at all
            for x_real in reals:
                stats = d_update(G, D, opt_d, x_real, be, this_step)
        if step % eval_every == 0 or step == steps:
            history.append(_evaluate(G, z_eval, be, mus, std, step, stats))
            if callback is not None:
                callback(history[-1], G, D, be)
    return G, D, history


def _optimizers(G, D, optimizer, lr, betas, lr_d, lr_g):
    """(opt_g, opt_d): Adam(lr, betas) or RMSprop(lr); lr_d, lr_g: TTUR's own rates (None: lr)."""
    lr_d = lr if lr_d is None else lr_d
    lr_g = lr if lr_g is None else lr_g
    if optimizer == "rmsprop":
        return RMSprop(G.parameters(), lr=lr_g), RMSprop(D.parameters(), lr=lr_d)
    return Adam(G.parameters(), lr=lr_g, betas=betas), Adam(D.parameters(), lr=lr_d, betas=betas)


def _evaluate(G, z_eval, be, mus, std, step, stats):
    """A history entry: mode_coverage of G's samples for the fixed noise (a host sync),
    and the step's statistics (D(x) and D(G(z)) for a GAN, the critic's W estimate)."""
    covered, counts, hq_share = mode_coverage(generate(G, z_eval, be), mus, std)
    keys = ("loss_d", "wasserstein") if "wasserstein" in stats else ("loss_d", "d_real", "d_fake")
    entry = {"step": step, "covered": covered, "counts": counts, "hq_share": hq_share}
    entry.update({k: be.item(stats[k]) for k in keys})
    return entry

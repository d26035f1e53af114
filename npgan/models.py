"""The networks of a run: the G and D that a TrainConfig describes (build_models),
a trained G read back from a checkpoint (load_generator), and samples of it (generate).

    train():        config -> build_models -> G, D -> trained, saved in checkpoint.npz
    afterwards:     checkpoint.npz -> load_generator -> G (eval mode) -> generate -> (n, P)
"""
from __future__ import annotations

from npgan.backend import get_backend, host
from npgan.checkpoint import load_checkpoint
from npgan.config import NUM_CLASSES, TrainConfig, saved_settings
from npgan.fast import accelerate
from npgan.gan import build_discriminator, build_generator
from npgan.noise import sample_z


def build_models(config: TrainConfig, be):
    """G and D for config.model on backend `be` (conditional ones if config.conditional),
    on the fast path (npgan.fast) unless config.reference."""
    G, D = _build_models(config, be)
    return (G, D) if config.reference else (accelerate(G), accelerate(D))


def _build_models(config: TrainConfig, be):
    c = NUM_CLASSES if config.conditional else 0
    if config.model == "dcgan":
        from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
        # the WGAN-GP critic has no BatchNorm (Gulrajani et al. 2017, section 4), nor the
        # D of R1: a gradient penalty needs each image's score to depend on it alone
        batchnorm = config.d_batchnorm and config.loss != "wgan-gp" and not config.r1
        return (build_dcgan_generator(be, latent_dim=config.latent_dim,
                                      base_channels=config.base_channels, num_classes=c),
                build_dcgan_discriminator(be, base_channels=config.base_channels,
                                          num_classes=c, spectral_norm=config.spectral_norm,
                                          batchnorm=batchnorm, mbstd=config.mbstd))
    G = build_generator(be, latent_dim=config.latent_dim, hidden=tuple(config.g_hidden),
                        num_classes=c)
    D = build_discriminator(be, hidden=tuple(config.d_hidden), num_classes=c,
                            spectral_norm=config.spectral_norm, mbstd=config.mbstd)
    return G, D


def load_generator(path, backend="numpy", seed=0, raw=False):
    """G from a training checkpoint, in eval mode, on `backend`: (G, backend, config).
    If the run kept an EMA of G's weights, that average is returned unless raw=True."""
    ck = load_checkpoint(path)
    config = TrainConfig(**{k: (tuple(v) if isinstance(v, list) else v)      # warns, or refuses
                            for k, v in saved_settings(ck).items()})         # a model it cannot build
    be = get_backend(backend, dtype=config.dtype, seed=seed)
    G, _ = build_models(config, be)
    use_ema = not raw and "G_ema" in ck.meta["architecture"]
    ck.restore_model("G_ema" if use_ema else "G", G, be)
    return G.eval(), be, config


def generate(G, be, n, latent_dim, batch_size=1000, labels=None, prior="normal"):
    """n samples of G as a host float32 array (n, P) in [-1, 1], made in batches.
    prior: the z of G's training, 'normal' or 'uniform' (load_generator's config.prior).

    A conditional G needs labels: n host class indices (see conditional.check_labels),
    or None for every class in turn (0, 1, ..., 9, 0, 1, ...).
    """
    from npgan.conditional import balanced_labels, check_labels, is_conditional
    if is_conditional(G):
        labels = balanced_labels(n, G.num_classes) if labels is None \
            else check_labels(labels, G.num_classes)
        if labels.shape[0] != n:
            raise ValueError(f"got {labels.shape[0]} labels for {n} samples")
    elif labels is not None:
        raise ValueError("labels were given, but this G is not conditional "
                         "(train with conditional=True / --conditional)")
    chunks = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        z = sample_z(be, stop - start, latent_dim, prior)
        x = G.forward(z) if labels is None else G.forward(z, be.asarray(labels[start:stop]))
        chunks.append(be.to_numpy(x).astype("float32"))
    return host.concatenate(chunks, axis=0)

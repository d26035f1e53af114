"""1-D toy data, where every density is known: the optimal D, the JSD and G's density.

In one dimension the theory of Goodfellow et al. (2014, section 4) can be checked by
numbers, because every density can be written down, or estimated, on a grid:
    D*(x) = p_data(x) / (p_data(x) + p_g(x))              the best D for a fixed G
    V(G, D*) = -log 4 + 2 JSD(p_data || p_g)              the game's value at D = D*
    JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2,  m = (p + q) / 2   (natural log)
The data come from a known density (Mixture1D: a Gaussian or a mixture of them).
G is either a fixed Gaussian (affine_generator: G(z) = mu + s z, never stepped) or a
small MLP trained by npgan.gan.train_step, whose density we estimate with kde().
As in npgan.toy, the GAN works in units where the data fit inside Tanh's range:
D sees x / SCALE, and G's outputs are multiplied by SCALE.
docs/theory.md derives each formula beside the function that checks it.

    D, be = train_d(Mixture1D([-1.5, 1.5], [0.5, 0.5]), gaussian(0.0, 1.2), steps=6000)
    G, D, history = train_1d(gaussian(1.5, 0.5), steps=2000)    # Figure 1, made live
reference: https://arxiv.org/abs/1406.2661 (Proposition 1, Theorem 1, Figure 1)
"""
from __future__ import annotations

import math

from npgan.backend import Backend, astype, get_backend
from npgan.backend import host as np
from npgan.gan import build_discriminator, build_generator, d_step, train_step
from npgan.layers import Linear, Sequential
from npgan.losses import sigmoid, softplus
from npgan.optim import Adam

SCALE = 4.0         # data units per GAN unit: the toy densities live in about [-3.5, 3.5]


# ------------------------------------------------------------------ the densities
class Mixture1D:
    """A density we can evaluate and sample: p(x) = sum_k w_k N(x; mu_k, s_k^2).

        p = Mixture1D([-2.0, 2.0], [0.5, 0.5])         # two equal modes
        p.pdf(x)                                       # host float64, like x
        p.sample(256, backend)                         # device (256, 1)
    """

    def __init__(self, means, stds, weights=None):
        self.means = np.asarray(means, dtype=np.float64).reshape(-1)      # (K,)
        self.stds = np.asarray(stds, dtype=np.float64).reshape(-1)        # (K,)
        k = self.means.shape[0]
        w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
        if k == 0 or self.stds.shape != (k,) or w.shape != (k,):
            raise ValueError(f"a mixture needs as many stds and weights as means (>= 1); got "
                             f"{k} means, {self.stds.size} stds, {w.size} weights")
        if not np.all(self.stds > 0):
            raise ValueError(f"every std must be > 0, got {self.stds.tolist()}")
        if not (np.all(w > 0) and abs(w.sum() - 1.0) < 1e-9):
            raise ValueError(f"weights must be positive and sum to 1, got {w.tolist()}")
        self.weights = w

    def pdf(self, x):
        """p(x) on the host, float64, same shape as x."""
        x = np.asarray(x, dtype=np.float64)[..., None]                    # (..., 1)
        u = (x - self.means) / self.stds                                  # (..., K)
        comp = np.exp(-0.5 * u * u) / (self.stds * math.sqrt(2.0 * math.pi))
        return comp @ self.weights                                        # (...,)

    def cdf(self, x: float) -> float:
        """P(X <= x), for one number x."""
        return float(sum(w * 0.5 * (1.0 + math.erf((x - m) / (s * math.sqrt(2.0))))
                         for m, s, w in zip(self.means, self.stds, self.weights)))

    def quantile(self, q: float) -> float:
        """The x with cdf(x) = q, by bisection (the cdf is increasing)."""
        lo, hi = self.span(10.0)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.cdf(mid) < q else (lo, mid)
        return 0.5 * (lo + hi)

    def interval(self, mass=0.98):
        """The central interval holding `mass`: from the (1 - mass)/2 to the (1 + mass)/2 quantile."""
        return self.quantile(0.5 * (1.0 - mass)), self.quantile(0.5 * (1.0 + mass))

    def span(self, width=8.0):
        """(min_k mu_k - width s_k, max_k mu_k + width s_k): every component, to `width` std."""
        return (float(np.min(self.means - width * self.stds)),
                float(np.max(self.means + width * self.stds)))

    def sample(self, n, backend):
        """n draws on the backend's device, (n, 1), in data units.

        Each draw picks component k with probability w_k (inverting the cumulative
        weights at u ~ U[0, 1)) and adds N(0, s_k^2) noise around mu_k.
        """
        xp = backend.xp
        edges = backend.asarray(np.cumsum(self.weights)[:-1])             # (K-1,)
        u = backend.uniform(0.0, 1.0, (n, 1))                             # (n, 1)
        idx = xp.sum(astype(u >= edges, xp.int64), axis=1)                # (n,) component
        mus = xp.take(backend.asarray(self.means), idx, axis=0)           # (n,)
        sds = xp.take(backend.asarray(self.stds), idx, axis=0)            # (n,)
        return xp.reshape(mus, (n, 1)) + xp.reshape(sds, (n, 1)) * backend.randn((n, 1))

    def __repr__(self):
        parts = [f"{w:.2g} N({m:g}, {s:g}^2)" for m, s, w in
                 zip(self.means, self.stds, self.weights)]
        return " + ".join(parts) if len(parts) > 1 else parts[0].split(" ", 1)[1]


def gaussian(mean, std):
    """N(mean, std^2) as a one-component Mixture1D."""
    return Mixture1D([mean], [std])


def combined(p, q):
    """m = (p + q) / 2 as a Mixture1D: the density of the pooled real and fake samples."""
    return Mixture1D(np.concatenate([p.means, q.means]), np.concatenate([p.stds, q.stds]),
                     np.concatenate([p.weights, q.weights]) / 2.0)


def grid(*densities, n=4001):
    """n evenly spaced host points (float64) covering every density's span."""
    spans = [d.span() for d in densities]
    return np.linspace(min(a for a, _ in spans), max(b for _, b in spans), n)


# -------------------------------------------------- integrals on a grid (host, float64)
def integrate(f, x):
    """The trapezoid rule: sum_i (f_i + f_{i+1}) / 2 * (x_{i+1} - x_i)."""
    f, x = np.asarray(f, dtype=np.float64), np.asarray(x, dtype=np.float64)
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(x)))


def _densities(x, *densities):
    """Check that each density array on grid x is one, and scale it to integrate to 1."""
    x = np.asarray(x, dtype=np.float64)
    out = []
    for name, p in zip("pq", densities):
        p = np.asarray(p, dtype=np.float64)
        if p.shape != x.shape or x.ndim != 1 or x.size < 2:
            raise ValueError(f"{name} must be a density evaluated on the 1-D grid x: got shape "
                             f"{p.shape} for a grid of shape {x.shape}")
        mass = integrate(p, x)
        if np.any(p < 0) or not abs(mass - 1.0) < 0.01:
            raise ValueError(f"{name} integrates to {mass:.4f} over the grid (min {p.min():.3g}), "
                             f"not 1: widen or refine the grid so it holds the whole density")
        out.append(p / mass)     # the grid's rounding error, removed: integral exactly 1
    return out


def _plog(p, s):
    """p (log p - log s), with 0 log 0 = 0 (the limit), so empty regions add nothing.
    Written with two logs, not log(p / s): p / s may underflow to 0 where p > 0."""
    pos = p > 0
    log_p = np.log(np.where(pos, p, 1.0))
    log_s = np.log(np.where(pos, s, 1.0))           # s >= p / 2 > 0 wherever p > 0
    return np.where(pos, p * (log_p - log_s), 0.0)


def jsd(p, q, x):
    """JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, natural log.

    p, q: densities evaluated on the grid x (host arrays of the same shape), each
    rescaled to integrate to exactly 1. It lies in [0, log 2]: 0 when p = q, log 2
    when their supports do not overlap.
    reference: https://en.wikipedia.org/wiki/Jensen%E2%80%93Shannon_divergence
    """
    p, q = _densities(x, p, q)
    m = 0.5 * (p + q)
    return 0.5 * integrate(_plog(p, m), x) + 0.5 * integrate(_plog(q, m), x)


def optimal_d(p, q):
    """D*(x) = p(x) / (p(x) + q(x)) (Proposition 1); 1/2 where both densities are 0."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    total = p + q
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.5)


def value_at_optimum(p, q, x):
    """V(G, D*) = E_p[log D*(x)] + E_q[log(1 - D*(x))], integrated on the grid x.

    Written with D* = p / (p + q) and 1 - D* = q / (p + q) directly, not with the JSD,
    so that comparing it with -log 4 + 2 jsd(p, q, x) checks Theorem 1's algebra.
    """
    p, q = _densities(x, p, q)
    return integrate(_plog(p, p + q), x) + integrate(_plog(q, p + q), x)


def kde(samples, x, bandwidth=None, min_bandwidth=0.0):
    """A Gaussian kernel density estimate of `samples` (host, (N,)) on the grid x.

    p_hat(x) = 1/(N h) sum_i phi((x - s_i) / h), phi the standard normal density.
    Bandwidth by Scott's rule for one dimension, h = std(samples) * N^(-1/5), unless
    given, and at least min_bandwidth (a collapsed G would otherwise give a spike
    narrower than the grid's spacing). Returns (p_hat on x (host float64), h).
    reference: D. W. Scott, Multivariate Density Estimation (1992), eq. 6.42
    """
    s = np.asarray(samples, dtype=np.float64).reshape(-1)                # (N,)
    x = np.asarray(x, dtype=np.float64)
    n = s.shape[0]
    if n < 2:
        raise ValueError(f"kde needs at least 2 samples, got {n}")
    h = float(np.std(s, ddof=1)) * n ** -0.2 if bandwidth is None else float(bandwidth)
    h = max(h, min_bandwidth)
    if not h > 0:
        raise ValueError(f"the bandwidth must be > 0 (are all samples equal?), got {h}")
    out = np.zeros(x.shape)
    for start in range(0, n, 2048):                  # (len(x), 2048) at a time, not (len(x), N)
        u = (x[:, None] - s[None, start:start + 2048]) / h
        out += np.exp(-0.5 * u * u).sum(axis=1)
    return out / (n * h * math.sqrt(2.0 * math.pi)), h


# ------------------------------------------------------------------ the networks
def affine_generator(p_g, backend):
    """A fixed G with density p_g = N(mu, s^2): one Linear(1, 1), G(z) = (mu + s z) / SCALE.

    z ~ N(0, 1) gives G(z) * SCALE ~ N(mu, s^2) exactly, so p_g is known in closed form.
    It is a real npgan model; we only ever run it forward (d_step freezes G).
    """
    if p_g.means.shape[0] != 1:
        raise ValueError(f"a fixed G is the affine map mu + s z, so p_g must be one Gaussian; "
                         f"got {p_g.means.shape[0]} components")
    layer = Linear(1, 1, backend)
    layer.W.data[...] = backend.asarray([[p_g.stds[0] / SCALE]])           # (1, 1)
    layer.b.data[...] = backend.asarray([p_g.means[0] / SCALE])            # (1,)
    return Sequential(layer)


def decision(D, x, backend):
    """sigmoid(D(x / SCALE)) for host points x (data units): a host (len(x),) array."""
    xs = backend.asarray(np.asarray(x, dtype=np.float64).reshape(-1, 1) / SCALE)   # (n, 1)
    return backend.to_numpy(sigmoid(D.forward(xs))).reshape(-1).astype(np.float64)


def generate(G, z, backend):
    """G's samples for noise z (N, Z), as a host (N,) array in data units."""
    return backend.to_numpy(G.forward(z)).reshape(-1).astype(np.float64) * SCALE


def game_value(D, x_real, x_fake, backend, chunk=1 << 16):
    """A Monte Carlo estimate of V(D, G) = E_data[log D(x)] + E_g[log(1 - D(x))].

    x_real, x_fake: device arrays (N, 1) in data units. With l = D's logit,
    log D = -softplus(-l) and log(1 - D) = -softplus(l), stable at any l.
    Reads one number per chunk to the host (an evaluation, not a training step).
    """
    xp = backend.xp
    total = 0.0
    for x, sign in ((x_real, -1.0), (x_fake, 1.0)):
        n, acc = x.shape[0], 0.0
        for start in range(0, n, chunk):
            logits = D.forward(x[start:start + chunk] / SCALE)            # (c, 1)
            acc += backend.item(xp.sum(softplus(sign * logits)))
        total -= acc / n
    return total


# ----------------------------------------------------------------- the trainings
def eval_grid(p_data, n=4001):
    """The grid train_1d measures on: G's whole range [-SCALE, SCALE] and p_data's span,
    with 1 data unit to spare, so that every density estimate of G fits on it."""
    lo, hi = p_data.span()
    return np.linspace(min(lo, -SCALE - 1.0), max(hi, SCALE + 1.0), n)


def _backend(backend, seed):
    return backend if isinstance(backend, Backend) else get_backend(backend, seed=seed)


def _cosine(lr, step, steps, floor=0.01):
    """lr decayed from lr to floor * lr along half a cosine: D settles instead of jittering."""
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / steps)))


def train_d(p_data, p_g, steps=6000, seed=0, backend="numpy", batch_size=2048, hidden=64,
            lr=2e-3, betas=(0.5, 0.999)):
    """Train D alone against a fixed Gaussian G (affine_generator(p_g)); return D, be.

    Each step is one npgan.gan.d_step on a fresh real batch (B, 1) from p_data and a
    fresh z: G runs forward only. The real target is 1 (no label smoothing), so D
    approaches D* = p_data / (p_data + p_g). The learning rate decays along a cosine
    to 1% of lr, so that D ends near the optimum rather than jittering around it.
    steps=0 returns D at its initialization (the control).
    """
    be = _backend(backend, seed)
    G = affine_generator(p_g, be)
    D = build_discriminator(be, in_dim=1, hidden=(hidden, hidden))
    opt_d = Adam(D.parameters(), lr=lr, betas=betas)
    for step in range(steps):
        opt_d.hyper["lr"] = _cosine(lr, step, steps)
        x_real = p_data.sample(batch_size, be) / SCALE                    # (B, 1), GAN units
        d_step(G, D, opt_d, x_real, be.randn((batch_size, 1)))
    return D, be


def train_1d(p_data, steps=2000, seed=0, backend="numpy", batch_size=1024, hidden=64,
             latent_dim=1, lr=1e-3, betas=(0.5, 0.999), d_steps=5, decay=True,
             g_loss="non-saturating", eval_every=100, eval_samples=5000, callback=None):
    """Train a small MLP GAN on p_data with npgan.gan.train_step; return G, D, history.

    latent_dim=1 by default, so that G is a map from a line to a line and the figure
    can draw it, as Goodfellow et al.'s Figure 1 does. Each step is d_steps = k
    D-updates and one G-update; k = 5 keeps D near its optimum, which the theory
    assumes (with k = 1 and 32 units, G collapsed to a narrow spike that wandered
    around the data's mean). decay: both learning rates follow a cosine from lr down
    to 1% of it, so that the pair settles at the end. Every eval_every steps and after
    the last one we estimate p_g by kde() of G's samples for a fixed noise batch and
    record: step, jsd (p_data against that estimate), p_g_hat (the estimate, on
    eval_grid(p_data)), d_min and d_max (D's range over the central 98% of p_data),
    loss_d, d_real, d_fake; then callback(entry, G, D, be).
    Step 0 (before any update) is evaluated too.
    """
    be = _backend(backend, seed)
    G = build_generator(be, latent_dim=latent_dim, hidden=(hidden, hidden), out_dim=1)
    D = build_discriminator(be, in_dim=1, hidden=(hidden, hidden))
    opt_g = Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = Adam(D.parameters(), lr=lr, betas=betas)
    z_eval = be.randn((eval_samples, latent_dim))                          # fixed, (N, Z)
    x = eval_grid(p_data)
    p = p_data.pdf(x)
    lo, hi = p_data.interval(0.98)
    support = x[(x >= lo) & (x <= hi)]
    history = []

    def evaluate(step, stats):
        p_hat, _ = kde(generate(G, z_eval, be), x, min_bandwidth=4.0 * (x[1] - x[0]))
        d = decision(D, support, be)
        entry = {"step": step, "jsd": jsd(p, p_hat, x), "d_min": float(d.min()),
                 "d_max": float(d.max()), "p_g_hat": p_hat}
        entry.update({k: be.item(stats[k]) if stats else float("nan")
                      for k in ("loss_d", "d_real", "d_fake")})
        history.append(entry)
        if callback is not None:
            callback(entry, G, D, be)

    evaluate(0, None)
    for step in range(1, steps + 1):
        if decay:
            opt_g.hyper["lr"] = opt_d.hyper["lr"] = _cosine(lr, step - 1, steps)
        reals = [p_data.sample(batch_size, be) / SCALE                    # k x (B, 1), GAN units
                 for _ in range(d_steps)]
        stats = train_step(G, D, opt_g, opt_d, reals, be, latent_dim=latent_dim, g_loss=g_loss)
        if step % eval_every == 0 or step == steps:
            evaluate(step, stats)
    return G, D, history

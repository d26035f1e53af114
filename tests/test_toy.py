"""The 2-D toy GAN: the mode-coverage metric, the sampler, and an end-to-end quality
bar that a real training run must pass and the same run without G's update must fail."""
import numpy as np
import pytest

from npgan.backend import device_of, get_backend
from npgan.toy import RADIUS, STD, TOY_SETTINGS, centers, mode_coverage, sample, train_toy
from tests.backends import make_backend

RING = centers("ring")                     # (8, 2)
K = len(RING)

# The CI-sized run is train_toy's default: 3000 steps of B = 256 real points, two hidden
# layers of 64 units, Adam(1e-3, betas=(0.5, 0.999)), std 0.05 (3 std = 0.15, a tenth of
# the distance between neighbouring modes).
QUICK = dict(shape="ring", seed=0)
BAR = 6                                     # modes out of 8


# ------------------------------------------------------------------ mode_coverage
def test_points_exactly_at_the_modes_cover_every_mode():
    points = np.repeat(RING, 10, axis=0)                             # (80, 2)
    covered, counts, hq_share = mode_coverage(points, RING, STD)
    assert covered == K
    assert counts.tolist() == [10] * K
    assert hq_share == 1.0


def test_points_far_from_every_mode_cover_nothing():
    points = np.full((50, 2), 10.0)
    covered, counts, hq_share = mode_coverage(points, RING, STD)
    assert (covered, counts.sum(), hq_share) == (0, 0, 0.0)


def test_hq_share_counts_the_points_within_three_std_of_a_mode():
    near = RING[:1] + [[2.9 * STD, 0.0]]                             # inside the 3-std disc
    far = RING[:1] + [[3.1 * STD, 0.0]]                              # just outside it
    covered, counts, hq_share = mode_coverage(np.concatenate([near, far]), RING, STD)
    assert hq_share == 0.5 and counts[0] == 1 and counts[1:].sum() == 0


def test_a_mode_needs_a_quarter_of_its_fair_share():
    """N = 320 points, K = 8: a mode is covered from 320 / 32 = 10 points on."""
    per_mode = [10, 9] + [43] * 6                                    # sums to 277
    points = np.concatenate([np.repeat(RING[i:i + 1], c, axis=0) for i, c in enumerate(per_mode)]
                            + [np.full((320 - sum(per_mode), 2), 10.0)])
    covered, counts, _ = mode_coverage(points, RING, STD)
    assert counts.tolist() == per_mode
    assert covered == 7                                              # mode 1 (9 points) is not


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_a_ring_that_ignores_the_modes_covers_none(std):
    """Points spread evenly on the circle, a G that learned the ring but not its modes:
    only 2 * 3 std of every 2 pi R / 8 of arc is near a mode, under a quarter."""
    angles = np.linspace(0.0, 2.0 * np.pi, 20000, endpoint=False)
    points = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    covered, _, hq_share = mode_coverage(points, RING, std)
    assert covered == 0
    assert hq_share == pytest.approx(6 * std * 8 / (2 * np.pi * RADIUS), rel=0.02)


# ------------------------------------------------------------------------- sample
@pytest.mark.parametrize("shape, modes", [("ring", 8), ("grid", 25)])
def test_real_samples_cover_every_mode_and_lie_within_three_std(shape, modes):
    """The real data pass the bar they define: every mode, and ~98.9% of points within
    3 std (a 2-D Gaussian keeps 1 - exp(-9/2) of its mass in that disc)."""
    be = get_backend("numpy", seed=1)
    points = sample(shape, 5000, be, STD)
    assert points.shape == (5000, 2) and points.dtype == be.dtype
    covered, counts, hq_share = mode_coverage(points, centers(shape), STD)
    assert covered == modes and len(counts) == modes
    assert 0.98 < hq_share < 0.995


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="ring, grid"):
        centers("spiral")


# ------------------------------------------------------------------ the training
@pytest.mark.slow
def test_training_covers_the_ring_and_the_frozen_generator_does_not():
    """End to end: the standard train_step covers >= 6 of 8 modes; the same run without
    G's update (G stays at its initialization) must fail that bar, so the bar can fail."""
    _, _, trained = train_toy(**QUICK)
    _, _, control = train_toy(**QUICK, train_generator=False)
    assert trained[-1]["covered"] >= BAR, trained[-1]
    assert control[-1]["covered"] < BAR, control[-1]
    assert trained[-1]["hq_share"] > 0.5 > control[-1]["hq_share"]


def test_same_seed_same_history():
    runs = [train_toy(seed=3, steps=60, eval_every=20, eval_samples=500)[2] for _ in range(2)]
    for a, b in zip(*runs):
        assert a["counts"].tolist() == b["counts"].tolist()
        assert (a["hq_share"], a["loss_d"], a["d_fake"]) == (b["hq_share"], b["loss_d"], b["d_fake"])
    other = train_toy(seed=4, steps=60, eval_every=20, eval_samples=500)[2]
    assert other[-1]["loss_d"] != runs[0][-1]["loss_d"]


def test_the_control_never_moves_G():
    snapshots = []
    train_toy(steps=6, eval_every=3, train_generator=False,
              callback=lambda entry, G, D, be: snapshots.append(
                  [be.to_numpy(p.data).copy() for p in G.parameters()]))
    assert len(snapshots) == 2
    assert all(np.array_equal(a, b) for a, b in zip(*snapshots))


def test_training_stays_on_a_device_that_refuses_numpy():
    """array-api-strict's device1 refuses conversion to NumPy, like CuPy: the steps run
    there, and the only host transfers are the evaluations'. Evaluations at steps 2, 4
    and 5 (the last) must have cost the same each, so the 5 steps cost nothing."""
    be = make_backend(("array-api-strict", "device1"), seed=0)
    seen = []

    def on_eval(entry, G, D, backend):
        assert device_of(G[0].W.data) == device_of(D[0].W.data) == device_of(be.zeros((1,)))
        seen.append(backend.host_transfers)

    train_toy(backend=be, steps=5, eval_every=2, eval_samples=100, callback=on_eval)
    assert seen == [seen[0], 2 * seen[0], 3 * seen[0]] and 0 < seen[0] <= 5


@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
def test_the_critics_train_the_toy_and_their_control_never_moves_G(loss):
    """Every loss runs through train_toy with its TOY_SETTINGS and logs its Wasserstein
    estimate (no D(x) for a critic); the frozen-G control runs the critic steps only.
    (The quality of each loss is measured, not asserted: docs/results.md, examples/toy_settings.py.)"""
    settings = dict(TOY_SETTINGS[loss], d_steps=2)
    assert settings["loss"] == loss
    _, _, history = train_toy(steps=4, eval_every=2, eval_samples=100, **settings)
    assert [h["step"] for h in history] == [2, 4]
    assert set(history[-1]) == {"step", "covered", "counts", "hq_share", "loss_d", "wasserstein"}
    snapshots = []
    train_toy(steps=4, eval_every=2, eval_samples=100, train_generator=False,
              callback=lambda entry, G, D, be: snapshots.append(
                  [be.to_numpy(p.data).copy() for p in G.parameters()]), **settings)
    assert all(np.array_equal(a, b) for a, b in zip(*snapshots))
    with pytest.raises(ValueError, match="unknown loss 'wgan_gp'"):
        train_toy(steps=1, loss="wgan_gp")


# ---------------------------------------------------------- the cures on the toy
def _params(model, be):
    return [be.to_numpy(p.data).copy() for p in model.parameters()]


def test_ttur_rates_reach_each_optimizer():
    """lr_g = 0 freezes G while D learns at lr_d, and lr_d = 0 freezes D: each rate goes
    to its own network's optimizer, not to both."""
    for frozen, rates in (("G", dict(lr_d=1e-3, lr_g=0.0)), ("D", dict(lr_d=0.0, lr_g=1e-3))):
        snaps = []
        train_toy(steps=4, eval_every=2, eval_samples=100, **rates,
                  callback=lambda entry, G, D, be: snaps.append((_params(G, be), _params(D, be))))
        (g0, d0), (g1, d1) = snaps
        same_g = all(np.array_equal(a, b) for a, b in zip(g0, g1))
        same_d = all(np.array_equal(a, b) for a, b in zip(d0, d1))
        assert (same_g, same_d) == ((True, False) if frozen == "G" else (False, True)), frozen


@pytest.mark.parametrize("name", ["gan+ttur", "gan+noise0.1", "gan+noise0.3", "gan+sn", "gan+uniform"])
def test_every_cure_changes_the_run_and_repeats_exactly(name):
    """Each cure setting trains the toy through train_toy; it changes the run (the same
    seed without the cure gives another history) and the same seed repeats it exactly."""
    settings = TOY_SETTINGS[name]
    assert settings["loss"] == "gan"
    quick = dict(seed=2, steps=20, eval_every=10, eval_samples=300)
    runs = [train_toy(**quick, **settings)[2] for _ in range(2)]
    plain = train_toy(**quick, **TOY_SETTINGS["gan"])[2]
    assert [h["loss_d"] for h in runs[0]] == [h["loss_d"] for h in runs[1]]
    assert runs[0][-1]["loss_d"] != plain[-1]["loss_d"]


def test_spectral_norm_wraps_every_layer_of_the_toy_D():
    from npgan.layers import Linear
    from npgan.spectral import SpectralNorm
    seen = []
    train_toy(steps=1, eval_every=1, eval_samples=50, spectral_norm=True,
              callback=lambda entry, G, D, be: seen.append(D))
    weights = [layer for layer in seen[0] if isinstance(layer, (Linear, SpectralNorm))]
    assert len(weights) == 3 and all(isinstance(w, SpectralNorm) for w in weights)


def test_the_toy_refuses_instance_noise_on_a_critic():
    with pytest.raises(ValueError, match="instance noise is a cure for the GAN's D"):
        train_toy(steps=1, eval_every=1, eval_samples=50, instance_noise=0.1,
                  **TOY_SETTINGS["wgan-gp"])

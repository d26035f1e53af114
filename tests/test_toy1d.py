"""The 1-D toy: known densities, the JSD on known answers, Theorem 1's identity, the KDE,
and a CI-sized optimal-D run that meets a D* bar which an untrained D fails."""
import math

import numpy as np
import pytest

from npgan.backend import get_backend
from npgan.toy1d import (SCALE, Mixture1D, affine_generator, combined, decision, game_value,
                         gaussian, grid, jsd, kde, optimal_d, train_1d, train_d,
                         value_at_optimum)
from tests.backends import make_backend

LOG2, LOG4 = math.log(2.0), math.log(4.0)


def box(x, a, b):
    """The uniform density on [a, b], evaluated on x."""
    return np.where((x >= a) & (x <= b), 1.0 / (b - a), 0.0)


# ------------------------------------------------------------ JSD: known answers
def test_identical_densities_have_jsd_0_and_the_game_is_worth_minus_log_4():
    for p in (gaussian(0.3, 0.7), Mixture1D([-2.0, 1.0], [0.4, 0.9], [0.3, 0.7])):
        x = grid(p)
        assert jsd(p.pdf(x), p.pdf(x), x) == pytest.approx(0.0, abs=1e-12)
        assert value_at_optimum(p.pdf(x), p.pdf(x), x) == pytest.approx(-LOG4, abs=1e-9)
        assert np.all(optimal_d(p.pdf(x), p.pdf(x)) == 0.5)


def test_disjoint_supports_have_jsd_log_2_and_the_game_is_worth_0():
    x = np.linspace(-1.0, 4.0, 5001)
    p, q = box(x, 0.0, 1.0), box(x, 2.0, 3.0)
    assert jsd(p, q, x) == pytest.approx(LOG2, abs=1e-12)
    assert value_at_optimum(p, q, x) == pytest.approx(0.0, abs=1e-12)
    d = optimal_d(p, q)
    assert np.all(d[p > 0] == 1.0) and np.all(d[q > 0] == 0.0)
    assert np.all(d[(p == 0) & (q == 0)] == 0.5)


def test_half_overlapping_boxes_have_the_jsd_computed_by_hand():
    """p = U[0, 2], q = U[1, 3]: on the shared [1, 2], p = q = m, so KL there is 0;
    on p's own [0, 1], p = 1/2 and m = 1/4: KL(p || m) = 1/2 log 2. So JSD = log(2) / 2.
    The trapezoid rule smears each edge of a box over one grid cell (h = 0.001): O(h)."""
    x = np.linspace(-1.0, 4.0, 5001)
    assert jsd(box(x, 0.0, 2.0), box(x, 1.0, 3.0), x) == pytest.approx(LOG2 / 2, abs=1e-3)


@pytest.mark.parametrize("q", [gaussian(0.1, 1.0), gaussian(1.0, 0.5), gaussian(4.0, 0.3),
                               Mixture1D([-1.0, 2.0], [0.3, 0.6])])
def test_theorem_1_the_value_at_D_star_is_minus_log_4_plus_twice_the_jsd(q):
    """V(G, D*) integrated with D* itself equals -log 4 + 2 JSD, integrated with m:
    two computations that agree only if the algebra of Theorem 1 holds."""
    p = gaussian(0.0, 1.0)
    x = grid(p, q)
    j = jsd(p.pdf(x), q.pdf(x), x)
    assert 0.0 < j < LOG2
    assert jsd(q.pdf(x), p.pdf(x), x) == pytest.approx(j, abs=1e-12)   # symmetric
    assert value_at_optimum(p.pdf(x), q.pdf(x), x) == pytest.approx(-LOG4 + 2 * j, abs=1e-9)


def test_jsd_rejects_arrays_that_are_not_densities_on_the_grid():
    x = np.linspace(-5.0, 5.0, 1001)
    p = gaussian(0.0, 1.0).pdf(x)
    with pytest.raises(ValueError, match="integrates to 0.5"):
        jsd(p, 0.5 * p, x)
    with pytest.raises(ValueError, match="widen or refine the grid"):
        jsd(p, gaussian(4.5, 1.0).pdf(x), x)          # q's mass runs off the grid
    with pytest.raises(ValueError, match="evaluated on the 1-D grid"):
        jsd(p, p[:-1], x)


# ------------------------------------------------------------------ the densities
def test_mixture_pdf_integrates_to_1_and_its_samples_follow_it():
    p = Mixture1D([-2.0, 1.0], [0.5, 0.25], [0.25, 0.75])
    x = grid(p)
    assert np.trapezoid(p.pdf(x), x) == pytest.approx(1.0, abs=1e-9)
    s = get_backend("numpy", seed=3)
    draws = p.sample(100_000, s)
    assert draws.shape == (100_000, 1) and draws.dtype == np.float32
    assert float(draws.mean()) == pytest.approx(0.25 * -2.0 + 0.75 * 1.0, abs=0.01)
    assert float(np.mean(draws < -0.5)) == pytest.approx(0.25, abs=0.005)   # the left mode


def test_gaussian_quantiles_and_the_central_interval():
    p = gaussian(1.0, 2.0)
    lo, hi = p.interval(0.95)
    assert (lo, hi) == pytest.approx((1.0 - 1.959964 * 2.0, 1.0 + 1.959964 * 2.0), abs=1e-5)
    m = combined(gaussian(-1.0, 1.0), gaussian(1.0, 1.0))        # symmetric: median 0
    assert m.quantile(0.5) == pytest.approx(0.0, abs=1e-9)
    far = combined(gaussian(-3.0, 0.5), gaussian(3.0, 0.5))
    assert far.cdf(-3.0) == pytest.approx(0.25, abs=1e-9)
    assert far.interval(0.5) == pytest.approx((-3.0, 3.0), abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (([0.0, 1.0], [1.0]), "as many stds"),
    (([0.0], [0.0]), "std must be > 0"),
    (([0.0, 1.0], [1.0, 1.0], [0.5, 0.6]), "sum to 1"),
])
def test_bad_mixtures_are_refused_with_a_message(args, message):
    with pytest.raises(ValueError, match=message):
        Mixture1D(*args)


def test_kde_uses_scotts_bandwidth_and_recovers_a_gaussian():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(5_000)        # JSD ~4e-4 (2e-4 with 20,000 samples, 6x slower)
    x = np.linspace(-6.0, 6.0, 2001)
    p_hat, h = kde(s, x)
    assert h == pytest.approx(np.std(s, ddof=1) * 5_000 ** -0.2)
    assert np.trapezoid(p_hat, x) == pytest.approx(1.0, abs=1e-6)
    assert jsd(gaussian(0.0, 1.0).pdf(x), p_hat, x) < 1e-3
    assert jsd(gaussian(0.5, 1.0).pdf(x), p_hat, x) > 0.02        # and it can tell
    assert kde(s, x, min_bandwidth=0.5)[1] == 0.5
    with pytest.raises(ValueError, match="at least 2 samples"):
        kde(s[:1], x)


def test_the_affine_generator_has_the_density_it_claims():
    be = get_backend("numpy", dtype="float64", seed=4)
    G = affine_generator(gaussian(-1.0, 0.3), be)
    x = G.forward(be.randn((200_000, 1))) * SCALE
    assert float(x.mean()) == pytest.approx(-1.0, abs=0.005)
    assert float(x.std()) == pytest.approx(0.3, abs=0.005)
    with pytest.raises(ValueError, match="one Gaussian"):
        affine_generator(Mixture1D([0.0, 1.0], [1.0, 1.0]), be)


# ------------------------------------------------- the optimal D, CI-sized
P_DATA, P_G = gaussian(-1.0, 0.6), gaussian(1.0, 0.6)       # JSD 0.571
D_BAR, V_BAR = 0.05, 0.02        # the example's targets are 0.02 and 0.01, at 15x the work


def d_star_errors(D, be):
    """max |D - D*| over the central 98% of the combined mass, and |V(MC) - (-log 4 + 2 JSD)|."""
    x = grid(P_DATA, P_G)
    lo, hi = combined(P_DATA, P_G).interval(0.98)
    inside = x[(x >= lo) & (x <= hi)]
    err = np.max(np.abs(decision(D, inside, be) - optimal_d(P_DATA.pdf(inside), P_G.pdf(inside))))
    theory = -LOG4 + 2 * jsd(P_DATA.pdf(x), P_G.pdf(x), x)
    v = game_value(D, P_DATA.sample(50_000, be), P_G.sample(50_000, be), be)
    return err, abs(v - theory)


def test_a_trained_D_is_close_to_D_star_and_an_untrained_one_is_not():
    """Proposition 1 on a CI budget (400 steps of B = 256): the trained D meets the bar;
    the same D before training (steps=0, the control) must fail it, so the bar can fail."""
    trained = d_star_errors(*train_d(P_DATA, P_G, steps=400, batch_size=256, hidden=32))
    control = d_star_errors(*train_d(P_DATA, P_G, steps=0, batch_size=256, hidden=32))
    assert trained[0] < D_BAR and trained[1] < V_BAR, trained
    assert control[0] > D_BAR and control[1] > V_BAR, control


def test_train_d_runs_on_a_device_that_refuses_numpy():
    """The D-updates and the sampling stay on the device: no host transfer at all."""
    be = make_backend(("array-api-strict", "device1"), seed=0)
    train_d(Mixture1D([-1.0, 1.0], [0.5, 0.5]), P_G, steps=3, batch_size=16, hidden=8,
            backend=be)
    assert be.host_transfers == 0


def test_train_1d_is_deterministic_and_starts_with_an_evaluation():
    kwargs = dict(steps=6, batch_size=64, hidden=8, d_steps=2, eval_every=3, eval_samples=500)
    runs = [train_1d(gaussian(1.5, 0.5), seed=2, **kwargs)[2] for _ in range(2)]
    assert [e["step"] for e in runs[0]] == [0, 3, 6]
    assert math.isnan(runs[0][0]["loss_d"])
    for a, b in zip(*runs):
        assert (a["jsd"], a["d_min"], a["d_max"]) == (b["jsd"], b["d_min"], b["d_max"])
    assert runs[0][-1]["loss_d"] == runs[1][-1]["loss_d"]
    assert 0.0 <= runs[0][-1]["jsd"] <= LOG2 + 1e-9
    other = train_1d(gaussian(1.5, 0.5), seed=3, **kwargs)[2]
    assert other[-1]["jsd"] != runs[0][-1]["jsd"]

"""Sample-quality metrics: the Frechet distance against closed forms, class statistics,
the mode-collapse check, and evaluation of images and generators end to end."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import build_generator, get_backend
from npgan import metrics as m
from npgan.classifier import load_or_train_classifier
from npgan.data import load_dataset, to_device
from tests.backends import ALL_SPECS, make_backend

means = arrays(np.float64, (3,), elements={"min_value": -5.0, "max_value": 5.0})
variances = arrays(np.float64, (3,), elements={"min_value": 0.01, "max_value": 10.0})


def random_psd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d)) * scale
    return a @ a.T + 1e-3 * np.eye(d)


def rotation(rng, d):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


# ------------------------------------------------------------------ Frechet distance
@given(mu1=means, mu2=means, a=variances, b=variances, seed=st.integers(0, 1000))
def test_frechet_commuting_covariances_closed_form(mu1, mu2, a, b, seed):
    """Covariances sharing eigenvectors: the trace term is sum (sqrt(a) - sqrt(b))^2."""
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert m.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-8, abs=1e-9)
    q = rotation(np.random.default_rng(seed), 3)                 # same rotation for both
    rotated = m.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-7, abs=1e-8)


@given(seed=st.integers(0, 10_000), shift=st.floats(-3, 3))
def test_frechet_non_commuting_2x2(seed, shift):
    """For 2x2 PSD M: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)); M = S1 S2 has the eigen-
    values of S1^1/2 S2 S1^1/2. We also compare with np.linalg.eigvals(S1 @ S2)."""
    rng = np.random.default_rng(seed)
    s1, s2 = random_psd(rng, 2), random_psd(rng, 2, scale=2.0)
    assert not np.allclose(s1 @ s2, s2 @ s1)                     # really non-commuting
    mu1, mu2 = np.zeros(2), np.array([shift, 0.5])
    tr_root = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = shift ** 2 + 0.25 + np.trace(s1) + np.trace(s2) - 2 * tr_root
    by_eig = (shift ** 2 + 0.25 + np.trace(s1 + s2)
              - 2 * np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real)))
    got = m.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert got == pytest.approx(by_eig, rel=1e-7, abs=1e-9)


def test_frechet_higher_dimensional_against_eigvals_and_symmetry():
    rng = np.random.default_rng(0)
    s1, s2 = random_psd(rng, 20), random_psd(rng, 20, scale=0.5)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    eig = np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.sum(np.sqrt(eig))
    assert m.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert m.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_identical_and_of_rank_deficient_sets():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    mu, sigma = m.gaussian_stats(feats)
    assert m.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    few = rng.normal(size=(8, 16))                               # 8 samples in 16-d: singular
    mu_few, sigma_few = m.gaussian_stats(few)
    assert np.linalg.matrix_rank(sigma_few) < 16
    d = m.frechet_distance(mu_few, sigma_few, mu, sigma)
    assert np.isfinite(d) and d > 0
    assert m.frechet_distance(mu_few, sigma_few, mu_few, sigma_few) == pytest.approx(0.0, abs=1e-9)


def test_frechet_from_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    x = rng.normal(size=(50_000, 3)) * np.sqrt(a)
    y = rng.normal(size=(50_000, 3)) * np.sqrt(b) + np.array([1.0, 0.0, -1.0])
    expected = 2.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = m.frechet_distance(*m.gaussian_stats(x), *m.gaussian_stats(y))
    assert got == pytest.approx(expected, rel=0.03)


def test_sqrt_psd_squares_back_and_clips_round_off():
    rng = np.random.default_rng(3)
    s = random_psd(rng, 5)
    root = m.sqrt_psd(s)
    np.testing.assert_allclose(root @ root, s, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(root, root.T, atol=1e-12)
    v = rotation(rng, 3)
    nearly_psd = v @ np.diag([4.0, 1.0, -1e-12]) @ v.T             # round-off made it indefinite
    assert np.all(np.isfinite(m.sqrt_psd(nearly_psd)))


# ------------------------------------------------------------------ class statistics
def onehot_probs(classes, k=10):
    return np.eye(k)[np.asarray(classes)] * 0.9 + 0.01          # rows sum to 1, max 0.91


# ------------------------------------------------------------ precision and recall
def blobs(rng, n, centers, std=0.1):
    """n points (n, 2) spread evenly over Gaussian blobs at `centers` (K, 2)."""
    idx = np.arange(n) % len(centers)
    return np.asarray(centers, dtype=float)[idx] + std * rng.normal(size=(n, 2))


def test_knn_radii_against_a_brute_force_sort():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(57, 4))
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)             # (N, N), 0 on the diagonal
    expected = np.sort(d, axis=1)[:, 3]                          # index 0 is the point itself
    np.testing.assert_allclose(m.knn_radii(f, k=3, batch_size=10), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="k must be in"):
        m.knn_radii(f[:3], k=3)


def test_precision_recall_of_identical_sets_is_one_and_one():
    f = np.random.default_rng(1).normal(size=(300, 5))
    assert m.precision_recall(f, f.copy()) == (1.0, 1.0)


def test_one_cluster_of_the_data_is_precise_but_has_low_recall():
    """A mode-collapsed generator: all its samples sit in one of the real data's 10
    modes. They are realistic (high precision) but cover a tenth of the data."""
    rng = np.random.default_rng(2)
    centers = 5.0 * np.stack([np.cos(np.arange(10)), np.sin(np.arange(10))], axis=1)
    real = blobs(rng, 1000, centers)
    collapsed = blobs(rng, 1000, centers[:1])
    precision, recall = m.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.15
    spread = blobs(rng, 1000, centers)                           # every mode: both high
    assert min(m.precision_recall(real, spread)) > 0.9


def test_disjoint_sets_have_zero_precision_and_recall():
    rng = np.random.default_rng(3)
    assert m.precision_recall(rng.normal(size=(200, 3)),
                              rng.normal(size=(200, 3)) + 100.0) == (0.0, 0.0)


def test_manifold_coverage_counts_a_query_on_the_boundary_as_inside():
    refs, radii = np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([1.0, 2.0])
    queries = np.array([[1.0, 0.0], [12.0, 0.0], [5.0, 0.0], [0.0, 1.0001]])
    assert m.manifold_coverage(queries, refs, radii, batch_size=3) == 0.5


def test_kl_from_uniform():
    assert m.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-15)
    assert m.kl_from_uniform(np.eye(10)[3]) == pytest.approx(math.log(10))
    nine = np.r_[np.full(9, 1 / 9), 0.0]                          # one class lost
    assert m.kl_from_uniform(nine) == pytest.approx(math.log(10 / 9))


def test_balanced_samples_are_not_flagged():
    stats = m.class_statistics(onehot_probs(np.arange(1000) % 10))
    assert stats["classes_covered"] == 10 and stats["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert stats["confidence"] == pytest.approx(0.91)
    np.testing.assert_allclose(stats["histogram"], 0.1)
    assert m.collapse_warning(stats) is None


def test_single_class_samples_are_flagged_as_collapsed():
    stats = m.class_statistics(onehot_probs(np.full(500, 7)))
    assert stats["classes_covered"] == 1
    assert stats["kl_uniform"] == pytest.approx(math.log(10))
    warning = m.collapse_warning(stats)
    assert warning is not None and "only 1 of 10 classes" in warning
    assert "missing: 0, 1, 2, 3, 4, 5, 6, 8, 9" in warning


def test_two_percent_threshold_and_kl_rise():
    classes = np.r_[np.arange(981) % 9, np.full(19, 9)]           # class 9: 1.9% of 1000
    stats = m.class_statistics(onehot_probs(classes))
    assert stats["classes_covered"] == 9 and "missing: 9" in m.collapse_warning(stats)
    before = m.class_statistics(onehot_probs(np.arange(1000) % 10))
    # all 10 classes still covered, but mass drains into class 0: KL jumps
    skewed = m.class_statistics(onehot_probs(np.r_[np.zeros(500, int), np.arange(500) % 10]))
    assert skewed["classes_covered"] == 10
    assert m.collapse_warning(skewed) is None
    warning = m.collapse_warning(skewed, previous=before)
    assert warning is not None and "rose from 0.000" in warning
    assert m.collapse_warning(before, previous=skewed) is None   # falling KL is good news


def test_format_table_lists_every_row():
    row = {"frechet": 12.345, "frechet_floor": 0.5, "classes_covered": 9, "kl_uniform": 0.1234,
           "confidence": 0.876, "histogram": [0.2] + [0.8 / 9] * 9, "precision": 0.7123,
           "precision_floor": 0.801, "recall": 0.1456, "recall_floor": 0.799}
    table = m.format_table([{**row, "step": 1000}, {**row, "step": 2000, "frechet": 3.0}])
    lines = table.splitlines()
    assert len(lines) == 3 and "frechet" in lines[0] and "histogram" in lines[0]
    assert "precision (floor)" in lines[0] and "recall (floor)" in lines[0]
    assert "1000" in lines[1] and "12.35" in lines[1] and "9/10" in lines[1]
    assert " 20 " in lines[1] and "0.123" in lines[1] and "0.876" in lines[1]
    assert "0.712 (0.801)" in lines[1] and "0.146 (0.799)" in lines[1]
    assert "2000" in lines[2] and "3.00" in lines[2]
    assert m.format_table(row).count("\n") == 1                  # one dict = one row


# ------------------------------------------------- end to end, with shipped weights
@pytest.fixture(scope="module")
def mnist5k():
    be = get_backend("numpy", seed=0)
    model = load_or_train_classifier("mnist-5k", be)            # shipped: no training
    return be, model, m.reference_statistics(model, be, "mnist-5k")


def test_real_images_score_near_zero_and_a_floor_is_reported(mnist5k):
    be, model, ref = mnist5k
    test_x, _ = load_dataset("mnist-5k", split="test")
    res = m.evaluate_images(to_device(test_x, be), be, "mnist-5k", model, ref)
    assert res["frechet"] == pytest.approx(0.0, abs=1e-6)        # the reference set itself
    assert res["classes_covered"] == 10 and res["kl_uniform"] < 0.02
    assert res["confidence"] > 0.9 and res["n"] == res["n_real"] == 500
    assert ref["floor"] > 0 and ref["n_train"] == 4500
    # precision and recall of held-out digits against the training digits: the floor
    assert ref["n_pr_floor"] == 500 and ref["precision_floor"] > 0.6 and ref["recall_floor"] > 0.6
    assert res["precision"] == ref["precision_floor"] and res["recall"] == ref["recall_floor"]
    with pytest.raises(ValueError, match="reference statistics are of 'mnist-5k', not 'mnist'"):
        m.evaluate_images(to_device(test_x, be), be, "mnist", model, ref)


def test_frechet_grows_and_precision_falls_as_noise_is_added(mnist5k):
    """Held-out digits with more and more Gaussian pixel noise: the judge must see them
    drift away from the data (sigma 0 is the reference set itself)."""
    be, model, ref = mnist5k
    test_x, _ = load_dataset("mnist-5k", split="test")
    clean = to_device(test_x, be)                                     # (500, P) in [-1, 1]
    noise = get_backend("numpy", seed=1).randn(clean.shape)
    scores = [m.evaluate_images(clean + sigma * noise, be, "mnist-5k", model, ref)
              for sigma in (0.0, 0.1, 0.3, 0.6)]
    frechet = [r["frechet"] for r in scores]
    assert frechet[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(frechet, frechet[1:])), frechet
    assert scores[-1]["precision"] < scores[0]["precision"] - 0.1, [r["precision"] for r in scores]


def test_one_digit_of_real_data_is_flagged(mnist5k):
    be, model, ref = mnist5k
    train_x, train_y = load_dataset("mnist-5k", split="train")
    res = m.evaluate_images(to_device(train_x[train_y == 3], be), be, "mnist-5k", model, ref)
    assert res["classes_covered"] == 1 and res["histogram"][3] > 0.95
    assert "only 1 of 10 classes" in m.collapse_warning(res)
    assert res["frechet"] > 10 * ref["floor"]
    # real threes are realistic, but they cover about a tenth of the data: recall sees it
    assert res["precision"] > 0.8 and res["recall"] < 0.2 < ref["recall_floor"]


def test_label_agreement(mnist5k):
    be, model, _ = mnist5k
    test_x, test_y = load_dataset("mnist-5k", split="test")
    x = to_device(test_x, be)
    assert m.label_agreement(x, test_y, model) >= 0.93
    assert m.label_agreement(x, (test_y + 1) % 10, model) < 0.1
    assert m.label_agreement(x, be.asarray(test_y), model) >= 0.93   # device labels too
    with pytest.raises(ValueError, match="500 images but 499 requested labels"):
        m.label_agreement(x, test_y[:-1], model)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_evaluate_generator_is_seeded_and_restores_train_mode(spec, mnist5k):
    _, _, ref = mnist5k                                          # host statistics: any backend
    be = make_backend(spec, "float32", seed=5)
    model = load_or_train_classifier("mnist-5k", be)
    G = build_generator(be, latent_dim=8, hidden=(16,))
    first = m.evaluate_generator(G, be, "mnist-5k", n=300, seed=1, classifier=model,
                                 reference=ref, batch_size=128)
    assert G.training                                            # back in training mode
    assert first["n"] == 300 and sum(first["histogram"]) == pytest.approx(1.0)
    assert 0 <= first["kl_uniform"] <= math.log(10) + 1e-9
    assert first["frechet"] > ref["floor"]                       # an untrained G is far off
    G.eval()
    again = m.evaluate_generator(G, be, "mnist-5k", n=300, seed=1, classifier=model,
                                 reference=ref, batch_size=300)
    assert not G.training
    assert again["histogram"] == pytest.approx(first["histogram"], abs=1.01 / 300)  # same z
    assert again["frechet"] == pytest.approx(first["frechet"], rel=1e-4)

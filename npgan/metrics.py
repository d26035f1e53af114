"""Sample quality: what the convolutional classifier of npgan.classifier sees in
generated images.

For images (N, P) in [-1, 1] (G's output range) we report:
  histogram      fraction of the samples predicted as each class, (K,)
  covered        the classes holding >= 2% of the samples (K = every class drawn)
  kl_uniform     KL(histogram || uniform) = log K - H(histogram): 0 when balanced,
                 log K (2.30 for 10 classes) when every sample is one class
  confidence     mean max-softmax: do samples look like clear members of a class?
  frechet        the Frechet distance between Gaussians fitted to the classifier's
                 penultimate features of the samples and of real held-out images
  frechet_floor  the same distance between real training and real held-out images:
                 what real data scores, so a generator cannot expect to go lower
  precision      the share of samples inside the real images' k-NN manifold (k = 3):
                 realism (Kynkaanniemi et al. 2019)
  recall         the share of real images inside the samples' k-NN manifold: coverage
                 of the data, the number that shows mode collapse
  *_floor        precision and recall of real held-out images against as many
                 training images: what real data scores
  label_agreement  (conditional G only) the fraction of samples that the classifier
                 puts in the class G was asked for
The Frechet distance is FID's recipe (Heusel et al. 2017) on our own small CNN's
features instead of Inception's, so its values are comparable only with each other.
One number cannot rank generators: Frechet mixes realism and coverage in one value,
precision and recall keep them apart. Read them together.
reference: https://arxiv.org/abs/1706.08500, https://arxiv.org/abs/1904.06991

Statistics are computed on the host in float64; the networks run on the backend. The
samples are classified a batch at a time and only their statistics kept (SampleTally),
so memory does not grow with their number beyond the reference set's size.
"""
from __future__ import annotations

from npgan.backend import host as np
from npgan.backend import to_numpy
from npgan.classifier import load_or_train_classifier, logits_and_features, reseeded
from npgan.data import load_dataset, to_device
from npgan.noise import sample_z

COVERED_FRACTION = 0.02  # a class counts as drawn if it holds at least 2% of the samples


# ------------------------------------------------------------------ Frechet distance
def gaussian_stats(features):
    """Mean (H,) and covariance (H, H) of features (N, H), in float64 on the host."""
    f = np.asarray(features, dtype=np.float64)
    return np.mean(f, axis=0), np.cov(f, rowvar=False)


class FeatureMoments:
    """Mean (H,) and covariance (H, H) of feature rows (b, H) that arrive in blocks, in
    float64 on the host: any number of rows, in O(H^2) memory. Each block's mean and
    scatter M2 = sum (x - mean)(x - mean)^T are merged into the running ones
    (Chan, Golub & LeVeque's pairwise update, stable where sum x x^T - n mean mean^T
    would cancel):
        delta = mean_b - mean_a,   n = n_a + n_b
        mean  = mean_a + delta n_b / n,   M2 = M2_a + M2_b + delta delta^T n_a n_b / n
        covariance = M2 / (n - 1)                  (np.cov's normalization)
    reference: https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance
    """

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, features):
        f = np.asarray(features, dtype=np.float64)                  # (b, H)
        b, mean_b = len(f), np.mean(f, axis=0)                      # (H,)
        centered = f - mean_b
        m2_b = centered.T @ centered                                # (H, b) @ (b, H) -> (H, H)
        if self.n == 0:
            self.n, self.mean, self.m2 = b, mean_b, m2_b
            return
        n, delta = self.n + b, mean_b - self.mean
        self.mean = self.mean + delta * (b / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (self.n * b / n)
        self.n = n

    def covariance(self):
        return self.m2 / (self.n - 1)


def sqrt_psd(S):
    """The symmetric square root of a symmetric positive semi-definite matrix:
    S = V diag(w) V.T  ->  S^1/2 = V diag(sqrt(w)) V.T. Round-off can make tiny
    eigenvalues negative, so we clip them at 0 first."""
    w, V = np.linalg.eigh(S)                                # (H,), (H, H)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T       # V diag(sqrt w) V.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein) distance squared between N(mu1, S1) and N(mu2, S2):

        d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)

    S1^1/2 S2 S1^1/2 is symmetric PSD, so the trace of its root is the sum of the
    roots of its eigenvalues (eigh, clipped at 0): no general matrix square root,
    and no SciPy, needed. Float64 on the host; clipped at 0 against round-off.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    S1, S2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    root1 = sqrt_psd(S1)
    middle = root1 @ S2 @ root1                             # (H, H), symmetric PSD
    middle = (middle + middle.T) / 2.0                      # exactly symmetric for eigh
    eig = np.clip(np.linalg.eigvalsh(middle), 0.0, None)
    diff = mu1 - mu2
    d2 = diff @ diff + np.trace(S1) + np.trace(S2) - 2.0 * np.sum(np.sqrt(eig))
    return max(float(d2), 0.0)


# ------------------------------------------------------------ precision and recall
def _sq_dists(a, b):
    """Squared Euclidean distances between the rows of a (n, H) and b (m, H): (n, m).
    |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, one matrix product; clipped at 0 (round-off)."""
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def knn_radii(feats, k=3, batch_size=1000):
    """The distance of each row of feats (N, H) to its k-th nearest other row: (N,).

    The row itself is at distance 0, so we take the (k+1)-th smallest distance
    (np.partition, no full sort). Done in row blocks: (batch_size, N) at a time.
    """
    f = np.asarray(feats, dtype=np.float64)
    if not 1 <= k < len(f):
        raise ValueError(f"k must be in [1, N) = [1, {len(f)}), got {k}")
    radii = np.empty(len(f))
    for start in range(0, len(f), batch_size):
        d2 = _sq_dists(f[start:start + batch_size], f)                # (b, N)
        radii[start:start + batch_size] = np.sqrt(np.partition(d2, k, axis=1)[:, k])
    return radii


def manifold_coverage(queries, refs, ref_radii, batch_size=1000) -> float:
    """The fraction of queries (n, H) inside the k-NN manifold of refs (m, H): the union
    of the balls B(refs_i, ref_radii_i). A query is inside when some ref is within its
    radius: exists i, |q - r_i| <= radius_i."""
    q, r = np.asarray(queries, dtype=np.float64), np.asarray(refs, dtype=np.float64)
    r2 = np.asarray(ref_radii, dtype=np.float64) ** 2                 # (m,)
    inside = 0
    for start in range(0, len(q), batch_size):
        d2 = _sq_dists(q[start:start + batch_size], r)                # (b, m)
        inside += int(np.sum(np.any(d2 <= r2[None, :], axis=1)))
    return inside / len(q)


def precision_recall(real_feats, fake_feats, k=3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), k-NN manifolds (k = 3).

    precision = share of generated samples inside the real manifold: are they realistic?
    recall    = share of real samples inside the generated manifold: is every part of
                the data covered? (a mode-collapsed G has high precision, low recall)
    Use equal numbers of real and generated samples: the radii shrink as a set grows.
    reference: https://arxiv.org/abs/1904.06991
    """
    real = np.asarray(real_feats, dtype=np.float64)
    fake = np.asarray(fake_feats, dtype=np.float64)
    precision = manifold_coverage(fake, real, knn_radii(real, k))
    recall = manifold_coverage(real, fake, knn_radii(fake, k))
    return precision, recall


# ----------------------------------------------------------------- class statistics
def kl_from_uniform(histogram) -> float:
    """KL(h || U) = sum_k h_k log(h_k K) = log K - H(h), with 0 log 0 = 0."""
    h = np.asarray(histogram, dtype=np.float64)
    nonzero = h[h > 0]
    return float(np.sum(nonzero * np.log(nonzero * len(h))))


def class_statistics(probs) -> dict:
    """Histogram, classes covered, KL from uniform and confidence of softmax rows (N, K)."""
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    histogram = np.bincount(np.argmax(probs, axis=1), minlength=k) / n   # (K,)
    return {
        "histogram": histogram.tolist(),
        "classes_covered": int(np.sum(histogram >= COVERED_FRACTION)),
        "kl_uniform": kl_from_uniform(histogram),
        "confidence": float(np.mean(np.max(probs, axis=1))),
    }


def _softmax(logits):
    """Row softmax of host logits (N, K) in float64 (max subtracted for stability)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def classify(model, batches):
    """Run the classifier over device batches (b, P); host float64 softmax (N, K) and
    features (N, H). One host transfer per batch: these are evaluation points."""
    probs, feats = [], []
    for x in batches:
        logits, f = logits_and_features(model, x)           # (b, K), (b, H)
        probs.append(_softmax(to_numpy(logits)))
        feats.append(np.asarray(to_numpy(f), dtype=np.float64))
    return np.concatenate(probs), np.concatenate(feats)


def _host_batches(images, backend, batch_size=1000):
    """uint8 host images (N, P) as device batches in [-1, 1]."""
    for start in range(0, len(images), batch_size):
        yield to_device(images[start:start + batch_size], backend)


def _device_batches(x, batch_size=1000):
    """Device images (N, P) in slices; the Array API allows no slice past the end."""
    n = x.shape[0]
    for start in range(0, n, batch_size):
        yield x[start:min(start + batch_size, n), ...]


# ----------------------------------------------------------------------- evaluation
def reference_statistics(model, backend, dataset, k=3) -> dict:
    """What generated samples are compared with, and what real data itself scores.

    Frechet: the Gaussian of the held-out images' features (mu, sigma), and the floor
    d(train, held-out). Precision and recall: the training images' features in a fixed
    random order (the real manifold; the first m are used for m samples), and the
    floor: held-out images against as many training images.
    Costs one classifier pass over the training and test splits: compute it once and
    pass it as `reference=` to evaluate_images/evaluate_generator during training.
    """
    test_x, _ = load_dataset(dataset, split="test")
    train_x, _ = load_dataset(dataset, split="train")
    test_feats = classify(model, _host_batches(test_x, backend))[1]       # (N_test, H)
    train_feats = classify(model, _host_batches(train_x, backend))[1]     # (N_train, H)
    mu, sigma = gaussian_stats(test_feats)
    mu_train, sigma_train = gaussian_stats(train_feats)
    order = np.random.default_rng(0).permutation(len(train_feats))        # fixed order
    train_feats = train_feats[order]
    m = min(len(test_feats), len(train_feats))
    precision_floor, recall_floor = precision_recall(train_feats[:m], test_feats[:m], k)
    return {"dataset": dataset, "mu": mu, "sigma": sigma, "n_real": len(test_x),
            "n_train": len(train_x), "floor": frechet_distance(mu_train, sigma_train, mu, sigma),
            "train_feats": train_feats, "k": k, "precision_floor": precision_floor,
            "recall_floor": recall_floor, "n_pr_floor": m}


def evaluate_images(images, backend, dataset, classifier=None, reference=None) -> dict:
    """All the metrics of this module for device images (N, P) in [-1, 1].

    classifier: default load_or_train_classifier(dataset, backend);
    reference: default reference_statistics(classifier, backend, dataset).
    """
    model = classifier if classifier is not None else load_or_train_classifier(dataset, backend)
    ref = reference if reference is not None else reference_statistics(model, backend, dataset)
    tally = SampleTally(keep=len(ref["train_feats"]))
    for x in _device_batches(images):
        tally.add(model, x)
    return tally.summary(ref, dataset)


class SampleTally:
    """What the metrics need of the samples, gathered a batch at a time, so that memory
    does not grow with their number: the class counts and summed max-softmax
    (class_statistics), the features' mean and covariance (FeatureMoments, for the
    Frechet distance), and the first `keep` feature rows (precision and recall compare
    as many samples as real images: keep = their number). With `wanted` labels, the
    count of samples classified as the class they were asked for."""

    def __init__(self, keep):
        self.keep, self.kept, self.moments = keep, [], FeatureMoments()
        self.counts, self.max_prob, self.agree = None, 0.0, 0

    def add(self, model, x, wanted=None):
        """Classify device images x (b, P); wanted: their requested classes, host (b,)."""
        logits, f = logits_and_features(model, x)                     # (b, K), (b, H)
        probs = _softmax(to_numpy(logits))                             # one host transfer
        feats = np.asarray(to_numpy(f), dtype=np.float64)
        predicted = np.argmax(probs, axis=1)                           # (b,)
        counts = np.bincount(predicted, minlength=probs.shape[1])
        self.counts = counts if self.counts is None else self.counts + counts
        self.max_prob += float(np.sum(np.max(probs, axis=1)))
        self.moments.add(feats)
        room = self.keep - sum(len(k) for k in self.kept)
        if room > 0:
            self.kept.append(feats[:room])
        if wanted is not None:
            self.agree += int(np.sum(predicted == wanted))

    def summary(self, ref, dataset) -> dict:
        if ref["dataset"] != dataset:
            raise ValueError(f"the reference statistics are of {ref['dataset']!r}, not {dataset!r}")
        n = self.moments.n
        histogram = self.counts / n                                    # (K,)
        feats = np.concatenate(self.kept)                              # (m, H)
        m = len(feats)                                 # equal numbers of real and generated
        precision, recall = precision_recall(ref["train_feats"][:m], feats, ref["k"])
        return {"dataset": dataset, "n": n, "histogram": histogram.tolist(),
                "classes_covered": int(np.sum(histogram >= COVERED_FRACTION)),
                "kl_uniform": kl_from_uniform(histogram), "confidence": self.max_prob / n,
                "frechet": frechet_distance(self.moments.mean, self.moments.covariance(),
                                            ref["mu"], ref["sigma"]),
                "frechet_floor": ref["floor"], "n_real": ref["n_real"],
                "precision": precision, "recall": recall, "n_pr": m,
                "precision_floor": ref["precision_floor"], "recall_floor": ref["recall_floor"],
                "n_pr_floor": ref["n_pr_floor"]}


Z_BLOCK = 10_000    # z is drawn this many rows at a time: any n fits in memory


def evaluate_generator(G, backend, dataset, n=10000, seed=0, classifier=None,
                       reference=None, latent_dim=None, batch_size=1000, prior="normal",
                       progress=False) -> dict:
    """The metrics of evaluate_images for n samples of G, from noise z ~ N(0, I) (or
    U(-1, 1) with prior='uniform', as G was trained: noise.sample_z) drawn with its own
    `seed`: the same z at every call, so evaluations differ only because G did. G runs
    in eval mode and is put back in the mode it was in; latent_dim defaults to the
    input width of G's first layer. A conditional G is asked for every
    class in turn (0, 1, ..., 9, 0, ...), and the result has its label_agreement.
    Memory does not grow with n beyond the reference's size (SampleTally); z comes in
    blocks of Z_BLOCK rows, so the samples do not depend on batch_size. progress: a
    progress bar with the time left (tqdm).
    """
    from tqdm.auto import tqdm

    from npgan.conditional import is_conditional
    model = classifier if classifier is not None else load_or_train_classifier(dataset, backend)
    ref = reference if reference is not None else reference_statistics(model, backend, dataset)
    conditional = is_conditional(G)
    c = G.num_classes if conditional else 0
    latent_dim = latent_dim if latent_dim is not None else G[0].in_features - c
    rng = reseeded(backend, seed)
    tally = SampleTally(keep=len(ref["train_feats"]))
    was_training = G.training
    G.eval()
    try:
        with tqdm(total=n, unit="sample", disable=not progress, leave=False) as bar:
            for block in range(0, n, Z_BLOCK):
                z = sample_z(rng, min(Z_BLOCK, n - block), latent_dim, prior)   # (<= Z_BLOCK, Z)
                for start in range(0, z.shape[0], batch_size):
                    zb = z[start:min(start + batch_size, z.shape[0]), ...]     # (b, Z)
                    # every class in turn: 0, 1, ..., c - 1, 0, ... (conditional.balanced_labels)
                    wanted = (np.arange(block + start, block + start + zb.shape[0]) % c
                              if conditional else None)                      # host (b,)
                    x = G.forward(zb, backend.asarray(wanted)) if conditional else G.forward(zb)
                    tally.add(model, x, wanted)
                    bar.update(zb.shape[0])
    finally:
        G.train(was_training)
    result = tally.summary(ref, dataset)
    if conditional:
        result["label_agreement"] = tally.agree / n
    return result


def label_agreement(images, requested_labels, classifier) -> float:
    """For a conditional G: the fraction of images (N, P) whose predicted class is the
    label they were generated for (requested_labels: (N,) ints, host or device)."""
    probs, _ = classify(classifier, _device_batches(images))
    wanted = np.asarray(to_numpy(requested_labels)).reshape(-1)
    if len(wanted) != len(probs):
        raise ValueError(f"got {len(probs)} images but {len(wanted)} requested labels")
    return float(np.mean(np.argmax(probs, axis=1) == wanted))


# ------------------------------------------------------------------------ reporting
def collapse_warning(results, previous=None, kl_rise=0.1) -> str | None:
    """A line of text if the samples look mode-collapsed, else None.

    Two signs: fewer than K classes hold >= 2% of the samples, or KL(h || U) rose by
    more than `kl_rise` nats since `previous` (an earlier evaluation's results).
    0.1 nats is about one class lost: 9 equal classes and one empty give log(10/9).
    """
    k = len(results["histogram"])
    problems = []
    if results["classes_covered"] < k:
        missing = [c for c, h in enumerate(results["histogram"]) if h < COVERED_FRACTION]
        problems.append(f"only {results['classes_covered']} of {k} classes hold >= "
                        f"{COVERED_FRACTION:.0%} of the samples (missing: "
                        f"{', '.join(map(str, missing))})")
    if previous is not None and results["kl_uniform"] - previous["kl_uniform"] > kl_rise:
        problems.append(f"KL(histogram || uniform) rose from {previous['kl_uniform']:.3f} "
                        f"to {results['kl_uniform']:.3f} since the previous evaluation")
    return "possible mode collapse: " + "; ".join(problems) if problems else None


def format_table(results) -> str:
    """A text table of one results dict or a list of them (one row each; a row's
    'step' key, if any, labels it), each number with its real-vs-real floor in
    parentheses. Histogram entries are percentages per class."""
    rows = [results] if isinstance(results, dict) else list(results)
    k = len(rows[0]["histogram"]) if rows else 10
    agree = any("label_agreement" in r for r in rows)      # a conditional G's rows
    head = (f"{'step':>8} {'frechet (floor)':>17} {'precision (floor)':>17} "
            f"{'recall (floor)':>15} {'classes':>7} {'KL(h|U)':>8} {'conf':>6} "
            + (f"{'agree':>6} " if agree else "") + f" histogram % (classes 0..{k - 1})")
    lines = [head]
    for r in rows:
        hist = " ".join(f"{100 * h:3.0f}" for h in r["histogram"])
        agreement = f"{r.get('label_agreement', float('nan')):6.3f} " if agree else ""
        lines.append(f"{str(r.get('step', '')):>8} {r['frechet']:8.2f} ({r['frechet_floor']:6.2f}) "
                     f"{r['precision']:8.3f} ({r['precision_floor']:.3f}) "
                     f"{r['recall']:6.3f} ({r['recall_floor']:.3f}) "
                     f"{r['classes_covered']:>4}/{k:<2} {r['kl_uniform']:8.3f} "
                     f"{r['confidence']:6.3f} {agreement} {hist}")
    return "\n".join(lines)

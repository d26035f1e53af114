"""The evaluation classifier: softmax cross-entropy, model gradients, augmentation,
training, saving/loading/caching, and the accuracy of the shipped weights."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import assert_gradients_ok, check_layer, get_backend, numerical_grad
from npgan import classifier as clf
from npgan.data import DataError, load_dataset
from npgan.gradcheck import compare
from npgan.losses import softmax_cross_entropy
from tests.backends import ALL_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

logit_values = {"min_value": -8.0, "max_value": 8.0, "allow_nan": False}


# ------------------------------------------------------------ softmax_cross_entropy
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_softmax_cross_entropy_gradient(spec, data):
    be = make_backend(spec, "float64")
    b, k = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 6))
    logits = be.asarray(data.draw(arrays(np.float64, (b, k), elements=logit_values)))
    labels = be.asarray(np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=b,
                                                    max_size=b)), dtype=np.int32))
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numerical_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert_gradients_ok([compare("dlogits", dlogits, numeric, rtol=1e-5, atol=1e-8)])


@given(logits=arrays(np.float64, (5, 4), elements=logit_values),
       labels=arrays(np.int64, (5,), elements=st.integers(0, 3)))
def test_softmax_cross_entropy_matches_the_definition(logits, labels):
    """loss = mean(-log softmax(l)[y]), dlogits = (softmax - onehot) / B, computed naively."""
    probs = np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(float(loss), np.mean(-np.log(probs[np.arange(5), labels])),
                               rtol=1e-10)
    np.testing.assert_allclose(dlogits, (probs - np.eye(4)[labels]) / 5, rtol=1e-9, atol=1e-15)


def test_softmax_cross_entropy_known_values_and_extremes():
    be = get_backend("numpy", dtype="float64")
    loss, dlogits = softmax_cross_entropy(be.zeros((2, 10)), np.array([3, 7]))
    assert float(loss) == pytest.approx(np.log(10))              # uniform guess
    np.testing.assert_allclose(dlogits[0], (0.1 - (np.arange(10) == 3)) / 2)
    big = np.array([[300.0, -300.0, 0.0], [300.0, -300.0, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # no overflow warnings
        loss, dlogits = softmax_cross_entropy(big, np.array([0, 1]))
    assert float(loss) == pytest.approx(300.0, rel=1e-6)         # (0 + 600) / 2
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [0.5, -0.5, 0]], atol=1e-30)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_softmax_cross_entropy_keeps_float32(spec):
    be = make_backend(spec, "float32")
    labels = be.asarray(np.array([0, 2, 1, 2], dtype=np.uint8))  # load_dataset's label dtype
    loss, dlogits = softmax_cross_entropy(be.randn((4, 3)), labels)
    assert loss.dtype == be.dtype and dlogits.dtype == be.dtype
    assert tuple(loss.shape) == ()
    np.testing.assert_allclose(np.sum(host(dlogits), axis=1), 0.0, atol=1e-7)


# ----------------------------------------------------------------------- the model
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
def test_classifier_gradients_vjp_and_through_the_loss(spec):
    be = make_backend(spec, "float64", seed=2)
    model = clf.build_classifier(be, channels=(2, 3), hidden=4, n_classes=3, side=8)
    x = be.randn((4, 64))                                        # 8 x 8 images
    # the ReLUs' kinks: check that no pre-activation is within the finite-difference step
    a = x
    for layer in model.layers:
        if type(layer).__name__ == "ReLU":
            assert np.min(np.abs(host(a))) > 1e-4
        a = layer.forward(a)
    reports = check_layer(model, x, be.randn((4, 3)))
    assert [r.name for r in reports] == ["x", "1.W", "1.b", "3.W", "3.b", "6.W", "6.b",
                                         "8.W", "8.b"]
    assert_gradients_ok(reports)
    # the training path: softmax_cross_entropy -> model.backward fills dL/dW
    labels = be.asarray(np.array([0, 2, 1, 2], dtype=np.int32))
    loss_fn = lambda: softmax_cross_entropy(model.forward(x), labels)[0]  # noqa: E731
    model.zero_grad()
    model.backward(softmax_cross_entropy(model.forward(x), labels)[1])
    assert_gradients_ok([compare(name, p.grad, numerical_grad(loss_fn, p.data))
                         for name, p in model.named_parameters()])


def test_logits_and_features_is_one_forward_pass():
    be = get_backend("numpy", dtype="float64", seed=0)
    model = clf.build_classifier(be, channels=(4, 8), hidden=8)
    x = be.randn((5, 784))
    logits, feats = clf.logits_and_features(model, x)
    assert feats.shape == (5, 8) and np.all(feats >= 0)          # after a ReLU
    np.testing.assert_allclose(logits, model.forward(x), rtol=1e-12)


# -------------------------------------------------------------------- augmentation
def test_random_shift_moves_each_image_within_range_and_fills_background():
    be = get_backend("numpy", dtype="float64", seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (40, 784))
    y = clf.random_shift(x, be, max_shift=2).reshape(40, 28, 28)
    seen = set()
    for img, out in zip(x.reshape(40, 28, 28), y):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.full((32, 32), -1.0)                    # pad by 2 with background
                ref[2 + dy:30 + dy, 2 + dx:30 + dx] = img
                if np.array_equal(out, ref[2:30, 2:30]):
                    matches.append((dy, dx))
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 10                                        # shifts differ per image
    np.testing.assert_array_equal(clf.random_shift(x, be, max_shift=0), x)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_random_shift_keeps_dtype_and_device(spec):
    be = make_backend(spec, "float32")
    y = clf.random_shift(be.randn((3, 784)), be, max_shift=1)
    assert y.dtype == be.dtype and tuple(y.shape) == (3, 784)


# ------------------------------------------------------------------------ training
def small_data(n=600):
    images, labels = load_dataset("mnist-5k", split="train")
    pick = np.random.default_rng(0).permutation(len(labels))[:n]
    return images[pick], labels[pick]


def test_tiny_training_learns_and_is_deterministic():
    be = get_backend("numpy", seed=123)
    losses = []
    kw = dict(epochs=3, seed=7, channels=(4, 8), hidden=16, max_shift=1, lr=3e-3, batch_size=32,
              dropout=0.0, data=small_data(1000))
    model = clf.train_classifier("mnist-5k", be, on_epoch=lambda e, l: losses.append(l), **kw)
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]
    test_x, test_y = load_dataset("mnist-5k", split="test")
    assert clf.accuracy(model, test_x, test_y, be) > 0.5        # chance is 0.1
    again = clf.train_classifier("mnist-5k", get_backend("numpy", seed=999), **kw)
    for (name, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


# ------------------------------------------------------------- files and the cache
def test_save_load_round_trip_is_atomic(tmp_path):
    be = get_backend("numpy", seed=0)
    model = clf.build_classifier(be, channels=(4, 8), hidden=8)
    path = clf.save_classifier(model, tmp_path / "c.npz", dataset="mnist-5k", test_accuracy=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]   # no temporary left
    loaded, meta = clf.load_classifier(path, get_backend("numpy", dtype="float64"))
    assert meta == {"dataset": "mnist-5k", "test_accuracy": 0.5}
    assert [p.shape for p in loaded.parameters()] == [p.shape for p in model.parameters()]
    x = get_backend("numpy", dtype="float64", seed=1).randn((3, 784))
    np.testing.assert_allclose(loaded.forward(x), model.forward(x.astype(np.float32)), atol=1e-5)


def test_load_refuses_pickles_and_garbage(tmp_path):
    be = get_backend("numpy")
    np.savez(tmp_path / "pickled.npz", **{"0.W": np.array([{"a": 1}], dtype=object)})
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    # the MLP weights of an older npgan: a clear refusal, not a shape error
    np.savez(tmp_path / "mlp.npz", **{"0.W": np.zeros((256, 784)), "0.b": np.zeros(256)})
    for name in ("pickled.npz", "garbage.npz", "mlp.npz"):
        with pytest.raises(ValueError, match=name):
            clf.load_classifier(tmp_path / name, be)
    with pytest.raises(ValueError, match="architecture None, expected 'cnn'"):
        clf.load_classifier(tmp_path / "mlp.npz", be)


def test_load_or_train_trains_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "SHIPPED", tmp_path / "nothing shipped")
    be = get_backend("numpy", seed=0)
    kw = dict(epochs=1, channels=(2, 4), hidden=8, data=small_data(300))
    model = clf.load_or_train_classifier("mnist-5k", be, cache_dir=tmp_path, **kw)
    path = clf.classifier_path("mnist-5k", tmp_path)
    assert path.is_file() and 0.0 <= clf.load_classifier(path, be)[1]["test_accuracy"] <= 1.0

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the weights were cached")
    monkeypatch.setattr(clf, "train_classifier", no_training)
    cached = clf.load_or_train_classifier("mnist-5k", be, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached[1].W.data, model[1].W.data)


def test_a_corrupt_cache_file_is_retrained_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "SHIPPED", tmp_path / "nothing shipped")
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    path = clf.classifier_path("mnist-5k")
    assert path == tmp_path / "classifiers" / "classifier_cnn_mnist_5k.npz"
    path.parent.mkdir()
    path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="not a classifier weights file"):
        clf.load_or_train_classifier("mnist-5k", get_backend("numpy"), epochs=1,
                                     channels=(2, 4), hidden=4, data=small_data(200))
    assert clf.load_classifier(path, get_backend("numpy"))[0][1].W.shape == (2, 1, 4, 4)


# ------------------------------------------------------------- the shipped weights
def test_shipped_mnist_5k_classifier_reaches_98_percent():
    be = get_backend("numpy")
    model = clf.load_or_train_classifier("mnist-5k", be)       # shipped: no training
    test_x, test_y = load_dataset("mnist-5k", split="test")
    assert clf.accuracy(model, test_x, test_y, be) >= 0.98


def test_shipped_fashion_classifier_reaches_90_percent():
    if not (clf.SHIPPED / clf.weights_filename("fashion-mnist")).is_file():
        pytest.skip("no Fashion-MNIST classifier shipped in npgan/datasets")
    try:
        test_x, test_y = load_dataset("fashion-mnist", split="test", download=False)
    except DataError as err:
        pytest.skip(f"Fashion-MNIST not available here: {err}")
    be = get_backend("numpy")
    model = clf.load_or_train_classifier("fashion-mnist", be)
    assert clf.accuracy(model, test_x, test_y, be) >= 0.90


def test_dropout_is_saved_and_off_when_judging(tmp_path):
    """The mnist-5k recipe trains with Dropout on the features: the file must rebuild the
    same layers, and eval mode (the features metrics read) must not drop anything."""
    be = get_backend("numpy", seed=0)
    model = clf.build_classifier(be, channels=(4, 8), hidden=8, dropout=0.5).eval()
    path = clf.save_classifier(model, tmp_path / "c.npz")
    loaded, _ = clf.load_classifier(path, be)
    assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]
    x = be.randn((5, 784))
    first, again = clf.logits_and_features(loaded, x), clf.logits_and_features(loaded, x)
    np.testing.assert_array_equal(first[1], again[1])          # no random mask in eval mode
    np.testing.assert_allclose(first[0], model.forward(x), rtol=1e-6)
    assert clf.RECIPES["mnist-5k"]["dropout"] == 0.5

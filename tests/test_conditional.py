"""The conditional GAN: the label-joining layer, gradients through a conditional D into a
conditional G, the training loop, sampling by label, and label agreement."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npgan import SGD, Adam, d_loss, d_step, get_g_loss, numerical_grad, train_step
from npgan.conditional import Conditional, balanced_labels, check_labels, random_labels
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
from npgan.gan import build_discriminator, build_generator
from npgan.gradcheck import assert_gradients_ok, check_layer, compare
from npgan.layers import Layer, Linear, Sequential, Tanh
from tests.backends import FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

Z, P, C = 3, 5, 4     # a tiny conditional GAN: 4 classes, gradients checked elementwise


class WithLabels:
    """A Conditional layer with its labels bound, so check_layer can call forward(x)."""

    def __init__(self, layer, labels):
        self.layer, self.labels = layer, labels

    def forward(self, x):
        return self.layer.forward(x, self.labels)

    def backward(self, dout):
        return self.layer.backward(dout)

    def zero_grad(self):
        self.layer.zero_grad()

    def named_parameters(self):
        return self.layer.named_parameters()


def labels_on(be, values):
    return be.asarray(np.asarray(values, dtype=np.int64))


# ----------------------------------------------------------------- the Conditional layer
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 5), width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_vector_mode_gradients_match_numerical(spec, batch, width, seed):
    be = make_backend(spec, "float64", seed=seed)
    layer = Conditional(Sequential(Linear(width + C, 3, be), Tanh()), C, be)
    labels = labels_on(be, np.arange(batch) % C)
    x, dout = be.randn((batch, width)), be.randn((batch, 3))
    reports = check_layer(WithLabels(layer, labels), x, dout)
    assert [r.name for r in reports] == ["x", "0.W", "0.b"]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
def test_planes_mode_gradients_match_numerical(spec):
    """A small conditional DCGAN D (label planes beside a 8x8 image): x's gradient is
    the image part of the joined input's gradient, and every weight checks out."""
    be = make_backend(spec, "float64", seed=3)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8, num_classes=C)
    D.train()
    labels = labels_on(be, [0, 3, 1])
    x, dout = be.uniform(-1, 1, (3, 64)), be.randn((3, 1))
    reports = check_layer(WithLabels(D, labels), x, dout, rtol=1e-4, atol=1e-6)
    assert reports[0].name == "x" and len(reports) > 3
    assert_gradients_ok(reports)


def test_the_label_changes_the_output_and_is_one_hot():
    be = make_backend(("numpy", None), "float64", seed=0)
    inner = Linear(2 + C, 1, be)
    layer = Conditional(Sequential(inner), C, be)
    x = be.randn((C, 2))
    out = host(layer.forward(x, labels_on(be, range(C))))           # one row per class
    # y = x W_x^T + W_y[:, c] + b: the label picks one column of W's label part
    W = host(inner.W.data)
    expected = host(x) @ W[:, :2].T + W[:, 2:].T + host(inner.b.data)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert len(np.unique(np.round(out, 12))) == C


def test_planes_are_constant_images_of_the_one_hot():
    """In planes mode the joined input is the image, then C planes: plane c is all ones
    for label c and all zeros otherwise."""
    be = make_backend(("numpy", None), "float64", seed=0)
    seen = {}

    class Spy(Layer):
        def forward(self, x):
            seen["x"] = x
            return x[:, :1]

    layer = Conditional(Sequential(Spy()), C, be, planes=4)          # 2x2 images
    x = be.randn((2, 8))                                             # 2 channels each
    layer.forward(x, labels_on(be, [2, 0]))
    joined = seen["x"].reshape(2, 2 + C, 4)
    np.testing.assert_array_equal(joined[:, :2].reshape(2, 8), x)
    np.testing.assert_array_equal(joined[0, 2:], np.eye(C)[2][:, None] * np.ones(4))
    np.testing.assert_array_equal(joined[1, 2:], np.eye(C)[0][:, None] * np.ones(4))


def test_bad_labels_get_clear_errors():
    be = make_backend(("numpy", None), seed=0)
    G = build_generator(be, latent_dim=Z, hidden=(4,), out_dim=P, num_classes=C)
    with pytest.raises(ValueError, match=r"labels must be \(B,\) = \(3,\)"):
        G.forward(be.randn((3, Z)), labels_on(be, [0, 1]))
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        Conditional(Sequential(), 1, be)
    with pytest.raises(ValueError, match=r"in 0\.\.3, got 4"):
        check_labels([0, 4], C)
    with pytest.raises(ValueError, match="integer class indices"):
        check_labels([0.5], C)
    assert check_labels(np.array([1.0, 3.0]), C).tolist() == [1, 3]
    assert balanced_labels(6, C).tolist() == [0, 1, 2, 3, 0, 1]


def test_host_helpers_take_device_arrays():
    """check_labels and the image grid run on the host, and are given device arrays
    (CuPy's refuse np.asarray): array-api-strict's device1 refuses it the same way."""
    from npgan.plots import image_grid
    be = make_backend(("array-api-strict", "device1"), seed=0)
    labels = labels_on(be, [3, 0, 2])
    with pytest.raises(RuntimeError):
        np.asarray(labels)                                 # control: like CuPy, no implicit copy
    assert check_labels(labels, C).tolist() == [3, 0, 2]
    with pytest.raises(ValueError, match=r"in 0\.\.3, got 7"):
        check_labels(labels_on(be, [1, 7]), C)
    images = be.uniform(-1.0, 1.0, (5, 784))
    np.testing.assert_array_equal(image_grid(images, nrow=3), image_grid(host(images), nrow=3))


def test_random_labels_cover_every_class_evenly():
    be = make_backend(("numpy", None), seed=1)
    labels = host(random_labels(be, 8000, 10))
    assert labels.dtype == np.int64 and labels.min() == 0 and labels.max() == 9
    counts = np.bincount(labels, minlength=10)
    assert counts.min() > 700 and counts.max() < 900                   # 800 each, +- 3.5 sd


# ------------------------------------------------------------------- the GAN, end to end
def tiny_conditional_gan(be):
    G = build_generator(be, latent_dim=Z, hidden=(6, 4), out_dim=P, num_classes=C)
    D = build_discriminator(be, in_dim=P, hidden=(7, 4), num_classes=C)
    return G, D


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax"])
def test_conditional_generator_gradients_through_D_match_numerical(spec, g_loss):
    """dL_G/dtheta_G through D(G(z, y), y) == central differences of the whole chain."""
    be = make_backend(spec, "float64", seed=21)
    G, D = tiny_conditional_gan(be)
    z, y = be.randn((4, Z)), labels_on(be, [3, 0, 2, 2])
    loss_fn = get_g_loss(g_loss)
    G.zero_grad()
    D.zero_grad()
    _, dlogits = loss_fn(D.forward(G.forward(z, y), y))
    G.backward(D.backward(dlogits, param_grads=False))

    def chain_loss():
        return loss_fn(D.forward(G.forward(z, y), y))[0]

    assert_gradients_ok([compare(f"G.{n}", p.grad, numerical_grad(chain_loss, p.data), 1e-5, 1e-8)
                         for n, p in G.named_parameters()])
    assert all(not np.any(host(p.grad)) for p in D.parameters())


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
def test_conditional_d_step_gradients_match_numerical(spec):
    be = make_backend(spec, "float64", seed=22)
    G, D = tiny_conditional_gan(be)
    x_real, z = be.uniform(-1, 1, (5, P)), be.randn((4, Z))
    y_real, y_fake = labels_on(be, [0, 1, 2, 3, 0]), labels_on(be, [1, 1, 3, 2])
    d_step(G, D, SGD(D.parameters(), lr=0.0), x_real, z, 1.0, y_real, y_fake)
    x_fake = G.forward(z, y_fake)

    def loss():
        return d_loss(D.forward(x_real, y_real), D.forward(x_fake, y_fake))[0]

    assert_gradients_ok([compare(f"D.{n}", p.grad, numerical_grad(loss, p.data), 1e-5, 1e-8)
                         for n, p in D.named_parameters()])


def test_train_step_refuses_to_mix_conditional_and_plain():
    be = make_backend(("numpy", None), seed=0)
    G, D = tiny_conditional_gan(be)
    opts = Adam(G.parameters()), Adam(D.parameters())
    x = be.uniform(-1, 1, (4, P))
    with pytest.raises(ValueError, match="needs real_labels"):
        train_step(G, D, *opts, [x], be, latent_dim=Z)
    plain_G, plain_D = build_generator(be, Z, (4,), P), build_discriminator(be, P, (4,))
    with pytest.raises(ValueError, match="needs real_labels"):
        train_step(plain_G, plain_D, Adam(plain_G.parameters()), Adam(plain_D.parameters()),
                   [x], be, latent_dim=Z, real_labels=[labels_on(be, [0, 1, 2, 3])])


def test_conditional_dcgan_step_runs_on_a_device_that_refuses_numpy():
    """The conditional DCGAN step on array-api-strict's device1 (like CuPy): no host
    transfer, and the models' parameters stay on that device."""
    be = make_backend(("array-api-strict", "device1"), seed=0)
    G = build_dcgan_generator(be, latent_dim=Z, base_channels=2, image_size=8, num_classes=C)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8, num_classes=C)
    x = be.uniform(-1, 1, (4, 64))
    before = be.host_transfers
    stats = train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), [x], be,
                       latent_dim=Z, real_labels=[labels_on(be, [0, 1, 2, 3])])
    assert be.host_transfers == before
    assert np.isfinite(be.item(stats["loss_g"]))

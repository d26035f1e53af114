"""The double backward (WGAN-GP's gradient penalty): every layer's double_backward, and
whole critics' penalty gradients dP/dtheta, against central differences in float64.

The checked quantity for a critic is exactly the penalty of the training step,
P(theta) = weight * mean_b (||grad_x D(x_hat_b)|| - 1)^2, where the numerical side
recomputes grad_x D by a plain forward and backward at every perturbed theta.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, numerical_grad
from npgan.conditional import Conditional
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape
from npgan.dcgan import build_dcgan_discriminator
from npgan.gan import build_discriminator
from npgan.gradcheck import assert_gradients_ok, check_double_backward, compare
from npgan.layers import has_double_backward
from npgan.losses import gradient_penalty
from npgan.norm import BatchNorm1d, BatchNorm2d, Dropout
from npgan.wgan import penalty_backward
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend
from tests.kinks import KINK_GAP, off_the_kinks, tiny_conditional_d

FEW = max(4, settings.default.max_examples // 3)   # the conv cases are the slow ones
values = {"min_value": -2.0, "max_value": 2.0, "allow_nan": False, "allow_infinity": False}


def penalty_of(D, x_hat, weight, labels=None):
    """The penalty from a plain forward and backward: the numerical side of the check."""
    logits = D.forward(x_hat) if labels is None else D.forward(x_hat, labels)
    dx = D.backward(logits * 0.0 + 1.0, param_grads=False)
    return gradient_penalty(dx, weight)[0]


def check_penalty_gradients(D, x_hat, weight, labels=None, rtol=1e-5, atol=1e-8):
    """penalty_backward's dP/dtheta for every parameter of D vs central differences."""
    D.zero_grad()
    penalty, norms = penalty_backward(D, x_hat, weight, labels)
    assert float(penalty) == pytest.approx(float(penalty_of(D, x_hat, weight, labels)), rel=1e-12)
    # central differences carry a rounding error of about eps * |P| / h in every entry
    # (float64, h = 1e-6: 2e-10 |P|), so the absolute tolerance scales with the penalty
    atol = max(atol, 1e-9 * abs(float(penalty)))
    reports = [compare(name, p.grad,
                       numerical_grad(lambda: penalty_of(D, x_hat, weight, labels), p.data),
                       rtol, atol)
               for name, p in D.named_parameters()]
    assert_gradients_ok(reports)
    return reports, norms


# ------------------------------------------------------------------ layer by layer
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_linear_double_backward(spec, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    b, n_in, n_out = (data.draw(st.integers(1, 5)) for _ in range(3))
    x, dout, g = (be.asarray(data.draw(arrays(np.float64, shape, elements=values)))
                  for shape in [(b, n_in), (b, n_out), (b, n_in)])
    reports = check_double_backward(Linear(n_in, n_out, be), x, dout, g)
    assert [r.name for r in reports] == ["dout", "W", "b"]
    assert_gradients_ok(reports)
    assert not np.any(reports[2].analytic)              # b is not in backward's lines


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("make", [lambda: LeakyReLU(0.2), lambda: ReLU(), lambda: LeakyReLU(0.7)],
                         ids=["LeakyReLU(0.2)", "ReLU", "LeakyReLU(0.7)"])
@given(data=st.data())
def test_leaky_relu_double_backward(spec, make, data):
    be = make_backend(spec, "float64")
    b, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    x = data.draw(arrays(np.float64, (b, n), elements=values))
    x[np.abs(x) < KINK_GAP] = KINK_GAP
    dout, g = (be.asarray(data.draw(arrays(np.float64, (b, n), elements=values)))
               for _ in range(2))
    assert_gradients_ok(check_double_backward(make(), be.asarray(x), dout, g))


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@settings(max_examples=FEW)
@given(data=st.data())
def test_conv2d_double_backward(spec, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    k, s, p = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 2)), data.draw(st.integers(0, 2))
    H = data.draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + 3))
    c_in, c_out, b = (data.draw(st.integers(1, 2)) for _ in range(3))
    layer = Conv2d(c_in, c_out, k, s, p, backend=be)
    x = be.randn((b, c_in, H, H))
    dout = be.randn(tuple(layer.forward(x).shape))
    g = be.randn((b, c_in, H, H))
    reports = check_double_backward(layer, x, dout, g)
    assert [r.name for r in reports] == ["dout", "W", "b"]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("layer,shape", [(Reshape((2, 3)), (4, 6)), (Flatten(), (3, 2, 2, 2)),
                                         (Reshape((1, 2, 2)), (2, 4))],
                         ids=["Reshape(2,3)", "Flatten", "Reshape(1,2,2)"])
def test_reshape_double_backward(spec, layer, shape):
    be = make_backend(spec, "float64", seed=1)
    x = be.randn(shape)
    dout = be.randn(tuple(layer.forward(x).shape))
    reports = check_double_backward(layer, x, dout, be.randn(shape))
    assert [r.name for r in reports] == ["dout"]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("planes", [None, 4])
def test_conditional_double_backward_sees_only_the_image_part(spec, planes):
    """The penalty is on the image's gradient only; the label columns (or planes) get no
    g_dx, and the check covers every weight, label columns included."""
    be = make_backend(spec, "float64", seed=2)
    C = 3
    if planes is None:
        net = Sequential(Linear(5 + C, 4, be), LeakyReLU(0.2), Linear(4, 2, be))
        x, out = be.randn((4, 5)), (4, 2)
    else:
        net = Sequential(Reshape((2 + C, 2, 2)), Conv2d(2 + C, 3, 2, 1, 0, backend=be),
                         Flatten(), Linear(3, 2, be))
        x, out = be.randn((4, 8)), (4, 2)
    layer = Conditional(net, C, be, planes=planes)
    labels = be.asarray(np.array([0, 2, 1, 2]))
    assert off_the_kinks(layer, x, labels)
    reports = check_double_backward(layer, x, be.randn(out), be.randn(tuple(x.shape)),
                                    args=(labels,))
    assert [r.name for r in reports][0] == "dout" and len(reports) == 5
    assert_gradients_ok(reports)


# ------------------------------------------------------------------ whole critics
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_mlp_critic_penalty_gradients(spec, data):
    """Linear + LeakyReLU critics of random depth and width: dP/dtheta for every weight
    (and 0 for every bias: a piecewise-linear critic's input gradient has no bias in it)."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    n_in = data.draw(st.integers(1, 5))
    hidden = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    D = build_discriminator(be, in_dim=n_in, hidden=hidden, slope=data.draw(st.floats(0.0, 0.5)))
    x_hat = be.asarray(data.draw(arrays(np.float64, (data.draw(st.integers(1, 5)), n_in),
                                        elements=values)))
    assume(off_the_kinks(D, x_hat))
    weight = data.draw(st.floats(0.5, 20.0))
    reports, _ = check_penalty_gradients(D, x_hat, weight)
    assert len(reports) == 2 * (len(hidden) + 1)
    assert all(not np.any(host(p.grad)) for name, p in D.named_parameters() if name.endswith("b"))


# NumPy and CuPy only: elementwise differences of every conv weight take most of a minute
# on array-api-strict, where test_conditional_critic_penalty_gradients covers a conv critic
@pytest.mark.parametrize("spec", [s for s in FLOAT64_SPECS if s.values[0][0] != "array-api-strict"])
@settings(max_examples=FEW)
@given(data=st.data())
def test_conv_critic_penalty_gradients(spec, data):
    """Reshape, Conv2d, LeakyReLU, Conv2d, LeakyReLU, Flatten, Linear: the DCGAN critic
    without BatchNorm, at random sizes."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    side = data.draw(st.sampled_from([4, 8]))
    ch, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    D = build_dcgan_discriminator(be, base_channels=c, image_size=side, channels=ch,
                                  batchnorm=False, init=data.draw(st.sampled_from(["default", "normal"])))
    x_hat = be.uniform(-1, 1, (data.draw(st.integers(1, 3)), ch * side * side))
    assume(off_the_kinks(D, x_hat))
    check_penalty_gradients(D, x_hat, 10.0, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_conditional_critic_penalty_gradients(spec, model):
    be, D, x_hat, labels = tiny_conditional_d(spec, model, num_classes=3)
    check_penalty_gradients(D, x_hat, 10.0, labels, rtol=1e-4)
    # the label weights (columns / planes of the first layer) are checked too
    assert D.layers[1 if model == "dcgan" else 0].W.shape[1] == (1 if model == "dcgan" else 6) + 3


# ------------------------------------------------------------------ controls
def test_the_check_fails_without_the_direct_term_or_without_the_double_backward():
    """Two wrong penalty gradients the check must catch: a Linear whose double backward
    forgets dW += dout.T @ g_dx (only passing g on), and no second pass at all (the
    penalty treated as a constant of theta, which is what a loss without the double
    backward silently does)."""
    be = make_backend(("numpy", None), "float64", seed=5)
    D = build_discriminator(be, in_dim=3, hidden=(4, 4))
    x_hat = be.uniform(-1, 1, (5, 3))
    assert off_the_kinks(D, x_hat)
    check_penalty_gradients(D, x_hat, 10.0)                    # the real one passes

    class NoDirectTerm(Linear):
        def double_backward(self, g_dx):
            self._need_graph("dout")
            return g_dx @ self.W.data.T

    bad = D.layers[2]
    bad.__class__ = NoDirectTerm
    with pytest.raises(AssertionError, match=r"NOT OK 2\.W"):
        check_penalty_gradients(D, x_hat, 10.0)
    bad.__class__ = Linear

    D.zero_grad()
    D.forward(x_hat)
    D.backward(be.asarray(np.ones((5, 1))), param_grads=False)  # no create_graph, no 2nd pass
    numeric = numerical_grad(lambda: penalty_of(D, x_hat, 10.0), D.layers[0].W.data)
    assert not compare("0.W", D.layers[0].W.grad, numeric, 1e-5, 1e-8).ok


# ------------------------------------------------------------------ errors and caches
@pytest.mark.parametrize("make,name", [
    (lambda be: BatchNorm1d(4, be), "BatchNorm1d"), (lambda be: Dropout(0.5, be), "Dropout"),
    (lambda be: Tanh(), "Tanh"), (lambda be: Sigmoid(), "Sigmoid")])
def test_a_critic_layer_without_double_backward_is_named(make, name):
    be = make_backend(("numpy", None), "float64", seed=6)
    D = Sequential(Linear(3, 4, be), make(be), Linear(4, 1, be))
    assert not has_double_backward(D.layers[1])
    x = be.randn((5, 3))
    with pytest.raises(NotImplementedError, match=rf"layer 1, {name}.*has no double_backward: "
                                                  rf"WGAN-GP's gradient penalty cannot"):
        penalty_backward(D, x, 10.0)
    # raised before any work: the caches of that forward are still there
    assert D.backward(be.randn((5, 1))).shape == (5, 3)


def test_the_dcgan_critic_with_batchnorm_is_refused_and_without_it_has_none():
    be = make_backend(("numpy", None), "float32", seed=7)
    with_bn = build_dcgan_discriminator(be, base_channels=2, image_size=8)
    with pytest.raises(NotImplementedError, match=r"layer 4, BatchNorm2d"):
        penalty_backward(with_bn, be.uniform(-1, 1, (2, 64)), 10.0)
    without = build_dcgan_discriminator(be, base_channels=2, image_size=8, batchnorm=False)
    assert not any(isinstance(layer, BatchNorm2d) for layer in without.layers)
    assert all(has_double_backward(layer) for layer in without.layers)
    assert not has_double_backward(ConvTranspose2d(2, 2, 4, 2, 1, backend=be))   # G-side only


def test_double_backward_needs_a_backward_with_create_graph():
    be = make_backend(("numpy", None), "float64", seed=8)
    D = build_discriminator(be, in_dim=3, hidden=(4,))
    x = be.randn((2, 3))
    D.forward(x)
    D.backward(be.randn((2, 1)), param_grads=False)               # a plain backward
    with pytest.raises(RuntimeError, match=r"Linear.double_backward\(\) called without a "
                                           r"matching backward\(dout, create_graph=True\)"):
        D.double_backward(be.randn((2, 3)))
    # a plain backward keeps nothing for the second pass
    assert all(getattr(layer, "dout", None) is None for layer in D.layers)
    assert all(getattr(layer, "graph_slope", None) is None for layer in D.layers)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_penalty_backward_in_float32_stays_float32_on_the_device(spec):
    be = make_backend(spec, "float32", seed=9)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8, batchnorm=False)
    D.zero_grad()
    penalty, norms = penalty_backward(D, be.uniform(-1, 1, (3, 64)), 10.0)
    assert penalty.dtype == norms.dtype == be.dtype and tuple(norms.shape) == (3,)
    assert all(p.grad.dtype == be.dtype for p in D.parameters())
    assert be.host_transfers == 0
    assert any(np.any(host(p.grad)) for p in D.parameters())


# ------------------------------------------------------------------ torch, when installed
@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_penalty_gradients_match_torch_autograd_when_installed(model):
    """torch.autograd.grad(..., create_graph=True), then backward of the penalty."""
    torch = pytest.importorskip("torch", reason="torch not installed: no cross-check against PyTorch")
    be = make_backend(("numpy", None), "float64", seed=10)
    if model == "mlp":
        D = build_discriminator(be, in_dim=6, hidden=(5, 4))
        x = be.uniform(-1, 1, (4, 6))
        t_layers = [torch.nn.Linear(6, 5), torch.nn.LeakyReLU(0.2), torch.nn.Linear(5, 4),
                    torch.nn.LeakyReLU(0.2), torch.nn.Linear(4, 1)]
        t_net = torch.nn.Sequential(*t_layers).double()
    else:
        D = build_dcgan_discriminator(be, base_channels=2, image_size=8, batchnorm=False)
        x = be.uniform(-1, 1, (3, 64))
        t_net = torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 2, 4, 2, 1), torch.nn.LeakyReLU(0.2),
            torch.nn.Conv2d(2, 4, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
            torch.nn.Linear(16, 1)).double()
    t_params = [p for p in t_net.parameters()]
    ours = D.parameters()
    assert len(t_params) == len(ours)
    with torch.no_grad():
        for tp, p in zip(t_params, ours):
            tp.copy_(torch.tensor(host(p.data)))
    t_x = torch.tensor(host(x), requires_grad=True)
    (t_dx,) = torch.autograd.grad(t_net(t_x).sum(), t_x, create_graph=True)
    t_penalty = 10.0 * ((t_dx.norm(2, dim=1) - 1) ** 2).mean()
    t_penalty.backward()
    D.zero_grad()
    penalty, _ = penalty_backward(D, x, 10.0)
    np.testing.assert_allclose(float(penalty), t_penalty.item(), rtol=1e-10)
    for tp, p in zip(t_params, ours):
        t_grad = np.zeros(tuple(tp.shape)) if tp.grad is None else tp.grad.numpy()
        np.testing.assert_allclose(host(p.grad), t_grad, rtol=1e-8, atol=1e-12)

"""Losses: gradients against central differences, logit vs probability paths, extremes."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import (Sigmoid, assert_gradients_ok, bce, bce_with_logits, d_loss, g_loss_minimax,
                   g_loss_nonsaturating, get_backend, get_g_loss, numerical_grad)
from npgan.losses import (gradient_norms, gradient_penalty, hinge_d_loss, wasserstein_d_loss,
                          wasserstein_g_loss)
from npgan.gradcheck import compare
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

logit_values = {"min_value": -8.0, "max_value": 8.0, "allow_nan": False}
batch = st.integers(1, 6)


def grad_report(name, loss_fn, logits, analytic):
    """Numerical gradient of loss_fn(logits)[0] compared with `analytic`."""
    numeric = numerical_grad(lambda: loss_fn(logits)[0], logits)
    return compare(name, analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_bce_with_logits_gradient(spec, data):
    be = make_backend(spec, "float64")
    b = data.draw(batch)
    logits = be.asarray(data.draw(arrays(np.float64, (b, 1), elements=logit_values)))
    if data.draw(st.booleans()):
        target = data.draw(st.floats(0.0, 1.0))                 # one label for all
    else:
        target = be.asarray(data.draw(arrays(np.float64, (b, 1), elements={"min_value": 0.0, "max_value": 1.0})))
    loss_fn = lambda l: bce_with_logits(l, target)              # noqa: E731
    _, dlogits = loss_fn(logits)
    assert_gradients_ok([grad_report("dlogits", loss_fn, logits, dlogits)])


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("loss_fn", [g_loss_nonsaturating, g_loss_minimax],
                         ids=["non-saturating", "minimax"])
@given(data=st.data())
def test_generator_loss_gradients(spec, loss_fn, data):
    be = make_backend(spec, "float64")
    logits = be.asarray(data.draw(arrays(np.float64, (data.draw(batch), 1), elements=logit_values)))
    _, dlogits = loss_fn(logits)
    assert_gradients_ok([grad_report("dlogits", loss_fn, logits, dlogits)])


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data(), real_label=st.floats(0.7, 1.0))
def test_d_loss_gradients_for_both_halves(spec, data, real_label):
    be = make_backend(spec, "float64")
    real = be.asarray(data.draw(arrays(np.float64, (data.draw(batch), 1), elements=logit_values)))
    fake = be.asarray(data.draw(arrays(np.float64, (data.draw(batch), 1), elements=logit_values)))
    _, d_real, d_fake = d_loss(real, fake, real_label)
    assert_gradients_ok([
        grad_report("dlogits_real", lambda r: d_loss(r, fake, real_label), real, d_real),
        grad_report("dlogits_fake", lambda f: d_loss(real, f, real_label), fake, d_fake),
    ])


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_bce_on_probabilities_gradient(spec, data):
    be = make_backend(spec, "float64")
    b = data.draw(batch)
    probs = be.asarray(data.draw(arrays(np.float64, (b, 1), elements={"min_value": 0.01, "max_value": 0.99})))
    target = data.draw(st.floats(0.0, 1.0))
    _, dprobs = bce(probs, target)
    assert_gradients_ok([grad_report("dprobs", lambda p: bce(p, target), probs, dprobs)])


@given(logits=arrays(np.float64, (5, 1), elements=logit_values), target=st.floats(0.0, 1.0))
def test_probability_path_agrees_with_logit_path(logits, target):
    """Sigmoid layer + bce on probabilities == bce_with_logits, loss and dlogits."""
    be = get_backend("numpy", dtype="float64")
    sig = Sigmoid()
    loss_p, dprobs = bce(sig.forward(logits), target, eps=1e-12)
    dlogits_via_sigmoid = sig.backward(dprobs)
    loss_l, dlogits = bce_with_logits(logits, target)
    np.testing.assert_allclose(float(loss_p), float(loss_l), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dlogits_via_sigmoid, dlogits, rtol=1e-7, atol=1e-12)
    del be


def test_known_values():
    be = get_backend("numpy", dtype="float64")
    zeros = be.zeros((4, 1))
    assert float(bce_with_logits(zeros, 1.0)[0]) == pytest.approx(math.log(2))
    assert float(g_loss_minimax(zeros)[0]) == pytest.approx(-math.log(2))
    assert float(d_loss(zeros, zeros)[0]) == pytest.approx(2 * math.log(2))
    # non-saturating and minimax gradients at D(G(z)) = sigmoid(0) = 1/2: both -1/(2B)
    np.testing.assert_allclose(g_loss_nonsaturating(zeros)[1], -0.5 / 4)
    np.testing.assert_allclose(g_loss_minimax(zeros)[1], -0.5 / 4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_finite_with_correct_limits_at_300(dtype):
    be = get_backend("numpy", dtype=dtype)
    big = be.asarray(np.array([[300.0], [-300.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_pos, grad_pos = bce_with_logits(big[:1], 1.0)   # D sure it is real, and it is
        loss_neg, grad_neg = bce_with_logits(big[1:], 1.0)   # D sure it is fake, but real
        ns_loss, ns_grad = g_loss_nonsaturating(big[1:])     # D rejects the fake outright
        mm_loss, mm_grad = g_loss_minimax(big[1:])
    assert float(loss_pos) == 0.0 and float(grad_pos[0, 0]) == 0.0
    assert float(loss_neg) == pytest.approx(300.0) and float(grad_neg[0, 0]) == -1.0
    # the saturation lesson in numbers: non-saturating still pushes, minimax is silent
    assert float(ns_grad[0, 0]) == -1.0 and float(mm_grad[0, 0]) == 0.0
    assert float(ns_loss) == pytest.approx(300.0) and float(mm_loss) == pytest.approx(0.0, abs=1e-30)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_losses_keep_float32(spec):
    be = make_backend(spec, "float32")
    logits = be.randn((4, 1))
    for loss, grad in [bce_with_logits(logits, 0.9), g_loss_minimax(logits),
                       g_loss_nonsaturating(logits), bce(0.5 * logits * 0.1 + 0.5, 1.0)]:
        assert loss.dtype == be.dtype and grad.dtype == be.dtype
        assert tuple(loss.shape) == ()                         # 0-d: stays on the device
    loss, dr, df = d_loss(logits, logits, 0.9)
    assert loss.dtype == dr.dtype == df.dtype == be.dtype


def test_label_smoothing_changes_only_the_real_target():
    be = get_backend("numpy", dtype="float64")
    logits = be.randn((3, 1))
    _, dr_smooth, df_smooth = d_loss(logits, logits, real_label=0.9)
    _, dr, df = d_loss(logits, logits)
    np.testing.assert_allclose(dr_smooth - dr, 0.1 / 3)       # (s - 0.9)/B - (s - 1)/B
    np.testing.assert_array_equal(df_smooth, df)
    with pytest.raises(ValueError, match=r"real_label must be in \(0, 1\]"):
        d_loss(logits, logits, real_label=1.5)


def test_unknown_generator_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown generator loss 'hinge'; valid: "
                                         "non-saturating, minimax, wasserstein"):
        get_g_loss("hinge")


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch", reason="torch not installed: no cross-check against PyTorch")
    be = get_backend("numpy", dtype="float64", seed=0)
    logits = host(be.randn((6, 1))) * 4
    target = np.array([[1.0], [0.0], [0.9], [1.0], [0.3], [0.0]])
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(t_logits, torch.tensor(target))
    t_loss.backward()
    loss, dlogits = bce_with_logits(logits, target)
    np.testing.assert_allclose(float(loss), t_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dlogits, t_logits.grad.numpy(), rtol=1e-10)


# ------------------------------------------------------------- critic losses
def away_from_margin(a, gap=1e-3):
    """Push hinge inputs within `gap` of +-1 (the kinks of relu(1 -+ l)) away from them."""
    a = a.copy()
    for kink in (1.0, -1.0):
        near = np.abs(a - kink) < gap
        a[near] = kink + np.where(a[near] >= kink, gap, -gap)
    return a


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("loss_fn", [wasserstein_d_loss, hinge_d_loss], ids=["wgan", "hinge"])
@given(data=st.data())
def test_critic_loss_gradients_for_both_halves(spec, loss_fn, data):
    be = make_backend(spec, "float64")
    real, fake = (be.asarray(away_from_margin(data.draw(arrays(
        np.float64, (data.draw(batch), 1), elements={"min_value": -3.0, "max_value": 3.0}))))
        for _ in range(2))
    _, d_real, d_fake = loss_fn(real, fake)
    assert_gradients_ok([
        grad_report("dlogits_real", lambda r: loss_fn(r, fake), real, d_real),
        grad_report("dlogits_fake", lambda f: loss_fn(real, f), fake, d_fake),
    ])


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_wasserstein_g_loss_gradient(spec, data):
    be = make_backend(spec, "float64")
    logits = be.asarray(data.draw(arrays(np.float64, (data.draw(batch), 1), elements=logit_values)))
    _, dlogits = wasserstein_g_loss(logits)
    assert_gradients_ok([grad_report("dlogits", wasserstein_g_loss, logits, dlogits)])


def test_critic_losses_known_values():
    real, fake = np.array([[2.0], [0.5]]), np.array([[-3.0], [0.0]])
    loss, dr, df = wasserstein_d_loss(real, fake)
    assert float(loss) == pytest.approx(-1.5 - 1.25)          # mean fake - mean real
    np.testing.assert_array_equal(dr, -0.5)
    np.testing.assert_array_equal(df, 0.5)
    # hinge: the real 2.0 is past the margin (no loss, no gradient), 0.5 is not;
    # the fake -3.0 is past the margin, 0.0 is not
    loss, dr, df = hinge_d_loss(real, fake)
    assert float(loss) == pytest.approx((0.0 + 0.5) / 2 + (0.0 + 1.0) / 2)
    np.testing.assert_array_equal(dr, [[0.0], [-0.5]])
    np.testing.assert_array_equal(df, [[0.0], [0.5]])
    loss, dl = wasserstein_g_loss(fake)
    assert float(loss) == pytest.approx(1.5) and np.all(dl == -0.5)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data(), weight=st.floats(0.1, 20.0))
def test_gradient_penalty_gradient(spec, data, weight):
    """d_dx of weight * mean (||dx_b|| - 1)^2 against central differences, for input
    gradients of any width (rows kept away from norm 0, where the norm has a kink)."""
    be = make_backend(spec, "float64")
    b, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 7))
    dx = data.draw(arrays(np.float64, (b, n), elements={"min_value": -2.0, "max_value": 2.0}))
    dx[np.linalg.norm(dx, axis=1) < 1e-2] = 0.5
    dx = be.asarray(dx)
    loss, d_dx = gradient_penalty(dx, weight)
    assert_gradients_ok([grad_report("d_dx", lambda a: gradient_penalty(a, weight), dx, d_dx)])
    norms = np.linalg.norm(host(dx), axis=1)
    assert float(loss) == pytest.approx(weight * np.mean((norms - 1.0) ** 2))
    np.testing.assert_allclose(host(gradient_norms(dx)), norms)


def test_gradient_penalty_is_zero_for_unit_norms_and_finite_at_zero():
    dx = np.array([[0.6, 0.8], [0.0, 0.0]])                     # norms 1 and 0
    loss, d_dx = gradient_penalty(dx, 10.0)
    assert float(loss) == pytest.approx(10.0 * (0.0 + 1.0) / 2)
    np.testing.assert_allclose(d_dx, 0.0, atol=1e-15)          # unit norm: no pull; 0: subgradient 0
    assert np.all(np.isfinite(d_dx))


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_critic_losses_keep_float32(spec):
    be = make_backend(spec, "float32")
    logits = be.randn((4, 1))
    for loss, *grads in [wasserstein_d_loss(logits, logits), hinge_d_loss(logits, logits),
                         wasserstein_g_loss(logits), gradient_penalty(be.randn((4, 5)), 10.0)]:
        assert tuple(loss.shape) == () and loss.dtype == be.dtype
        assert all(g.dtype == be.dtype for g in grads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_critic_losses_finite_at_300(dtype):
    be = get_backend("numpy", dtype=dtype)
    big = be.asarray(np.array([[300.0], [-300.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss, *grads in [wasserstein_d_loss(big, big), hinge_d_loss(big, big),
                             wasserstein_g_loss(big), gradient_penalty(big * big, 10.0)]:
            assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in grads)


def test_critic_losses_match_torch_when_installed():
    torch = pytest.importorskip("torch", reason="torch not installed: no cross-check against PyTorch")
    rng = np.random.default_rng(0)
    real, fake, dx = rng.normal(0, 2, (6, 1)), rng.normal(0, 2, (6, 1)), rng.normal(0, 1, (6, 5))
    t_real, t_fake, t_dx = (torch.tensor(a, requires_grad=True) for a in (real, fake, dx))
    relu = torch.nn.functional.relu
    t_loss = relu(1 - t_real).mean() + relu(1 + t_fake).mean() \
        + 10 * ((t_dx.norm(2, dim=1) - 1) ** 2).mean()
    t_loss.backward()
    loss, dr, df = hinge_d_loss(real, fake)
    gp, d_dx = gradient_penalty(dx, 10.0)
    np.testing.assert_allclose(float(loss + gp), t_loss.item(), rtol=1e-12)
    for ours, theirs in [(dr, t_real), (df, t_fake), (d_dx, t_dx)]:
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10)

"""Optimizers against closed-form updates written out independently here."""
import tracemalloc

import numpy as np
import pytest

from npgan import SGD, Adam, Parameter, RMSprop, get_backend
from npgan.fast import accelerate
from tests.backends import ALL_SPECS, host, make_backend


def make_param(be, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return Parameter(be.asarray(rng.standard_normal(shape)))


def reference_adam(p, grads, lr, b1, b2, eps, wd=0.0):
    """Adam in float64, straight from Kingma & Ba's Algorithm 1 (+ PyTorch's eps placement)."""
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def run_steps(opt, param, grads, be):
    for g in grads:
        param.grad[...] = be.asarray(g)
        opt.step()


def test_adam_first_step_is_lr_times_sign():
    be = get_backend("numpy", dtype="float64", seed=0)
    p = make_param(be)
    start = p.data.copy()
    g = be.randn(p.shape)
    # |g| >= 1: eps (1e-8) against |g| stays below the tolerance, whatever the draw
    p.grad[...] = np.sign(g) * (1.0 + 3.0 * np.abs(g))
    Adam([p], lr=2e-4, betas=(0.5, 0.999)).step()
    # m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g)
    np.testing.assert_allclose(start - p.data, 2e-4 * np.sign(p.grad), rtol=1e-6)


@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("betas", [(0.5, 0.999), (0.9, 0.99)])
def test_adam_matches_closed_form_over_several_steps(betas, wd):
    be = get_backend("numpy", dtype="float64")
    p = make_param(be)
    start = p.data.copy()
    grads = [np.random.default_rng(i).standard_normal(p.shape) for i in range(7)]
    run_steps(Adam([p], lr=1e-2, betas=betas, eps=1e-8, weight_decay=wd), p, grads, be)
    np.testing.assert_allclose(p.data, reference_adam(start, grads, 1e-2, *betas, 1e-8, wd),
                               rtol=1e-12, atol=1e-14)


def test_adam_bias_correction_uses_beta_to_the_power_t():
    """With a constant gradient, bias-corrected m_hat == g at every t, so every step is
    ~lr * sign(g); the (1 - beta) mistake would shrink later steps."""
    be = get_backend("numpy", dtype="float64")
    p = Parameter(be.zeros((5,)))
    opt = Adam([p], lr=0.1, betas=(0.5, 0.999))
    for t in range(1, 6):
        before = p.data.copy()
        p.grad[...] = 2.0
        opt.step()
        np.testing.assert_allclose(before - p.data, 0.1, rtol=1e-6, err_msg=f"step {t}")


def reference_sgd(p, grads, lr, momentum, dampening, wd, nesterov):
    p, buf = p.copy(), None
    for g in grads:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


@pytest.mark.parametrize("momentum,dampening,wd,nesterov", [
    (0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False), (0.9, 0.1, 0.0, False),
    (0.9, 0.0, 0.0, True), (0.5, 0.0, 0.05, False)])
def test_sgd_matches_closed_form(momentum, dampening, wd, nesterov):
    be = get_backend("numpy", dtype="float64")
    p = make_param(be)
    start = p.data.copy()
    grads = [np.random.default_rng(i).standard_normal(p.shape) for i in range(5)]
    run_steps(SGD([p], lr=0.1, momentum=momentum, dampening=dampening, weight_decay=wd,
                  nesterov=nesterov), p, grads, be)
    np.testing.assert_allclose(p.data, reference_sgd(start, grads, 0.1, momentum, dampening,
                                                      wd, nesterov), rtol=1e-12)


@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("make_opt", [
    lambda ps: Adam(ps, lr=2e-4, betas=(0.5, 0.999)),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: RMSprop(ps, lr=5e-5),
    lambda ps: RMSprop(ps, lr=1e-2, momentum=0.9, centered=True, weight_decay=0.01)],
    ids=["Adam", "SGD", "RMSprop", "RMSprop-centered-momentum"])
def test_step_keeps_float32_updates_in_place_and_keeps_grads(spec, make_opt):
    be = make_backend(spec, "float32")
    p = Parameter(be.randn((3, 4)))
    data_id = id(p.data)
    start = host(p.data).copy()
    p.grad[...] = be.randn((3, 4))
    grad_before = host(p.grad).copy()
    opt = make_opt([p])
    for _ in range(3):
        opt.step()
    assert id(p.data) == data_id                 # updated in place: the model sees it
    assert p.data.dtype == be.dtype
    assert all(a.dtype == be.dtype for arrays in opt.state_arrays().values() for a in arrays)
    assert not np.array_equal(host(p.data), start)
    np.testing.assert_array_equal(host(p.grad), grad_before)   # step() never zeroes grads


@pytest.mark.parametrize("make", [lambda ps: Adam(ps, lr=2e-4, betas=(0.5, 0.999)),
                                  lambda ps: RMSprop(ps, lr=5e-5, momentum=0.5)],
                         ids=["Adam", "RMSprop"])
def test_a_fast_step_allocates_no_full_size_temporaries(make):
    """npgan.fast's twins update in place; the reference (the control) makes new arrays."""
    be = get_backend("numpy", dtype="float32")
    peaks = {}
    for path in ("reference", "fast"):
        p = Parameter(be.randn((512, 512)))           # 1 MiB
        p.grad[...] = be.randn(p.shape)
        opt = make([p]) if path == "reference" else accelerate(make([p]))
        opt.step()                                    # warm-up
        tracemalloc.start()
        opt.step()
        peaks[path] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks["fast"] < p.data.nbytes // 4, f"{type(opt).__name__}.step allocated {peaks}"
    assert peaks["reference"] > p.data.nbytes, peaks


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1e-3), "invalid learning rate lr=-0.001"),
    (dict(betas=(1.0, 0.999)), r"invalid betas=\(1.0, 0.999\)"),
    (dict(eps=-1.0), "eps"),
])
def test_adam_rejects_bad_hyperparameters(kwargs, match):
    be = get_backend("numpy")
    with pytest.raises(ValueError, match=match):
        Adam([make_param(be)], **kwargs)


def test_sgd_rejects_bad_hyperparameters_and_empty_params():
    be = get_backend("numpy")
    with pytest.raises(ValueError, match="invalid learning rate"):
        SGD([make_param(be)], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([make_param(be)], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([], lr=0.1)


def test_state_dict_round_trip_continues_identically():
    be = get_backend("numpy", dtype="float64")
    grads = [np.random.default_rng(i).standard_normal((3, 4)) for i in range(6)]
    p1 = make_param(be)
    opt1 = Adam([p1], lr=1e-2, betas=(0.5, 0.999))
    run_steps(opt1, p1, grads, be)

    p2 = make_param(be)
    opt2 = Adam([p2], lr=1e-2, betas=(0.5, 0.999))
    run_steps(opt2, p2, grads[:3], be)
    state = {k: ([a.copy() for a in v] if isinstance(v, list) else v)
             for k, v in opt2.state_dict().items()}
    p3 = Parameter(p2.data.copy())
    opt3 = Adam([p3], lr=123.0)                       # hyperparameters come from the state
    opt3.load_state_dict(state)
    run_steps(opt3, p3, grads[3:], be)
    np.testing.assert_array_equal(p3.data, p1.data)
    with pytest.raises(ValueError, match=r"has shape \(3, 4\), expected \(2,\)"):
        Adam([Parameter(be.zeros((2,)))]).load_state_dict(state)


# ------------------------------------------------------------------ RMSprop
def reference_rmsprop(p, grads, lr, alpha, eps, wd, momentum, centered):
    """RMSprop in float64, written from the formulas of PyTorch's documentation."""
    p, v, a, buf = p.copy(), np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + wd * p
        v = alpha * v + (1 - alpha) * g ** 2
        v_tilde = v
        if centered:
            a = alpha * a + (1 - alpha) * g
            v_tilde = v - a ** 2
        if momentum > 0:
            buf = momentum * buf + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * buf
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
    return p


@pytest.mark.parametrize("momentum,centered,wd,alpha", [
    (0.0, False, 0.0, 0.99), (0.9, False, 0.0, 0.99), (0.0, True, 0.0, 0.9),
    (0.5, True, 0.05, 0.99), (0.0, False, 0.01, 0.5)])
def test_rmsprop_matches_closed_form(momentum, centered, wd, alpha):
    be = get_backend("numpy", dtype="float64")
    p = make_param(be)
    start = p.data.copy()
    grads = [np.random.default_rng(i).standard_normal(p.shape) for i in range(7)]
    run_steps(RMSprop([p], lr=1e-2, alpha=alpha, eps=1e-8, weight_decay=wd, momentum=momentum,
                      centered=centered), p, grads, be)
    np.testing.assert_allclose(p.data, reference_rmsprop(start, grads, 1e-2, alpha, 1e-8, wd,
                                                         momentum, centered),
                               rtol=1e-12, atol=1e-14)


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha():
    """No bias correction: v_1 = (1 - alpha) g^2, so the first step is
    lr * g / (sqrt(1 - alpha) |g|) = 10 lr sign(g) at alpha = 0.99."""
    be = get_backend("numpy", dtype="float64", seed=0)
    p = make_param(be)
    start = p.data.copy()
    g = be.randn(p.shape)
    # |g| >= 1: eps (1e-8) against |g| stays below the tolerance, whatever the draw
    p.grad[...] = np.sign(g) * (1.0 + 3.0 * np.abs(g))
    RMSprop([p], lr=5e-5).step()
    np.testing.assert_allclose(start - p.data, 10 * 5e-5 * np.sign(p.grad), rtol=1e-6)


def test_rmsprop_keeps_only_the_states_it_uses():
    be = get_backend("numpy")
    assert set(RMSprop([make_param(be)]).state_arrays()) == {"square_avg"}
    assert set(RMSprop([make_param(be)], momentum=0.9, centered=True).state_arrays()) == {
        "square_avg", "grad_avg", "momentum_buffer"}


def test_rmsprop_state_dict_round_trip_continues_identically():
    be = get_backend("numpy", dtype="float64")
    grads = [np.random.default_rng(i).standard_normal((3, 4)) for i in range(6)]
    kwargs = dict(lr=1e-2, momentum=0.9, centered=True)
    p1 = make_param(be)
    run_steps(RMSprop([p1], **kwargs), p1, grads, be)
    p2 = make_param(be)
    opt2 = RMSprop([p2], **kwargs)
    run_steps(opt2, p2, grads[:3], be)
    state = {k: ([a.copy() for a in v] if isinstance(v, list) else v)
             for k, v in opt2.state_dict().items()}
    p3 = Parameter(p2.data.copy())
    opt3 = RMSprop([p3], lr=123.0, momentum=0.1, centered=True)   # lr comes from the state
    opt3.load_state_dict(state)
    run_steps(opt3, p3, grads[3:], be)
    np.testing.assert_array_equal(p3.data, p1.data)
    with pytest.raises(ValueError, match="saved with centered=True, but this RMSprop has centered=False"):
        RMSprop([Parameter(p2.data.copy())], momentum=0.9).load_state_dict(state)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1e-3), "invalid learning rate lr=-0.001"),
    (dict(alpha=1.0), r"invalid alpha=1.0"),
    (dict(momentum=-0.1), "momentum must be >= 0"),
    (dict(eps=-1.0), "eps must be >= 0"),
])
def test_rmsprop_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RMSprop([make_param(get_backend("numpy"))], **kwargs)


@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=0.9, centered=True, weight_decay=0.01)])
def test_rmsprop_matches_torch_when_installed(kwargs):
    torch = pytest.importorskip("torch", reason="torch not installed: no cross-check against PyTorch")
    be = get_backend("numpy", dtype="float64")
    p = make_param(be)
    t_p = torch.tensor(p.data.copy(), requires_grad=True)
    t_opt = torch.optim.RMSprop([t_p], lr=1e-2, **kwargs)
    opt = RMSprop([p], lr=1e-2, **kwargs)
    for i in range(5):
        g = np.random.default_rng(i).standard_normal(p.shape)
        p.grad[...] = g
        opt.step()
        t_p.grad = torch.tensor(g)
        t_opt.step()
    np.testing.assert_allclose(p.data, t_p.detach().numpy(), rtol=1e-10, atol=1e-13)

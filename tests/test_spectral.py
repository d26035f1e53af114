"""Spectral normalization: the handwritten backward against central differences (u, v
frozen), sigma(W_sn) -> 1, buffers in checkpoints, D builders, and PyTorch where installed."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import (Conv2d, Linear, SpectralNorm, assert_gradients_ok, build_dcgan_discriminator,
                   build_discriminator, check_layer, get_backend)
from npgan.checkpoint import load_checkpoint, save_checkpoint
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

values = {"min_value": -3.0, "max_value": 3.0, "allow_nan": False, "allow_infinity": False}


def warmed(layer, x, steps=3):
    """A few training-mode forwards, so u and v are past their random start."""
    for _ in range(steps):
        layer.forward(x)
    return layer


def top_singular_value(W):
    W = host(W)
    return float(np.linalg.svd(W.reshape(W.shape[0], -1), compute_uv=False)[0])


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_linear_backward_matches_central_differences_with_u_v_frozen(spec, data):
    """In eval mode u and v stay as they are, so the layer computes exactly the function
    W -> x @ (W / (u^T W v)).T + b whose gradient the backward claims."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    b, n_in = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    n_out = data.draw(st.integers(1, 5))
    x = data.draw(arrays(np.float64, (b, n_in), elements=values))
    dout = data.draw(arrays(np.float64, (b, n_out), elements=values))
    layer = warmed(SpectralNorm(Linear(n_in, n_out, be), be), be.asarray(x)).eval()
    reports = check_layer(layer, be.asarray(x), be.asarray(dout))
    assert [r.name for r in reports] == ["x", "W", "b"]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_conv2d_backward_matches_central_differences_with_u_v_frozen(spec, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    c_in, c_out = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    stride = data.draw(st.integers(1, 2))
    x = data.draw(arrays(np.float64, (2, c_in, 4, 4), elements=values))
    layer = SpectralNorm(Conv2d(c_in, c_out, 3, stride, 1, backend=be), be)
    side = (4 + 2 - 3) // stride + 1
    dout = data.draw(arrays(np.float64, (2, c_out, side, side), elements=values))
    warmed(layer, be.asarray(x)).eval()
    assert_gradients_ok(check_layer(layer, be.asarray(x), be.asarray(dout)))


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_the_weight_gradient_is_orthogonal_to_the_weight(spec):
    """W_sn = W / (u^T W v) does not change when W is scaled, so <dL/dW, W> = 0."""
    be = make_backend(spec, "float64", seed=1)
    layer = SpectralNorm(Conv2d(2, 3, 3, 1, 1, backend=be), be)
    layer.forward(be.randn((2, 2, 4, 4)))
    layer.backward(be.randn((2, 3, 4, 4)))
    W, dW = host(layer.W.data), host(layer.W.grad)
    assert abs(np.sum(dW * W)) < 1e-12 * np.linalg.norm(dW) * np.linalg.norm(W)
    assert np.linalg.norm(dW) > 0.1


def test_the_check_fails_for_a_backward_without_the_projection():
    """Control: dL/dW = G / sigma alone (forgetting - <G, W_sn> u v^T / sigma) fails."""
    class NoProjection(SpectralNorm):
        def backward(self, dout, param_grads=True, input_grad=True):
            sigma, _ = self._need("sigma"), self._need("uv")
            self.layer.W.grad[...] = 0
            dx = self.layer.backward(dout)
            self.W.grad += self.layer.W.grad / sigma
            return dx

    be = get_backend("numpy", dtype="float64", seed=2)
    x, dout = be.randn((3, 4)), be.randn((3, 5))
    layer = warmed(NoProjection(Linear(4, 5, be), be), x).eval()
    with pytest.raises(AssertionError, match="NOT OK W"):
        assert_gradients_ok(check_layer(layer, x, dout))


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_training_mode_uses_the_same_gradient_with_the_u_v_of_its_forward(spec):
    """A training forward moves u and v one step, then backward treats them as constants:
    the same gradients as an eval pass with those u and v."""
    be = make_backend(spec, "float64", seed=3)
    layer = SpectralNorm(Linear(4, 3, be), be)
    x, dout = be.randn((5, 4)), be.randn((5, 3))
    u_before = host(layer.u).copy()
    grads = []
    for mode in (True, False):
        layer.train(mode)
        layer.zero_grad()
        layer.forward(x)
        dx = layer.backward(dout)
        grads.append([host(dx)] + [host(p.grad).copy() for p in layer.parameters()])
    assert not np.array_equal(host(layer.u), u_before)           # training moved u once
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_param_grads_false_gives_the_same_dx_and_no_weight_gradients(spec):
    be = make_backend(spec, "float32", seed=4)
    layer = SpectralNorm(Linear(4, 3, be), be).eval()
    x, dout = be.randn((5, 4)), be.randn((5, 3))
    layer.forward(x)
    dx_full = host(layer.backward(dout))
    layer.zero_grad()
    layer.forward(x)
    np.testing.assert_array_equal(host(layer.backward(dout, param_grads=False)), dx_full)
    assert all(not np.any(host(p.grad)) for p in layer.parameters())


# ------------------------------------------------------------------ the estimate
@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("kind", ["Linear", "Conv2d"])
def test_sigma_of_w_sn_is_close_to_1_after_enough_power_iterations(spec, kind):
    be = make_backend(spec, "float32", seed=5)
    if kind == "Linear":
        layer, x = SpectralNorm(Linear(30, 20, be), be), be.randn((2, 30))
    else:
        layer, x = SpectralNorm(Conv2d(3, 8, 3, 1, 1, backend=be), be), be.randn((1, 3, 5, 5))
    layer.W.data[...] = layer.W.data * 7.0                      # far from norm 1 to begin with
    assert top_singular_value(layer.W.data) > 2.0
    warmed(layer, x, steps=200)
    assert abs(top_singular_value(layer.layer.W.data) - 1.0) < 1e-3


def test_eval_mode_leaves_u_and_v_alone_and_training_moves_them():
    be = get_backend("numpy", dtype="float64", seed=6)
    layer = SpectralNorm(Linear(6, 4, be), be)
    x = be.randn((2, 6))
    u, v = layer.u.copy(), layer.v.copy()
    layer.eval().forward(x)
    layer.forward(x)
    np.testing.assert_array_equal(layer.u, u)
    np.testing.assert_array_equal(layer.v, v)
    layer.train().forward(x)             # (v starts as W^T u / |W^T u|: the first step keeps it)
    layer.forward(x)
    assert not np.array_equal(layer.u, u) and not np.array_equal(layer.v, v)


def test_only_linear_and_conv2d_can_be_wrapped():
    from npgan import Tanh
    with pytest.raises(TypeError, match="SpectralNorm wraps a Linear or a Conv2d, got Tanh"):
        SpectralNorm(Tanh(), get_backend("numpy"))


# ------------------------------------------------------------------ in D and checkpoints
def test_every_weight_layer_of_both_discriminators_is_normalized():
    be = get_backend("numpy", seed=7)
    mlp = build_discriminator(be, hidden=(8, 4), spectral_norm=True)
    dcgan = build_dcgan_discriminator(be, base_channels=2, spectral_norm=True)
    cond = build_discriminator(be, hidden=(8,), num_classes=10, spectral_norm=True)
    for D, count in ((mlp, 3), (dcgan, 3), (cond, 2)):
        wrapped = [layer for layer in D.layers if isinstance(layer, SpectralNorm)]
        assert len(wrapped) == count
        assert not any(isinstance(layer, (Linear, Conv2d)) for layer in D.layers)
    # the same parameter names as without it, plus the buffers u and v
    plain = build_discriminator(be, hidden=(8, 4))
    assert [n for n, _ in mlp.named_parameters()] == [n for n, _ in plain.named_parameters()]
    assert [n for n, _ in mlp.named_buffers()] == ["0.u", "0.v", "2.u", "2.v", "4.u", "4.v"]


def test_u_and_v_survive_a_checkpoint(tmp_path):
    be = get_backend("numpy", seed=8)
    D = build_discriminator(be, hidden=(8,), spectral_norm=True)
    warmed(D, be.uniform(-1, 1, (4, 784)))
    save_checkpoint(tmp_path / "ck.npz", {"D": D}, {}, {})
    other = build_discriminator(get_backend("numpy", seed=9), hidden=(8,), spectral_norm=True)
    assert not np.array_equal(other[0].u, D[0].u)
    load_checkpoint(tmp_path / "ck.npz").restore_model("D", other, be)
    for (name, a), (_, b) in zip(D.named_buffers(), other.named_buffers()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = be.uniform(-1, 1, (3, 784))
    np.testing.assert_array_equal(D.eval().forward(x), other.eval().forward(x))


# ------------------------------------------------------------------ PyTorch
TORCH_REASON = "torch is not installed: not cross-checking against torch.nn.utils.spectral_norm"


@pytest.mark.parametrize("kind", ["Linear", "Conv2d"])
def test_agrees_with_torch_spectral_norm(kind):
    """torch.nn.utils.spectral_norm runs Algorithm 1 the same way (v from u, then u; one
    step per training forward; u and v constants in backward): with the same W, b and
    starting u, the outputs, the updated u and all gradients agree, in training and eval."""
    try:
        import torch
    except ImportError:
        pytest.skip(TORCH_REASON)
    be = get_backend("numpy", dtype="float64", seed=10)
    if kind == "Linear":
        ours = SpectralNorm(Linear(6, 4, be), be)
        theirs = torch.nn.Linear(6, 4).double()
        x, dout = be.randn((3, 6)), be.randn((3, 4))
    else:
        ours = SpectralNorm(Conv2d(2, 3, 3, 2, 1, backend=be), be)
        theirs = torch.nn.Conv2d(2, 3, 3, 2, 1).double()
        x, dout = be.randn((2, 2, 5, 5)), be.randn((2, 3, 3, 3))
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.W.data))
        theirs.bias.copy_(torch.tensor(ours.b.data))
    theirs = torch.nn.utils.spectral_norm(theirs)
    with torch.no_grad():
        theirs.weight_u.copy_(torch.tensor(ours.u))
    for training in (True, True, False):
        ours.train(training)
        theirs.train(training)
        ours.zero_grad()
        theirs.zero_grad()
        x_t = torch.tensor(x, requires_grad=True)
        y_t = theirs(x_t)
        (y_t * torch.tensor(dout)).sum().backward()
        y = ours.forward(x)
        dx = ours.backward(dout)
        np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.u, theirs.weight_u.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.W.grad, theirs.weight_orig.grad.numpy(), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(ours.b.grad, theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_agrees_with_torch_parametrizations_spectral_norm_in_eval_mode():
    """The newer torch.nn.utils.parametrizations.spectral_norm updates u and v in the
    other order (u from v first), so we compare where neither moves: eval mode, with
    our u and v copied in. Outputs and gradients agree."""
    try:
        import torch
    except ImportError:
        pytest.skip(TORCH_REASON)
    from torch.nn.utils import parametrizations
    be = get_backend("numpy", dtype="float64", seed=11)
    x, dout = be.randn((3, 6)), be.randn((3, 4))
    ours = warmed(SpectralNorm(Linear(6, 4, be), be), x).eval()
    theirs = torch.nn.Linear(6, 4).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.W.data))
        theirs.bias.copy_(torch.tensor(ours.b.data))
    theirs = parametrizations.spectral_norm(theirs).eval()
    norm = theirs.parametrizations.weight[0]
    with torch.no_grad():
        norm._u.copy_(torch.tensor(ours.u))
        norm._v.copy_(torch.tensor(ours.v))
    x_t = torch.tensor(x, requires_grad=True)
    y_t = theirs(x_t)
    (y_t * torch.tensor(dout)).sum().backward()
    ours.zero_grad()
    y = ours.forward(x)
    dx = ours.backward(dout)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.W.grad, theirs.parametrizations.weight.original.grad.numpy(),
                               rtol=1e-9, atol=1e-12)

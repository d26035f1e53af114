"""BatchNorm1d/2d and Dropout: gradients, train vs eval mode, running statistics, masks."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import assert_gradients_ok, check_layer, get_backend
from npgan.layers import Sequential
from npgan.norm import BatchNorm1d, BatchNorm2d, Dropout
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

values = {"min_value": -3.0, "max_value": 3.0, "allow_nan": False, "allow_infinity": False}


def channel_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def randomize_affine(bn, be):
    """gamma and beta away from (1, 0), so that a backward that ignores them fails."""
    bn.weight.data[...] = be.uniform(0.5, 2.0, bn.weight.shape)
    bn.bias.data[...] = be.uniform(-1.0, 1.0, bn.bias.shape)


# ------------------------------------------------------------------ VJP checks
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("two_d", [False, True], ids=["BatchNorm1d", "BatchNorm2d"])
@settings(max_examples=max(4, settings.default.max_examples // 2))
@given(data=st.data())
def test_batchnorm_vjp_in_train_and_eval_mode(spec, two_d, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    C, affine = data.draw(st.integers(1, 3)), data.draw(st.booleans())
    shape = ((data.draw(st.integers(1, 3)), C, data.draw(st.integers(1, 3)), 2) if two_d
             else (data.draw(st.integers(2, 5)), C))
    x = data.draw(arrays(np.float64, shape, elements=values))
    # a channel with (almost) no spread has inv_std ~ 1/sqrt(eps): badly conditioned
    assume(np.min(np.std(x, axis=channel_axes(x))) > 0.1)
    dout = data.draw(arrays(np.float64, shape, elements=values))
    bn = (BatchNorm2d if two_d else BatchNorm1d)(C, be, affine=affine)
    if affine:
        randomize_affine(bn, be)
    reports = check_layer(bn, be.asarray(x), be.asarray(dout))
    assert [r.name for r in reports] == (["x", "weight", "bias"] if affine else ["x"])
    assert_gradients_ok(reports)
    bn.eval()        # eval mode: an affine map with the running statistics as constants
    bn.running_var[...] = be.uniform(0.5, 2.0, (C,))
    assert_gradients_ok(check_layer(bn, be.asarray(x), be.asarray(dout)))


# ------------------------------------------------------------------ train vs eval
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_training_mode_normalizes_with_the_batch_and_updates_running_stats(spec):
    be = make_backend(spec, "float64", seed=1)
    bn = BatchNorm2d(3, be, momentum=0.1)
    buffers_before = [b for _, b in bn.named_buffers()]
    x = be.randn((4, 3, 5, 5)) * 2.0 + 3.0
    y = host(bn.forward(x))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)   # var/(var + eps)
    xh = host(x)
    expected_mean = 0.9 * 0.0 + 0.1 * xh.mean(axis=(0, 2, 3))
    expected_var = 0.9 * 1.0 + 0.1 * xh.var(axis=(0, 2, 3), ddof=1)    # unbiased, as PyTorch
    np.testing.assert_allclose(host(bn.running_mean), expected_mean, rtol=1e-12)
    np.testing.assert_allclose(host(bn.running_var), expected_var, rtol=1e-12)
    # updated in place: the buffers a checkpoint holds are still the layer's arrays
    assert all(a is b for a, b in zip(buffers_before, [b for _, b in bn.named_buffers()]))
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_eval_mode_uses_running_stats_and_does_not_update_them(spec):
    be = make_backend(spec, "float64", seed=2)
    bn = BatchNorm1d(4, be, momentum=0.5)
    for _ in range(30):                           # running stats converge to mean 1, var 4
        bn.forward(be.randn((64, 4)) * 2.0 + 1.0)
    bn.eval()
    rm, rv = host(bn.running_mean).copy(), host(bn.running_var).copy()
    x = be.randn((5, 4))
    y = host(bn.forward(x))
    np.testing.assert_allclose(y, (host(x) - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(host(bn.running_mean), rm)
    np.testing.assert_array_equal(host(bn.running_var), rv)
    # one image's output no longer depends on the rest of its batch
    np.testing.assert_allclose(host(bn.forward(x[:1, ...])), y[:1], rtol=1e-12)
    assert np.all(np.abs(rm - 1.0) < 0.5) and np.all(np.abs(rv - 4.0) < 2.0)


def test_against_torch():
    torch = pytest.importorskip("torch")
    be = get_backend("numpy", dtype="float64", seed=3)
    bn, tbn = BatchNorm2d(3, be, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2).double()
    randomize_affine(bn, be)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(bn.weight.data))
        tbn.bias.copy_(torch.tensor(bn.bias.data))
    x = be.randn((4, 3, 3, 2))
    dout = be.randn(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = tbn(tx)
    ty.backward(torch.tensor(dout))
    np.testing.assert_allclose(bn.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.backward(dout), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, tbn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    tbn.eval()
    np.testing.assert_allclose(bn.forward(x), tbn(tx).detach().numpy(), rtol=1e-10)


def test_batchnorm_misuse():
    be = get_backend("numpy")
    with pytest.raises(ValueError, match=r"shape \(B, C\) with C = 4, got \(8, 3\)"):
        BatchNorm1d(4, be).forward(be.randn((8, 3)))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, C, H, W\) with C = 4"):
        BatchNorm2d(4, be).forward(be.randn((8, 4)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm1d(4, be).forward(be.randn((1, 4)))
    BatchNorm1d(4, be).eval().forward(be.randn((1, 4)))      # fine with running statistics
    with pytest.raises(RuntimeError, match="without a matching forward"):
        BatchNorm1d(4, be).backward(be.randn((2, 4)))


# ------------------------------------------------------------------ Dropout
def test_dropout_mask_scaling_and_backward():
    be = get_backend("numpy", dtype="float64", seed=4)
    drop = Dropout(0.25, be)
    mask = host(drop.forward(be.zeros((200, 100)) + 1.0))          # x = 1: y is the mask
    kept = mask != 0
    np.testing.assert_array_equal(mask[kept], 1 / 0.75)            # inverted: scaled up
    assert abs(1 - kept.mean() - 0.25) < 0.02                      # about p dropped
    dout = be.randn(mask.shape)
    np.testing.assert_array_equal(host(drop.backward(dout)), host(dout) * mask)


def test_dropout_is_deterministic_per_seed_and_identity_in_eval():
    def masks(seed):
        be = get_backend("numpy", seed=seed)
        drop = Dropout(0.5, be)
        x = be.zeros((4, 50)) + 1.0
        return [host(drop.forward(x)) for _ in range(2)]

    a, b, c = masks(0), masks(0), masks(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    be = get_backend("numpy", seed=0)
    model = Sequential(Dropout(0.5, be)).eval()
    x = be.randn((4, 50))
    np.testing.assert_array_equal(model.forward(x), x)
    np.testing.assert_array_equal(model.backward(x), x)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        Dropout(1.0, be)


# ------------------------------------------------------------------ dtype
@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_float32_in_float32_out(spec, training):
    be = make_backend(spec, "float32")
    for layer, shape in [(BatchNorm1d(3, be), (4, 3)), (BatchNorm2d(3, be), (2, 3, 2, 2)),
                         (Dropout(0.3, be), (4, 5))]:
        layer.train(training)
        y = layer.forward(be.randn(shape))
        dx = layer.backward(be.randn(shape))
        assert y.dtype == be.dtype and dx.dtype == be.dtype, layer
        for _, a in layer.named_buffers():
            assert a.dtype == be.dtype, layer
        for _, p in layer.named_parameters():
            assert p.data.dtype == be.dtype and p.grad.dtype == be.dtype, layer

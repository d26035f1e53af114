"""Layers: VJP gradient checks (hypothesis, float64), dtype, extremes and misuse errors."""
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import (LeakyReLU, Linear, ReLU, Sequential, Sigmoid, SpectralNorm, Tanh,
                   assert_gradients_ok, check_layer, get_backend)
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

KINK_GAP = 1e-3  # keep LeakyReLU inputs this far from 0: the finite difference step is 1e-6


def away_from_kink(x):
    """Push values within KINK_GAP of 0 out to +-KINK_GAP (hypothesis loves x == 0)."""
    x = x.copy()
    small = np.abs(x) < KINK_GAP
    x[small] = np.where(x[small] >= 0, KINK_GAP, -KINK_GAP)
    return x


shapes = st.tuples(st.integers(1, 5), st.integers(1, 6))
values = {"min_value": -3.0, "max_value": 3.0, "allow_nan": False, "allow_infinity": False}


@st.composite
def batch_and_dout(draw, out_width=None):
    """A (B, n) input and a random upstream gradient for an elementwise layer."""
    b, n = draw(shapes)
    x = draw(arrays(np.float64, (b, n), elements=values))
    dout = draw(arrays(np.float64, (b, out_width or n), elements=values))
    return x, dout


def run_check(layer, x, dout, be):
    reports = check_layer(layer, be.asarray(x), be.asarray(dout))
    assert_gradients_ok(reports)


# ------------------------------------------------------------------ VJP checks
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_linear_vjp(spec, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    b, n_in = data.draw(shapes)
    n_out = data.draw(st.integers(1, 6))
    x = data.draw(arrays(np.float64, (b, n_in), elements=values))
    dout = data.draw(arrays(np.float64, (b, n_out), elements=values))
    init = data.draw(st.sampled_from(["default", "normal"]))
    run_check(Linear(n_in, n_out, be, init=init), x, dout, be)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(xd=batch_and_dout(), slope=st.floats(0.0, 0.99))
def test_leaky_relu_vjp(spec, xd, slope):
    be = make_backend(spec, "float64")
    x, dout = xd
    run_check(LeakyReLU(slope), away_from_kink(x), dout, be)


@pytest.mark.parametrize("spec,dtype", [   # every backend in float32, those with float64 in it
    pytest.param(spec.values[0], dtype, id=f"{spec.id}-{dtype}", marks=spec.marks)
    for dtype, specs in (("float32", ALL_SPECS), ("float64", FLOAT64_SPECS)) for spec in specs])
@pytest.mark.parametrize("slope", [-3.3, -1.7, -0.5, -0.3, 0.0, 0.01, 0.2, 1.0, 1.3, 1.5])
def test_leaky_relu_matches_its_definition_for_any_slope(spec, dtype, slope):
    """y = x if x > 0 else slope * x and dx = dout * (1 if x > 0 else slope), bit for bit,
    on all of forward's paths: ReLU, slopes in (0, 1] (one maximum) and the others, where
    m * (1 - slope) + slope would miss 1 by a rounding for slopes like 1.3 or -0.3."""
    be = make_backend(spec, dtype)
    x = np.array([[-2.0, -0.5, 0.0, 0.25, 3.0, 7.0]], dtype=dtype)
    dout = np.array([[1.0, -2.0, 3.0, 0.5, -1.5, 3.0]], dtype=dtype)
    layer = LeakyReLU(slope)
    y = host(layer.forward(be.asarray(x)))
    dx = host(layer.backward(be.asarray(dout)))
    local = np.where(x > 0, np.asarray(1.0, dtype), np.asarray(slope, dtype))
    np.testing.assert_array_equal(y, x * local)
    np.testing.assert_array_equal(dx, dout * local)
    assert y.dtype == dx.dtype == np.dtype(dtype)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("layer_cls", [Sigmoid, Tanh, ReLU], ids=["Sigmoid", "Tanh", "ReLU"])
@given(xd=batch_and_dout())
def test_activation_vjp(spec, layer_cls, xd):
    be = make_backend(spec, "float64")
    x, dout = xd
    run_check(layer_cls(), away_from_kink(x), dout, be)


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_sequential_mlp_vjp(spec, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    model = Sequential(Linear(4, 5, be), LeakyReLU(0.2), Linear(5, 3, be), Tanh())
    b = data.draw(st.integers(1, 4))
    x = data.draw(arrays(np.float64, (b, 4), elements=values))
    dout = data.draw(arrays(np.float64, (b, 3), elements=values))
    # keep the LeakyReLU's input (the first Linear's output) off its kink
    pre = host(model[0].forward(be.asarray(x)))
    assume(np.min(np.abs(pre)) >= KINK_GAP)
    reports = check_layer(model, be.asarray(x), be.asarray(dout))
    names = [r.name for r in reports]
    assert names == ["x", "0.W", "0.b", "2.W", "2.b"]
    assert_gradients_ok(reports)


def test_gradcheck_catches_a_wrong_backward():
    """The check itself can fail: a Tanh whose backward forgets the square."""
    class BrokenTanh(Tanh):
        def backward(self, dout, param_grads=True):
            y = self._need("y")
            return dout * (1.0 - y)

    be = get_backend("numpy", dtype="float64", seed=1)
    x, dout = be.randn((3, 4)), be.randn((3, 4))
    with pytest.raises(AssertionError, match=r"NOT OK x: max abs err .* at index \("):
        assert_gradients_ok(check_layer(BrokenTanh(), x, dout))


# ------------------------------------------------------------------ dtype and numerics
def all_layers(be):
    return [Linear(5, 3, be), LeakyReLU(0.2), ReLU(), Sigmoid(), Tanh(),
            Sequential(Linear(5, 4, be), LeakyReLU(0.2), Linear(4, 2, be)),
            SpectralNorm(Linear(5, 3, be), be)]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_float32_in_float32_out(spec):
    be = make_backend(spec, "float32")
    for layer in all_layers(be):
        x = be.randn((4, 5))
        y = layer.forward(x)
        dx = layer.backward(be.randn(tuple(y.shape)))
        assert y.dtype == be.dtype and dx.dtype == be.dtype, layer
        for name, p in layer.named_parameters():
            assert p.data.dtype == be.dtype and p.grad.dtype == be.dtype, (layer, name)


@pytest.mark.parametrize("layer_cls", [Sigmoid, Tanh])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturating_activations_at_extremes(layer_cls, dtype):
    be = get_backend("numpy", dtype=dtype)
    x = be.asarray(np.array([[-300.0, -100.0, 0.0, 100.0, 300.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        layer = layer_cls()
        y = host(layer.forward(x))
        dx = host(layer.backward(be.asarray(np.ones((1, 5)))))
    low = 0.0 if layer_cls is Sigmoid else -1.0
    np.testing.assert_array_equal(y[0, [0, 1]], [low, low])
    np.testing.assert_array_equal(y[0, [3, 4]], [1.0, 1.0])
    assert np.all(np.isfinite(dx)) and np.all(np.abs(dx[0, [0, 1, 3, 4]]) < 1e-30)
    mid = 0.5 if layer_cls is Sigmoid else 0.0
    assert y[0, 2] == mid


# ------------------------------------------------------------------ the contract
def test_backward_without_forward_raises():
    be = get_backend("numpy")
    for layer in all_layers(be):
        with pytest.raises(RuntimeError, match="without a matching forward"):
            layer.backward(be.randn((4, 3)))


def test_backward_twice_raises():
    be = get_backend("numpy")
    layer = Linear(3, 2, be)
    layer.forward(be.randn((4, 3)))
    layer.backward(be.randn((4, 2)))
    with pytest.raises(RuntimeError, match="cache 'x' is empty"):
        layer.backward(be.randn((4, 2)))


def test_gradients_accumulate_and_zero_grad_resets():
    be = get_backend("numpy", dtype="float64", seed=3)
    layer = Linear(3, 2, be)
    x1, x2, d1, d2 = be.randn((4, 3)), be.randn((5, 3)), be.randn((4, 2)), be.randn((5, 2))
    layer.forward(x1)
    layer.backward(d1)
    layer.forward(x2)
    layer.backward(d2)
    np.testing.assert_allclose(layer.W.grad, d1.T @ x1 + d2.T @ x2, rtol=1e-12)
    np.testing.assert_allclose(layer.b.grad, d1.sum(0) + d2.sum(0), rtol=1e-12)
    layer.zero_grad()
    assert not layer.W.grad.any() and not layer.b.grad.any()


def test_param_grads_false_gives_input_gradient_only():
    be = get_backend("numpy", dtype="float64", seed=4)
    layer = Linear(3, 2, be)
    x, dout = be.randn((4, 3)), be.randn((4, 2))
    layer.forward(x)
    dx_full = layer.backward(dout)
    layer.zero_grad()
    layer.forward(x)
    dx_only = layer.backward(dout, param_grads=False)
    np.testing.assert_array_equal(dx_full, dx_only)
    assert not layer.W.grad.any() and not layer.b.grad.any()


def test_backward_does_not_modify_the_callers_dout():
    be = get_backend("numpy", seed=5)
    for layer in all_layers(be):
        y = layer.forward(be.randn((4, 5)))
        dout = be.randn(y.shape)
        kept = dout.copy()
        layer.backward(dout)
        np.testing.assert_array_equal(dout, kept, err_msg=repr(layer))


def test_linear_rejects_wrong_shape_and_dtype():
    be = get_backend("numpy")
    layer = Linear(3, 2, be)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3\), got \(4, 5\)"):
        layer.forward(be.randn((4, 5)))
    with pytest.raises(TypeError, match="float32 weights but got a float64 input"):
        layer.forward(np.zeros((4, 3)))


def test_linear_init_schemes():
    be = get_backend("numpy", seed=6)
    default = Linear(400, 300, be)
    bound = 1 / np.sqrt(400)
    assert np.abs(default.W.data).max() <= bound and np.abs(default.b.data).max() <= bound
    assert np.abs(default.W.data).max() > 0.95 * bound          # really uniform on the range
    normal = Linear(400, 300, be, init="normal")
    assert abs(float(normal.W.data.std()) - 0.02) < 0.001
    assert not normal.b.data.any()
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        Linear(3, 2, be, init="xavier")


def test_sequential_parameter_names_and_repr():
    be = get_backend("numpy")
    model = Sequential(Linear(2, 3, be), LeakyReLU(0.2), Linear(3, 1, be))
    assert [n for n, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert "(1) LeakyReLU(0.2)" in repr(model)

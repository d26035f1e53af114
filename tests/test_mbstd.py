"""Minibatch standard deviation (npgan.mbstd): its forward against the paper's formula, its
backward and double backward against central differences in float64 (hypothesis), and a
gradient penalty (WGAN-GP's) through a critic that contains it."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import Linear, LeakyReLU, Sequential, numerical_grad
from npgan.gradcheck import assert_gradients_ok, check_layer, compare
from npgan.layers import has_double_backward
from npgan.mbstd import EPS, MinibatchStd, backward_through_forward
from tests.backends import ALL_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend
from tests.kinks import first_off_the_kinks, off_the_kinks, skip_the_third_pass
from tests.test_double_backward import check_penalty_gradients

values = {"min_value": -2.0, "max_value": 2.0, "allow_nan": False, "allow_infinity": False}
shapes = st.one_of(st.tuples(st.integers(1, 5), st.integers(1, 4)),
                   st.tuples(st.integers(1, 4), st.integers(1, 2), st.integers(1, 3),
                             st.integers(1, 3)))


def spread_enough(x):
    """Central differences need sigma well above sqrt(EPS) = 1e-4, where sqrt(var + EPS)
    bends sharply: every feature varies over the batch (or B = 1, where u = 0 exactly)."""
    return x.shape[0] == 1 or np.min(np.std(x, axis=0)) > 0.05


def reference(x):
    """The paper's formula in plain NumPy: (B, F...) -> (B, F + 1 ...)."""
    s = np.mean(np.sqrt(np.var(x, axis=0) + EPS))
    extra = np.full((x.shape[0], 1) + x.shape[2:], s)
    return np.concatenate([x, extra], axis=1)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 2, 2)], ids=["(B,F)", "(B,C,H,W)"])
def test_forward_matches_the_formula_and_keeps_the_dtype(spec, shape):
    be = make_backend(spec, "float32", seed=0)
    x = be.randn(shape)
    y = MinibatchStd().forward(x)
    assert y.dtype == be.dtype and tuple(y.shape) == (shape[0], shape[1] + 1) + shape[2:]
    np.testing.assert_allclose(host(y), reference(host(x).astype(np.float64)), rtol=1e-5,
                               atol=1e-6)
    assert be.host_transfers == 0


def test_a_collapsed_batch_shows_in_the_extra_feature():
    """What D is given to see: copies of one sample have spread sqrt(1e-8) = 1e-4; a
    varied batch of the same samples' kind has a spread near the features' scale."""
    be = make_backend(("numpy", None), "float64", seed=1)
    one = be.randn((1, 8))
    collapsed = MinibatchStd().forward(np.repeat(one, 16, axis=0))
    varied = MinibatchStd().forward(be.randn((16, 8)))
    assert collapsed[0, -1] == pytest.approx(1e-4)
    assert 0.5 < varied[0, -1] < 1.5 and np.all(varied[:, -1] == varied[0, -1])


# ------------------------------------------------------------------ backward
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_backward_matches_central_differences(spec, data):
    """Every sample's dx has the term through the batch statistic: a random dout on the
    extra column (plane) reaches all of x."""
    be = make_backend(spec, "float64")
    shape = data.draw(shapes)
    x = data.draw(arrays(np.float64, shape, elements=values))
    assume(spread_enough(x))
    out_shape = (shape[0], shape[1] + 1) + shape[2:]
    dout = data.draw(arrays(np.float64, out_shape, elements=values))
    reports = check_layer(MinibatchStd(), be.asarray(x), be.asarray(dout))
    assert [r.name for r in reports] == ["x"]
    assert_gradients_ok(reports)


def check_mbstd_double_backward(x, dout, g_dx, rtol=1e-5, atol=1e-7):
    """The layer's double backward against central differences of F = sum(dx * g_dx):
    dF/d(dout) is the returned g_dout and dF/dx the kept g_x (the term through x)."""
    layer = MinibatchStd()
    layer.forward(x)
    layer.backward(dout, param_grads=False, create_graph=True)
    g_dout = layer.double_backward(g_dx)
    g_x, layer.g_x = layer.g_x, None

    def fake_penalty():
        layer.forward(x)
        return float(np.sum(host(layer.backward(dout) * g_dx)))

    return [compare("dout", g_dout, numerical_grad(fake_penalty, dout), rtol, atol),
            compare("x", g_x, numerical_grad(fake_penalty, x), rtol, atol)]


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_double_backward_matches_central_differences(spec, data):
    be = make_backend(spec, "float64")
    shape = data.draw(shapes)
    x = data.draw(arrays(np.float64, shape, elements=values))
    assume(spread_enough(x))
    out_shape = (shape[0], shape[1] + 1) + shape[2:]
    dout, g = (data.draw(arrays(np.float64, s, elements=values)) for s in (out_shape, shape))
    assert_gradients_ok(check_mbstd_double_backward(*(be.asarray(a) for a in (x, dout, g))))


def test_the_double_backward_check_fails_without_the_term_through_x():
    """Control: a g_x of zero (x treated as a constant of the penalty, which is what a
    double backward that only returned g_dout would amount to) is caught."""
    be = make_backend(("numpy", None), "float64", seed=2)
    x, dout, g = be.randn((5, 3)), be.randn((5, 4)), be.randn((5, 3))
    assert_gradients_ok(check_mbstd_double_backward(x, dout, g))
    layer = MinibatchStd()

    def fake_penalty():
        layer.forward(x)
        return float(np.sum(layer.backward(dout) * g))

    assert not compare("x", np.zeros_like(x), numerical_grad(fake_penalty, x), 1e-5, 1e-7).ok


# ------------------------------------------------------------------ a critic with it
def mlp_critic(be, n_in, hidden, slope=0.2):
    layers, width = [], n_in
    for h in hidden:
        layers += [Linear(width, h, be), LeakyReLU(slope)]
        width = h
    return Sequential(*layers, MinibatchStd(), Linear(width + 1, 1, be))


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@settings(max_examples=10)
@given(data=st.data())
def test_wgan_gp_penalty_through_a_critic_with_mbstd(spec, data):
    """ProGAN's critic (WGAN-GP with minibatch stddev): the penalty's dP/dtheta, third
    pass included, for every weight against central differences."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    n_in = data.draw(st.integers(1, 4))
    D = mlp_critic(be, n_in, tuple(data.draw(st.lists(st.integers(1, 5), min_size=1,
                                                         max_size=2))))
    x_hat = be.asarray(data.draw(arrays(np.float64, (data.draw(st.integers(2, 5)), n_in),
                                        elements=values)))
    assume(off_the_kinks(D, x_hat))
    # the spread at MinibatchStd's input, not at x_hat: identical rows (hypothesis likes
    # zeros) put every sigma at sqrt(EPS), where central differences break
    assume(spread_enough(host(Sequential(*D.layers[:-2]).forward(x_hat))))
    check_penalty_gradients(D, x_hat, 10.0, rtol=1e-4, atol=1e-8)


def test_without_the_third_pass_the_penalty_gradient_is_wrong(monkeypatch):
    """Control: skip backward_through_forward, and the check fails on the layers below
    MinibatchStd (the ones whose weights move its input)."""
    def make(seed):
        be = make_backend(("numpy", None), "float64", seed=seed)
        return be, mlp_critic(be, 3, (4, 4)), be.uniform(-1, 1, (5, 3)), None
    be, D, x_hat, _ = first_off_the_kinks(make)
    check_penalty_gradients(D, x_hat, 10.0, rtol=1e-4)
    skip_the_third_pass(monkeypatch, "npgan.wgan")
    with pytest.raises(AssertionError, match=r"NOT OK 0\.W"):
        check_penalty_gradients(D, x_hat, 10.0, rtol=1e-4)


# ------------------------------------------------------------------ errors
def test_a_penalty_term_left_behind_is_an_error_at_the_next_forward():
    be = make_backend(("numpy", None), "float64", seed=4)
    D = mlp_critic(be, 3, (4,))
    x = be.randn((4, 3))
    D.forward(x)
    D.backward(be.randn((4, 1)), param_grads=False, create_graph=True)
    D.double_backward(be.randn((4, 3)))
    with pytest.raises(RuntimeError, match=r"never carried back.*backward_through_forward"):
        D.forward(x)
    backward_through_forward(D, x)                          # carried: the next forward runs
    assert D.forward(x).shape == (4, 1)


def test_double_backward_needs_a_backward_with_create_graph_and_it_has_one():
    be = make_backend(("numpy", None), "float64", seed=5)
    layer = MinibatchStd()
    assert has_double_backward(layer)
    layer.forward(be.randn((3, 2)))
    layer.backward(be.randn((3, 3)))
    with pytest.raises(RuntimeError, match=r"MinibatchStd.double_backward\(\) called without"):
        layer.double_backward(be.randn((3, 2)))
    with pytest.raises(ValueError, match=r"expects \(B, F\) or \(B, C, H, W\)"):
        layer.forward(be.randn((3,)))

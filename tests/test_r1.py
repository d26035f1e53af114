"""R1 (npgan.r1): the penalty's gradient dR1/dtheta for every parameter of the MLP D, the
DCGAN D without BatchNorm and the conditional D (each with and without minibatch stddev),
against central differences of R1 in float64, where the numerical side recomputes
grad_x D by a plain forward and backward at every perturbed weight."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import Linear, Sequential, numerical_grad
from npgan.conditional import Conditional
from npgan.conv import Conv2d, Flatten
from npgan.dcgan import build_dcgan_discriminator
from npgan.gan import build_discriminator
from npgan.gradcheck import assert_gradients_ok, compare, directional_check
from npgan.mbstd import MinibatchStd
from npgan.r1 import r1_loss, r1_penalty
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend
from tests.test_docs import ROOT, definitions, references
from tests.kinks import first_off_the_kinks, off_the_kinks, skip_the_third_pass, tiny_conditional_d
from tests.test_double_backward import FEW
from tests.test_mbstd import spread_enough

values = {"min_value": -2.0, "max_value": 2.0, "allow_nan": False, "allow_infinity": False}


def with_mbstd(D, backend):
    """D with a MinibatchStd before its last Linear (after the Flatten of a conv D)."""
    i = next((i for i, layer in enumerate(D.layers) if isinstance(layer, Flatten)),
             len(D.layers) - 1)
    D.layers.insert(i, MinibatchStd())
    last, convs = D.layers[-1], [layer for layer in D.layers if isinstance(layer, Conv2d)]
    extra = last.in_features // convs[-1].out_ch if convs else 1     # a plane, or a column
    D.layers[-1] = Linear(last.in_features + extra, 1, backend)
    return D


def r1_of(D, x, gamma, labels=None):
    """R1 from a plain forward and backward: the numerical side of the check."""
    logits = D.forward(x) if labels is None else D.forward(x, labels)
    dx = D.backward(logits * 0.0 + 1.0, param_grads=False)
    return r1_loss(dx, gamma)[0]


def check_r1_gradients(D, x, gamma, labels=None, rtol=1e-5, atol=1e-8, be=None):
    """r1_penalty's dR1/dtheta for every parameter of D vs central differences; with a
    backend `be`, along one random direction per parameter (two evaluations, not 2 per
    element: Chainer's check, for the slow array-api-strict namespace)."""
    D.zero_grad()
    penalty, norms = r1_penalty(D, x, gamma, labels)
    assert float(penalty) == pytest.approx(float(r1_of(D, x, gamma, labels)), rel=1e-12)
    assert float(penalty) == pytest.approx(gamma / 2 * np.mean(host(norms) ** 2), rel=1e-12)
    f = lambda: r1_of(D, x, gamma, labels)                              # noqa: E731
    if be is None:
        reports = [compare(name, p.grad, numerical_grad(f, p.data), rtol, atol)
                   for name, p in D.named_parameters()]
    else:
        reports = [directional_check(name, f, p.data, p.grad, be.randn(tuple(p.shape)),
                                     rtol=rtol, atol=atol)
                   for name, p in D.named_parameters()]
    assert_gradients_ok(reports)
    return reports


# ------------------------------------------------------------------ the loss itself
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@given(data=st.data())
def test_r1_loss_and_its_gradient(spec, data):
    be = make_backend(spec, "float64")
    shape = data.draw(st.sampled_from([(3, 4), (2, 1, 2, 2)]))
    dx = be.asarray(data.draw(arrays(np.float64, shape, elements=values)))
    gamma = data.draw(st.floats(0.0, 20.0))
    loss, d_dx = r1_loss(dx, gamma)
    assert float(loss) == pytest.approx(gamma / 2 * np.sum(host(dx) ** 2) / shape[0])
    assert_gradients_ok([compare("dx", d_dx, numerical_grad(lambda: r1_loss(dx, gamma)[0], dx))])


# ------------------------------------------------------------------ whole discriminators
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@given(data=st.data())
def test_mlp_d_r1_gradients(spec, data):
    """MLP D's of random depth and width, with or without MinibatchStd: dR1/dtheta for every
    parameter (0 for every bias without it: a piecewise-linear D's gradient has no bias)."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    n_in, mbstd = data.draw(st.integers(1, 5)), data.draw(st.booleans())
    hidden = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    D = build_discriminator(be, in_dim=n_in, hidden=hidden, slope=data.draw(st.floats(0.0, 0.5)))
    if mbstd:
        D = with_mbstd(D, be)
    x = be.asarray(data.draw(arrays(np.float64, (data.draw(st.integers(2, 5)), n_in),
                                    elements=values)))
    assume(off_the_kinks(D, x))
    if mbstd:   # equal rows put the std at its floor, where central differences break
        assume(spread_enough(host(Sequential(*D.layers[:-2]).forward(x))))
    slow = spec[0] == "array-api-strict"             # there: one random direction per weight
    check_r1_gradients(D, x, data.draw(st.floats(0.5, 20.0)), rtol=1e-4 if mbstd else 1e-5,
                       be=be if slow else None)
    if not mbstd:
        assert all(not np.any(host(p.grad)) for name, p in D.named_parameters()
                   if name.endswith("b"))


# NumPy and CuPy only: elementwise differences of every conv weight take most of a minute
# on array-api-strict, where test_conditional_d_r1_gradients covers a conv D
@pytest.mark.parametrize("spec", [s for s in FLOAT64_SPECS if s.values[0][0] != "array-api-strict"])
@settings(max_examples=FEW)
@given(data=st.data())
def test_dcgan_d_r1_gradients(spec, data):
    """The DCGAN D without BatchNorm (Reshape, Conv2d, LeakyReLU, Conv2d, LeakyReLU,
    [MinibatchStd,] Flatten, Linear) at random sizes."""
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    side = data.draw(st.sampled_from([4, 8]))
    ch, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    D = build_dcgan_discriminator(be, base_channels=c, image_size=side, channels=ch,
                                  batchnorm=False,
                                  init=data.draw(st.sampled_from(["default", "normal"])))
    if data.draw(st.booleans()):
        D = with_mbstd(D, be)
    x = be.uniform(-1, 1, (data.draw(st.integers(2, 3)), ch * side * side))
    assume(off_the_kinks(D, x))
    check_r1_gradients(D, x, 10.0, rtol=1e-4)


@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("mbstd", [False, True], ids=["plain", "mbstd"])
def test_conditional_d_r1_gradients(spec, model, mbstd):
    """The conditional D's (label columns, label planes): the label weights are checked too."""
    C = 3
    be, D, x, labels = tiny_conditional_d(spec, model, C, change=with_mbstd if mbstd else None)
    assert isinstance(D, Conditional)
    # array-api-strict: one random direction per weight (elementwise takes 10 s a case there)
    slow = spec[0] == "array-api-strict" and model == "dcgan"
    check_r1_gradients(D, x, 10.0, labels, rtol=1e-4, be=be if slow else None)
    assert D.layers[1 if model == "dcgan" else 0].W.shape[1] == (1 if model == "dcgan" else 6) + C


# ------------------------------------------------------------------ controls
def test_the_check_fails_without_the_second_or_the_third_pass(monkeypatch):
    """Two wrong R1 gradients the check must catch: no double backward at all (the
    penalty's gradient treated as independent of theta), and, through MinibatchStd, no
    third pass (the term through its input forgotten)."""
    be = make_backend(("numpy", None), "float64", seed=5)
    D = build_discriminator(be, in_dim=3, hidden=(4, 4))
    x = be.uniform(-1, 1, (5, 3))
    assert off_the_kinks(D, x)
    check_r1_gradients(D, x, 10.0)                          # the real one passes
    monkeypatch.setattr(Sequential, "double_backward", lambda self, g_dx: None)
    with pytest.raises(AssertionError, match=r"NOT OK 0\.W"):
        check_r1_gradients(D, x, 10.0)
    monkeypatch.undo()

    def make(seed):
        be = make_backend(("numpy", None), "float64", seed=seed)
        return be, with_mbstd(build_discriminator(be, in_dim=3, hidden=(4, 4)), be), x, None
    be, D, x, _ = first_off_the_kinks(make)
    check_r1_gradients(D, x, 10.0, rtol=1e-4)
    skip_the_third_pass(monkeypatch, "npgan.r1")
    with pytest.raises(AssertionError, match=r"NOT OK 0\.W"):
        check_r1_gradients(D, x, 10.0, rtol=1e-4)


def test_gamma_zero_adds_nothing_and_a_negative_gamma_is_refused():
    be = make_backend(("numpy", None), "float64", seed=6)
    D = build_discriminator(be, in_dim=3, hidden=(4,))
    D.zero_grad()
    penalty, norms = r1_penalty(D, be.randn((4, 3)), 0.0)
    assert float(penalty) == 0.0 and np.all(host(norms) > 0)
    assert all(not np.any(host(p.grad)) for p in D.parameters())
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        r1_penalty(D, be.randn((4, 3)), -1.0)


# ------------------------------------------------------------------ errors, dtype
def test_a_dcgan_d_with_batchnorm_is_refused_with_the_way_out():
    be = make_backend(("numpy", None), "float32", seed=7)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8)
    x = be.uniform(-1, 1, (2, 64))
    with pytest.raises(NotImplementedError, match=r"layer 4 of D, BatchNorm2d.*R1 penalty "
                                                  r"cannot pass.*batchnorm=False"):
        r1_penalty(D, x, 10.0)
    D.forward(x)                     # refused before any work: D's caches work as before
    assert D.backward(be.randn((2, 1))).shape == (2, 64)


@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("mbstd", [False, True], ids=["plain", "mbstd"])
def test_r1_in_float32_stays_float32_on_the_device(spec, mbstd):
    be = make_backend(spec, "float32", seed=9)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8, batchnorm=False)
    if mbstd:
        D = with_mbstd(D, be)
    D.zero_grad()
    penalty, norms = r1_penalty(D, be.uniform(-1, 1, (3, 64)), 10.0)
    assert penalty.dtype == norms.dtype == be.dtype and tuple(norms.shape) == (3,)
    assert all(p.grad.dtype == be.dtype for p in D.parameters())
    assert be.host_transfers == 0
    assert any(np.any(host(p.grad)) for p in D.parameters())


# ------------------------------------------------------------------ the walkthrough
def test_the_r1_walkthrough_names_the_code_it_explains():
    """docs/r1.md puts each equation beside the function that computes it; the generic test
    in test_docs.py checks that every name exists, this one that the key ones are cited."""
    doc = ROOT / "docs" / "r1.md"
    refs = references(doc)
    assert len(refs) >= 12, refs
    for rel, name in [("npgan/r1.py", "r1_penalty"), ("npgan/r1.py", "r1_loss"),
                      ("npgan/layers.py", "Linear.double_backward"),
                      ("npgan/conv.py", "Conv2d.double_backward"),
                      ("npgan/mbstd.py", "MinibatchStd.double_backward"),
                      ("npgan/mbstd.py", "backward_through_forward")]:
        assert (rel, name) in refs, name
    missing = [f"{rel}: {name}" for rel, name in refs
               if not (ROOT / rel).is_file() or name not in definitions(ROOT / rel)]
    assert not missing, missing

"""Differentiable augmentation (npgan.augment): each transform against a plain loop, each
backward against central differences with the random draws held fixed (float64,
hypothesis), identities, dtype, determinism, and the policy's errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import numerical_grad
from npgan.augment import Brightness, Contrast, Cutout, DiffAugment, Translation
from npgan.gradcheck import assert_gradients_ok, compare, directional_check
from tests.backends import ALL_SPECS, FLOAT64_SPECS, host, make_backend

values = {"min_value": -1.0, "max_value": 1.0, "allow_nan": False, "allow_infinity": False}
images = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(2, 7), st.integers(2, 7))
TRANSFORMS = {
    "translation": lambda be, r: Translation(be, ratio=r),
    "cutout": lambda be, r: Cutout(be, ratio=r),
    "brightness": lambda be, r: Brightness(be),
    "contrast": lambda be, r: Contrast(be),
    "policy": lambda be, r: DiffAugment("translation,cutout,color", be, image_shape=(1, 1, 1)),
}


def check_augmentation(layer, be, x, dout, rtol=1e-5, atol=1e-7, directional=False):
    """VJP check with the random draws held fixed: every forward starts from the same
    generator state, so L(x) = sum(layer.forward(x) * dout) is one fixed affine function.
    directional: along one random direction (two forwards instead of 2 per element)."""
    state = be.rng_state()

    def fake_loss():
        be.set_rng_state(state)
        return np.sum(host(layer.forward(x) * dout))

    be.set_rng_state(state)
    layer.forward(x)
    dx = layer.backward(dout)
    assert dx.dtype == x.dtype and tuple(dx.shape) == tuple(x.shape)
    if directional:
        return directional_check("x", fake_loss, x, dx, be.randn(tuple(x.shape)), rtol=rtol,
                                 atol=atol)
    return compare("x", dx, numerical_grad(fake_loss, x), rtol, atol)


# ------------------------------------------------------------------ backward
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("name", list(TRANSFORMS))
@settings(max_examples=15)
@given(data=st.data())
def test_backward_matches_central_differences(spec, name, data):
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    shape = data.draw(images)
    layer = TRANSFORMS[name](be, data.draw(st.floats(0.0, 0.6)))
    if name == "policy":                                  # D's flat input (B, P)
        layer.image_shape = shape[1:]
        shape = (shape[0], int(np.prod(shape[1:])))
    x, dout = (be.asarray(data.draw(arrays(np.float64, shape, elements=values)))
               for _ in range(2))
    # array-api-strict: one random direction (elementwise takes 25 s there)
    slow = spec[0] == "array-api-strict"
    assert_gradients_ok([check_augmentation(layer, be, x, dout, directional=slow)])


def test_the_check_fails_for_a_shift_that_is_not_moved_back():
    """Control: a Translation whose backward shifts the gradient the forward way again
    (S dout S^T instead of S^T dout S) fails the check."""
    be = make_backend(("numpy", None), "float64", seed=3)
    layer = Translation(be, ratio=0.5)
    x, dout = be.randn((3, 1, 6, 6)), be.randn((3, 1, 6, 6))
    assert check_augmentation(layer, be, x, dout).ok

    class Wrong(Translation):
        def backward(self, dout, param_grads=True, input_grad=True):
            S_h, S_w = self._need("shifts")
            return S_h @ dout @ np.swapaxes(S_w, 2, 3)

    assert not check_augmentation(Wrong(be, ratio=0.5), be, x, dout).ok


# ------------------------------------------------------------------ forward, by the rules
def test_translation_moves_each_image_and_fills_with_the_background():
    be = make_backend(("numpy", None), "float64", seed=4)
    x = be.uniform(-1, 1, (64, 2, 9, 7))
    layer = Translation(be, ratio=0.25)                   # up to 2 pixels each way
    y = host(layer.forward(x))
    S_h, S_w = (host(S)[:, 0] for S in layer.shifts)
    seen = set()
    for b in range(64):
        # S[i, k] = 1 where k = i - t: t is i - k of any 1 in the matrix
        t_h = int(np.subtract(*np.argwhere(S_h[b])[0]))
        t_w = int(np.subtract(*np.argwhere(S_w[b])[0]))
        seen.add((t_h, t_w))
        expected = np.full((2, 9, 7), -1.0)
        for i in range(9):
            for j in range(7):
                if 0 <= i - t_h < 9 and 0 <= j - t_w < 7:
                    expected[:, i, j] = x[b, :, i - t_h, j - t_w]
        np.testing.assert_array_equal(y[b], expected)
    assert {t for t, _ in seen} == set(range(-2, 3)) == {t for _, t in seen}


def test_cutout_sets_a_square_to_the_background():
    be = make_backend(("numpy", None), "float64", seed=5)
    x = be.uniform(-1, 1, (200, 1, 28, 28))
    layer = Cutout(be)                                    # side 14
    y = host(layer.forward(x))
    mask = host(layer.mask)[:, 0]
    for b in range(200):
        rows, cols = np.nonzero(mask[b] == 0)
        # a rectangle: the cut rows times the cut columns, at most 14 x 14, at least 7 x 7
        assert len(rows) == len(set(rows)) * len(set(cols))
        assert 7 <= len(set(rows)) <= 14 and 7 <= len(set(cols)) <= 14
        np.testing.assert_array_equal(y[b, 0][mask[b] == 0], -1.0)
        np.testing.assert_array_equal(y[b, 0][mask[b] == 1], x[b, 0][mask[b] == 1])
    # the square lies wholly inside when its centre is in 7..21 of 0..28 on both axes:
    # (15 / 29)**2 = 27% of the images
    whole = [b for b in range(200) if (mask[b] == 0).sum() == 14 * 14]
    assert 30 < len(whole) < 80


def test_brightness_and_contrast_draw_in_the_papers_ranges():
    be = make_backend(("numpy", None), "float64", seed=6)
    x = be.uniform(-1, 1, (500, 1, 4, 4))
    shift = host(Brightness(be).forward(x) - x)[:, 0, 0, 0]
    assert -0.5 <= shift.min() < -0.45 and 0.45 < shift.max() < 0.5
    layer = Contrast(be)
    y = host(layer.forward(x))
    k = host(layer.k)[:, 0, 0, 0]
    assert 0.5 <= k.min() < 0.55 and 1.45 < k.max() < 1.5
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-12)


def test_zero_shift_and_zero_size_cutout_are_identities():
    be = make_backend(("numpy", None), "float32", seed=7)
    x, dout = be.uniform(-1, 1, (8, 1, 28, 28)), be.randn((8, 1, 28, 28))
    for layer in (Translation(be, ratio=0.0), Cutout(be, ratio=0.0)):
        np.testing.assert_array_equal(layer.forward(x), x)
        np.testing.assert_array_equal(layer.backward(dout), dout)
    assert DiffAugment("", be).forward(x) is x


def test_a_blank_image_stays_blank_under_translation_and_cutout():
    be = make_backend(("numpy", None), "float32", seed=8)
    blank = be.zeros((16, 784)) - 1.0
    np.testing.assert_array_equal(DiffAugment("translation,cutout", be).forward(blank), blank)


# ------------------------------------------------------------------ dtype, device, seeds
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_dtype_is_kept_and_nothing_goes_to_the_host(spec):
    be = make_backend(spec, "float32", seed=9)
    aug = DiffAugment("translation,cutout,color", be)
    y = aug.forward(be.uniform(-1, 1, (4, 784)))
    dx = aug.backward(be.randn((4, 784)))
    assert y.dtype == dx.dtype == be.dtype and tuple(y.shape) == tuple(dx.shape) == (4, 784)
    assert be.host_transfers == 0


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_the_same_seed_gives_the_same_augmentation(spec):
    def run(seed, shape=(6, 784)):
        be = make_backend(spec, "float64", seed=seed)
        x = be.asarray(np.linspace(-1, 1, 6 * 784).reshape(shape))
        return host(DiffAugment("translation,cutout,color", be).forward(x))

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))
    # D's flat input and the image shape give the same draws and numbers
    np.testing.assert_array_equal(run(0), run(0, (6, 1, 28, 28)).reshape(6, 784))


def test_policy_errors_name_what_was_typed():
    be = make_backend(("numpy", None), "float32", seed=10)
    with pytest.raises(ValueError, match=r"policy 'translation,flip'.*translation, cutout, color"):
        DiffAugment("translation,flip", be)
    with pytest.raises(ValueError, match=r"at most once"):
        DiffAugment("cutout,cutout", be)
    aug = DiffAugment("cutout", be)
    assert [type(layer).__name__ for layer in DiffAugment("color, translation", be).layers] == \
        ["Brightness", "Contrast", "Translation"]
    with pytest.raises(ValueError, match=r"expects \(B, 784\), got \(2, 100\)"):
        aug.forward(be.zeros((2, 100)))
    with pytest.raises(RuntimeError, match="without a matching forward"):
        aug.backward(be.zeros((2, 784)))

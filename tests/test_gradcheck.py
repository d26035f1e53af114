"""The gradient checker itself: exact on known functions, and it reports failures well."""
import numpy as np
import pytest

from npgan import directional_check, get_backend, numerical_grad, rel_error
from npgan.gradcheck import GradientCheckError, assert_gradients_ok, compare


def test_numerical_grad_of_a_cubic_and_x_is_restored():
    be = get_backend("numpy", dtype="float64", seed=0)
    x = be.randn((3, 2))
    kept = x.copy()
    grad = numerical_grad(lambda: np.sum(x ** 3), x)
    np.testing.assert_allclose(grad, 3 * kept ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, kept)


def test_compare_names_the_worst_index_and_both_values():
    analytic = np.array([[1.0, 2.0], [3.0, 4.0]])
    numeric = analytic.copy()
    numeric[1, 0] = 3.5
    report = compare("W", analytic, numeric)
    assert not report.ok and report.worst_index == (1, 0)
    assert (report.analytic, report.numeric) == (3.0, 3.5)
    assert str(report).startswith("NOT OK W: max abs err 5.000e-01")
    with pytest.raises(GradientCheckError, match=r"NOT OK W: .* at index \(1, 0\) \(analytic 3, numeric 3.5\)"):
        assert_gradients_ok([report, compare("b", np.ones(2), np.ones(2))])
    with pytest.raises(ValueError, match="analytic shape"):
        compare("W", analytic, numeric[0])


def test_directional_check_passes_for_the_true_gradient_and_fails_for_a_wrong_one():
    be = get_backend("numpy", dtype="float64", seed=1)
    x, r = be.randn((4, 3)), be.randn((4, 3))
    f = lambda: np.sum(np.sin(x))  # noqa: E731
    assert directional_check("x", f, x, np.cos(x), r).ok
    assert not directional_check("x", f, x, np.cos(x) * 1.01, r).ok


def test_rel_error_is_symmetric_and_bounded():
    a, b = np.array([1.0, 0.0, -2.0]), np.array([1.0, 1e-12, 2.0])
    err = rel_error(a, b)
    np.testing.assert_allclose(err, rel_error(b, a))
    assert err[0] == 0 and err[2] == 1.0 and np.all(err <= 1.0)


class ScalarViews(np.ndarray):
    """A NumPy array that indexes like CuPy: x[i, j] is a 0-d *view* of the element
    (NumPy returns a copy), so writing x[i, j] changes what x[i, j] returned."""

    def __getitem__(self, index):
        if isinstance(index, tuple) and len(index) == self.ndim and \
                all(isinstance(i, int) for i in index):
            return super().__getitem__(index + (Ellipsis,))     # a 0-d view, as on CuPy
        return super().__getitem__(index)


def test_numerical_grad_is_right_when_indexing_returns_a_view():
    """On CuPy every numerical gradient came out at half its value: the 'old' value was
    a view, so x - h was evaluated at x. The emulated array shows the view really
    aliases (the control), and numerical_grad must still get 3 x^2."""
    x = np.random.default_rng(0).standard_normal((3, 2)).view(ScalarViews)
    kept = np.asarray(x).copy()
    element = x[1, 0]
    x[1, 0] = 5.0
    assert float(element) == 5.0                 # control: a view, like CuPy's
    x[1, 0] = kept[1, 0]
    grad = numerical_grad(lambda: np.sum(x ** 3), x)
    np.testing.assert_allclose(np.asarray(grad), 3 * kept ** 2, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(x), kept)

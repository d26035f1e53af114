"""Gradient checking: compare a handwritten backward pass with central differences.

For learners checking their own layers, and for npgan's tests. Work in float64
(get_backend(..., dtype="float64")): float32 central differences are too noisy.

    numeric dL/dx[i] = (L(x + h e_i) - L(x - h e_i)) / (2h)     error O(h^2)

A layer is checked as a vector-Jacobian product with a random upstream gradient
`dout` (llm.c's `(out * dout).sum()`): L(x) = sum(layer.forward(x) * dout), whose
gradient is exactly what layer.backward(dout) must return. An all-ones dout would
hide transposition and broadcasting bugs.

    >>> from npgan import get_backend, Linear, check_layer
    >>> be = get_backend("numpy", dtype="float64", seed=0)
    >>> reports = check_layer(Linear(3, 2, be), be.randn((4, 3)), be.randn((4, 2)))
    >>> all(r.ok for r in reports)
    True
"""
from __future__ import annotations

from dataclasses import dataclass

from npgan.backend import get_array_module, to_numpy


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one; the message says where."""


@dataclass
class Report:
    """The comparison of one tensor's analytic and numerical gradients."""
    name: str
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple
    analytic: float
    numeric: float

    def __str__(self):
        status = "OK" if self.ok else "NOT OK"
        return (f"{status} {self.name}: max abs err {self.max_abs_err:.3e}, "
                f"max rel err {self.max_rel_err:.3e} at index {self.worst_index} "
                f"(analytic {self.analytic:.8g}, numeric {self.numeric:.8g})")


def rel_error(a, b, floor=1e-8):
    """Elementwise |a - b| / max(|a| + |b|, floor)  (cs231n's relative error)."""
    xp = get_array_module(a, b)
    return xp.abs(a - b) / xp.maximum(xp.abs(a) + xp.abs(b), floor)


def compare(name, analytic, numeric, rtol=1e-5, atol=1e-7) -> Report:
    """Report on |analytic - numeric| <= atol + rtol * |numeric|, elementwise."""
    a, n = to_numpy(analytic), to_numpy(numeric)          # host copies for the report
    if a.shape != n.shape:
        raise ValueError(f"{name}: analytic shape {a.shape} != numeric shape {n.shape}")
    xp = get_array_module(a)
    abs_err = xp.abs(a - n)
    excess = abs_err - (atol + rtol * xp.abs(n))           # > 0 where the check fails
    worst = tuple(int(i) for i in xp.unravel_index(int(xp.argmax(excess)), a.shape)) if a.size else ()
    return Report(
        name=name,
        ok=bool(xp.all(excess <= 0)),
        max_abs_err=float(xp.max(abs_err)) if a.size else 0.0,
        max_rel_err=float(xp.max(rel_error(a, n))) if a.size else 0.0,
        worst_index=worst,
        analytic=float(a[worst]) if a.size else 0.0,
        numeric=float(n[worst]) if a.size else 0.0,
    )


def numerical_grad(f, x, h=1e-6):
    """Central-difference gradient of the scalar function f() with respect to array x.

    x is perturbed in place, one element at a time, and restored; f reads it.
    Returns an array like x. Cost: 2 * x.size calls of f.
    """
    xp = get_array_module(x)
    grad = xp.zeros_like(x)
    for index in _indices(x.shape):
        # `+ 0.0` makes a copy: on CuPy x[index] is a 0-d *view*, which the next
        # line would change, and x - h would then be evaluated at x (half the gradient)
        old = x[index] + 0.0
        x[index] = old + h
        f_plus = float(f())
        x[index] = old - h
        f_minus = float(f())
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2.0 * h)
    return grad


def _indices(shape):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _indices(shape[1:]):
            yield (i, *rest)


def directional_check(name, f, x, grad, direction, h=1e-6, rtol=1e-5, atol=1e-7) -> Report:
    """One random direction r instead of every element (Chainer's check_backward):
    (f(x + h r) - f(x - h r)) / 2h must equal sum(grad * r). Two calls of f."""
    xp = get_array_module(x)
    old = x + 0.0                        # a copy
    x[...] = old + h * direction
    f_plus = float(f())
    x[...] = old - h * direction
    f_minus = float(f())
    x[...] = old
    numeric = (f_plus - f_minus) / (2.0 * h)
    analytic = to_numpy(xp.sum(grad * direction)).reshape(1)   # host, shape (1,)
    host = get_array_module(analytic)
    return compare(name, analytic, host.asarray([numeric], dtype=analytic.dtype), rtol, atol)


def check_layer(layer, x, dout, h=1e-6, rtol=1e-5, atol=1e-7) -> list[Report]:
    """VJP check of layer.backward for the input and every parameter.

    x: the layer's input; dout: a random upstream gradient shaped like the output.
    Returns one Report per tensor ('x', then the parameter names).
    """
    xp = get_array_module(x, dout)
    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(dout)

    def fake_loss():                     # L = sum(y * dout): dL/dy = dout
        return xp.sum(layer.forward(x) * dout)

    reports = [compare("x", dx, numerical_grad(fake_loss, x, h), rtol, atol)]
    for name, p in layer.named_parameters():
        reports.append(compare(name, p.grad, numerical_grad(fake_loss, p.data, h), rtol, atol))
    return reports


def check_double_backward(layer, x, dout, g_dx, args=(), h=1e-6, rtol=1e-5,
                          atol=1e-7) -> list[Report]:
    """Check layer.double_backward: it must differentiate the layer's own backward.

    With dx = layer.backward(dout) after layer.forward(x, *args), the scalar
    F = sum(dx * g_dx) has dF/d(dout) = what double_backward(g_dx) returns and
    dF/dtheta = what it adds into the parameter gradients (backward itself runs with
    param_grads=False, so only the second pass fills them). Returns one Report per
    tensor ('dout', then the parameter names).
    """
    xp = get_array_module(x, dout)
    layer.zero_grad()
    layer.forward(x, *args)
    layer.backward(dout, param_grads=False, create_graph=True)
    g_dout = layer.double_backward(g_dx)

    def fake_penalty():                  # F = sum(dx * g_dx): dF/d(dx) = g_dx
        layer.forward(x, *args)
        return xp.sum(layer.backward(dout, param_grads=False) * g_dx)

    reports = [compare("dout", g_dout, numerical_grad(fake_penalty, dout, h), rtol, atol)]
    for name, p in layer.named_parameters():
        reports.append(compare(name, p.grad, numerical_grad(fake_penalty, p.data, h), rtol, atol))
    return reports


def assert_gradients_ok(reports):
    """Raise GradientCheckError listing every failing tensor (and the passing ones)."""
    if not all(r.ok for r in reports):
        raise GradientCheckError("gradient check failed:\n" + "\n".join(str(r) for r in reports))

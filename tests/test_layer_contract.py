"""The layer contract of npgan/layers.py: Layer, checked on every layer class of npgan.

Every subclass of Layer defined in npgan (the reference classes and npgan.fast's twins,
found by importing every module and walking __subclasses__) must:
  - take forward(x) and backward(dout, param_grads=True, input_grad=True,
    create_graph=False), and double_backward(g_dx) exactly when it declares
    supports_double_backward = True;
  - return from backward a dx of x's shape and dtype, or None with input_grad=False;
  - ADD its parameter gradients into p.grad (+=), never overwrite them;
  - consume its cache: a second backward without a forward is an error;
  - with create_graph=True: keep what double_backward needs (declared), or raise
    NotImplementedError naming itself before doing any work (not declared).
A new layer without an example below fails test_every_layer_class_has_an_example.
"""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import npgan
from npgan.layers import Layer


def layer_classes():
    """Every public Layer subclass defined in npgan (private bases like _BatchNorm are
    abstract: no axes, no example)."""
    for info in pkgutil.walk_packages(npgan.__path__, "npgan."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, todo = set(), [Layer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("npgan") and not sub.__name__.startswith("_"):
                found.add(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def example(name, be):
    """(layer, forward's inputs) for the class named `name`, reference or fast."""
    from npgan import (BatchNorm1d, BatchNorm2d, Conditional, Conv2d, ConvTranspose2d,
                       Dropout, Flatten, LeakyReLU, Linear, ReLU, Reshape, Sequential,
                       Sigmoid, SpectralNorm, Tanh)
    from npgan.augment import Brightness, Contrast, Cutout, DiffAugment, Translation
    from npgan.mbstd import MinibatchStd
    x2, x4 = be.randn((4, 6)), be.randn((3, 2, 5, 5))
    labels = be.asarray(np.array([0, 2, 1, 2]))
    base = name.removeprefix("Fast")
    made = {
        "Linear": lambda: (Linear(6, 3, be), (x2,)),
        "LeakyReLU": lambda: (LeakyReLU(0.2), (x2,)),
        "ReLU": lambda: (ReLU(), (x2,)),
        "Sigmoid": lambda: (Sigmoid(), (x2,)),
        "Tanh": lambda: (Tanh(), (x2,)),
        "Sequential": lambda: (Sequential(Linear(6, 5, be), LeakyReLU(0.2), Linear(5, 2, be)),
                               (x2,)),
        "Conv2d": lambda: (Conv2d(2, 3, 3, 2, 1, backend=be), (x4,)),
        "ConvTranspose2d": lambda: (ConvTranspose2d(2, 3, 4, 2, 1, backend=be), (x4,)),
        "Reshape": lambda: (Reshape((2, 3)), (x2,)),
        "Flatten": lambda: (Flatten(), (x4,)),
        "BatchNorm1d": lambda: (BatchNorm1d(6, be), (x2,)),
        "BatchNorm2d": lambda: (BatchNorm2d(2, be), (x4,)),
        "Dropout": lambda: (Dropout(0.5, be), (x2,)),
        # eval: u and v stay put, so two passes compute with the same W / sigma
        "SpectralNorm": lambda: (SpectralNorm(Linear(6, 3, be), be).eval(), (x2,)),
        "Conditional": lambda: (Conditional(Sequential(Linear(9, 2, be)), 3, be), (x2, labels)),
        "MinibatchStd": lambda: (MinibatchStd(), (x4,)),
        "Translation": lambda: (Translation(be, ratio=0.25), (x4,)),
        "Cutout": lambda: (Cutout(be, ratio=0.5), (x4,)),
        "Brightness": lambda: (Brightness(be), (x4,)),
        "Contrast": lambda: (Contrast(be), (x4,)),
        "DiffAugment": lambda: (DiffAugment("translation,cutout,color", be, image_shape=(2, 5, 5)),
                                (be.randn((3, 50)),)),
    }.get(base)
    if made is None:
        return None
    layer, inputs = made()
    if name.startswith("Fast"):
        from npgan.fast import accelerate
        accelerate(layer)
    assert type(layer).__name__ == name, (type(layer).__name__, name)
    return layer, inputs


CLASSES = layer_classes()


def make(cls, seed=0):
    be = npgan.get_backend("numpy", dtype="float64", seed=seed)
    return example(cls.__name__, be), be


def test_the_walk_finds_the_reference_and_the_fast_classes():
    names = {cls.__name__ for cls in CLASSES}
    assert {"Linear", "Conv2d", "BatchNorm2d", "SpectralNorm", "Conditional", "FastLinear",
            "FastConv2d", "FastBatchNorm2d", "FastReLU"} <= names, names
    assert len(names) >= 20 and "_BatchNorm" not in names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_layer_class_has_an_example(cls):
    assert make(cls)[0] is not None, (
        f"{cls.__module__}.{cls.__name__} is a Layer without an example in "
        f"tests/test_layer_contract.py: add one to example(), so the contract is checked")


def check_signatures(cls):
    backward = inspect.signature(cls.backward).parameters
    assert list(backward) == ["self", "dout", "param_grads", "input_grad", "create_graph"], \
        f"{cls.__name__}.backward{inspect.signature(cls.backward)}"
    assert [backward[k].default for k in ("param_grads", "input_grad", "create_graph")] == \
        [True, True, False]
    assert list(inspect.signature(cls.forward).parameters)[:2] == ["self", "x"]
    declared = cls.supports_double_backward
    present = cls.double_backward is not Layer.double_backward
    assert declared == present, (
        f"{cls.__name__}: supports_double_backward = {declared}, but double_backward is "
        f"{'implemented' if present else 'not implemented'}")
    if present:
        assert list(inspect.signature(cls.double_backward).parameters) == ["self", "g_dx"]


def check_dx_and_cache(layer, inputs, be):
    x = inputs[0]
    y = layer.forward(*inputs)
    dout = be.randn(tuple(y.shape))
    dx = layer.backward(dout)
    assert dx.shape == x.shape and dx.dtype == x.dtype, (dx.shape, dx.dtype)
    with pytest.raises(RuntimeError, match="without a matching forward"):
        layer.backward(dout)
    layer.forward(*inputs)
    assert layer.backward(dout, input_grad=False) is None
    layer.forward(*inputs)
    assert layer.backward(dout, param_grads=False).shape == x.shape


def check_accumulates(layer, inputs, be):
    """From a random start S, a backward leaves p.grad = S + g, where g is what the same
    backward gives from zero; param_grads=False leaves S as it is."""
    y = layer.forward(*inputs)
    dout = be.randn(tuple(y.shape))
    layer.zero_grad()
    layer.backward(dout)
    g = [p.grad.copy() for p in layer.parameters()]
    start = [be.randn(tuple(p.shape)) for p in layer.parameters()]
    for param_grads in (True, False):
        for p, s in zip(layer.parameters(), start):
            p.grad[...] = s
        layer.forward(*inputs)
        layer.backward(dout, param_grads=param_grads)
        for p, s, gi in zip(layer.parameters(), start, g):
            np.testing.assert_allclose(p.grad, s + gi if param_grads else s, rtol=1e-12,
                                       atol=1e-12)
    return g


def check_create_graph(layer, inputs, be):
    """Declared: backward(create_graph=True), then double_backward gives g_dout like y.
    Not declared: NotImplementedError naming the class, before any work is done."""
    name = type(layer).__name__
    y = layer.forward(*inputs)
    dout = be.randn(tuple(y.shape))
    if type(layer).supports_double_backward:
        dx = layer.backward(dout, create_graph=True)
        g_dout = layer.double_backward(be.randn(tuple(dx.shape)))
        assert g_dout.shape == y.shape and g_dout.dtype == y.dtype
        return
    with pytest.raises(NotImplementedError, match=name):
        layer.backward(dout, create_graph=True)
    assert layer.backward(dout).shape == inputs[0].shape     # refused before any work
    with pytest.raises(NotImplementedError, match=name):
        layer.double_backward(dout)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_signatures(cls):
    check_signatures(cls)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_backward_returns_dx_like_x_or_none_and_consumes_the_cache(cls):
    (layer, inputs), be = make(cls)
    check_dx_and_cache(layer, inputs, be)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_parameter_gradients_accumulate(cls):
    (layer, inputs), be = make(cls)
    g = check_accumulates(layer, inputs, be)
    if layer.parameters():
        assert any(np.any(gi != 0) for gi in g)                 # something was added


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_create_graph_keeps_the_second_pass_or_refuses_by_name(cls):
    (layer, inputs), be = make(cls)
    check_create_graph(layer, inputs, be)


# ------------------------------------------------ the control: broken layers are caught
def planted():
    """Four layers that break the contract, each in one way."""
    from npgan import Linear, Sigmoid, Tanh

    class NoCreateGraph(Sigmoid):
        def backward(self, dout, param_grads=True, input_grad=True):
            return super().backward(dout, param_grads, input_grad)

    class Overwrites(Linear):
        def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
            if param_grads:
                self.zero_grad()                                 # = instead of +=
            return super().backward(dout, param_grads, input_grad, create_graph)

    class Declares(Tanh):
        supports_double_backward = True                          # but has none

    class Silent(Tanh):
        def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
            return super().backward(dout, param_grads, input_grad)   # create_graph ignored
    return NoCreateGraph, Overwrites, Declares, Silent


def test_the_checks_catch_a_broken_layer():
    be = npgan.get_backend("numpy", dtype="float64", seed=0)
    NoCreateGraph, Overwrites, Declares, Silent = planted()
    x = be.randn((4, 6))
    with pytest.raises(AssertionError, match="NoCreateGraph.backward"):
        check_signatures(NoCreateGraph)
    with pytest.raises(AssertionError, match="Declares: supports_double_backward = True"):
        check_signatures(Declares)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_accumulates(Overwrites(6, 3, be), (x,), be)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        check_create_graph(Silent(), (x,), be)

"""Small discriminators kept off LeakyReLU's kink, for the checks of a penalty's gradient
(WGAN-GP, R1, through minibatch stddev).

A central difference that straddles x = 0 of a LeakyReLU measures the average of its two
slopes, not the derivative, so a check first makes sure that every LeakyReLU input of D's
forward is at least KINK_GAP (1e-3, a thousand finite-difference steps) away from 0.
"""
import numpy as np

from npgan import LeakyReLU
from npgan.dcgan import build_dcgan_discriminator
from npgan.gan import build_discriminator
from tests.backends import host, make_backend

KINK_GAP = 1e-3     # LeakyReLU inputs stay this far from 0 (the finite difference step: 1e-6)


def leaky_inputs(D, x, labels=None):
    """Every LeakyReLU input of D's forward at x, as host arrays (to keep off the kink)."""
    seen, layers = [], list(getattr(D, "layers", [D]))
    while layers:
        layer = layers.pop()
        if hasattr(layer, "layers"):
            layers += layer.layers
        elif isinstance(layer, LeakyReLU):
            def record(a, original=type(layer).forward, layer=layer):
                seen.append(host(a).copy())
                return original(layer, a)
            layer.forward = record
    try:
        D.forward(x) if labels is None else D.forward(x, labels)
    finally:
        for layer in leaves(D):
            layer.__dict__.pop("forward", None)
    return seen


def leaves(model):
    for layer in getattr(model, "layers", [model]):
        yield from (leaves(layer) if hasattr(layer, "layers") else [layer])


def off_the_kinks(D, x, labels=None):
    return all(np.min(np.abs(a)) >= KINK_GAP for a in leaky_inputs(D, x, labels))


def first_off_the_kinks(make, seeds=range(20)):
    """make(seed) -> (backend, D, x, labels or None): what the first seed whose D keeps
    off the kinks at x made. No such seed among `seeds` is an error, not a silent last try."""
    for seed in seeds:
        made = make(seed)
        if off_the_kinks(*made[1:]):
            return made
    raise AssertionError(f"no seed in {seeds} kept D's LeakyReLU inputs off 0")


def tiny_conditional_d(spec, model, num_classes=3, change=None):
    """A conditional D (label columns for the MLP, label planes for the DCGAN, no
    BatchNorm), changed by change(D, backend) if given, a batch of 4 and its labels, off
    the kinks: (backend, D, x, labels)."""
    def make(seed):
        be = make_backend(spec, "float64", seed=seed)
        if model == "mlp":
            D = build_discriminator(be, in_dim=6, hidden=(5, 4), num_classes=num_classes)
            x = be.uniform(-1, 1, (4, 6))
        else:
            D = build_dcgan_discriminator(be, base_channels=2, image_size=4,
                                          num_classes=num_classes, batchnorm=False,
                                          init="default")
            x = be.uniform(-1, 1, (4, 16))
        D = D if change is None else change(D, be)
        return be, D, x, be.asarray(np.array([2, 0, 1, 2]) % num_classes)
    return first_off_the_kinks(make)


def skip_the_third_pass(monkeypatch, module):
    """Replace `module`'s backward_through_forward by one that forgets the penalty's term
    through a layer's input (what the controls of MinibatchStd's third pass need)."""
    def skip(D, x, labels=None):
        for layer in D.layers:
            layer.__dict__["g_x"] = None
    monkeypatch.setattr(f"{module}.backward_through_forward", skip)

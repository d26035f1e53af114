"""The EMA of G's weights: the closed form, and its place in training and checkpoints."""
import numpy as np
import pytest

from npgan import Linear, Sequential, get_backend
from npgan.ema import EMA


def test_ema_follows_the_closed_form():
    be = get_backend("numpy", dtype="float64", seed=0)
    model, shadow = Sequential(Linear(3, 2, be)), Sequential(Linear(3, 2, be))
    ema = EMA(model, shadow, decay=0.9)
    expected = [p.data.copy() for p in model.parameters()]
    for t in range(12):
        for p in model.parameters():
            p.data += t + 1.0                          # the "training" moves the weights
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))               # warm-up: 0.1, 0.18, ... then 0.9
        expected = [d * e + (1 - d) * p.data for e, p in zip(expected, model.parameters())]
    for e, p in zip(expected, shadow.parameters()):
        np.testing.assert_allclose(p.data, e, rtol=1e-12)
    assert shadow.parameters()[0].data.dtype == np.float64


def test_ema_rejects_a_bad_decay():
    be = get_backend("numpy")
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        EMA(Sequential(Linear(2, 2, be)), Sequential(Linear(2, 2, be)), decay=1.0)

"""An exponential moving average (EMA) of a model's weights, for sampling.

    theta_ema <- d_t * theta_ema + (1 - d_t) * theta        after every G-update
    d_t = min(decay, (1 + t) / (10 + t))                      t = updates so far

The warm-up d_t (as in TensorFlow's ExponentialMovingAverage with num_updates) keeps
the random initial weights from lingering in the average early in training.

Sampling from the averaged G instead of the last iterate smooths out the oscillation
of adversarial training and usually gives cleaner samples (Yazici et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training", arXiv:1806.04498).
The average lives in a second model of the same architecture (`shadow`), which is
never trained, only updated here; BatchNorm running statistics are copied as they are.
"""
from __future__ import annotations


class EMA:
    """Keeps `shadow`, a model whose parameters track the EMA of `model`'s parameters."""

    def __init__(self, model, shadow, decay=0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), e.g. 0.999, got {decay}")
        self.model, self.shadow, self.decay = model, shadow, decay
        self.updates = 0
        self.copy_from_model()

    def copy_from_model(self):
        """shadow := model (the start of the average)."""
        for p_ema, p in zip(self.shadow.parameters(), self.model.parameters()):
            p_ema.data[...] = p.data
        self._copy_buffers()

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    def update(self):
        """One EMA step, in place: ema = d_t * ema + (1 - d_t) * param."""
        d = self.current_decay()
        for p_ema, p in zip(self.shadow.parameters(), self.model.parameters()):
            p_ema.data *= d
            p_ema.data += (1.0 - d) * p.data            # one temporary per tensor
        self._copy_buffers()
        self.updates += 1

    def _copy_buffers(self):
        for (_, b_ema), (_, b) in zip(self.shadow.named_buffers(), self.model.named_buffers()):
            b_ema[...] = b

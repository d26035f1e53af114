"""Batch normalization and dropout: the layers that behave differently in train and eval mode.

BatchNorm (Ioffe & Szegedy 2015) normalizes each channel c over the N values it has in
the batch (N = B for (B, C) inputs, B*H*W for (B, C, H, W) inputs):

    mean = sum x / N      var = sum (x - mean)**2 / N      inv_std = 1 / sqrt(var + eps)
    xhat = (x - mean) * inv_std                            y = gamma * xhat + beta

In training mode mean and var come from the batch, and running averages of them are kept
(buffers, saved by checkpoints); in eval mode those running averages are used instead,
so one image's output no longer depends on the rest of its batch.
reference: https://arxiv.org/abs/1502.03167
"""
from __future__ import annotations

import math

from npgan.backend import astype, get_array_module, into, reuse
from npgan.layers import Layer, Parameter


class _BatchNorm(Layer):
    """BatchNorm over the axes `_axes` of an input with `_ndim` dimensions (channels on axis 1).

    backward (training mode; every sum runs over the N values of a channel):
        dxhat = dout * gamma
        dx = inv_std / N * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
           = gamma * inv_std / N * (N * dout - sum(dout) - xhat * sum(dout * xhat))
        dgamma += sum(dout * xhat)    dbeta += sum(dout)
    (the second form shares its two sums with dgamma and dbeta)
    In eval mode mean and inv_std are constants, so dx = dout * gamma * inv_std.
    running_var is updated with the unbiased variance (times N / (N - 1)), as in PyTorch.
    """

    _axes: tuple       # the axes a channel's statistics run over (set by the subclasses)
    _ndim: int         # the input's number of dimensions
    _layout: str       # the input's shape, for error messages

    def __init__(self, num_features, backend, momentum=0.1, eps=1e-5, affine=True):
        self.num_features, self.affine = num_features, affine
        self.momentum, self.eps = momentum, eps
        if affine:  # PyTorch's names; gamma starts at 1 and beta at 0 (the identity)
            self.weight = Parameter(backend.zeros((num_features,)) + 1.0)   # gamma, (C,)
            self.bias = Parameter(backend.zeros((num_features,)))          # beta, (C,)
        self.running_mean = backend.zeros((num_features,))                 # (C,), updated in place
        self.running_var = backend.zeros((num_features,)) + 1.0            # (C,)
        self.xc, self.inv_std, self.batch_stats = None, None, None
        self._scratch = None    # a reused array like x: xc * xc, dout * xc, the correction

    def named_buffers(self):
        return [("running_mean", self.running_mean), ("running_var", self.running_var)]

    def _per_channel(self, a):
        """A (C,) array shaped to broadcast against the input: (1, C) or (1, C, 1, 1)."""
        xp = get_array_module(a)
        return xp.reshape(a, (1, self.num_features) + (1,) * (self._ndim - 2))

    def forward(self, x):
        xp = get_array_module(x)
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input of shape {self._layout} with "
                             f"C = {self.num_features}, got {tuple(x.shape)}")
        n = math.prod(x.shape) // self.num_features              # values per channel, N
        if self.training:
            if n < 2:
                raise ValueError(f"{self!r} in training mode needs more than one value per "
                                 f"channel to estimate a variance, got input {tuple(x.shape)}")
            mean = xp.mean(x, axis=self._axes, keepdims=True)      # (1, C[, 1, 1])
            xc = x - mean                                          # like x
            self._scratch = reuse(self._scratch, xc)               # xc * xc, no new array
            var = xp.mean(into(self._scratch, "multiply", xc, xc), axis=self._axes,
                          keepdims=True)                           # biased: what we divide by
            # running averages: in place, so the buffers stay the same device arrays
            m = self.momentum
            self.running_mean *= 1.0 - m
            self.running_mean += m * xp.reshape(mean, (self.num_features,))
            self.running_var *= 1.0 - m
            self.running_var += (m * n / (n - 1)) * xp.reshape(var, (self.num_features,))
        else:
            xc = x - self._per_channel(self.running_mean)
            var = self._per_channel(self.running_var)
        inv_std = 1.0 / xp.sqrt(var + self.eps)                    # (1, C[, 1, 1])
        # cache: xc = x - mean and inv_std; xhat = xc * inv_std is never stored, as y and
        # the backward formula can fold inv_std into their per-channel factors
        self.xc, self.inv_std, self.batch_stats = xc, inv_std, self.training
        if not self.affine:
            return xc * inv_std                                    # xhat
        y = xc * (inv_std * self._per_channel(self.weight.data))   # gamma * xhat, like x
        y += self._per_channel(self.bias.data)                     # in place: one array fewer
        return y

    def backward(self, dout, param_grads=True, input_grad=True):
        xp = get_array_module(dout)
        xc, inv_std = self._need("xc"), self._need("inv_std")
        batch_stats = self._need("batch_stats")
        # in the forward pass this was: y = gamma * xhat + beta, xhat = xc * inv_std. Both
        # sums below serve dgamma, dbeta and dx: sum(dxhat) = gamma * sum(dout), and
        # sum(dout * xhat) = inv_std * sum(dout * xc)
        sum_dout = xp.sum(dout, axis=self._axes, keepdims=True)             # (1, C[, 1, 1])
        self._scratch = reuse(self._scratch, xc)
        sum_dout_xhat = inv_std * xp.sum(into(self._scratch, "multiply", dout, xc),
                                         axis=self._axes, keepdims=True)    # (1, C[, 1, 1])
        if self.affine and param_grads:
            self.weight.grad += xp.reshape(sum_dout_xhat, (self.num_features,))   # (C,)
            self.bias.grad += xp.reshape(sum_dout, (self.num_features,))          # (C,)
        if not input_grad:
            return None
        gamma_inv_std = inv_std * self._per_channel(self.weight.data) if self.affine else inv_std
        if not batch_stats:                   # eval: xhat = (x - running_mean) * inv_std
            return dout * gamma_inv_std
        # xhat = (x - mean) * inv_std, where mean and inv_std depend on every x of the channel:
        # dx = gamma * inv_std / n * (n * dout - sum(dout) - xhat * sum(dout * xhat))
        #    = gamma * inv_std * dout - gamma * inv_std / n * (sum(dout) + xc * a),
        # with a = inv_std * sum(dout * xhat): per-channel factors, so three passes over x
        n = math.prod(dout.shape) // self.num_features
        scale = gamma_inv_std / n                                  # (1, C[, 1, 1])
        correction = into(self._scratch, "multiply", xc, scale * inv_std * sum_dout_xhat)
        correction += scale * sum_dout                             # (scale * (sum + xc * a))
        dx = dout * gamma_inv_std                                  # new array: dout untouched
        dx -= correction
        return dx

    def __repr__(self):
        return (f"{type(self).__name__}({self.num_features}, momentum={self.momentum}, "
                f"eps={self.eps}, affine={self.affine})")


class BatchNorm1d(_BatchNorm):
    """BatchNorm for (B, C): statistics over the batch axis. x: (B, C) -> y: (B, C).
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html
    """

    _axes, _ndim, _layout = (0,), 2, "(B, C)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm for images: statistics over batch and pixels. x: (B, C, H, W) -> same.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
    """

    _axes, _ndim, _layout = (0, 2, 3), 4, "(B, C, H, W)"


class Dropout(Layer):
    """Inverted dropout: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p); identity in eval mode.

    Scaling the kept values by 1 / (1 - p) in training keeps E[y] = x, so eval mode needs
    no rescaling. backward: dx = dout * mask / (1 - p). Any shape.
    The mask comes from the backend's generator: same seed, same masks.
    reference: https://jmlr.org/papers/v15/srivastava14a.html
    """

    def __init__(self, p, backend):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p, self.backend = p, backend
        self.scale = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self.scale = 1.0                   # identity: backward passes dout through
            return x + 0.0                     # a new array, like every other layer's output
        keep = self.backend.uniform(0.0, 1.0, tuple(x.shape)) >= self.p   # True w.p. 1 - p
        # mask as x.dtype (an int or bool mask would upcast float32), scaled once here
        self.scale = astype(keep, x.dtype) * (1.0 / (1.0 - self.p))
        return x * self.scale

    def backward(self, dout, param_grads=True, input_grad=True):
        scale = self._need("scale")
        return dout * scale if input_grad else None

    def __repr__(self):
        return f"Dropout(p={self.p})"

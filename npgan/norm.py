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

from npgan.backend import astype, get_array_module
from npgan.layers import Layer, Parameter


class _BatchNorm(Layer):
    """BatchNorm over `axes` of an input with `input_ndim` dimensions (channels on axis 1).

    backward (training mode; every sum runs over the N values of a channel):
        dgamma += sum(dout * xhat)    dbeta += sum(dout)    dxhat = dout * gamma
        dx = inv_std / N * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
    In eval mode mean and inv_std are constants, so dx = dout * gamma * inv_std.
    running_var is updated with the unbiased variance (times N / (N - 1)), as in PyTorch.
    """

    axes: tuple         # the axes a channel's statistics run over (set by the subclasses)
    input_ndim: int     # the input's number of dimensions
    layout: str         # the input's shape, for error messages

    def __init__(self, num_features, backend, momentum=0.1, eps=1e-5, affine=True):
        self.num_features, self.affine = num_features, affine
        self.momentum, self.eps = momentum, eps
        if affine:  # PyTorch's names; gamma starts at 1 and beta at 0 (the identity)
            self.weight = Parameter(backend.zeros((num_features,)) + 1.0)   # gamma, (C,)
            self.bias = Parameter(backend.zeros((num_features,)))          # beta, (C,)
        self.running_mean = backend.zeros((num_features,))                 # (C,), updated in place
        self.running_var = backend.zeros((num_features,)) + 1.0            # (C,)
        self.xhat, self.inv_std, self.batch_stats = None, None, None

    def named_buffers(self):
        return [("running_mean", self.running_mean), ("running_var", self.running_var)]

    def per_channel(self, a):
        """A (C,) array shaped to broadcast against the input: (1, C) or (1, C, 1, 1)."""
        xp = get_array_module(a)
        return xp.reshape(a, (1, self.num_features) + (1,) * (self.input_ndim - 2))

    def check_input(self, x):
        """The input's shape, and in training mode more than one value per channel."""
        if x.ndim != self.input_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input of shape {self.layout} with "
                             f"C = {self.num_features}, got {tuple(x.shape)}")
        if self.training and math.prod(x.shape) // self.num_features < 2:
            raise ValueError(f"{self!r} in training mode needs more than one value per "
                             f"channel to estimate a variance, got input {tuple(x.shape)}")

    def update_running_stats(self, mean, var, n):
        """running = (1 - momentum) running + momentum batch, in place (the same arrays
        stay in the checkpoint's buffers); var is unbiased here: times n / (n - 1)."""
        xp = get_array_module(mean)
        m = self.momentum
        self.running_mean *= 1.0 - m
        self.running_mean += m * xp.reshape(mean, (self.num_features,))
        self.running_var *= 1.0 - m
        self.running_var += (m * n / (n - 1)) * xp.reshape(var, (self.num_features,))

    def forward(self, x):
        xp = get_array_module(x)
        self.check_input(x)
        if self.training:
            mean = xp.mean(x, axis=self.axes, keepdims=True)      # (1, C[, 1, 1])
            var = xp.mean((x - mean) ** 2, axis=self.axes, keepdims=True)  # biased
            self.update_running_stats(mean, var, math.prod(x.shape) // self.num_features)
        else:
            mean = self.per_channel(self.running_mean)
            var = self.per_channel(self.running_var)
        inv_std = 1.0 / xp.sqrt(var + self.eps)                    # (1, C[, 1, 1])
        xhat = (x - mean) * inv_std                                # like x
        self.xhat, self.inv_std, self.batch_stats = xhat, inv_std, self.training
        if not self.affine:
            return xhat
        return self.per_channel(self.weight.data) * xhat + self.per_channel(self.bias.data)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        xp = get_array_module(dout)
        xhat, inv_std = self._need("xhat"), self._need("inv_std")
        batch_stats = self._need("batch_stats")
        # in the forward pass this was: y = gamma * xhat + beta, so
        if self.affine and param_grads:
            self.weight.grad += xp.sum(dout * xhat, axis=self.axes)  # (C,)
            self.bias.grad += xp.sum(dout, axis=self.axes)            # (C,)
        if not input_grad:
            return None
        dxhat = dout * self.per_channel(self.weight.data) if self.affine else dout
        if not batch_stats:                   # eval: xhat = (x - running_mean) * inv_std
            return dxhat * inv_std
        # xhat = (x - mean) * inv_std, where mean and inv_std depend on every x of the channel
        n = math.prod(dout.shape) // self.num_features
        sum_dxhat = xp.sum(dxhat, axis=self.axes, keepdims=True)             # (1, C[, 1, 1])
        sum_dxhat_xhat = xp.sum(dxhat * xhat, axis=self.axes, keepdims=True)  # (1, C[, 1, 1])
        return inv_std / n * (n * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)

    def __repr__(self):
        return (f"{type(self).__name__}({self.num_features}, momentum={self.momentum}, "
                f"eps={self.eps}, affine={self.affine})")


class BatchNorm1d(_BatchNorm):
    """BatchNorm for (B, C): statistics over the batch axis. x: (B, C) -> y: (B, C).
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html
    """

    axes, input_ndim, layout = (0,), 2, "(B, C)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm for images: statistics over batch and pixels. x: (B, C, H, W) -> same.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
    """

    axes, input_ndim, layout = (0, 2, 3), 4, "(B, C, H, W)"


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

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        scale = self._need("scale")
        return dout * scale if input_grad else None

    def __repr__(self):
        return f"Dropout(p={self.p})"

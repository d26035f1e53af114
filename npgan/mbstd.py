"""Minibatch standard deviation (Karras et al. 2018, section 3): let D see its batch's variety.

A collapsed G makes batches of near-copies. Judged one image at a time, each copy can look
real; judged as a batch they do not. This layer appends to every sample one number, the
batch's spread, so D's last layer can use it:

    sigma_f = sqrt(mean_b (x_bf - mean_b x_bf)^2 + 1e-8)     per feature f, over the batch
    s = mean_f sigma_f                                       one number per batch
    y = [x, s]: (B, F) -> (B, F + 1), or (B, C, H, W) -> (B, C + 1, H, W) with s as a plane

Every sample's input gradient gets a term through s, so the layer mixes the samples of a
batch (as BatchNorm does): D sees the real and the fake batch separately.
A gradient penalty through it (R1, WGAN-GP) needs one more pass than through a piecewise
linear D: the backward line of this layer depends smoothly on its input x, so the penalty
has a gradient g_x with respect to x, which must go back through the layers *below* in
the ordinary way. double_backward keeps g_x; backward_through_forward carries it.
reference: https://arxiv.org/abs/1710.10196 (section 3)
"""
from __future__ import annotations

import math

from npgan.backend import concat, get_array_module
from npgan.layers import Layer

EPS = 1e-8          # inside the square root, as in the paper's code


class MinibatchStd(Layer):
    """y = [x, s] with s = mean_f sqrt(var_b x_f + 1e-8) (population variance over the batch).

    x: (B, F) -> (B, F + 1);  x: (B, C, H, W) -> (B, C + 1, H, W), f runs over (c, h, w).
    With n = B * F, u = (x - mean_b x) / sigma and c = the sum of dout's extra column (plane):
    backward:        dx = dout[:, :C] + c / n * u
    double_backward: g_dout[:, :C] = g_dx    g_dout[:, C] = sum(g_dx * u) / n (everywhere)
                     g_x = c / n / sigma * (g_dx - mean_b g_dx - u * mean_b(g_dx * u))
    """

    supports_double_backward = True

    def __init__(self):
        self.u, self.sigma = None, None
        self.graph = None               # (u, sigma, c), kept by backward(create_graph=True)
        self.g_x = None                 # dP/dx through this layer's input, for the caller

    def forward(self, x):
        xp = get_array_module(x)
        if x.ndim not in (2, 4):
            raise ValueError(f"{self!r} expects (B, F) or (B, C, H, W), got {tuple(x.shape)}")
        if self.g_x is not None:
            raise RuntimeError(
                f"{self!r}: the penalty's term through this layer's input, from the last "
                f"double_backward, was never carried back. After D.double_backward(g_dx), "
                f"call npgan.mbstd.backward_through_forward(D, x) (npgan.r1.r1_penalty and "
                f"npgan.wgan.penalty_backward do)")
        xc = x - xp.mean(x, axis=0, keepdims=True)                      # like x
        sigma = xp.sqrt(xp.mean(xc * xc, axis=0, keepdims=True) + EPS)  # (1, F) or (1, C, H, W)
        s = xp.mean(sigma)                                              # 0-d: the batch's spread
        # cache u = xc / sigma (what dx needs) and sigma (what the double backward needs)
        self.u, self.sigma = xc / sigma, sigma
        plane = xp.zeros_like(x[:, :1, ...]) + s                        # (B, 1[, H, W])
        return concat([x, plane], axis=1)                               # (B, C + 1[, H, W])

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """param_grads: unused (no parameters). create_graph=True keeps u, sigma and c."""
        xp = get_array_module(dout)
        u, sigma = self._need("u"), self._need("sigma")
        C = u.shape[1]
        # in the forward pass this was: s = mean_f sigma_f, dsigma_f/dx_bf = u_bf / B, so
        # every sample gets c / n * u, where c = dL/ds sums the extra column (or plane)
        c = xp.sum(dout[:, C:, ...])                                    # 0-d
        if create_graph:
            self.graph = (u, sigma, c)
        if not input_grad:
            return None
        return dout[:, :C, ...] + (c / math.prod(u.shape)) * u          # (B, C[, H, W])

    def double_backward(self, g_dx):
        """in backward this was: dx = dout[:, :C] + c / n * u, linear in dout (and so in c),
        smooth in x through u. Returns g_dout; keeps g_x for backward_through_forward."""
        xp = get_array_module(g_dx)
        u, sigma, c = self._need_graph("graph")
        n = math.prod(u.shape)
        # dout's extra column (plane) entered only through c = its sum: one value everywhere
        k = xp.sum(g_dx * u) / n                                        # 0-d
        g_dout = concat([g_dx, xp.zeros_like(g_dx[:, :1, ...]) + k], axis=1)  # (B, C + 1, ..)
        # u = xc / sigma is BatchNorm's xhat, so its VJP is BatchNorm's backward (no gamma)
        g_mean = xp.mean(g_dx, axis=0, keepdims=True)                   # (1, C[, H, W])
        gu_mean = xp.mean(g_dx * u, axis=0, keepdims=True)              # (1, C[, H, W])
        self.g_x = (c / n) * (g_dx - g_mean - u * gu_mean) / sigma      # (B, C[, H, W])
        return g_dout

    def __repr__(self):
        return "MinibatchStd()"


def backward_through_forward(D, x, labels=None):
    """The third pass of a gradient penalty through a D with MinibatchStd layers.

    After D.double_backward, each MinibatchStd holds g_x = dP/d(its input). Its input was
    computed by the layers below it, so g_x is an ordinary upstream gradient for them: we
    run D's forward on x again (single-slot caches) and their backward with it, which adds
    dP/dtheta through the forward pass into their grads. Does nothing for a D without one.
    D: a Sequential (or Conditional, then labels (B,)) whose MinibatchStd layers sit at the
    top level; x: D's input, as in the penalty's forward.
    """
    layers = list(getattr(D, "layers", [D]))
    pending = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, MinibatchStd) and layer.g_x is not None:
            pending[i], layer.g_x = layer.g_x, None         # taken: its forward may run again
    if not pending:
        return
    D.forward(x) if labels is None else D.forward(x, labels)   # refill every cache
    dout = None
    # backward: go in the reverse order of the forward pass, from the highest MinibatchStd
    for i in range(max(pending), -1, -1):
        if dout is not None:
            needed = not all(below.shape_only for below in layers[:i])
            dout = layers[i].backward(dout, input_grad=needed)      # grads += dP/dtheta
        if i in pending:                                            # this layer's own g_x
            dout = pending[i] if dout is None else dout + pending[i]

"""Spectral normalization (Miyato et al. 2018): a layer's weight divided by its largest
singular value, which keeps the layer (about) 1-Lipschitz: D cannot grow too steep.

    W_sn = W / sigma(W)          sigma(W) = max_{|v| = 1} |W v|, the largest singular value

A Conv2d's weight (out, in, k, k) is read as the matrix (out, n), n = in*k*k; a Linear's
is (out, in) already. sigma is estimated by power iteration with a persistent vector u,
one step per forward pass in training mode (W changes little between steps, so u stays
near the top left-singular vector):

    v = W^T u / |W^T u|      u = W v / |W v|      sigma = u^T W v      (Algorithm 1)

u (out,) and v (n,) are buffers, kept by checkpoints; eval mode does not update them.

backward. As in the paper and in PyTorch, u and v count as constants, so
sigma = u^T W v is linear in W: dsigma/dW_ij = u_i v_j. With G = dL/dW_sn:

    dL/dW_ij = sum_kl G_kl d(W_kl / sigma)/dW_ij
             = G_ij / sigma - sum_kl G_kl W_kl / sigma^2 * u_i v_j
             = (G - <G, W_sn> u v^T)_ij / sigma           (W_kl / sigma = W_sn_kl)

A check: <dL/dW, W> = (<G, W> - <G, W_sn> u^T W v) / sigma = <G, W_sn> - <G, W_sn> = 0.
Scaling W leaves W_sn (at fixed u, v) unchanged, so the gradient has no part along W.
reference: https://arxiv.org/abs/1802.05957 (Algorithm 1),
https://pytorch.org/docs/stable/generated/torch.nn.utils.spectral_norm.html
"""
from __future__ import annotations

from npgan.backend import get_array_module
from npgan.conv import Conv2d
from npgan.layers import Layer, Linear, Parameter


def _unit(a, eps):
    """a / max(|a|, eps): a vector of length 1 (eps only guards a zero vector)."""
    xp = get_array_module(a)
    return a / xp.maximum(xp.sqrt(xp.sum(a * a)), eps)


def _matrix(W):
    """The weight as a matrix: (out, in) stays, (out, in, k, k) -> (out, in*k*k)."""
    return get_array_module(W).reshape(W, (W.shape[0], -1))


class SpectralNorm(Layer):
    """`layer` (a Linear or a Conv2d) computing with W / sigma(W) instead of W.

    Parameters: W (the raw weight, which the optimizer steps) and b, with the wrapped
    layer's names, so SpectralNorm(Linear(...)) still has "W" and "b". Buffers: u, v.
    The wrapped layer keeps a W of its own: W_sn, set by every forward; its grad is
    scratch space for dL/dW_sn. forward: y = layer(x) with W_sn. backward: the module doc.
    """

    def __init__(self, layer, backend, eps=1e-12):
        if not isinstance(layer, (Linear, Conv2d)):
            raise TypeError(f"SpectralNorm wraps a Linear or a Conv2d, got {layer!r}")
        self.layer, self.eps = layer, eps
        self.W, self.b = layer.W, layer.b              # the raw weight and the bias: trained
        layer.W = Parameter(self.W.data + 0.0)         # W_sn, computed by forward
        self.u = _unit(backend.randn((self.W.shape[0],)), eps)   # (out,): a random start
        self.v = _unit(_matrix(self.W.data).T @ self.u, eps)     # (n,)
        self.sigma, self.uv = None, None

    def named_buffers(self):
        return [("u", self.u), ("v", self.v)]

    def forward(self, x):
        xp = get_array_module(x)
        Wm = _matrix(self.W.data)                              # (out, n)
        if self.training:
            # one power-iteration step; the buffers change in place (same arrays)
            v = _unit(Wm.T @ self.u, self.eps)                 # (n, out) @ (out,) -> (n,)
            u = _unit(Wm @ v, self.eps)                        # (out, n) @ (n,) -> (out,)
            self.u[...], self.v[...] = u, v
        else:                                                  # eval: u and v as they are
            u, v = self.u, self.v
        sigma = xp.sum(u * (Wm @ v))                           # 0-d: u^T W v
        self.layer.W.data = self.W.data / sigma                # W_sn, W's shape
        # cache: sigma and the u, v of this pass (backward treats them as constants)
        self.sigma, self.uv = sigma, (u, v)
        return self.layer.forward(x)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        xp = get_array_module(dout)
        sigma, (u, v) = self._need("sigma"), self._need("uv")
        if param_grads:
            self.layer.W.grad[...] = 0                         # will hold dL/dW_sn of this pass
        # the wrapped layer: dx, dL/dW_sn into layer.W.grad, dL/db into b.grad (shared)
        dx = self.layer.backward(dout, param_grads=param_grads, input_grad=input_grad)
        if param_grads:
            G = _matrix(self.layer.W.grad)                     # (out, n): dL/dW_sn
            W_sn = _matrix(self.layer.W.data)                  # (out, n)
            # in the forward pass this was: W_sn = W / sigma, sigma = u^T W v, so
            uvT = xp.reshape(u, (-1, 1)) * xp.reshape(v, (1, -1))      # (out, 1) * (1, n)
            dW = (G - xp.sum(G * W_sn) * uvT) / sigma                  # (out, n)
            self.W.grad += xp.reshape(dW, self.W.shape)        # (out, n) -> W's shape
        return dx

    def train(self, mode=True):
        self.training = mode
        self.layer.train(mode)
        return self

    def __repr__(self):
        return f"SpectralNorm({self.layer!r})"


def spectral_norm_all(layers, backend):
    """The list `layers` with every Linear and Conv2d wrapped in SpectralNorm."""
    return [SpectralNorm(layer, backend) if isinstance(layer, (Linear, Conv2d)) else layer
            for layer in layers]

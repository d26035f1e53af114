"""Linear with a kept dW buffer and dx laid out like its input.

dx comes back laid out like x. Behind a convolution, x is the (C, H, W, B) memory of its
output seen as (B, C*H*W), column-major; a dx in the same layout flows back through
BatchNorm and the convolutions without a copy (-9 ms of a DCGAN step at base 64,
docs/performance.md). dW = dout.T @ x lands in a kept buffer: no weight-sized array per
step (3 MiB for the MNIST G's last layer; tests/test_perf_properties.py bounds a step's
memory). The numbers are those of npgan/layers.py (tests/test_fast.py).
"""
from __future__ import annotations

from npgan.backend import get_array_module
from npgan.fast.inplace import buffer, column_major, into, scratch
from npgan.layers import Linear


class FastLinear(Linear):
    """Linear with a kept dW buffer and dx laid out like x."""

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        xp = get_array_module(dout)
        x = self._need("x")
        if create_graph:
            self.dout = dout
        if param_grads:
            dW = buffer(scratch(self), "dW", self.W.data.shape, self.W.data)
            self.W.grad += into(dW, "matmul", dout.T, x)   # (out, B) @ (B, in) -> (out, in)
            self.b.grad += xp.sum(dout, axis=0)
        if not input_grad:
            return None
        if column_major(x):
            return (self.W.data.T @ dout.T).T       # ((in, out) @ (out, B)).T -> (B, in)
        return dout @ self.W.data                   # (B, out) @ (out, in) -> (B, in)

"""Linear and LeakyReLU with kept buffers and layout-aware products.

FastLinear: dx comes back laid out like x. Behind a convolution, x is the (C, H, W, B)
  memory of its output seen as (B, C*H*W), column-major; a dx in the same layout flows
  back through BatchNorm and the convolutions without a copy (-9 ms of a DCGAN step at
  base 64, docs/performance.md). dW = dout.T @ x lands in a kept buffer and b is added
  in place: no weight-sized array per step (3 MiB for the MNIST G's last layer).
FastLeakyReLU: the local slope in two passes into a kept buffer (`greater`, then
  `maximum` with the slope; one for ReLU), where the reference makes four new arrays:
  2% of a step's time, and a third of the DCGAN step's peak memory.
The numbers are those of npgan/layers.py (tests/test_fast.py).
"""
from __future__ import annotations

from npgan.backend import astype, get_array_module
from npgan.fast.inplace import buffer, column_major, into, scratch
from npgan.layers import LeakyReLU, Linear, ReLU


class FastLinear(Linear):
    """Linear with a kept dW buffer, b added in place, and dx laid out like x."""

    def forward(self, x):
        self.check_input(x)
        self.x = x
        y = x @ self.W.data.T                       # (B, in) @ (in, out) -> (B, out)
        y += self.b.data                            # in place: no second (B, out) array
        return y

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


class FastLeakyReLU(LeakyReLU):
    """LeakyReLU whose local slope is made in a kept buffer, in at most two passes."""

    def forward(self, x):
        local_slope = into(buffer(scratch(self), "slope", x.shape, x),
                           "greater", x, 0.0)                       # 1.0 if x > 0, else 0.0
        if 0.0 < self.slope <= 1.0:         # max(1, slope) = 1 and max(0, slope) = slope
            into(local_slope, "maximum", local_slope, self.slope)
        elif self.slope != 0.0:      # a slope outside [0, 1]: (m - 1) * -slope + m, exact
            local_slope -= 1.0                                      # 0 if x > 0, else -1
            local_slope *= -self.slope                              # 0, or slope
            local_slope += astype(x > 0, x.dtype)                   # 1 or slope
        # the cache is the kept buffer: backward (and double_backward) must come before
        # the next forward, as they must anyway
        self.local_slope = local_slope
        return x * local_slope


class FastReLU(FastLeakyReLU, ReLU):
    """ReLU with FastLeakyReLU's forward (one pass: `greater`)."""

"""Layers with handwritten forward and backward passes.

Shape letters used in the comments of npgan:
    B = batch size, Z = latent size, H = a hidden width, P = pixels (784),
    in / out = a layer's input and output widths.

The contract of every layer (see Layer):
  forward(x)  computes y and caches exactly what backward needs (one slot);
  backward(dout) consumes that cache, returns dx = dL/dx and ADDS (+=) into the
    parameter gradients, so two forward/backward pairs before one optimizer step
    sum their gradients (D's real and fake halves do that);
  zero_grad() resets the gradients; the optimizer never does it silently.
So the order is always: forward -> backward, then the next forward.

The double backward (WGAN-GP's gradient penalty, docs/wgan_gp.md): a penalty P on
D's input gradient dx needs dP/dtheta *through the backward pass itself*.
  backward(dout, create_graph=True) also keeps what the second pass needs;
  double_backward(g_dx), with g_dx = dP/d(dx), is the backward of that backward:
    it ADDS into the parameter gradients the part of dP/dtheta that enters through
    this layer's backward line, and returns g_dout = dP/d(dout), for the layer above.
It runs in the forward order (input side first), because backward ran in reverse.
Layers with it: Linear, LeakyReLU/ReLU, Conv2d, Reshape/Flatten, Sequential,
Conditional; the others raise NotImplementedError naming themselves.
"""
from __future__ import annotations

import math

from npgan.backend import astype, column_major, get_array_module, into, reuse


class Parameter:
    """A trainable array and its gradient of the same shape and dtype (PyTorch's
    `param.data` / `param.grad`). The optimizer updates `data` in place."""

    def __init__(self, data):
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Layer:
    """Base class: parameters, buffers, train/eval mode, gradient reset, the cache.

    Every layer's backward(dout, param_grads=True, input_grad=True) consumes the cache
    of its forward and returns dx. param_grads=False: a frozen layer, no parameter
    gradients (D in the G-update). input_grad=False: nobody needs dx (D's images, G's
    noise), so the layer returns None and skips computing it.

    Buffers are non-trainable state that a checkpoint must keep (BatchNorm's running
    statistics): a layer with buffers overrides named_buffers().
    """

    training = True
    # True for layers that only reshape (Reshape, Flatten): a dx that reaches only
    # reshapes on its way to the input is not needed either (see Sequential.backward)
    shape_only = False

    def train(self, mode=True):
        """Training mode (the default); eval() switches layers like BatchNorm/Dropout."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def named_buffers(self) -> list[tuple[str, object]]:
        return []

    def parameters(self) -> list[Parameter]:
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Parameter)]

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def _need(self, name):
        """Take the cached value `name`, or explain why it is missing.

        The cache is consumed: a second backward without a new forward is an error,
        because it would silently reuse activations of an older batch.
        """
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called without a matching forward(): "
                f"the cache '{name}' is empty. Call forward(x) before each backward(dout)."
            )
        setattr(self, name, None)
        return value

    def _need_graph(self, name):
        """_need for double_backward: the value that backward(create_graph=True) kept."""
        if getattr(self, name, None) is None:
            raise RuntimeError(
                f"{type(self).__name__}.double_backward() called without a matching "
                f"backward(dout, create_graph=True): the cache '{name}' is empty. The order "
                f"is forward(x), backward(dout, create_graph=True), double_backward(g_dx)."
            )
        return self._need(name)

    def double_backward(self, g_dx):
        """The backward of backward (see the module doc): g_dx = dP/d(dx), like x ->
        g_dout = dP/d(dout), like the output; adds dP/dtheta into the parameter grads."""
        raise NotImplementedError(
            f"{type(self).__name__} has no double_backward, so a gradient penalty cannot "
            f"pass through it"
        )

    def __call__(self, x):
        return self.forward(x)


def has_double_backward(layer) -> bool:
    """True if `layer` overrides Layer.double_backward (containers check their layers)."""
    return type(layer).double_backward is not Layer.double_backward


def require_double_backward(model, where=""):
    """Raise NotImplementedError naming the first layer of `model` (a Sequential or a
    single layer) that has no double_backward, before any work is done."""
    for i, layer in enumerate(getattr(model, "layers", [model])):
        if hasattr(layer, "layers"):
            require_double_backward(layer, f"{where}{i}.")
        elif not has_double_backward(layer):
            raise NotImplementedError(
                f"layer {where}{i}, {layer!r}, has no double_backward: WGAN-GP's gradient "
                f"penalty cannot pass through it. A WGAN-GP critic must not use BatchNorm "
                f"(it mixes the samples of a batch; Gulrajani et al. 2017, section 4) nor "
                f"Dropout, Sigmoid or Tanh; build D from Linear, LeakyReLU, Conv2d and "
                f"Reshape/Flatten (the DCGAN critic: build_dcgan_discriminator(..., "
                f"batchnorm=False)), or use --loss wgan or hinge."
            )


# ---------------------------------------------------------------------------- Linear
class Linear(Layer):
    """Fully connected: y = x @ W.T + b.

    x: (B, in) -> y: (B, out).   W: (out, in), b: (out,)   [PyTorch layout]
    backward:  dx = dout @ W    dW += dout.T @ x    db += sum_B dout
    double_backward (of dx = dout @ W):  dW += dout.T @ g_dx    g_dout = g_dx @ W.T
    init "default": PyTorch's nn.Linear, W and b ~ U(-1/sqrt(in), 1/sqrt(in));
    init "normal": W ~ N(0, 0.02), b = 0 (the DCGAN paper's choice).
    reference: https://pytorch.org/docs/stable/generated/torch.nn.Linear.html
    """

    def __init__(self, in_features, out_features, backend, init="default"):
        if init == "default":
            bound = 1.0 / math.sqrt(in_features)
            W = backend.uniform(-bound, bound, (out_features, in_features))
            b = backend.uniform(-bound, bound, (out_features,))
        elif init == "normal":
            W = backend.randn((out_features, in_features))
            W *= 0.02
            b = backend.zeros((out_features,))
        else:
            raise ValueError(f"unknown init {init!r}; use 'default' or 'normal'")
        self.in_features, self.out_features = in_features, out_features
        self.W = Parameter(W)
        self.b = Parameter(b)
        self.x = None
        self._dW = None                             # reused buffer for dout.T @ x (see backward)
        self.dout = None                            # kept by backward(create_graph=True)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}) expects input of shape "
                f"(B, {self.in_features}), got {tuple(x.shape)}"
            )
        if x.dtype != self.W.data.dtype:
            raise TypeError(
                f"{self!r} holds {self.W.data.dtype} weights but got a {x.dtype} input; "
                f"make inputs with the same backend (Backend.asarray casts them)"
            )
        self.x = x                                  # (B, in), needed for dW
        y = x @ self.W.data.T                       # (B, in) @ (in, out) -> (B, out)
        y += self.b.data                            # in place: no second (B, out) array
        return y

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """param_grads=False: input gradient only (a frozen layer; see gan.g_step).
        input_grad=False: parameter gradients only, returns None (x needs no gradient).
        create_graph=True: also keep dout, which double_backward needs."""
        xp = get_array_module(dout)
        x = self._need("x")
        if create_graph:
            self.dout = dout                        # (B, out): dx = dout @ W is linear in W
        if param_grads:
            self._dW = reuse(self._dW, self.W.data)
            # in the forward pass this was: y = x @ W.T + b, so
            # (dW lands in a buffer we reuse: no weight-sized allocation per step)
            dW = into(self._dW, "matmul", dout.T, x)  # (out, B) @ (B, in) -> (out, in)
            self.W.grad += dW
            self.b.grad += xp.sum(dout, axis=0)     # (B, out) -> (out,)
        if not input_grad:
            return None                             # skips the largest product of D's update
        if column_major(x):
            # dx laid out like x: behind a convolution, x is its (C, H, W, B) output seen
            # as (B, C*H*W), and a dx in the same layout flows back through BatchNorm and
            # the convolutions without a copy (-9 ms per DCGAN step, docs/performance.md)
            return (self.W.data.T @ dout.T).T       # ((in, out) @ (out, B)).T -> (B, in)
        return dout @ self.W.data                   # (B, out) @ (out, in) -> (B, in)

    def double_backward(self, g_dx):
        """g_dx = dP/d(dx), (B, in) -> g_dout = dP/d(dout), (B, out); adds dP/dW.
        b gets nothing: it is not in backward's lines (dx = dout @ W)."""
        dout = self._need_graph("dout")
        # in backward this was: dx = dout @ W, a product: one term per factor
        self.W.grad += dout.T @ g_dx                # (out, B) @ (B, in) -> (out, in)
        return g_dx @ self.W.data.T                 # (B, in) @ (in, out) -> (B, out)

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


# ------------------------------------------------------------------- activations
class LeakyReLU(Layer):
    """y = x if x > 0 else slope * x, elementwise; (B, n) -> (B, n).

    backward: dx = dout * (1 if x > 0 else slope).
    double_backward: g_dout = g_dx * (1 if x > 0 else slope): the local slope is
    piecewise constant in x, so the double backward adds no term through x.
    We cache that local slope as an array of x's dtype (never an int mask, which
    would upcast float32 to float64), so forward and backward are one multiply each.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html
    """

    def __init__(self, slope=0.2):
        self.slope = slope
        self.local_slope = None
        self._slope_buffer = None                           # reused by every forward
        self.graph_slope = None                             # kept by backward(create_graph=True)

    def forward(self, x):
        # the cache lives in a buffer we reuse (the cache is single-slot anyway),
        # so a training step allocates only the output here
        self._slope_buffer = reuse(self._slope_buffer, x)
        local_slope = into(self._slope_buffer, "greater", x, 0.0)  # 1.0 if x > 0, else 0.0
        if 0.0 < self.slope <= 1.0:         # max(1, slope) = 1 and max(0, slope) = slope:
            into(local_slope, "maximum", local_slope, self.slope)   # one pass (ReLU: none)
        elif self.slope != 0.0:      # a slope outside [0, 1]: (m - 1) * -slope + m, exact
            local_slope -= 1.0                              # 0 if x > 0, else -1
            local_slope *= -self.slope                      # 0, or slope
            local_slope += astype(x > 0, x.dtype)           # 1 or slope (a temporary: rare)
        self.local_slope = local_slope                      # (B, n): dy/dx elementwise
        return x * local_slope

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        local_slope = self._need("local_slope")
        if create_graph:
            # the same mask, for the second pass. It lives in the forward's reused buffer:
            # double_backward must come before the next forward (as backward must)
            self.graph_slope = local_slope
        return dout * local_slope if input_grad else None   # new array: dout untouched

    def double_backward(self, g_dx):
        """in backward this was: dx = dout * local_slope, linear in dout."""
        return g_dx * self._need_graph("graph_slope")       # (B, n)

    def __repr__(self):
        return f"LeakyReLU({self.slope})"


class ReLU(LeakyReLU):
    """y = max(x, 0); backward dx = dout * (x > 0). A LeakyReLU with slope 0."""

    def __init__(self):
        super().__init__(slope=0.0)

    def __repr__(self):
        return "ReLU()"


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5, which never
    overflows (the bare formula's exp(-x) overflows float32 at x = -100).

    backward: dx = dout * y * (1 - y)   -- so we cache the output y, not x.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html
    """

    def __init__(self):
        self.y = None

    def forward(self, x):
        xp = get_array_module(x)
        y = 0.5 * xp.tanh(0.5 * x) + 0.5
        self.y = y                              # (B, n): enough for the derivative
        return y

    def backward(self, dout, param_grads=True, input_grad=True):
        y = self._need("y")
        return dout * y * (1.0 - y) if input_grad else None

    def __repr__(self):
        return "Sigmoid()"


class Tanh(Layer):
    """y = tanh(x); backward dx = dout * (1 - y**2), so we cache the output y.
    reference: https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html
    """

    def __init__(self):
        self.y = None

    def forward(self, x):
        xp = get_array_module(x)
        self.y = xp.tanh(x)                     # (B, n)
        return self.y

    def backward(self, dout, param_grads=True, input_grad=True):
        y = self._need("y")
        if not input_grad:
            return None
        dx = 1.0 - y * y                        # (B, n): dy/dx
        dx *= dout                              # in place: one (B, n) array fewer
        return dx

    def __repr__(self):
        return "Tanh()"


# -------------------------------------------------------------------- Sequential
class Sequential(Layer):
    """Layers applied in order: x -> layers[0] -> layers[1] -> ... -> y."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """input_grad=False: the caller needs no dx (D's images, G's noise), so the first
        layer that computes skips its dx (Linear: the (B, H) @ (H, P) product), and so do
        the reshapes before it (D's Reshape before its first Conv2d); returns None.
        create_graph=True: every layer keeps what its double_backward needs; a layer
        without one raises NotImplementedError before any work is done."""
        if create_graph:
            require_double_backward(self)
        graph = {"create_graph": True} if create_graph else {}
        # backward: go in the reverse order of the forward pass. Layer i's dx is needed
        # if the caller wants dx, or if a layer that computes lies below it.
        for i in range(len(self.layers) - 1, -1, -1):
            needed = input_grad or create_graph or \
                not all(below.shape_only for below in self.layers[:i])
            dout = self.layers[i].backward(dout, param_grads=param_grads, input_grad=needed,
                                           **graph)
        return dout

    def double_backward(self, g_dx):
        """g_dx = dP/d(dx) at the input -> dP/d(dout) at the output; adds dP/dtheta.
        The backward pass ran from the last layer to the first, so its backward runs
        from the first to the last: the forward order."""
        for layer in self.layers:
            g_dx = layer.double_backward(g_dx)
        return g_dx

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self):
        """('0.W', p), ('0.b', p), ('2.W', p), ...: the index of the layer, then the name."""
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.named_parameters()]

    def named_buffers(self):
        return [(f"{i}.{name}", b) for i, layer in enumerate(self.layers)
                for name, b in layer.named_buffers()]

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

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
Layers with it say so (supports_double_backward = True): Linear, LeakyReLU/ReLU,
Conv2d, Reshape/Flatten, Sequential, Conditional; the others raise NotImplementedError
naming themselves.

This is the reference code, written to be read. Training runs the same math through
the twins in npgan/fast/ (buffers, layouts, threads), tested to give the same numbers.
"""
from __future__ import annotations

import math

from npgan.backend import astype, get_array_module


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
    """Base class of every layer: the contract, parameters, train/eval mode, the cache.

    A layer implements:
      forward(x) -> y, caching exactly what backward needs (one slot);
      backward(dout, param_grads=True, input_grad=True, create_graph=False) -> dx,
        dx = dL/dx with x's shape and dtype, and ADDS (+=) into the parameter grads.
        param_grads=False: a frozen layer, no parameter gradients (D in the G-update).
        input_grad=False: nobody needs dx (D's images, G's noise): returns None.
        create_graph=True: also keep what double_backward needs; a layer without
        one raises NotImplementedError (call self._refuse_create_graph first);
      double_backward(g_dx) -> g_dout, only where supports_double_backward = True.
    Buffers are non-trainable state that a checkpoint must keep (BatchNorm's running
    statistics): a layer with buffers overrides named_buffers().
    """

    training = True
    # True where the layer implements double_backward (WGAN-GP's penalty passes through)
    supports_double_backward = False
    # True for layers that only reshape (Reshape, Flatten): a dx that reaches only
    # reshapes on its way to the input is not needed either (see Sequential.backward)
    shape_only = False

    def forward(self, x):
        """x -> y; caches what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """dout = dL/dy (like y) -> dx = dL/dx (like x), or None if not input_grad."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement backward(dout, param_grads=True, "
            f"input_grad=True, create_graph=False)"
        )

    def double_backward(self, g_dx):
        """The backward of backward (see the module doc): g_dx = dP/d(dx), like x ->
        g_dout = dP/d(dout), like the output; adds dP/dtheta into the parameter grads."""
        raise NotImplementedError(
            f"{type(self).__name__} has no double_backward, so a gradient penalty cannot "
            f"pass through it"
        )

    def _refuse_create_graph(self, create_graph):
        """For layers without double_backward: backward(create_graph=True) is an error."""
        if create_graph:
            raise NotImplementedError(
                f"{type(self).__name__}.backward(create_graph=True): this layer has no "
                f"double_backward, so a gradient penalty cannot pass through it"
            )

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

    def __call__(self, x):
        return self.forward(x)


def has_double_backward(layer) -> bool:
    """True if `layer` declares a double_backward (containers check their layers)."""
    return type(layer).supports_double_backward


def without_double_backward(model, where=""):
    """(its index path, e.g. "0.3", and the layer): the first layer of `model` (a
    Sequential or a single layer) without a double_backward; None when every layer has one."""
    for i, layer in enumerate(getattr(model, "layers", [model])):
        if hasattr(layer, "layers"):
            found = without_double_backward(layer, f"{where}{i}.")
            if found:
                return found
        elif not has_double_backward(layer):
            return f"{where}{i}", layer
    return None


def require_double_backward(model):
    """Raise NotImplementedError naming the first layer of `model` that has no
    double_backward, before any work is done (WGAN-GP's advice; R1 has its own)."""
    found = without_double_backward(model)
    if found:
        where, layer = found
        raise NotImplementedError(
            f"layer {where}, {layer!r}, has no double_backward: WGAN-GP's gradient "
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

    supports_double_backward = True

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
        self.dout = None                            # kept by backward(create_graph=True)

    def check_input(self, x):
        """x must be (B, in) in the weights' dtype; else a clear error."""
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

    def forward(self, x):
        self.check_input(x)
        self.x = x                                  # (B, in), needed for dW
        return x @ self.W.data.T + self.b.data      # (B, in) @ (in, out) + (out,) -> (B, out)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """param_grads=False: input gradient only (a frozen layer; see gan.g_step).
        input_grad=False: parameter gradients only, returns None (x needs no gradient).
        create_graph=True: also keep dout, which double_backward needs."""
        xp = get_array_module(dout)
        x = self._need("x")
        if create_graph:
            self.dout = dout                        # (B, out): dx = dout @ W is linear in W
        # in the forward pass this was: y = x @ W.T + b, so
        if param_grads:
            self.W.grad += dout.T @ x               # (out, B) @ (B, in) -> (out, in)
            self.b.grad += xp.sum(dout, axis=0)     # (B, out) -> (out,)
        if not input_grad:
            return None                             # skips the largest product of D's update
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

    supports_double_backward = True

    def __init__(self, slope=0.2):
        self.slope = slope
        self.local_slope = None
        self.graph_slope = None                             # kept by backward(create_graph=True)

    def forward(self, x):
        mask = astype(x > 0, x.dtype)                       # (B, n): 1.0 if x > 0, else 0.0
        self.local_slope = mask + self.slope * (1.0 - mask)  # dy/dx: 1, or slope (exactly)
        return x * self.local_slope

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        local_slope = self._need("local_slope")
        if create_graph:
            self.graph_slope = local_slope                  # the same mask, for the second pass
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

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
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

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        y = self._need("y")
        return dout * (1.0 - y * y) if input_grad else None

    def __repr__(self):
        return "Tanh()"


# -------------------------------------------------------------------- Sequential
class Sequential(Layer):
    """Layers applied in order: x -> layers[0] -> layers[1] -> ... -> y.
    Its double_backward needs one in every layer (checked by backward(create_graph=True))."""

    supports_double_backward = True

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
        # backward: go in the reverse order of the forward pass. Layer i's dx is needed
        # if the caller wants dx, or if a layer that computes lies below it.
        for i in range(len(self.layers) - 1, -1, -1):
            needed = input_grad or create_graph or \
                not all(below.shape_only for below in self.layers[:i])
            dout = self.layers[i].backward(dout, param_grads=param_grads, input_grad=needed,
                                           create_graph=create_graph)
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

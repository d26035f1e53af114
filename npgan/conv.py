"""Convolutions for the DCGAN, written as one matrix product each (im2col / col2im).

Extra shape letters: C = channels, k = kernel size, s = stride, p = padding,
OH, OW = output height and width, L = OH * OW windows per image.

A k x k convolution is one matrix product once every k x k window of the input is a
column of a matrix `cols` (im2col). Its input gradient adds the columns back onto the
image (col2im, the adjoint of im2col). A transposed convolution is that input gradient
used as a forward pass, so its backward is a plain convolution: both layers call the
same three functions, conv2d, conv2d_input_grad and conv2d_weight_grad.

cols is (C*k*k, L*B): rows over (c, i, j), as in W.reshape(out, C*k*k), columns over
(oh, ow, b), the batch last. So the functions below see images as (C, H, W, B), and a
product's (out, L*B) result is the output's (out, OH, OW, B) as it stands.
reference: https://cs231n.github.io/convolutional-networks/#conv (im2col)
"""
from __future__ import annotations

import math

from npgan.backend import get_array_module, permute_dims, zeros
from npgan.layers import Layer, Parameter


def conv_out_size(n, k, s, p):
    """Windows along an axis of length n: (n + 2p - k) // s + 1."""
    if n + 2 * p < k:
        raise ValueError(f"input size {n} (+ 2 * padding {p}) is smaller than the kernel {k}")
    return (n + 2 * p - k) // s + 1


def offset(i, s, n):
    """Index i, i+s, ..., i+s*(n-1): offset i inside each of n windows with stride s.
    (The stop is exact: the Array API leaves out-of-bounds slice stops unspecified.)"""
    return slice(i, i + s * (n - 1) + 1, s)


def im2col(x, k, s, p):
    """Every k x k window of x as one column: x (B, C, H, W) -> cols (C*k*k, L*B).

        cols[(c, i, j), (oh, ow, b)] = x_pad[b, c, oh*s + i, ow*s + j]

    Pixel (i, j) of every window at once is one strided slice of the padded image.
    """
    xp = get_array_module(x)
    B, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = zeros((C, H + 2 * p, W + 2 * p, B), like=x)               # zero border
    x_pad[:, p:p + H, p:p + W, :] = permute_dims(x, (1, 2, 3, 0))      # (C, H, W, B)
    patches = [x_pad[:, offset(i, s, OH), offset(j, s, OW), :]         # (C, OH, OW, B)
               for i in range(k) for j in range(k)]
    cols = xp.stack(patches, axis=1)                                   # (C, k*k, OH, OW, B)
    return xp.reshape(cols, (C * k * k, OH * OW * B))


def col2im(cols, x_shape, k, s, p):
    """The adjoint of im2col: add every column back onto its window.

    cols (C*k*k, L*B) -> x (B, C, H, W), with x_shape = (B, C, H, W); where windows
    overlap (k > s) their contributions sum, which is what the chain rule asks for:
        x[b, c, oh*s + i - p, ow*s + j - p] += cols[(c, i, j), (oh, ow, b)]
    (a window's part that lies in the padding is dropped: the padding is no input).
    """
    xp = get_array_module(cols)
    B, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = xp.reshape(cols, (C, k * k, OH, OW, B))
    x_pad = zeros((C, H + 2 * p, W + 2 * p, B), like=cols)
    for i in range(k):
        for j in range(k):   # im2col took: x_pad[:, offset(i, s, OH), offset(j, s, OW), :]
            x_pad[:, offset(i, s, OH), offset(j, s, OW), :] += cols[:, i * k + j, ...]
    x = x_pad[:, p:p + H, p:p + W, :]                                  # drop the border
    return permute_dims(x, (3, 0, 1, 2))                               # (B, C, H, W)


# --------------------------------------------------------- the convolution as matmuls
def channel_rows(a):
    """(B, C, H, W) -> (C, H*W*B): one row per channel, the layout of cols' columns."""
    xp = get_array_module(a)
    return xp.reshape(permute_dims(a, (1, 2, 3, 0)), (a.shape[1], -1))


def conv2d(x, W, s, p):
    """y = conv(x, W), no bias: x (B, C, H, W), W (out, C, k, k) -> y (B, out, OH, OW).

    Returns y and cols = im2col(x), (C*k*k, L*B), which the weight gradient needs.
    """
    xp = get_array_module(x)
    (B, _, H, Wd), (out, _, k, _) = x.shape, W.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(Wd, k, s, p)
    cols = im2col(x, k, s, p)                                      # (C*k*k, L*B)
    y = xp.reshape(W, (out, -1)) @ cols                            # (out, C*k*k) @ cols
    y = xp.reshape(y, (out, OH, OW, B))                            # (out, L*B) unflattened
    return permute_dims(y, (3, 0, 1, 2)), cols                     # (B, out, OH, OW)


def conv2d_input_grad(dy, W, x_shape, s, p):
    """dL/dx for y = conv2d(x, W): dy (B, out, OH, OW) -> dx (x_shape).

    in conv2d this was: y = Wm @ cols, so dcols = Wm.T @ dy and dx = col2im(dcols).
    """
    xp = get_array_module(dy)
    out, k = W.shape[0], W.shape[2]
    Wm = xp.reshape(W, (out, -1))                                  # (out, C*k*k)
    dcols = Wm.T @ channel_rows(dy)                    # (C*k*k, out) @ (out, L*B)
    return col2im(dcols, x_shape, k, s, p)                         # (B, C, H, W)


def conv2d_weight_grad(dy, cols, w_shape):
    """dL/dW for y = conv2d(x, W): dy (B, out, OH, OW), cols (C*k*k, L*B) -> (out, C, k, k).

    in conv2d this was: y = Wm @ cols, so dWm = dy @ cols.T.
    """
    xp = get_array_module(dy)
    dW = channel_rows(dy) @ cols.T                     # (out, L*B) @ (L*B, C*k*k)
    return xp.reshape(dW, w_shape)


# --------------------------------------------------------------------------- layers
def _init_params(layer, w_shape, n_bias, fan_in, backend, init):
    """PyTorch's default (kaiming_uniform, a=sqrt(5)): W, b ~ U(-1/sqrt(fan_in), +);
    "normal": W ~ N(0, 0.02), b = 0, as in the DCGAN paper."""
    if init == "default":
        bound = 1.0 / math.sqrt(fan_in)
        W, b = backend.uniform(-bound, bound, w_shape), backend.uniform(-bound, bound, (n_bias,))
    elif init == "normal":
        W, b = backend.randn(w_shape), backend.zeros((n_bias,))
        W *= 0.02
    else:
        raise ValueError(f"unknown init {init!r}; use 'default' or 'normal'")
    layer.W, layer.b = Parameter(W), Parameter(b)


def _check_sizes(k, s, p):
    for name, value, low in (("kernel_size", k, 1), ("stride", s, 1), ("padding", p, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low} (square kernels only), got {value!r}")


def check_input(layer, x, channels):
    """Input (B, channels, H, W) in the dtype of the layer's weights, or a clear error."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{layer!r} expects input of shape (B, {channels}, H, W), "
                         f"got {tuple(x.shape)}")
    if x.dtype != layer.W.data.dtype:
        raise TypeError(f"{layer!r} holds {layer.W.data.dtype} weights but got a {x.dtype} "
                        f"input; make inputs with the same backend (Backend.asarray casts them)")


def add_bias(y, b):
    """y + b on every pixel: y (B, out, OH, OW), b (out,) broadcast."""
    xp = get_array_module(y)
    return y + xp.reshape(b, (1, b.shape[0], 1, 1))


class Conv2d(Layer):
    """2-D convolution (cross-correlation, as in PyTorch), square kernel k, stride s, padding p.

    x: (B, in, H, W) -> y: (B, out, OH, OW), OH = (H + 2p - k) // s + 1.
    W: (out, in, k, k), b: (out,)   [PyTorch layout]
    forward:  y = W.reshape(out, in*k*k) @ im2col(x) + b
    backward: dW += dy @ cols.T   db += sum_{B,OH,OW} dy   dx = col2im(Wm.T @ dy)
    double_backward (of dx = conv2d_input_grad(dy, W), linear in dy and in W):
              g_dy = conv2d(g_dx, W)    dW += dy @ im2col(g_dx).T
    reference: https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html
    """

    supports_double_backward = True

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, *, backend,
                 init="default"):
        _check_sizes(kernel_size, stride, padding)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.k, self.s, self.p = kernel_size, stride, padding
        _init_params(self, (out_ch, in_ch, kernel_size, kernel_size), out_ch,
                     in_ch * kernel_size * kernel_size, backend, init)
        self.cols, self.x_shape = None, None
        self.dout = None                             # kept by backward(create_graph=True)

    def forward(self, x):
        check_input(self, x, self.in_ch)
        y, cols = conv2d(x, self.W.data, self.s, self.p)               # (B, out, OH, OW)
        # we keep cols, not x: dW needs exactly this matrix, and gathering it again would
        # cost a second im2col
        self.cols, self.x_shape = cols, tuple(x.shape)
        return add_bias(y, self.b.data)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """input_grad=False: parameter gradients only, returns None (D's images need no dx).
        create_graph=True: also keep dout for double_backward."""
        xp = get_array_module(dout)
        cols, x_shape = self._need("cols"), self._need("x_shape")
        if create_graph:
            self.dout = dout                         # (B, out, OH, OW)
        if param_grads:
            self.W.grad += conv2d_weight_grad(dout, cols, self.W.shape)   # (out, in, k, k)
            self.b.grad += xp.sum(dout, axis=(0, 2, 3))                   # (out,)
        if not input_grad:
            return None                              # skips a col2im and its matrix product
        return conv2d_input_grad(dout, self.W.data, x_shape, self.s, self.p)  # (B, in, H, W)

    def double_backward(self, g_dx):
        """g_dx (B, in, H, W) -> g_dout (B, out, OH, OW); adds dP/dW (b gets nothing)."""
        dout = self._need_graph("dout")
        # in backward this was: dx = col2im(Wm.T @ dy), whose adjoint in dy is the
        # convolution itself; its im2col of g_dx is also the matrix that dW needs
        g_dout, cols_g = conv2d(g_dx, self.W.data, self.s, self.p)        # (B, out, OH, OW)
        self.W.grad += conv2d_weight_grad(dout, cols_g, self.W.shape)     # (out, in, k, k)
        return g_dout

    def __repr__(self):
        return f"Conv2d({self.in_ch}, {self.out_ch}, k={self.k}, s={self.s}, p={self.p})"


class ConvTranspose2d(Layer):
    """Transposed convolution: the input gradient of a Conv2d, used as a forward pass.

    x: (B, in, H, W) -> y: (B, out, OH, OW), OH = (H - 1) * s - 2p + k + output_padding.
    W: (in, out, k, k), b: (out,)   [PyTorch layout; PyTorch takes fan_in = out*k*k]
    W is read as the weight of a Conv2d from `out` to `in` channels, whose input gradient
    maps (B, in, H, W) to (B, out, OH, OW); so, with Conv2d's helpers:
    forward:  y = conv2d_input_grad(x, W) + b
    backward: dx, cols = conv2d(dy, W)    dW += conv2d_weight_grad(x, cols)    db += sum dy
    reference: https://pytorch.org/docs/stable/generated/torch.nn.ConvTranspose2d.html
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, output_padding=0, *,
                 backend, init="default"):
        _check_sizes(kernel_size, stride, padding)
        if not 0 <= output_padding < stride:
            raise ValueError(f"output_padding must be in [0, stride={stride}), "
                             f"got {output_padding}")
        self.in_ch, self.out_ch = in_ch, out_ch
        self.k, self.s, self.p, self.output_padding = kernel_size, stride, padding, output_padding
        _init_params(self, (in_ch, out_ch, kernel_size, kernel_size), out_ch,
                     out_ch * kernel_size * kernel_size, backend, init)
        self.x = None

    def out_size(self, n):
        """(n - 1) * s - 2p + k + output_padding: a side that a Conv2d(k, s, p) maps to n."""
        size = (n - 1) * self.s - 2 * self.p + self.k + self.output_padding
        if size < 1:
            raise ValueError(f"{self!r} maps input size {n} to an empty output ({size})")
        return size

    def output_shape(self, x):
        """(B, out, OH, OW) for an input x (B, in, H, W)."""
        B, _, H, W = x.shape
        return (B, self.out_ch, self.out_size(H), self.out_size(W))

    def forward(self, x):
        check_input(self, x, self.in_ch)
        self.x = x                                                 # (B, in, H, W), for dW
        y = conv2d_input_grad(x, self.W.data, self.output_shape(x), self.s, self.p)
        return add_bias(y, self.b.data)                            # (B, out, OH, OW)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        xp = get_array_module(dout)
        x = self._need("x")
        if not (param_grads or input_grad):
            return None
        # in the forward pass this was: y = conv2d_input_grad(x, W), a linear map of x whose
        # adjoint is the convolution itself: dx = conv2d(dout, W). Its im2col, cols, is
        # also what dW needs, so dx costs only one more product here.
        dx, cols = conv2d(dout, self.W.data, self.s, self.p)          # (B, in, H, W)
        if param_grads:
            self.W.grad += conv2d_weight_grad(x, cols, self.W.shape)  # (in, out, k, k)
            self.b.grad += xp.sum(dout, axis=(0, 2, 3))               # (out,)
        return dx if input_grad else None

    def __repr__(self):
        op = f", output_padding={self.output_padding}" if self.output_padding else ""
        return (f"ConvTranspose2d({self.in_ch}, {self.out_ch}, k={self.k}, s={self.s}, "
                f"p={self.p}{op})")


class Reshape(Layer):
    """(B, *in) -> (B, *shape), e.g. Reshape((1, 28, 28)): (B, 784) -> (B, 1, 28, 28).
    backward: dx = dout reshaped back to the input's shape.
    double_backward: g_dout = g_dx reshaped to the output's shape."""

    shape_only = True       # moves no numbers: Sequential may look past it (see there)
    supports_double_backward = True

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.x_shape = None

    def forward(self, x):
        xp = get_array_module(x)
        n, expected = math.prod(x.shape[1:]), math.prod(self.shape)
        if -1 not in self.shape and n != expected:
            raise ValueError(f"{self!r} cannot reshape an input of shape {tuple(x.shape)}: "
                             f"{n} values per item, expected {expected}")
        self.x_shape = tuple(x.shape)                              # all backward needs
        return xp.reshape(x, (x.shape[0], *self.shape))

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        x_shape = self._need("x_shape")
        return get_array_module(dout).reshape(dout, x_shape) if input_grad else None

    def double_backward(self, g_dx):
        """backward only reshaped dout, so its backward reshapes g_dx the forward way."""
        return get_array_module(g_dx).reshape(g_dx, (g_dx.shape[0], *self.shape))

    def __repr__(self):
        return f"Reshape({self.shape})"


class Flatten(Reshape):
    """(B, C, H, W) -> (B, C*H*W), row-major (PyTorch's nn.Flatten)."""

    def __init__(self):
        super().__init__((-1,))

    def __repr__(self):
        return "Flatten()"

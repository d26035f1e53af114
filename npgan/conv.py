"""Convolutions for the DCGAN, written as one matrix product each (im2col / col2im).

Extra shape letters: C = channels, k = kernel size, s = stride, p = padding,
OH, OW = output height and width, L = OH * OW windows per image.

A k x k convolution is one matrix product once every k x k window of the input is a
column of a matrix `cols` (im2col). Its input gradient adds the columns back onto the
image (col2im, the adjoint of im2col). A transposed convolution is that input gradient
used as a forward pass, so its backward is a plain convolution: both layers call the
same three functions, conv2d, conv2d_input_grad and conv2d_weight_grad.

Layout, chosen by measurement (docs/performance.md): cols is (C*k*k, L*B), rows over
(c, i, j) as in W.reshape(out, C*k*k), columns over (oh, ow, b) with the batch fastest.
The products are then one plain 2-D matmul each (BLAS does not care about the column
order), and the gathers and scatters move runs of B numbers instead of runs of OW (7 in
the DCGAN), which made col2im 3x faster. conv2d's output, laid out (C, OH, OW, B) in
memory, is returned as a (B, C, OH, OW) view, so the next layer's im2col copies it
without transposing.
NumPy and CuPy gather with one strided view (as_strided) and one copy into a buffer the
layer reuses at every step, and scatter phase by phase: the s*s interleaved sub-grids of
the image, each summed in a small contiguous buffer and written out once. Namespaces
without strided views (the Array API has none; array-api-strict stands in for them in
the tests) take a generic path: one slice per kernel offset, then stack / add; the tests
check both against a plain loop over pixels.
reference: https://cs231n.github.io/convolutional-networks/#conv (im2col)
"""
from __future__ import annotations

import math
from typing import NamedTuple

from npgan.backend import get_array_module, host, into
from npgan.layers import Layer, Parameter


def _zeros(shape, like):
    """Zeros of like's dtype on like's device. The Array API names the device; NumPy
    (before 2.0) and CuPy take no device argument and use their current device."""
    xp = get_array_module(like)
    if xp is host or getattr(xp, "__name__", "") == "cupy":
        return xp.zeros(shape, dtype=like.dtype)
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def conv_out_size(n, k, s, p):
    """Windows along an axis of length n: (n + 2p - k) // s + 1."""
    if n + 2 * p < k:
        raise ValueError(f"input size {n} (+ 2 * padding {p}) is smaller than the kernel {k}")
    return (n + 2 * p - k) // s + 1


def _offset(i, s, n):
    """Index i, i+s, ..., i+s*(n-1): offset i inside each of n windows with stride s.
    (The stop is exact: the Array API leaves out-of-bounds slice stops unspecified.)"""
    return slice(i, i + s * (n - 1) + 1, s)


def _as_strided(xp):
    """NumPy's or CuPy's as_strided, or None: the Array API has no strided views, so a
    namespace like array-api-strict takes the generic path (one slice per offset)."""
    if xp is host:
        return host.lib.stride_tricks.as_strided
    if getattr(xp, "__name__", "") == "cupy":
        return xp.lib.stride_tricks.as_strided
    return None


def _scratch(buffers, name, shape, like):
    """buffers[name] if it has this shape and like's dtype and device, else new zeros
    (kept in buffers for the next call). buffers=None: new zeros, nothing kept."""
    buf = None if buffers is None else buffers.get(name)
    if (buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != like.dtype
            or getattr(buf, "device", None) != getattr(like, "device", None)):
        buf = _zeros(shape, like)
        if buffers is not None:
            buffers[name] = buf
    return buf


def im2col(x, k, s, p, buffers=None):
    """Every k x k window of x as one column: x (B, C, H, W) -> cols (C*k*k, L*B).

        cols[(c, i, j), (oh, ow, b)] = x_pad[b, c, oh*s + i, ow*s + j]

    Row c*k*k + i*k + j holds pixel (i, j) of the window in channel c, the order of
    W.reshape(out, C*k*k); column (oh*OW + ow)*B + b is window (oh, ow) of image b.
    The batch runs fastest (layout "CHWB"), so that every copy and add below moves runs
    of B contiguous numbers: with (b, oh, ow) columns the runs are OW = 7 long, and
    col2im's adds cost 3x more than they do now (measured, see docs/performance.md).
    On NumPy and CuPy that is one strided view of the padded x (nothing copied) and one
    copy into cols; `buffers` (a dict the caller keeps) makes both arrays reused across
    calls. The returned cols is then one of those buffers: the caller must be done with
    it before the next call with the same dict.
    """
    xp = get_array_module(x)
    as_strided = _as_strided(xp)
    if as_strided is None:
        return _im2col_slices(x, k, s, p)
    B, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = _scratch(buffers, "im2col_pad", (C, H + 2 * p, W + 2 * p, B), x)  # border: 0
    x_pad[:, p:p + H, p:p + W, :] = xp.permute_dims(x, (1, 2, 3, 0))   # only the inside
    sC, sH, sW, sB = x_pad.strides                                       # in bytes
    windows = as_strided(x_pad, shape=(C, k, k, OH, OW, B),              # a view: no copy
                         strides=(sC, sH, sW, s * sH, s * sW, sB))
    cols = _scratch(buffers, "cols", (C * k * k, OH * OW * B), x)
    xp.reshape(cols, (C, k, k, OH, OW, B))[...] = windows                # the one copy
    return cols                                                          # (C*k*k, L*B)


def _clipped(i, s, p, n, size):
    """Kernel offset i of n windows with stride s and padding p lands on rows
    o*s + i - p (o = 0..n-1) of an axis of length `size`; the windows whose row lies
    inside [0, size) are o_lo..o_hi-1. Returns (slice of those windows, slice of rows)."""
    o_lo = max(0, -((i - p) // s))                      # first o with o*s + i - p >= 0
    o_hi = min(n, (size - 1 - i + p) // s + 1)          # past the last o with row < size
    if o_hi <= o_lo:
        return None, None
    first = o_lo * s + i - p
    return slice(o_lo, o_hi), slice(first, first + s * (o_hi - o_lo - 1) + 1, s)


class _Term(NamedTuple):
    """Kernel offset i along one axis: the windows that stay inside the axis, the rows of
    its phase they reach (numbered within the phase), and whether that is all of them."""
    i: int
    windows: slice
    rows: slice
    full: bool


def _phase_terms(k, s, p, n, size):
    """Along one axis of length `size` (n windows): which kernel offsets reach which rows.

    Offset i lands on rows o*s + i - p, all in the same phase q = (i - p) mod s: the rows
    q, q + s, q + 2s, ..., numbered 0, 1, 2, ... within that phase. Returns, for each phase
    q, the list of its _Terms. E.g. k = 4, s = 2, p = 1, size 14 (the DCGAN): phase 0
    (rows 0, 2, ..., 12) gets offset 1 (all 7 rows: full) and offset 3 (rows 2..12);
    phase 1 gets offsets 0 (rows 1..11) and 2 (full).
    """
    terms = [[] for _ in range(s)]
    for i in range(k):
        windows, rows = _clipped(i, s, p, n, size)
        if rows is None:
            continue
        q, first = rows.start % s, rows.start // s          # phase, first phase row
        count = windows.stop - windows.start
        full = count == len(range(q, size, s))               # every row of phase q
        terms[q].append(_Term(i, windows, slice(first, first + count), full))
    return terms


def col2im(cols, x_shape, k, s, p, buffers=None):
    """The adjoint of im2col: add every column back onto its window.

    cols (C*k*k, L*B) -> x (B, C, H, W), with x_shape = (B, C, H, W); where windows
    overlap (k > s) their contributions sum, which is what the chain rule asks for:
        x[b, c, oh*s + i - p, ow*s + j - p] += cols[(c, i, j), (oh, ow, b)]
    (a window's part that lies in the padding is dropped: the padding is no input).
    Phase by phase ("space-to-depth"): the pixels (h, w) with h = qh (mod s) and
    w = qw (mod s) are reached only by the kernel offsets of that phase (_phase_terms), so
    each of the s*s phases is summed on its own, in a small buffer `acc` (C, H/s, W/s, B;
    a shorter phase uses its first rows): an offset pair that covers the whole phase is
    copied in, the others are added onto the rows they reach, and the phase is written
    into x once, with one strided copy x[:, qh::s, qw::s, :] = acc. Adding straight into
    those strided views of x, as we did before, reads and writes runs of only B numbers
    k*k times over and took 1.6x as long (docs/performance.md). With s = 1 there is one
    phase: acc is x itself.
    Returns a new array laid out CHWB in memory; `buffers` keeps acc between calls.
    """
    xp = get_array_module(cols)
    if _as_strided(xp) is None:
        return _col2im_slices(cols, x_shape, k, s, p)
    B, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = xp.reshape(cols, (C, k, k, OH, OW, B))
    x = xp.empty((C, H, W, B), dtype=cols.dtype)   # new (NumPy or CuPy): the caller keeps it
    terms_h, terms_w = _phase_terms(k, s, p, OH, H), _phase_terms(k, s, p, OW, W)
    if s > 1:
        phase_buffer = _scratch(buffers, "col2im_phase", (C, -(-H // s), -(-W // s), B), cols)
    for qh in range(min(s, H)):
        for qw in range(min(s, W)):
            n_h, n_w = len(range(qh, H, s)), len(range(qw, W, s))
            acc = x if s == 1 else phase_buffer[:, :n_h, :n_w, :]       # (C, n_h, n_w, B)
            pairs = [(th, tw) for th in terms_h[qh] for tw in terms_w[qw]]
            full = [n for n, (th, tw) in enumerate(pairs) if th.full and tw.full]
            if full:                                  # copy one in: acc needs no zeros
                th, tw = pairs.pop(full[0])
                acc[...] = cols[:, th.i, tw.i, th.windows, tw.windows, :]
            else:                                     # no pair reaches all of the phase
                acc[...] = 0                          # (e.g. without padding)
            for th, tw in pairs:
                view = acc[:, th.rows, tw.rows, :]                      # (C, oh, ow, B)
                view += cols[:, th.i, tw.i, th.windows, tw.windows, :]  # the same windows
            if s > 1:
                x[:, qh::s, qw::s, :] = acc                             # the one strided write
    return xp.permute_dims(x, (3, 0, 1, 2))                             # (B, C, H, W)


def _im2col_slices(x, k, s, p):
    """im2col with Array API calls only (array-api-strict): one slice per offset."""
    xp = get_array_module(x)
    B, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = _zeros((C, H + 2 * p, W + 2 * p, B), like=x)               # zero border
    x_pad[:, p:p + H, p:p + W, :] = xp.permute_dims(x, (1, 2, 3, 0))   # (C, H, W, B)
    # pixel (i, j) of every window at once: one strided slice per kernel offset
    patches = [x_pad[:, _offset(i, s, OH), _offset(j, s, OW), :]     # (C, OH, OW, B)
               for i in range(k) for j in range(k)]
    cols = xp.stack(patches, axis=1)                                   # (C, k*k, OH, OW, B)
    return xp.reshape(cols, (C * k * k, OH * OW * B))


def _col2im_slices(cols, x_shape, k, s, p):
    """col2im with Array API calls only (array-api-strict): one slice per offset."""
    xp = get_array_module(cols)
    B, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = xp.reshape(cols, (C, k * k, OH, OW, B))
    x_pad = _zeros((C, H + 2 * p, W + 2 * p, B), like=cols)
    for i in range(k):
        for j in range(k):   # im2col took: x_pad[:, _offset(i, s, OH), _offset(j, s, OW), :]
            x_pad[:, _offset(i, s, OH), _offset(j, s, OW), :] += cols[:, i * k + j, ...]
    x = x_pad[:, p:p + H, p:p + W, :]                                  # drop the border
    return xp.permute_dims(x, (3, 0, 1, 2))                            # (B, C, H, W)


# --------------------------------------------------------- the convolution as matmuls
def _rows(a):
    """(B, C, H, W) -> (C, H*W*B): one row per channel, the layout of cols' columns
    (no copy when a is laid out CHWB in memory, as the outputs of conv2d and col2im are)."""
    xp = get_array_module(a)
    return xp.reshape(xp.permute_dims(a, (1, 2, 3, 0)), (a.shape[1], -1))


def conv2d(x, W, s, p, buffers=None):
    """y = conv(x, W), no bias: x (B, C, H, W), W (out, C, k, k) -> y (B, out, OH, OW).

    Returns y and cols = im2col(x), (C*k*k, L*B), which the weight gradient needs
    (with `buffers`, cols is a reused buffer: see im2col).
    """
    xp = get_array_module(x)
    (B, _, H, Wd), (out, _, k, _) = x.shape, W.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(Wd, k, s, p)
    cols = im2col(x, k, s, p, buffers)                             # (C*k*k, L*B)
    y = xp.reshape(W, (out, -1)) @ cols                            # (out, C*k*k) @ cols
    y = xp.reshape(y, (out, OH, OW, B))                            # (out, L*B) unflattened
    return xp.permute_dims(y, (3, 0, 1, 2)), cols                  # (B, out, OH, OW)


def conv2d_input_grad(dy, W, x_shape, s, p, buffers=None):
    """dL/dx for y = conv2d(x, W): dy (B, out, OH, OW) -> dx (x_shape).

    in conv2d this was: y = Wm @ cols, so dcols = Wm.T @ dy and dx = col2im(dcols).
    """
    xp = get_array_module(dy)
    out, k = W.shape[0], W.shape[2]
    Wm, dy_rows = xp.reshape(W, (out, -1)), _rows(dy)   # (out, C*k*k), (out, L*B)
    dcols = _scratch(buffers, "dcols", (Wm.shape[1], dy_rows.shape[1]), dy)
    into(dcols, "matmul", Wm.T, dy_rows)                           # (C*k*k, out) @ (out, L*B)
    return col2im(dcols, x_shape, k, s, p, buffers)                # (B, C, H, W)


def conv2d_weight_grad(dy, cols, w_shape, buffers=None):
    """dL/dW for y = conv2d(x, W): dy (B, out, OH, OW), cols (C*k*k, L*B) -> (out, C, k, k).
    With `buffers`, the result is a reused buffer: add it to W.grad before the next call."""
    xp = get_array_module(dy)
    dy_rows = _rows(dy)                                  # (out, L*B)
    dW = _scratch(buffers, "dW", (dy_rows.shape[0], cols.shape[0]), dy)
    into(dW, "matmul", dy_rows, cols.T)                            # (out, L*B) @ (L*B, C*k*k)
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


def _check_input(layer, x, channels):
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{layer!r} expects input of shape (B, {channels}, H, W), "
                         f"got {tuple(x.shape)}")
    if x.dtype != layer.W.data.dtype:
        raise TypeError(f"{layer!r} holds {layer.W.data.dtype} weights but got a {x.dtype} "
                        f"input; make inputs with the same backend (Backend.asarray casts them)")


def _add_bias(y, b):
    """y += b on every pixel, in place: y is the fresh output of conv2d or col2im, which
    nothing else holds, so we save a (B, out, OH, OW) array and a pass over it."""
    xp = get_array_module(y)
    y += xp.reshape(b, (1, b.shape[0], 1, 1))                     # b (out,) broadcast
    return y


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

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, *, backend,
                 init="default"):
        _check_sizes(kernel_size, stride, padding)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.k, self.s, self.p = kernel_size, stride, padding
        _init_params(self, (out_ch, in_ch, kernel_size, kernel_size), out_ch,
                     in_ch * kernel_size * kernel_size, backend, init)
        self.cols, self.x_shape = None, None
        self.dout = None                             # kept by backward(create_graph=True)
        self._buffers = {}      # im2col's and col2im's arrays, reused at every step

    def forward(self, x):
        _check_input(self, x, self.in_ch)
        y, cols = conv2d(x, self.W.data, self.s, self.p, self._buffers)  # (B, out, OH, OW)
        # we keep cols, not x: dW needs exactly this matrix, and gathering it again would
        # cost a second im2col (cols is k*k/s**2 times the size of x). cols is a reused
        # buffer: the next forward overwrites it, as it replaces the cache anyway.
        self.cols, self.x_shape = cols, tuple(x.shape)
        return _add_bias(y, self.b.data)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """input_grad=False: parameter gradients only, returns None (D's images need no dx).
        create_graph=True: also keep dout for double_backward."""
        xp = get_array_module(dout)
        cols, x_shape = self._need("cols"), self._need("x_shape")
        if create_graph:
            self.dout = dout                         # (B, out, OH, OW)
        if param_grads:
            self.W.grad += conv2d_weight_grad(dout, cols, self.W.shape, self._buffers)
            self.b.grad += xp.sum(dout, axis=(0, 2, 3))                   # (out,)
        if not input_grad:
            return None                              # skips a col2im and its matrix product
        return conv2d_input_grad(dout, self.W.data, x_shape, self.s, self.p,
                                 self._buffers)                           # (B, in, H, W)

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
        self._buffers = {}      # im2col's and col2im's arrays, reused at every step

    def out_size(self, n):
        """(n - 1) * s - 2p + k + output_padding: a side that a Conv2d(k, s, p) maps to n."""
        size = (n - 1) * self.s - 2 * self.p + self.k + self.output_padding
        if size < 1:
            raise ValueError(f"{self!r} maps input size {n} to an empty output ({size})")
        return size

    def forward(self, x):
        _check_input(self, x, self.in_ch)
        B, _, H, W = x.shape
        self.x = x                                                 # (B, in, H, W), for dW
        y_shape = (B, self.out_ch, self.out_size(H), self.out_size(W))
        y = conv2d_input_grad(x, self.W.data, y_shape, self.s, self.p,
                              self._buffers)                       # (B, out, OH, OW)
        return _add_bias(y, self.b.data)

    def backward(self, dout, param_grads=True, input_grad=True):
        xp = get_array_module(dout)
        x = self._need("x")
        if not (param_grads or input_grad):
            return None
        # in the forward pass this was: y = conv2d_input_grad(x, W), a linear map of x whose
        # adjoint is the convolution itself: dx = conv2d(dout, W). Its im2col, cols, is
        # also what dW needs, so dx costs only one more product here.
        dx, cols = conv2d(dout, self.W.data, self.s, self.p, self._buffers)  # (B, in, H, W)
        if param_grads:
            self.W.grad += conv2d_weight_grad(x, cols, self.W.shape, self._buffers)
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

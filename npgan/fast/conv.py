"""The convolutions of npgan/conv.py with kept buffers, strided gathers and phase sums.

Same math, same layout (cols (C*k*k, L*B), columns over (oh, ow, b)), same numbers up
to the order of col2im's adds. Why the layout has the batch last: every gather and add
below then moves runs of B contiguous numbers instead of runs of OW (7 in the DCGAN),
which made col2im 3x faster; conv2d's output, laid out (C, OH, OW, B) in memory, is
returned as a (B, C, OH, OW) view, so the next layer's im2col copies it straight.

On NumPy and CuPy:
  im2col is one strided view of the padded input (as_strided: no copy) and one copy
    into a kept buffer;
  col2im sums each of the s*s phases of the image (the pixels (h, w) with h = qh,
    w = qw mod s, reached only by their own kernel offsets) in a small kept buffer,
    copying in the one offset pair that covers the whole phase, then writes the phase
    into the image with one strided copy (1.6x faster than k*k adds into strided views);
  the products write into kept buffers (`out=`).
Namespaces without strided views (the Array API has none) use npgan/conv.py's functions.
Measurements: docs/performance.md.
"""
from __future__ import annotations

from typing import NamedTuple

from npgan.backend import get_array_module, is_cupy, is_numpy, permute_dims
from npgan.conv import Conv2d, ConvTranspose2d, channel_rows, check_input, conv_out_size
from npgan.conv import col2im as reference_col2im
from npgan.conv import im2col as reference_im2col
from npgan.fast.inplace import buffer, into, scratch


def strided(xp) -> bool:
    """True where xp has strided views (as_strided): NumPy and CuPy."""
    return is_numpy(xp) or is_cupy(xp)


def im2col(x, k, s, p, buffers=None):
    """npgan.conv.im2col, gathered through one strided view into buffers["cols"].
    The returned cols is that buffer: use it before the next call with the same dict."""
    xp = get_array_module(x)
    if not strided(xp):
        return reference_im2col(x, k, s, p)
    B, C, H, W = x.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    x_pad = buffer(buffers, "im2col_pad", (C, H + 2 * p, W + 2 * p, B), x)  # border: 0
    x_pad[:, p:p + H, p:p + W, :] = permute_dims(x, (1, 2, 3, 0))       # only the inside
    sC, sH, sW, sB = x_pad.strides                                       # in bytes
    windows = xp.lib.stride_tricks.as_strided(                           # a view: no copy
        x_pad, shape=(C, k, k, OH, OW, B), strides=(sC, sH, sW, s * sH, s * sW, sB))
    cols = buffer(buffers, "cols", (C * k * k, OH * OW * B), x)
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
    """npgan.conv.col2im, phase by phase ("space-to-depth").

    The pixels (h, w) with h = qh (mod s) and w = qw (mod s) are reached only by the
    kernel offsets of that phase (_phase_terms), so each of the s*s phases is summed on
    its own in a small buffer acc (C, H/s, W/s, B; a shorter phase uses its first rows):
    an offset pair that covers the whole phase is copied in, the others are added onto
    the rows they reach, and the phase is written into x once, x[:, qh::s, qw::s, :] = acc.
    With s = 1 there is one phase: acc is x itself.
    Returns a new array laid out CHWB in memory; `buffers` keeps acc between calls.
    """
    xp = get_array_module(cols)
    if not strided(xp):
        return reference_col2im(cols, x_shape, k, s, p)
    B, C, H, W = x_shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(W, k, s, p)
    cols = xp.reshape(cols, (C, k, k, OH, OW, B))
    x = xp.empty((C, H, W, B), dtype=cols.dtype)   # new (NumPy or CuPy): the caller keeps it
    terms_h, terms_w = _phase_terms(k, s, p, OH, H), _phase_terms(k, s, p, OW, W)
    if s > 1:
        phase_buffer = buffer(buffers, "col2im_phase", (C, -(-H // s), -(-W // s), B), cols)
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
    return permute_dims(x, (3, 0, 1, 2))                                # (B, C, H, W)


def add_bias_in_place(y, b):
    """y += b on every pixel: y is the fresh output of conv2d or col2im, which nothing
    else holds, so we save a (B, out, OH, OW) array and a pass over it."""
    xp = get_array_module(y)
    y += xp.reshape(b, (1, b.shape[0], 1, 1))
    return y


def conv2d(x, W, s, p, buffers=None):
    """npgan.conv.conv2d with im2col's arrays kept in `buffers`: (y, cols)."""
    xp = get_array_module(x)
    (B, _, H, Wd), (out, _, k, _) = x.shape, W.shape
    OH, OW = conv_out_size(H, k, s, p), conv_out_size(Wd, k, s, p)
    cols = im2col(x, k, s, p, buffers)                             # (C*k*k, L*B)
    y = xp.reshape(W, (out, -1)) @ cols                            # (out, C*k*k) @ cols
    y = xp.reshape(y, (out, OH, OW, B))
    return permute_dims(y, (3, 0, 1, 2)), cols                     # (B, out, OH, OW)


def conv2d_input_grad(dy, W, x_shape, s, p, buffers=None):
    """npgan.conv.conv2d_input_grad with dcols and col2im's phases kept in `buffers`."""
    xp = get_array_module(dy)
    out, k = W.shape[0], W.shape[2]
    Wm, dy_rows = xp.reshape(W, (out, -1)), channel_rows(dy)  # (out, C*k*k), (out, L*B)
    dcols = buffer(buffers, "dcols", (Wm.shape[1], dy_rows.shape[1]), dy)
    into(dcols, "matmul", Wm.T, dy_rows)                           # (C*k*k, out) @ (out, L*B)
    return col2im(dcols, x_shape, k, s, p, buffers)                # (B, C, H, W)


def conv2d_weight_grad(dy, cols, w_shape, buffers=None):
    """npgan.conv.conv2d_weight_grad into buffers["dW"]: add it to W.grad before the next call."""
    xp = get_array_module(dy)
    dy_rows = channel_rows(dy)                                # (out, L*B)
    dW = buffer(buffers, "dW", (dy_rows.shape[0], cols.shape[0]), dy)
    into(dW, "matmul", dy_rows, cols.T)                            # (out, L*B) @ (L*B, C*k*k)
    return xp.reshape(dW, w_shape)


class FastConv2d(Conv2d):
    """Conv2d with kept buffers; double_backward is Conv2d's."""

    def forward(self, x):
        check_input(self, x, self.in_ch)
        y, cols = conv2d(x, self.W.data, self.s, self.p, scratch(self))   # (B, out, OH, OW)
        # cols is a kept buffer: the next forward overwrites it, as it replaces the cache
        self.cols, self.x_shape = cols, tuple(x.shape)
        return add_bias_in_place(y, self.b.data)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        xp = get_array_module(dout)
        cols, x_shape = self._need("cols"), self._need("x_shape")
        if create_graph:
            self.dout = dout
        if param_grads:
            self.W.grad += conv2d_weight_grad(dout, cols, self.W.shape, scratch(self))
            self.b.grad += xp.sum(dout, axis=(0, 2, 3))
        if not input_grad:
            return None
        return conv2d_input_grad(dout, self.W.data, x_shape, self.s, self.p, scratch(self))


class FastConvTranspose2d(ConvTranspose2d):
    """ConvTranspose2d with kept buffers."""

    def forward(self, x):
        check_input(self, x, self.in_ch)
        self.x = x
        y = conv2d_input_grad(x, self.W.data, self.output_shape(x), self.s, self.p,
                              scratch(self))
        return add_bias_in_place(y, self.b.data)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)
        xp = get_array_module(dout)
        x = self._need("x")
        if not (param_grads or input_grad):
            return None
        dx, cols = conv2d(dout, self.W.data, self.s, self.p, scratch(self))
        if param_grads:
            self.W.grad += conv2d_weight_grad(x, cols, self.W.shape, scratch(self))
            self.b.grad += xp.sum(dout, axis=(0, 2, 3))
        return dx if input_grad else None

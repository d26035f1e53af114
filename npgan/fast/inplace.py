"""Writing results into arrays we keep: the in-place tools of the fast layers.

NumPy and CuPy ufuncs and matmul take `out=`, which saves a temporary array and a copy;
other Array API namespaces compute the temporary and copy it in (same numbers).
A fast layer keeps its reused arrays in one dict, `layer.scratch`, made at its first call.
"""
from __future__ import annotations

from npgan.backend import astype, get_array_module, is_cupy, is_numpy, zeros


def has_out(xp) -> bool:
    """True where `xp`'s functions write into a given array (`out=`): NumPy, CuPy."""
    return is_numpy(xp) or is_cupy(xp)


def into(out, op, *args):
    """out[...] = xp.<op>(*args), e.g. into(tmp, "multiply", g, g) for tmp = g * g.
    A boolean result (op "greater") becomes 0.0 / 1.0 in a float `out`."""
    xp = get_array_module(out)
    if has_out(xp):
        getattr(xp, op)(*args, out=out)
    else:
        out[...] = astype(getattr(xp, op)(*args), out.dtype)
    return out


def scratch(layer) -> dict:
    """The dict of arrays that a fast layer (or optimizer) reuses at every call."""
    return vars(layer).setdefault("scratch", {})


def buffer(buffers, name, shape, like):
    """buffers[name] if it has this shape and like's type, dtype and device, else new
    zeros (kept in buffers for the next call). buffers=None: new zeros, nothing kept.
    A new buffer of like's own shape is laid out like it in memory (zeros_like)."""
    buf = None if buffers is None else buffers.get(name)
    if (buf is None or type(buf) is not type(like) or tuple(buf.shape) != tuple(shape)
            or buf.dtype != like.dtype
            or getattr(buf, "device", None) != getattr(like, "device", None)):
        same = tuple(shape) == tuple(like.shape)
        buf = get_array_module(like).zeros_like(like) if same else zeros(shape, like)
        if buffers is not None:
            buffers[name] = buf
    return buf


def column_major(a) -> bool:
    """True when the 2-D array a is laid out column by column in memory (a.T is C-ordered),
    e.g. (B, C*H*W) flattened from a convolution's (C, H, W, B) output. NumPy and CuPy say
    so in a.flags; other Array API namespaces do not expose a layout: False."""
    flags = getattr(a, "flags", None)
    return flags is not None and a.ndim == 2 and bool(flags.f_contiguous) \
        and not bool(flags.c_contiguous)

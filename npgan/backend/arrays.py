"""Array namespaces: the `xp` of an array, the one way back to the host, and the few
calls whose name is not the same in NumPy, CuPy and the Array API standard.

Library code writes its math against `xp = get_array_module(x)`. Where NumPy 1.26,
CuPy 13 and the Array API disagree on a name (`permute_dims` is CuPy 14's and NumPy 2's,
`concat` the Array API's, `astype` a function only in newer releases), the math calls the
function of the same name here, which picks what the namespace has.
"""
from __future__ import annotations

import numpy

# numpy, for host-side work only (parsing files, checkpoints, reports). Library code
# uses this name instead of `import numpy`, so that npgan/backend/ stays the only importer.
host = numpy


def _namespace_of(a):
    """The array namespace of one array (numpy, cupy or an Array API namespace)."""
    if isinstance(a, numpy.ndarray):
        return numpy
    module = type(a).__module__
    if module.startswith("cupy"):
        import cupy  # already imported, since a cupy array exists

        return cupy
    if hasattr(a, "__array_namespace__"):
        return a.__array_namespace__()
    raise TypeError(
        f"expected an array (numpy.ndarray, cupy.ndarray or an Array API array), "
        f"got {type(a).__name__}"
    )


def is_numpy(xp) -> bool:
    """True if `xp` is NumPy itself (the host)."""
    return xp is numpy


def is_cupy(xp) -> bool:
    """True if `xp` is CuPy."""
    return getattr(xp, "__name__", "") == "cupy"


def device_of(a) -> str:
    """A printable name of the device that holds array `a`, e.g. 'numpy:cpu'."""
    xp = _namespace_of(a)
    if xp is numpy:
        return "numpy:cpu"
    if is_cupy(xp):
        return f"cupy:cuda:{a.device.id}"
    return f"{getattr(xp, '__name__', 'array-api')}:{getattr(a.device, '_device', a.device)}"


def get_array_module(*arrays):
    """The namespace `xp` for the given arrays; Python scalars and None are skipped.

    Raises ValueError naming both devices when arrays live on different devices
    (numpy with cupy, or two devices of one namespace).
    """
    xp, first = None, None
    for a in arrays:
        if a is None or isinstance(a, (bool, int, float)):
            continue
        if first is None:
            xp, first = _namespace_of(a), a
            continue
        if _namespace_of(a) is not xp or device_of(a) != device_of(first):
            raise ValueError(
                f"arrays on different devices: {device_of(first)} and {device_of(a)}; "
                f"move them to one backend first (Backend.asarray)"
            )
    return numpy if xp is None else xp


def zeros(shape, like):
    """Zeros of like's dtype on like's device. The Array API names the device; NumPy
    (before 2.0) and CuPy take no device argument and use their current device."""
    xp = _namespace_of(like)
    if xp is numpy or is_cupy(xp):
        return xp.zeros(shape, dtype=like.dtype)
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def astype(a, dtype):
    """a cast to `dtype` (no copy if it already has it), on any namespace."""
    if a.dtype == dtype:
        return a
    xp = _namespace_of(a)
    if hasattr(xp, "astype"):  # Array API / NumPy 2
        return xp.astype(a, dtype)
    return a.astype(dtype)  # NumPy 1.26, CuPy 13


def permute_dims(a, axes):
    """The axes of `a` reordered (a view where possible): the Array API's permute_dims,
    which NumPy 1.26 and CuPy 13 call transpose."""
    xp = _namespace_of(a)
    permute = getattr(xp, "permute_dims", None) or xp.transpose
    return permute(a, axes)


def concat(arrays, axis=0):
    """Join arrays along `axis` on any namespace (Array API `concat`; older CuPy and
    NumPy only have `concatenate`)."""
    xp = _namespace_of(arrays[0])
    join = getattr(xp, "concat", None) or xp.concatenate
    return join(list(arrays), axis=axis)


def to_numpy(a):
    """Copy an array of any backend to a host numpy.ndarray (a sync point on CUDA).
    Lists, tuples and Python numbers become numpy arrays too."""
    if isinstance(a, (list, tuple, range, bool, int, float)):
        return numpy.asarray(a)
    xp = _namespace_of(a)
    if xp is numpy:
        return a
    if is_cupy(xp):
        return xp.asnumpy(a)
    # Array API: move to the namespace's CPU device first, which converts freely.
    cpu = xp.__array_namespace_info__().default_device()
    return numpy.asarray(a.to_device(cpu))

"""The array backend: the one module of npgan that imports numpy or cupy.

Everything else writes its math against an array namespace `xp`, found with
`get_array_module(x)` (the CuPy/Chainer idiom), and creates arrays and random
numbers through a `Backend` object from `get_backend(...)`:

    >>> be = get_backend("numpy", dtype="float32", seed=0)
    >>> z = be.randn((2, 3))          # noise on the backend's device, in its dtype
    >>> be.to_numpy(z).dtype          # the one way back to the host
    dtype('float32')

Backends:
  "numpy"             CPU; the reference.
  "cupy"              CUDA via CuPy (`pip install "npgan[cuda12]"` or `[cuda13]`).
  "array-api-strict"  test only: a strict Array API namespace whose non-default devices
                      refuse any conversion to NumPy, like CuPy does. It proves on a
                      CPU-only machine that the math uses no NumPy-only calls.
"""
from __future__ import annotations

import math
import os

import numpy

# numpy, for host-side work only (parsing files, checkpoints, reports). Library code
# uses this name instead of `import numpy`, so that this module stays the only importer.
host = numpy

BACKENDS = ("numpy", "cupy", "array-api-strict")
DTYPES = ("float32", "float64")

_CUPY_HINT = 'pip install "npgan[cuda12]"  (or "npgan[cuda13]" for CUDA 13)'


class BackendError(RuntimeError):
    """A backend cannot be used on this machine; the message says why and what to do."""


# --------------------------------------------------------------------------- imports
def _import_cupy():
    """Import CuPy and check that a CUDA device is usable, or raise BackendError.

    `import cupy` succeeds even on a machine with no driver (cupy.is_available() then
    quietly returns False), so we ask the runtime for the device count: its exception
    is the real reason and goes into our message.
    """
    try:
        import cupy
    except Exception as err:  # ImportError, or a broken install raising something else
        raise BackendError(
            f"the 'cupy' backend needs CuPy, which could not be imported "
            f"({type(err).__name__}: {err}). Install it with: {_CUPY_HINT}, "
            f"or use backend='numpy'."
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: cudaErrorInsufficientDriver, ...
        raise BackendError(
            f"CuPy is installed but no usable CUDA device or driver was found "
            f"({type(err).__name__}: {err}). Check `nvidia-smi` and that the CuPy "
            f"package matches your CUDA version ({_CUPY_HINT}), or use backend='numpy'."
        ) from err
    if count < 1:
        raise BackendError(
            "CuPy is installed but reports 0 CUDA devices; use backend='numpy'."
        )
    return cupy


def _import_array_api_strict():
    try:
        import array_api_strict
    except Exception as err:
        raise BackendError(
            f"the 'array-api-strict' test backend needs the array-api-strict package "
            f"({type(err).__name__}: {err}); install it with: pip install array-api-strict"
        ) from err
    return array_api_strict


def cupy_status() -> str | None:
    """None if the cupy backend is usable here, else the one-line reason it is not."""
    try:
        _import_cupy()
    except BackendError as err:
        return str(err)
    return None


def _cuda_version(number: int) -> str:
    """CUDA's version integer as text: 12090 -> '12.9'; 0 (no driver) -> 'none'."""
    return "none" if number == 0 else f"{number // 1000}.{number % 1000 // 10}"


def cupy_info() -> dict:
    """What CuPy sees on this machine, for `python -m npgan info`. Keys: "installed";
    then "version", "cuda_runtime", "cuda_driver"; then either "reason" (why the cupy
    backend cannot be used) or "devices", "device", "compute_capability", "memory_gib"."""
    try:
        import cupy
    except Exception as err:
        return {"installed": False, "reason": f"{type(err).__name__}: {err}"}
    info = {"installed": True, "version": cupy.__version__}
    runtime = cupy.cuda.runtime
    for key, ask in (("cuda_runtime", runtime.runtimeGetVersion),
                     ("cuda_driver", runtime.driverGetVersion)):
        try:
            info[key] = _cuda_version(ask())
        except Exception as err:   # a broken install: keep going, say what failed
            info[key] = f"unknown ({type(err).__name__}: {err})"
    reason = cupy_status()
    if reason is not None:
        info["reason"] = reason
        return info
    props = runtime.getDeviceProperties(0)
    name = props["name"]
    free, total = runtime.memGetInfo()
    info.update(devices=runtime.getDeviceCount(),
                device=name.decode() if isinstance(name, bytes) else str(name),
                compute_capability=f"{props['major']}.{props['minor']}",
                memory_gib=(round(free / 2**30, 1), round(total / 2**30, 1)))
    return info


# ------------------------------------------------------------------ array namespaces
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


def device_of(a) -> str:
    """A printable name of the device that holds array `a`, e.g. 'numpy:cpu'."""
    xp = _namespace_of(a)
    if xp is numpy:
        return "numpy:cpu"
    if getattr(xp, "__name__", "") == "cupy":
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


def astype(a, dtype):
    """a cast to `dtype` (no copy if it already has it), on any namespace."""
    if a.dtype == dtype:
        return a
    xp = _namespace_of(a)
    if hasattr(xp, "astype"):  # Array API / NumPy 2
        return xp.astype(a, dtype)
    return a.astype(dtype)  # older CuPy


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
    if getattr(xp, "__name__", "") == "cupy":
        return xp.asnumpy(a)
    # Array API: move to the namespace's CPU device first, which converts freely.
    cpu = xp.__array_namespace_info__().default_device()
    return numpy.asarray(a.to_device(cpu))


# ------------------------------------------------- fast paths, with generic fallbacks
def _has_out(xp) -> bool:
    return xp is numpy or getattr(xp, "__name__", "") == "cupy"


def into(out, op, *args):
    """out[...] = xp.<op>(*args), e.g. into(tmp, "multiply", g, g) for tmp = g * g.

    NumPy and CuPy write the result straight into `out` (their `out=`), which saves
    a temporary array and a copy in hot loops like Adam's; other Array API
    namespaces compute the temporary and copy it in. A boolean result (op "greater")
    becomes 0.0 / 1.0 in a float `out`.
    """
    xp = _namespace_of(out)
    if _has_out(xp):
        getattr(xp, op)(*args, out=out)
    else:
        out[...] = astype(getattr(xp, op)(*args), out.dtype)
    return out


def column_major(a) -> bool:
    """True when the 2-D array a is laid out column by column in memory (a.T is C-ordered),
    e.g. (B, C*H*W) flattened from a convolution's (C, H, W, B) output. NumPy and CuPy say
    so in a.flags; other Array API namespaces do not expose a layout: False."""
    flags = getattr(a, "flags", None)
    return flags is not None and a.ndim == 2 and bool(flags.f_contiguous) \
        and not bool(flags.c_contiguous)


def reuse(buffer, like):
    """`buffer` if it matches `like` in shape, dtype and device, else a new zeros
    array like `like`: for caches that a layer overwrites at every call."""
    if buffer is not None and type(buffer) is type(like) and buffer.shape == like.shape \
            and buffer.dtype == like.dtype \
            and getattr(buffer, "device", None) == getattr(like, "device", None):
        return buffer
    return _namespace_of(like).zeros_like(like)


_pool = None        # (process id, ThreadPoolExecutor): a forked child makes its own
_threads = None


def num_threads() -> int:
    """Threads npgan uses for its own elementwise loops (see map_blocks): the BLAS
    setting (OPENBLAS/MKL/OMP_NUM_THREADS) if one is set, else the CPUs we may use."""
    global _threads
    if _threads is None:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
                _threads = int(os.environ[var])
                break
        else:
            _threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
    return _threads


def set_num_threads(n: int):
    """Use n threads in map_blocks (1 = run everything on the calling thread)."""
    global _threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"number of threads must be an int >= 1, got {n!r}")
    if n != _threads and _pool is not None:
        _pool[1].shutdown(wait=False)                   # its threads end when idle
        _pool = None
    _threads = n


_freed_memory_kept = None    # keep_freed_host_memory's answer, once per process

# Where the user tunes glibc's malloc themselves, we leave it alone.
MALLOC_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                   "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")


def keep_freed_host_memory() -> bool:
    """Opt-in, process-wide: ask glibc's malloc to keep the memory that arrays free.

    A training step makes and frees arrays of a few MB each; at glibc's defaults the
    freed blocks go back to the kernel and the next step's arrays fault fresh pages in
    (a DCGAN step at base 64: 6,000 to 13,000 page faults, 14 to 38 ms of kernel time;
    docs/performance.md). This sets two documented mallopt(3) knobs, M_MMAP_THRESHOLD
    = 32 MiB and M_TRIM_THRESHOLD = 1 GiB, for the WHOLE process and everything in it,
    for good: the library never calls it. The command-line programs do (and say so in
    their banner), as may a user who owns their process.

    Does nothing, and returns False, where the user tunes malloc already (any of
    MALLOC_SETTINGS in the environment), where NPGAN_KEEP_FREED_MEMORY=0, where the C
    library is not glibc, where glibc refuses the values, or where another malloc is
    preloaded (LD_PRELOAD jemalloc, tcmalloc). True when applied.
    """
    global _freed_memory_kept
    if _freed_memory_kept is None:
        _freed_memory_kept = False
        import platform
        if (platform.libc_ver()[0] == "glibc"
                and os.environ.get("NPGAN_KEEP_FREED_MEMORY") != "0"
                and not any(var in os.environ for var in MALLOC_SETTINGS)
                and "malloc" not in os.environ.get("LD_PRELOAD", "")):
            import ctypes
            try:
                mallopt = ctypes.CDLL(None).mallopt              # int mallopt(int, int)
            except (OSError, AttributeError):
                return False
            M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # from <malloc.h>
            _freed_memory_kept = bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and \
                bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))         # 1 = accepted
    return _freed_memory_kept


def map_blocks(fn, groups, block=1 << 16):
    """Call fn(*arrays) for every tuple of same-shaped arrays in `groups` (in place).

    On NumPy, contiguous arrays are cut into aligned flat blocks of `block` elements,
    shared out to num_threads() threads: NumPy's elementwise loops release the GIL, so
    this is how an optimizer step uses every core, as BLAS does for matmuls. Elsewhere
    (CuPy: one kernel per op is best; array-api-strict) fn runs once per tuple.
    fn must be elementwise, so that blocks give bit-identical results.
    """
    global _pool
    groups = list(groups)
    if not groups or num_threads() == 1 or _namespace_of(groups[0][0]) is not numpy:
        return _run_share(fn, groups)                   # (CuPy queues kernels: no threads)
    tasks = []
    for arrays in groups:
        n = math.prod(arrays[0].shape)
        if n <= block or not all(a.flags.c_contiguous for a in arrays):
            tasks.append(arrays)
            continue
        flat = [a.reshape(-1) for a in arrays]          # views: a is contiguous
        tasks += [tuple(f[i:i + block] for f in flat) for i in range(0, n, block)]
    shares = _split(tasks, min(num_threads(), len(tasks)))
    if len(shares) > 1 and (_pool is None or _pool[0] != os.getpid()):
        from concurrent.futures import ThreadPoolExecutor

        _pool = (os.getpid(), ThreadPoolExecutor(num_threads() - 1, thread_name_prefix="npgan"))
    # one share per thread (a hand-off costs far more than a block), one on this thread
    futures = [_pool[1].submit(_run_share, fn, share) for share in shares[1:]]
    _run_share(fn, shares[0])
    for future in futures:
        future.result()                                 # re-raises fn's exceptions


def _run_share(fn, share):
    for arrays in share:
        fn(*arrays)


def _split(tasks, n):
    """tasks cut into n consecutive shares of about the same number of elements."""
    sizes = [math.prod(t[0].shape) for t in tasks]
    total, shares, done = sum(sizes), [[]], 0
    for task, size in zip(tasks, sizes):
        if done + size / 2 > total * len(shares) / n and len(shares) < n and shares[-1]:
            shares.append([])
        shares[-1].append(task)
        done += size
    return shares


# ----------------------------------------------------------------------- the backend
class Backend:
    """One array library + device + float dtype + seeded random generator.

    Attributes: name, xp (the array namespace), dtype (an xp dtype), device, rng.
    `host_transfers` counts device-to-host copies made through `to_numpy`/`item`:
    the training loop is tested to make none between logging intervals.
    """

    def __init__(self, name, xp, dtype, seed, device=None):
        self.name = name
        self.xp = xp
        self.dtype = getattr(xp, dtype)
        self.dtype_name = dtype
        self.device = device
        self.seed = seed
        self.host_transfers = 0
        if name == "cupy":
            self.rng = xp.random.default_rng(seed)
        else:  # numpy, and array-api-strict (which has no RNG: we draw on the host)
            self.rng = numpy.random.default_rng(seed)

    def __repr__(self):
        dev = f", device={self.device}" if self.device is not None else ""
        return f"Backend({self.name!r}, dtype={self.dtype_name!r}{dev}, seed={self.seed})"

    # -- moving arrays -------------------------------------------------------------
    def asarray(self, a, dtype=None):
        """`a` (host array, list or array of this backend) on this backend's device.

        Floating input is cast to the backend's float dtype unless `dtype` is given.
        """
        if dtype is None:
            kind = numpy.asarray(a).dtype.kind if isinstance(a, (list, tuple, float, int)) else None
            src = getattr(a, "dtype", None)
            is_float = kind == "f" or (src is not None and "float" in str(src))
            dtype = self.dtype if is_float else None
        if self.name == "array-api-strict":
            if isinstance(a, numpy.ndarray) or not hasattr(a, "__array_namespace__"):
                a = numpy.asarray(a)
                if dtype is not None:
                    a = a.astype(str(dtype).split(".")[-1])
                return self.xp.asarray(a, device=self.device)
            out = self.xp.asarray(a, device=self.device)
            return out if dtype is None else astype(out, dtype)
        out = self.xp.asarray(a)
        return out if dtype is None else astype(out, dtype)

    def to_numpy(self, a):
        """The one exit to the host (counted; on CUDA it synchronizes)."""
        if self.name != "numpy":
            self.host_transfers += 1
        return to_numpy(a)

    def item(self, a) -> float:
        """A 0-d array as a Python float: a host sync on CUDA, so only at logging points."""
        return float(self.to_numpy(a))

    def synchronize(self):
        """Wait for queued device work (CUDA); a no-op on the CPU backends."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    # -- the random generator's state (for exact resume) ----------------------------
    def rng_state(self) -> dict:
        """The generator's state as a JSON-able dict (see set_rng_state)."""
        if self.name == "cupy":
            # CuPy's cuRAND-based generator state lives on the device and has no
            # public serialization: we record the seed, and a resumed run reseeds.
            return {"kind": "cupy-reseed", "seed": self.seed}
        return {"kind": "numpy", "state": self.rng.bit_generator.state}

    def set_rng_state(self, state: dict, step: int = 0):
        """Restore rng_state(). On CuPy the stream is re-derived from (seed, step):
        statistically the same, but not bit-identical to an uninterrupted run."""
        if state.get("kind") == "numpy" and self.name != "cupy":
            self.rng.bit_generator.state = state["state"]
        elif self.name == "cupy":
            self.rng = self.xp.random.default_rng((int(state.get("seed") or 0) * 1_000_003 + step) % 2**63)
        else:
            raise ValueError(
                f"cannot restore a {state.get('kind')!r} random state on the {self.name} backend"
            )

    # -- creating arrays -----------------------------------------------------------
    def zeros(self, shape):
        if self.name == "array-api-strict":
            return self.xp.zeros(shape, dtype=self.dtype, device=self.device)
        return self.xp.zeros(shape, dtype=self.dtype)

    def _from_host(self, a):
        return self.xp.asarray(a, device=self.device)

    def randn(self, shape):
        """Standard normal samples, (shape), in the backend dtype, drawn on the device."""
        if self.name == "array-api-strict":
            return self._from_host(self.rng.standard_normal(shape, dtype=self.dtype_name))
        return self.rng.standard_normal(shape, dtype=self.dtype)

    def uniform(self, low, high, shape):
        """Uniform samples in [low, high), in the backend dtype."""
        if self.name == "array-api-strict":
            u = self.rng.random(shape, dtype=self.dtype_name)
            return self._from_host(u * (high - low) + low)
        u = self.rng.random(shape, dtype=self.dtype)
        u *= high - low  # Python scalars keep the array's dtype (NEP 50)
        u += low
        return u

    def permutation(self, n):
        """A random permutation of range(n) on the device (CuPy's Generator has none)."""
        if self.name == "numpy":
            return self.rng.permutation(n)
        if self.name == "cupy":
            # argsort of random keys. float32 keys have only 2^24 values: 60,000 of
            # them hold about 100 tied pairs, and argsort keeps each tied pair in its
            # old order. float64 keys (53 bits) make a tie about one in 10^7 epochs.
            return self.xp.argsort(self.rng.random(n, dtype=self.xp.float64))
        return self._from_host(self.rng.permutation(n))


def get_backend(name="numpy", dtype="float32", seed=None, device=None) -> Backend:
    """Make a Backend. `name`: numpy | cupy | array-api-strict; `dtype`: float32 | float64.

    `device` is only for array-api-strict (e.g. "device1", or "no_float64", a device
    with no float64 at all). Errors say what is wrong and how to fix it.
    """
    if name not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; valid backends are: {', '.join(BACKENDS)}"
        )
    if dtype not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; use one of: {', '.join(DTYPES)}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    if name == "numpy":
        return Backend("numpy", numpy, dtype, seed)
    if name == "cupy":
        return Backend("cupy", _import_cupy(), dtype, seed)
    xp = _import_array_api_strict()
    info = xp.__array_namespace_info__()
    names = {d._device: d for d in info.devices()}  # Device('device1') -> 'device1'
    dev_name = device or "CPU_DEVICE"
    if dev_name not in names:
        raise ValueError(
            f"unknown array-api-strict device {dev_name!r}; valid: {', '.join(names)}"
        )
    dev = names[dev_name]
    if dtype not in [str(k) for k in info.dtypes(device=dev)]:
        raise BackendError(f"device {dev_name!r} has no {dtype}; use float32 there")
    return Backend("array-api-strict", xp, dtype, seed, device=dev)

"""The backend: one array library + device + float dtype + seeded random generator.

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

import numpy

from npgan.backend.arrays import astype, to_numpy
from npgan.backend.cuda import BackendError, import_cupy

BACKENDS = ("numpy", "cupy", "array-api-strict")
DTYPES = ("float32", "float64")


def _import_array_api_strict():
    try:
        import array_api_strict
    except Exception as err:
        raise BackendError(
            f"the 'array-api-strict' test backend needs the array-api-strict package "
            f"({type(err).__name__}: {err}); install it with: pip install array-api-strict"
        ) from err
    return array_api_strict


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
        return Backend("cupy", import_cupy(), dtype, seed)
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

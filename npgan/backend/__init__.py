"""The array backend: the one package of npgan that imports numpy or cupy.

Everything else writes its math against an array namespace `xp`, found with
`get_array_module(x)` (the CuPy/Chainer idiom), and creates arrays and random
numbers through a `Backend` object from `get_backend(...)`:

    >>> be = get_backend("numpy", dtype="float32", seed=0)
    >>> z = be.randn((2, 3))          # noise on the backend's device, in its dtype
    >>> be.to_numpy(z).dtype          # the one way back to the host
    dtype('float32')

One module per idea, each importing only those above it in this list:
  arrays.py       array namespaces: get_array_module, to_numpy, astype, permute_dims, ...
  cuda.py         CuPy's import and diagnostics: BackendError, cupy_status, cupy_info
  core.py         Backend and get_backend: library + device + dtype + random generator
  host_memory.py  keep_freed_host_memory: an opt-in malloc setting for programs, never
                  called by the library
"""
from npgan.backend.arrays import (astype, concat, device_of, get_array_module, host,
                                  is_cupy, is_numpy, permute_dims, to_numpy, zeros)
from npgan.backend.core import BACKENDS, DTYPES, Backend, get_backend
from npgan.backend.cuda import BackendError, cupy_info, cupy_status, import_cupy
from npgan.backend.host_memory import MALLOC_SETTINGS, keep_freed_host_memory

__all__ = [
    "astype", "concat", "device_of", "get_array_module", "host", "is_cupy", "is_numpy",
    "permute_dims", "to_numpy", "zeros",
    "BACKENDS", "DTYPES", "Backend", "get_backend",
    "BackendError", "cupy_info", "cupy_status", "import_cupy",
    "MALLOC_SETTINGS", "keep_freed_host_memory",
]

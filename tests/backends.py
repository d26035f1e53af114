"""The backends every layer and GAN test runs on (imported by the test modules).

A backend "spec" is (name, device). CuPy cases are skipped, with the reason CuPy gave,
when no CUDA device is usable; they really run where there is one. With
NPGAN_REQUIRE_CUDA=1 (benchmarks/gpu_check.py sets it) they never skip: on a machine
without a usable device they fail with the backend's error instead. array-api-strict
stands in for a GPU on CPU-only machines: its 'device1' refuses any conversion to NumPy
(like CuPy), and its 'no_float64' device has no float64 at all.
"""
import os

import numpy as np
import pytest

from npgan.backend import cupy_status, get_backend, to_numpy

_CUPY_REASON = cupy_status()
_REQUIRE_CUDA = os.environ.get("NPGAN_REQUIRE_CUDA") == "1"


def _spec_param(name, device=None, slow=False):
    marks = [pytest.mark.slow] if slow else []
    if name == "cupy" and _CUPY_REASON is not None and not _REQUIRE_CUDA:
        marks.append(pytest.mark.skip(reason=f"CuPy backend not usable here: {_CUPY_REASON}"))
    label = name if device is None else f"{name}:{device}"
    return pytest.param((name, device), id=label, marks=marks)


# backends with float64 (gradient checks need it)
FLOAT64_SPECS = [
    _spec_param("numpy"),
    _spec_param("cupy"),
    _spec_param("array-api-strict", "device1"),
]
# every backend, for float32 behaviour
ALL_SPECS = FLOAT64_SPECS + [_spec_param("array-api-strict", "no_float64")]
# FLOAT64_SPECS with the array-api-strict case run by the slow step (.ci/run), for the
# central-difference checks that take seconds there: its checked indexing makes each
# x[i] = ... of the difference loop 10-30x slower than NumPy's. The fast tests still run
# every layer on device1 (test_layers, test_conv, test_dcgan, ...).
FLOAT64_SPECS_STRICT_SLOW = [
    _spec_param("numpy"),
    _spec_param("cupy"),
    _spec_param("array-api-strict", "device1", slow=True),
]


def make_backend(spec, dtype="float32", seed=0):
    name, device = spec
    return get_backend(name, dtype=dtype, seed=seed, device=device)


def host(a):
    """Any backend's array as a numpy array (test-side helper)."""
    return np.asarray(to_numpy(a))


def copy_params(src_model, dst_model, dst_backend):
    """Give dst_model the exact parameter values of src_model (for parity tests)."""
    for p_src, p_dst in zip(src_model.parameters(), dst_model.parameters()):
        p_dst.data[...] = dst_backend.asarray(host(p_src.data))

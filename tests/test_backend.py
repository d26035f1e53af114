"""The backend switch: errors a user can act on, dtypes, RNG, device checks, imports."""
import ast
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from npgan import backend as backend_module
from npgan.backend import (BackendError, device_of, get_array_module, get_backend,
                           to_numpy)
from tests.backends import ALL_SPECS, host, make_backend

BACKEND = pathlib.Path(backend_module.__file__).parent        # npgan/backend/
PACKAGE = BACKEND.parent                                        # npgan/


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown backend 'torch'; valid backends are: "
                                         "numpy, cupy, array-api-strict"):
        get_backend("torch")


def test_bad_dtype_and_seed():
    with pytest.raises(ValueError, match="unsupported dtype 'float16'; use one of: float32, float64"):
        get_backend("numpy", dtype="float16")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        get_backend("numpy", seed=-1)


def test_missing_cupy_says_how_to_install_and_keeps_the_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # makes `import cupy` raise ImportError
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert 'pip install "npgan[cuda12]"' in message and "npgan[cuda13]" in message
    assert "ImportError" in message or "ModuleNotFoundError" in message
    assert isinstance(info.value.__cause__, ImportError)


def fake_cupy(device_count):
    """A stand-in for CuPy on a machine with no driver: import works, the runtime fails."""
    class CUDARuntimeError(RuntimeError):
        pass

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    cupy.is_available = lambda: False
    cupy.CUDARuntimeError = CUDARuntimeError
    return cupy, CUDARuntimeError


def test_cupy_without_driver_reports_cupys_own_reason(monkeypatch):
    cupy, error_cls = fake_cupy(None)
    reason = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"
    cupy.cuda.runtime.getDeviceCount = lambda: (_ for _ in ()).throw(error_cls(reason))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(BackendError, match="no usable CUDA device or driver") as info:
        get_backend("cupy")
    assert reason in str(info.value) and "nvidia-smi" in str(info.value)
    assert backend_module.cupy_status() is not None


def test_cupy_with_zero_devices(monkeypatch):
    cupy, _ = fake_cupy(0)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(BackendError, match="0 CUDA devices"):
        get_backend("cupy")


@pytest.mark.slow
def test_importing_npgan_and_using_numpy_never_imports_cupy():
    code = ("import sys, npgan; be = npgan.get_backend('numpy');"
            "G = npgan.build_generator(be); G.forward(be.randn((2, 100)));"
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def imports_of(path):
    """(line, module, names) of every import in the file at `path`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def test_only_the_backend_package_imports_numpy_or_cupy():
    """npgan/backend/ alone imports numpy or cupy; npgan/fast/ too asks the backend
    (is_numpy, is_cupy). The control: the walk does see the backend's own imports."""
    offenders, seen_in_backend = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, module, _ in imports_of(path):
            if module.split(".")[0] not in ("numpy", "cupy"):
                continue
            if BACKEND in path.parents:
                seen_in_backend.add(module.split(".")[0])
            else:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not offenders, offenders
    assert seen_in_backend == {"numpy", "cupy"}, seen_in_backend


def test_backend_and_fast_import_no_private_names_across_modules(tmp_path):
    """`from npgan.x import _y` is how one module leans on another's internals: none in
    npgan/backend/ or npgan/fast/. The control: a planted private import is found."""
    def private_imports(paths):
        return [f"{path.name}:{line} imports {module}.{name}" for path in paths
                for line, module, names in imports_of(path) if module.startswith("npgan")
                for name in names if name.startswith("_") and name != "__version__"]
    paths = sorted(BACKEND.glob("*.py")) + sorted((PACKAGE / "fast").glob("*.py"))
    assert len(paths) >= 10 and not private_imports(paths), private_imports(paths)
    planted = tmp_path / "planted.py"
    planted.write_text("from npgan.conv import _check_sizes\n")
    assert private_imports([planted]) == ["planted.py:1 imports npgan.conv._check_sizes"]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_defaults_and_random_draws(spec):
    be = make_backend(spec, seed=3)
    assert be.dtype_name == "float32"
    z, u, perm = be.randn((1000, 3)), be.uniform(-2.0, 3.0, (1000,)), be.permutation(50)
    assert z.dtype == be.dtype and u.dtype == be.dtype and be.zeros((2,)).dtype == be.dtype
    z, u, perm = host(z), host(u), host(perm)
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1
    assert u.min() >= -2.0 and u.max() < 3.0
    assert sorted(perm.tolist()) == list(range(50))


def test_float64_on_request_and_asarray_casts_floats_only():
    be = get_backend("numpy", dtype="float64")
    assert be.randn((2,)).dtype == np.float64
    be32 = get_backend("numpy")
    assert be32.asarray(np.ones(3, dtype=np.float64)).dtype == np.float32
    assert be32.asarray([1.5, 2.0]).dtype == np.float32
    assert be32.asarray(np.arange(3)).dtype.kind == "i"          # labels stay integers


def test_array_api_strict_devices():
    with pytest.raises(ValueError, match="unknown array-api-strict device 'gpu7'"):
        get_backend("array-api-strict", device="gpu7")
    with pytest.raises(BackendError, match="device 'no_float64' has no float64"):
        get_backend("array-api-strict", dtype="float64", device="no_float64")
    be = get_backend("array-api-strict", device="device1", seed=0)
    with pytest.raises(RuntimeError):
        np.asarray(be.randn((2,)))                                   # like CuPy: no implicit copy
    assert be.to_numpy(be.randn((2,))).dtype == np.float32          # the explicit exit works
    assert be.host_transfers == 1


def test_mixed_devices_raise_a_clear_error():
    strict = get_backend("array-api-strict", device="device1")
    other = get_backend("array-api-strict", device="device2")
    a, b = strict.randn((2,)), other.randn((2,))
    with pytest.raises(ValueError, match="different devices: array_api_strict:device1 and "
                                         "array_api_strict:device2"):
        get_array_module(a, b)
    with pytest.raises(ValueError, match="numpy:cpu and array_api_strict:device1"):
        get_array_module(np.zeros(2), a)
    assert get_array_module(np.zeros(2), 1.0, None) is np
    assert device_of(np.zeros(1)) == "numpy:cpu"
    with pytest.raises(TypeError, match="expected an array"):
        get_array_module("not an array")


def test_to_numpy_and_item_and_synchronize():
    be = get_backend("numpy")
    a = be.randn((3,))
    assert to_numpy(a) is a
    assert isinstance(be.item(a[0]), float)
    be.synchronize()                                                 # a no-op on the CPU
    assert "Backend('numpy', dtype='float32'" in repr(be)

"""CuPy's import, and what it sees on this machine.

`import cupy` succeeds even where no driver is installed, so the cupy backend is usable
only when the CUDA runtime also reports a device. Every failure becomes a BackendError
whose one line names the cause (CuPy's own exception) and the fix (Chainer's
`check_cuda_available` pattern).
"""
from __future__ import annotations

CUPY_HINT = 'pip install "npgan[cuda12]"  (or "npgan[cuda13]" for CUDA 13)'


class BackendError(RuntimeError):
    """A backend cannot be used on this machine; the message says why and what to do."""


def import_cupy():
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
            f"({type(err).__name__}: {err}). Install it with: {CUPY_HINT}, "
            f"or use backend='numpy'."
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: cudaErrorInsufficientDriver, ...
        raise BackendError(
            f"CuPy is installed but no usable CUDA device or driver was found "
            f"({type(err).__name__}: {err}). Check `nvidia-smi` and that the CuPy "
            f"package matches your CUDA version ({CUPY_HINT}), or use backend='numpy'."
        ) from err
    if count < 1:
        raise BackendError(
            "CuPy is installed but reports 0 CUDA devices; use backend='numpy'."
        )
    return cupy


def cupy_status() -> str | None:
    """None if the cupy backend is usable here, else the one-line reason it is not."""
    try:
        import_cupy()
    except BackendError as err:
        return str(err)
    return None


def cuda_version(number: int) -> str:
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
            info[key] = cuda_version(ask())
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

"""`python -m npgan info`: one screen of what matters, with and without CuPy."""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from npgan import info as info_module
from npgan.backend import cupy_info
from tests.test_cupy_api import real_cupy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_info_prints_one_screen_of_what_matters(tmp_path):
    result = subprocess.run([sys.executable, "-m", "npgan", "info"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120,
                            env=dict(os.environ, NPGAN_DATA=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 20, result.stdout
    heads = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert heads == ["npgan", "Python", "platform", "NumPy", "threads", "matplotlib", "CuPy",
                     "data"], heads
    assert f"{tmp_path} (from NPGAN_DATA)" in result.stdout
    assert "mnist: not cached" in result.stdout and "BLAS: " in result.stdout


@pytest.mark.slow
def test_info_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)          # `import cupy` now fails
    info = info_module.collect()
    assert info["cupy"]["installed"] is False and "cupy" in info["cupy"]["reason"]
    cupy_line = [line for line in info_module.format_info(info) if line.startswith("CuPy")]
    assert cupy_line[0].startswith("CuPy        not installed (") and "npgan[cuda12]" in cupy_line[0]


def test_info_with_the_installed_cupy():
    cupy = real_cupy()
    info = cupy_info()
    assert info["installed"] and info["version"] == cupy.__version__
    assert info["cuda_runtime"][0].isdigit()                 # e.g. "12.9"
    text = "\n".join(info_module.format_info(dict(info_module.collect(), cupy=info)))
    assert f"CuPy        {cupy.__version__}, CUDA runtime {info['cuda_runtime']}" in text
    if "reason" in info:                                     # no GPU here: CuPy's reason
        assert "not usable: " in text and "CUDA" in info["reason"]
    else:
        assert "device 0: " in text and "GiB free" in text


def test_info_with_a_gpu_emulated(monkeypatch):
    """A stand-in CuPy that finds one device: the device line (name, compute
    capability, memory) as a GPU machine will show it."""
    runtime = types.SimpleNamespace(
        runtimeGetVersion=lambda: 12090, driverGetVersion=lambda: 12080,
        getDeviceCount=lambda: 1, memGetInfo=lambda: (100 * 2**30, 140 * 2**30),
        getDeviceProperties=lambda i: {"name": b"NVIDIA H200", "major": 9, "minor": 0})
    fake = types.ModuleType("cupy")
    fake.__version__, fake.cuda = "14.2.0", types.SimpleNamespace(runtime=runtime)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    info = cupy_info()
    assert info == {"installed": True, "version": "14.2.0", "cuda_runtime": "12.9",
                    "cuda_driver": "12.8", "devices": 1, "device": "NVIDIA H200",
                    "compute_capability": "9.0", "memory_gib": (100.0, 140.0)}
    lines = info_module._cupy_lines(info)
    assert lines[1].strip() == ("1 device(s); device 0: NVIDIA H200 (compute capability 9.0), "
                                "100.0 GiB free of 140.0 GiB")


def test_busy_machine_warning_only_with_several_blas_threads_on_full_cores():
    from npgan.info import busy_machine_warning
    advice = busy_machine_warning(load=3.0, cores=2, threads=2)
    assert "OPENBLAS_NUM_THREADS=1" in advice and "load average 3.0 on 2 cores" in advice
    assert busy_machine_warning(load=1.2, cores=2, threads=2) is None      # a core is free
    assert busy_machine_warning(load=3.0, cores=2, threads=1) is None      # one BLAS thread

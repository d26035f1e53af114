"""What matters when something is wrong: `python -m npgan info`.

One screen: npgan and where it is imported from, Python, NumPy and its BLAS, the
threads BLAS and npgan use, matplotlib, CuPy (its version, the CUDA runtime and
driver versions, the device, or the reason it cannot be used) and the data cache.

    >>> lines = format_info(collect())      # a list of text lines; nothing is printed

Only what can be read without side effects: no array is made on a device, nothing is
downloaded, nothing is written.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from npgan.backend import cupy_info
from npgan.backend import host as np
from npgan.fast import num_threads

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def blas_name() -> str:
    """NumPy's BLAS, e.g. 'scipy-openblas 0.3.31'."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy: show_config has no mode="dicts"
        return "unknown (see numpy.show_config())"


def blas_threads():
    """(threads, where the number comes from): threadpoolctl if it is installed (it is
    not a dependency of npgan), else the usual environment variables, else None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        for var in THREAD_VARS:
            if os.environ.get(var):
                return int(os.environ[var]), var
        return None, "no threadpoolctl, no *_NUM_THREADS set: BLAS uses all cores"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return None, "threadpoolctl found no BLAS"
    return blas[0]["num_threads"], f"threadpoolctl ({blas[0].get('internal_api')})"


def busy_machine_warning(load=None, cores=None, threads=None):
    """A one-line advice, or None: BLAS runs more than one thread (nobody set its
    *_NUM_THREADS) while other jobs already fill the cores. On a 2-core machine with two
    busy jobs, the MLP step then takes 20x longer than with one BLAS thread (the table in
    docs/performance.md): a BLAS thread that waits for a descheduled sibling stalls each
    product. load, cores, threads: for tests (default: this machine's)."""
    if threads is None:
        if any(os.environ.get(var) for var in THREAD_VARS):
            return None                                      # the user chose
        threads = blas_threads()[0] or _cores()
    load = os.getloadavg()[0] if load is None and hasattr(os, "getloadavg") else load
    cores = cores or _cores()
    if load is None or threads <= 1 or load < cores:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} cores) and BLAS runs "
            f"{threads} threads: steps can be many times slower than with one. Set "
            f"OPENBLAS_NUM_THREADS=1 (see docs/performance.md, 'Threads under load')")


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module_name):
    """A package's version, or 'not installed' (with the reason the import failed)."""
    try:
        module = __import__(module_name)
    except Exception as err:
        return f"not installed ({type(err).__name__}: {err})"
    return getattr(module, "__version__", "installed (no version)")


def _data_cache():
    """{"folder": the cache root, "set_by": NPGAN_DATA or the default, name: state}."""
    from npgan.classifier import classifier_path
    from npgan.data import DEBIAN_FASHION_MNIST
    from npgan.download import cache_dir
    from npgan.idx import has_idx_files

    root = cache_dir("mnist").parent
    set_by = "from NPGAN_DATA" if os.environ.get("NPGAN_DATA") else "the default; NPGAN_DATA is not set"
    info = {"folder": str(root), "set_by": set_by}
    for name in ("mnist", "fashion-mnist"):
        info[name] = "cached" if has_idx_files(cache_dir(name)) else "not cached"
    if has_idx_files(DEBIAN_FASHION_MNIST):
        info["fashion-mnist"] += f"; Debian's copy in {DEBIAN_FASHION_MNIST}"
    info["mnist classifier"] = "cached" if classifier_path("mnist").is_file() else "not cached"
    return info


def collect() -> dict:
    """Everything `python -m npgan info` shows, as a dict of plain values."""
    import npgan

    threads, source = blas_threads()
    env = {var: os.environ[var] for var in THREAD_VARS if var in os.environ}
    return {
        "npgan": {"version": npgan.__version__, "from": str(Path(npgan.__file__).parent)},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable, "platform": platform.platform()},
        "cpu": {"model": cpu_model(), "cores": os.cpu_count()},
        "numpy": {"version": np.__version__, "blas": blas_name()},
        "threads": {"blas": threads, "blas_source": source, "npgan": num_threads(),
                    "environment": env},
        "matplotlib": _version("matplotlib"),
        "cupy": cupy_info(),
        "data": _data_cache(),
    }


def _cupy_lines(c: dict) -> list[str]:
    if not c["installed"]:
        return [f"CuPy        not installed ({c['reason']}); "
                f'for a GPU: pip install "npgan[cuda12]"']
    lines = [f"CuPy        {c['version']}, CUDA runtime {c['cuda_runtime']}, "
             f"driver {c['cuda_driver']}"]
    if "reason" in c:
        lines.append(f"            not usable: {c['reason']}")
    else:
        free, total = c["memory_gib"]
        lines.append(f"            {c['devices']} device(s); device 0: {c['device']} "
                     f"(compute capability {c['compute_capability']}), "
                     f"{free} GiB free of {total} GiB")
    return lines


def format_info(info: dict) -> list[str]:
    """The lines of `python -m npgan info`."""
    py, t, d = info["python"], info["threads"], info["data"]
    env = ", ".join(f"{k}={v}" for k, v in t["environment"].items()) or "none set"
    return [
        f"npgan       {info['npgan']['version']} (from {info['npgan']['from']})",
        f"Python      {py['version']} ({py['implementation']}, {py['executable']})",
        f"platform    {py['platform']}; CPU: {info['cpu']['model']}, "
        f"{info['cpu']['cores']} logical cores",
        f"NumPy       {info['numpy']['version']}, BLAS: {info['numpy']['blas']}",
        f"threads     BLAS: {t['blas'] if t['blas'] else 'default'} ({t['blas_source']}); "
        f"npgan's elementwise loops: {t['npgan']}; environment: {env}",
        f"matplotlib  {info['matplotlib']}",
        *_cupy_lines(info["cupy"]),
        f"data cache  {d['folder']} ({d['set_by']})",
        f"            mnist: {d['mnist']}; fashion-mnist: {d['fashion-mnist']}; "
        f"mnist classifier: {d['mnist classifier']}",
    ]

"""CuPy, checked as far as a machine without a GPU allows.

The real CuPy package imports without a driver: we check every name and keyword that
npgan's library code uses on an array namespace, on the backend's random generator and
on arrays against the installed CuPy (tests/cupy_api.py finds them in the source), and
that asking for the cupy backend fails at once, in one line, with CuPy's own reason.
The backend's CuPy-only branches run on a NumPy stand-in with CuPy's generator API.

CI installs cupy-cuda12x and sets NPGAN_REQUIRE_CUPY=1, so there these tests cannot
skip for want of the package (see .ci/run); elsewhere they skip and say why.
"""
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from npgan import backend as backend_module
from npgan.backend import Backend, BackendError, cupy_status, get_backend
from tests.cupy_api import library_uses, problems_with, uses

ROOT = Path(__file__).resolve().parents[1]


def real_cupy():
    """The installed CuPy module; skip (or fail, under NPGAN_REQUIRE_CUPY=1) without it."""
    try:
        import cupy
    except Exception as err:
        if os.environ.get("NPGAN_REQUIRE_CUPY") == "1":
            pytest.fail(f"NPGAN_REQUIRE_CUPY=1, but CuPy cannot be imported: "
                        f"{type(err).__name__}: {err}")
        pytest.skip(f"CuPy is not installed ({type(err).__name__}: {err}); "
                    f"CI installs it (see .ci/run)")
    return cupy


def without_device():
    """Skip on a machine where CuPy finds a usable GPU: these tests are for the others."""
    cupy = real_cupy()
    if cupy_status() is None:
        pytest.skip("a CUDA device is usable here; these tests are for machines without one")
    return cupy


# --------------------------------------------------------------- API conformance
def test_every_array_api_call_of_the_library_exists_in_cupy():
    cupy = real_cupy()
    found = library_uses()
    kinds = {u.kind for u in found}
    assert kinds == {"namespace", "generator", "array"}, kinds       # the walker sees all three
    assert len(found) > 200, len(found)
    assert not problems_with(found, cupy), "\n".join(problems_with(found, cupy))
    for dtype in backend_module.DTYPES:                  # Backend picks these by name
        assert hasattr(cupy, dtype), dtype


def cupy_floor() -> str:
    """The oldest cupy-cuda12x that pyproject.toml accepts, e.g. "13"."""
    return re.search(r'"cupy-cuda12x>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def floor_cupy_path() -> str:
    """NPGAN_CUPY_FLOOR_PATH: a folder holding the oldest accepted CuPy and a NumPy it runs
    with (.ci/run installs them there); skip without it, or fail under NPGAN_REQUIRE_CUPY=1."""
    path = os.environ.get("NPGAN_CUPY_FLOOR_PATH")
    if not path:
        reason = (f"NPGAN_CUPY_FLOOR_PATH is not set: no folder with the oldest release of "
                  f"cupy-cuda12x>={cupy_floor()} to check against (.ci/run installs one)")
        if os.environ.get("NPGAN_REQUIRE_CUPY") == "1":
            pytest.fail(f"NPGAN_REQUIRE_CUPY=1, but {reason}")
        pytest.skip(reason)
    return path


def check_with_floor(path, *files):
    """python -m tests.cupy_api in a process whose `import cupy` finds the floor's CuPy."""
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run([sys.executable, "-m", "tests.cupy_api", *map(str, files)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("cupy "), done.stdout + done.stderr
    return done.returncode, done.stdout.splitlines()


@pytest.mark.slow
def test_every_array_api_call_of_the_library_exists_in_the_oldest_accepted_cupy(tmp_path):
    """pyproject.toml accepts cupy-cuda12x >= 13: the library's calls must exist in 13.0.0
    too (CuPy 13 has no permute_dims, astype or concat; backend/arrays.py picks the
    names it has). The control: a use of xp.permute_dims is found missing there, so the
    check reads the old CuPy, not the installed one."""
    path = floor_cupy_path()
    rc, lines = check_with_floor(path)
    version = lines[0].split()[1].rstrip(":")
    assert version.split(".")[0] == cupy_floor() and version.endswith(".0.0"), lines[0]
    assert rc == 0 and len(lines) == 1, "\n".join(lines)
    planted = tmp_path / "planted.py"
    planted.write_text("def f(x, xp):\n    return xp.permute_dims(x, (1, 0))\n")
    rc, lines = check_with_floor(path, planted)
    assert rc == 1 and "CuPy has no permute_dims" in lines[1], lines


def test_the_backends_cupy_only_branches_are_among_the_checked_uses():
    """asnumpy, out= (backend.into), the generator's draws (it has no permutation),
    synchronize's stream, default_rng: all in CuPy-only code, all walked."""
    found = {(u.kind, u.path, u.keywords) for u in library_uses()}
    for use in [("namespace", ("asnumpy",), ()),
                ("namespace", ("cuda", "get_current_stream"), ()),
                ("namespace", ("random", "default_rng"), ()),
                ("namespace", ("argsort",), ()),
                ("generator", ("random",), ("dtype",)),
                ("generator", ("standard_normal",), ("dtype",)),
                ("namespace", ("multiply",), ("out",)),
                ("namespace", ("matmul",), ("out",))]:
        assert use in found, use
    # ... and NumPy-only branches are not: the generator's permutation, bit_generator
    assert not {u for u in found if u[0] == "generator" and u[1][0] in ("permutation", "bit_generator")}


PLANTED = '''
from npgan.backend import get_array_module, into

def planted(x, be):
    xp = get_array_module(x)
    y = xp.no_such_function(x)
    z = be.xp.random.no_such_draw(3)
    w = be.rng.permutation(5)
    into(y, "no_such_ufunc", x)
    v = x.to_device("cpu")
    return xp.sum(x, no_such_keyword=1)

def fine_elsewhere(x, be):
    if be.name == "numpy":
        return be.rng.permutation(5)          # NumPy only: not CuPy's business
    xp = get_array_module(x)
    if getattr(xp, "__name__", "") == "cupy":
        return xp.asnumpy(x)
    return x.to_device("cpu")                 # after CuPy's return: not on CuPy's path
'''


def test_the_check_finds_planted_unknown_names_and_keywords():
    cupy = real_cupy()
    problems = problems_with(uses(PLANTED, "planted.py"), cupy)
    text = "\n".join(problems)
    for expected in ("namespace no_such_function", "namespace random.no_such_draw",
                     "generator permutation", "namespace no_such_ufunc(out=)",
                     "array to_device", "takes no no_such_keyword"):
        assert expected in text, text
    assert len(problems) == 6, text               # nothing from fine_elsewhere


# ------------------------------------------- the real CuPy on a machine without GPU
def test_get_backend_cupy_fails_with_cupys_own_reason():
    cupy = without_device()
    try:
        cupy.cuda.runtime.getDeviceCount()
        reason = "0 CUDA devices"
    except Exception as err:                      # e.g. cudaErrorInsufficientDriver
        reason = str(err)
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    assert reason in str(info.value) and "\n" not in str(info.value)


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def one_line_error(result, reason):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and reason in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_command_lines_with_backend_cupy_fail_at_once_and_write_nothing(tmp_path):
    without_device()
    reason = cupy_status().split("(", 1)[1].split(")", 1)[0]      # CuPy's exception text
    out = tmp_path / "run"
    one_line_error(run("examples/train_mnist.py", "--backend", "cupy", "--dataset",
                       "mnist-5k", "--out", str(out)), reason)
    assert not out.exists()
    # a NumPy checkpoint, then sample and evaluate it on CuPy
    from npgan.config import TrainConfig
    from npgan.train import train
    train(TrainConfig(dataset="mnist-5k", latent_dim=4, g_hidden=(8,), d_hidden=(8,),
                      max_steps=1, out=str(tmp_path / "ck")), progress=False)
    checkpoint = str(tmp_path / "ck" / "checkpoint.npz")
    one_line_error(run("-m", "npgan", "sample", checkpoint, "--backend", "cupy", "-n", "4",
                       "-o", str(tmp_path / "s" / "x.npy")), reason)
    assert not (tmp_path / "s").exists()
    one_line_error(run("-m", "npgan", "evaluate", checkpoint, "--backend", "cupy",
                       "--json", str(tmp_path / "e.json")), reason)
    assert not (tmp_path / "e.json").exists()


# ------------------------------------- the backend's CuPy-only branches, emulated
class _CupyLikeGenerator:
    """NumPy behind CuPy's Generator API: random/standard_normal, and no permutation.
    It keeps the keys it drew, so a test can look for ties."""

    def __init__(self, seed):
        self._rng, self.drawn = np.random.default_rng(seed), []

    def random(self, size=None, dtype=np.float64, out=None):
        keys = self._rng.random(size, dtype=dtype)
        self.drawn.append(keys)
        return keys

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return self._rng.standard_normal(size, dtype=dtype)


def cupy_like():
    """A module that looks like CuPy to Backend: NumPy's math, CuPy's generator API,
    a stream whose synchronize() is counted."""
    stream = types.SimpleNamespace(synchronized=0)
    stream.synchronize = lambda: setattr(stream, "synchronized", stream.synchronized + 1)
    xp = types.ModuleType("cupy")
    for name in ("argsort", "float32", "float64", "int64", "asarray", "zeros"):
        setattr(xp, name, getattr(np, name))
    xp.random = types.SimpleNamespace(default_rng=_CupyLikeGenerator)
    xp.cuda = types.SimpleNamespace(get_current_stream=lambda: stream)
    xp.asnumpy = np.asarray
    return xp, stream


def test_the_cupy_shuffle_draws_keys_without_ties():
    """The shuffle argsorts random keys: float32 keys tie about 100 times in 60,000
    (each tied pair keeps its order); the keys must all differ."""
    for seed in range(3):
        xp, _ = cupy_like()
        be = Backend("cupy", xp, "float32", seed)
        perm = be.permutation(60_000)
        assert np.array_equal(np.sort(perm), np.arange(60_000))
        keys = be.rng.drawn[-1]
        assert keys.dtype == np.float64
        assert np.unique(keys).size == keys.size, f"{keys.size - np.unique(keys).size} ties"
    # control: float32 keys of the same size do tie
    keys32 = np.random.default_rng(0).random(60_000, dtype=np.float32)
    assert np.unique(keys32).size < keys32.size


def test_the_cupy_backends_generator_state_and_synchronize():
    xp, stream = cupy_like()
    be = Backend("cupy", xp, "float32", seed=5)
    assert be.randn((3, 2)).dtype == np.float32 and be.uniform(-1, 1, (4,)).dtype == np.float32
    assert be.rng_state() == {"kind": "cupy-reseed", "seed": 5}
    be.set_rng_state(be.rng_state(), step=10)      # reseeded from (seed, step)
    first = be.randn((3,))
    be.set_rng_state(be.rng_state(), step=10)
    np.testing.assert_array_equal(be.randn((3,)), first)
    be.set_rng_state({"kind": "numpy", "state": {}}, step=3)   # a NumPy run continued on CuPy
    be.synchronize()
    assert stream.synchronized == 1

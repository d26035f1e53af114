"""benchmarks/gpu_check.py on a machine without a GPU: it says so first, runs `info`,
and exits non-zero; its parity step, run on a CPU stand-in for the device."""
import subprocess
import sys
from pathlib import Path

import pytest

from npgan.backend import cupy_status

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(cupy_status() is None, reason="a GPU is usable here: run the script itself")
def test_without_a_gpu_it_says_so_first_runs_info_and_exits_nonzero(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"no GPU here: {cupy_status()}"
    assert any(line.startswith("npgan       0.1.0") for line in lines)       # info ran
    assert any(line.startswith("CuPy        ") for line in lines)
    report = (tmp_path / "report.md").read_text()
    assert report.startswith(f"# npgan gpu_check: no GPU here: {cupy_status()}")
    assert "## 1. python -m npgan info" in report and "**ok**" in report
    assert "## 2." not in report                                 # nothing else was tried


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check
    return gpu_check


def test_the_parity_step_on_a_cpu_stand_in(gpu_check, tmp_path, monkeypatch):
    """Step 3 with array-api-strict's device1 in CuPy's place: same weights, batch and
    noise give the same step. Control: a side whose gradients are 3x is caught."""
    check = gpu_check.Check(tmp_path, budget=100)
    gpu_check.step_parity(check, ("array-api-strict", "device1"))
    title, verdict, _ = check.verdicts[-1]
    assert title == "3. one train_step, NumPy vs array-api-strict" and verdict.startswith("ok; ")
    assert "G.6.W" in check.sections[-1] and "D.0.W" in check.sections[-1]

    real = gpu_check.one_train_step
    calls = []

    def three_times_on_the_second_side(be, weights, x, noise):
        grads, params, names = real(be, weights, x, noise)
        calls.append(be.name)
        return ([g * 3 for g in grads] if len(calls) == 2 else grads), params, names

    monkeypatch.setattr(gpu_check, "one_train_step", three_times_on_the_second_side)
    gpu_check.step_parity(check, ("array-api-strict", "device1"))
    assert check.verdicts[-1][1].startswith("FAILED: D.0.W, D.0.b")


@pytest.mark.slow
def test_the_sync_count_step_on_a_cpu_stand_in(gpu_check, tmp_path, monkeypatch):
    """Step 4 with device1 (it refuses implicit conversion to NumPy, as CuPy does) in
    CuPy's place: no transfer inside train_step, one per logging interval in train."""
    from npgan import train as train_module
    from npgan.backend import get_backend
    monkeypatch.setattr(train_module, "get_backend",
                        lambda name, dtype, seed: get_backend(name, dtype=dtype, seed=seed,
                                                              device="device1"))
    check = gpu_check.Check(tmp_path, budget=100)
    gpu_check.step_syncs(check, ("array-api-strict", "device1"))
    title, verdict, _ = check.verdicts[-1]
    assert title == "4. host synchronizations per step on array-api-strict"
    assert verdict == "ok: 0 per step outside the logging points", check.sections[-1]
    assert "after steps [21, 41]" in check.sections[-1]

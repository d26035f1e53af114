"""The benchmark scripts run, as a user runs them, at a tiny size (their timings are
not asserted: this machine is shared, see README "Performance")."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# every test here starts a benchmark script as a process: the slow step of .ci/run runs them
pytestmark = pytest.mark.slow


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_bench_backends_writes_its_table_and_plot(tmp_path):
    result = run("benchmarks/bench_backends.py", "--backends", "numpy,cupy", "--batches", "8,16",
                 "--widths", "half", "--repeat", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "bench_backends.md").read_text()
    assert "| numpy | half | 8 |" in table and "| numpy | half | 16 |" in table
    assert "step / floor" in table and "Adam ms" in table
    assert (tmp_path / "bench_backends.png").read_bytes()[:4] == b"\x89PNG"
    assert "batch 8 -> 16 costs" in result.stdout
    if "cupy: skipped" in result.stdout:          # says why in one line, still benchmarks NumPy
        assert "No module named 'cupy'" in result.stdout or "CUDA" in result.stdout


def test_bench_memory_finds_no_growth(tmp_path):
    result = run("benchmarks/bench_memory.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "-> no growth" in result.stdout, result.stdout
    assert "largest batch of the MNIST MLP" in result.stdout


def test_bench_vs_torch_runs_or_says_why_not(tmp_path):
    result = run("benchmarks/bench_vs_torch.py", "--batches", "8", "--rounds", "1",
                 "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    if importlib.util.find_spec("torch") is None:
        assert "PyTorch is not installed" in result.stdout
    else:
        assert "npgan / PyTorch" in result.stdout
        assert "max abs difference" in result.stdout
        assert (tmp_path / "bench_vs_torch.md").exists()


def test_bench_conv_writes_the_dcgan_step_and_its_floor(tmp_path):
    result = run("benchmarks/bench_conv.py", "--batch", "4", "--base-channels", "4",
                 "--repeats", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "bench_conv.md").read_text()
    assert table.startswith("CPU: ") and "BLAS threads:" in table    # the machine lines
    assert "| DCGAN train_step (D + G update) " in table
    assert "| DCGAN train_step: matmul floor (33 products" in table     # 35 less D's 2 skipped dx
    assert "numpy: DCGAN train_step = " in table and "x its matmul floor" in table
    assert "Conv2d 4->8 k4 s2 p1, 14x14: fwd+bwd" in table
    if importlib.util.find_spec("torch") is None:
        assert "PyTorch is not installed" in result.stdout
    else:
        assert "max abs difference" in result.stdout
        assert "npgan / PyTorch, DCGAN train_step, numpy vs torch cpu" in table
        assert "numpy / torch cpu" in table


def test_bench_threads_writes_a_row_per_setting(tmp_path):
    result = run("benchmarks/bench_threads.py", "--seconds", "0.05", "--busy", "0", "--rounds", "1",
                 "--models", "mlp,toy", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "bench_threads.md").read_text()
    assert table.startswith("CPU: ") and "| model | busy jobs | threads | ms per step |" in table
    for model in ("mlp", "toy"):
        for threads in (1, 2):
            assert f"| {model} | 0 | {threads} | " in table
        assert sum(f"| {model} | 0 |" in line and "| best |" in line
                   for line in table.splitlines()) == 1

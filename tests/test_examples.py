"""The command-line entry points, run as a user would run them."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=ROOT):
    # PYTHONPATH: a script's own folder comes first on sys.path, so without it the
    # examples would import an installed npgan instead of this checkout's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_train_mnist_dry_run_then_sample(tmp_path):
    out = tmp_path / "run"
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "done: 3 steps" in result.stdout
    assert (out / "checkpoint.npz").exists() and (out / "metrics.jsonl").exists()

    npy = run("-m", "npgan", "sample", str(out / "checkpoint.npz"), "-n", "10", "-o", str(tmp_path / "s.npy"))
    assert npy.returncode == 0, npy.stderr
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (10, 784) and images.dtype == np.float32
    assert -1.0 <= images.min() and images.max() <= 1.0
    evaluation = run("-m", "npgan", "evaluate", str(out / "checkpoint.npz"), "--n", "300",
                     "--json", str(tmp_path / "eval.json"))
    assert evaluation.returncode == 0, evaluation.stderr
    assert "frechet" in evaluation.stdout and "classes" in evaluation.stdout
    import json
    assert json.loads((tmp_path / "eval.json").read_text())["n"] == 300
    png = run("-m", "npgan", "sample", str(out / "checkpoint.npz"), "-n", "16", "-o", str(tmp_path / "s.png"))
    assert png.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_flags_fail_at_once_with_a_message(tmp_path):
    result = run("examples/train_mnist.py", "--lr", "-1", "--batch-size", "0", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "lr must be > 0" in result.stderr and "batch_size must be a positive integer" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("examples/train_mnist.py", "--dataset", "nope", "--out", str(tmp_path))
    assert "unknown dataset 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_sample_rejects_bad_input(tmp_path):
    result = run("-m", "npgan", "sample", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "x.png"))
    assert result.returncode != 0 and "no checkpoint at" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("-m", "npgan", "sample", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "x.jpg"))
    assert "must end in .npy" in result.stderr


def test_gradient_flow_trains_records_and_plots(tmp_path):
    out = tmp_path / "flow"
    result = run("examples/gradient_flow.py", "--max-steps", "4", "--log-every", "2",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"
    assert "G.0.W" in result.stdout and "D.4.W" in result.stdout
    # a run without --log-grad-norms has nothing to plot: a clear error, no traceback
    plain = tmp_path / "plain"
    assert run("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run",
               "--out", str(plain)).returncode == 0
    result = run("examples/gradient_flow.py", "--metrics", str(plain / "metrics.jsonl"))
    assert result.returncode != 0 and "--log-grad-norms" in result.stderr
    assert "Traceback" not in result.stderr


def test_conditional_dry_run_then_sample_by_label_and_evaluate(tmp_path):
    out = tmp_path / "cond"
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--conditional",
                 "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    ck = str(out / "checkpoint.npz")
    npy = run("-m", "npgan", "sample", ck, "-n", "6", "--label", "3", "-o", str(tmp_path / "3.npy"))
    assert npy.returncode == 0, npy.stderr
    assert np.load(tmp_path / "3.npy").shape == (6, 784)
    png = run("-m", "npgan", "sample", ck, "-n", "20", "-o", str(tmp_path / "rows.png"))
    assert png.returncode == 0, png.stderr
    evaluation = run("-m", "npgan", "evaluate", ck, "--n", "200")
    assert evaluation.returncode == 0, evaluation.stderr
    assert "agree" in evaluation.stdout and '"label_agreement"' in evaluation.stdout
    bad = run("-m", "npgan", "sample", ck, "--label", "12", "-o", str(tmp_path / "x.npy"))
    assert bad.returncode != 0 and "--label must be a class from 0 to 9" in bad.stderr
    plain = tmp_path / "plain"
    assert run("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run",
               "--out", str(plain)).returncode == 0
    bad = run("-m", "npgan", "sample", str(plain / "checkpoint.npz"), "--label", "1",
              "-o", str(tmp_path / "x.npy"))
    assert bad.returncode != 0 and "trained without --conditional" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_toy_2d_and_saturation_examples_write_their_figures(tmp_path):
    toy = run("examples/toy_2d.py", "--steps", "20", "--every", "10", "--out", str(tmp_path / "toy"))
    assert toy.returncode == 0, toy.stderr
    assert "modes covered" in toy.stdout
    for name in ("toy_2d_ring_000010.png", "toy_2d_ring_000020.png", "toy_2d_ring.png"):
        assert (tmp_path / "toy" / name).read_bytes()[:4] == b"\x89PNG", name
    assert (tmp_path / "toy" / "toy_2d.gif").read_bytes()[:3] == b"GIF"
    sat = run("examples/saturation.py", "--out", str(tmp_path / "sat.png"))
    assert sat.returncode == 0, sat.stderr
    assert (tmp_path / "sat.png").read_bytes()[:4] == b"\x89PNG"


def test_each_loss_trains_from_the_command_line_with_its_papers_settings(tmp_path):
    """--loss picks the optimizer and its settings (printed at start); an explicit flag
    overrides them; a critic's run logs its Wasserstein estimate, not D's accuracy."""
    import json
    expected = {"wgan": "RMSprop lr 5e-05 (alpha 0.99); n_critic = 5",
                "wgan-gp": "Adam lr 0.0001, betas (0, 0.9); n_critic = 5",
                "hinge": "Adam lr 0.0002, betas (0.5, 0.999); n_critic = 5"}
    for loss, settings in expected.items():
        out = tmp_path / loss
        result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--loss", loss,
                     "--dry-run", "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert settings in result.stdout + result.stderr, loss
        assert "W estimate" in result.stdout
        record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert "wasserstein" in record and "acc_real" not in record
        assert ("grad_norm" in record) == (loss == "wgan-gp")
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--loss", "wgan", "--lr",
                 "1e-4", "--d-steps", "2", "--dry-run", "--out", str(tmp_path / "override"))
    assert "RMSprop lr 0.0001 (alpha 0.99); n_critic = 2" in result.stdout + result.stderr
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--loss", "hinge",
                 "--label-smoothing", "0.1", "--dry-run", "--out", str(tmp_path / "bad"))
    assert result.returncode != 0 and "the hinge critic has no targets" in result.stderr
    assert "Traceback" not in result.stderr


def test_toy_examples_take_a_loss(tmp_path):
    toy = run("examples/toy_2d.py", "--loss", "wgan-gp", "--steps", "4", "--every", "2",
              "--out", str(tmp_path / "toy"))
    assert toy.returncode == 0, toy.stderr
    assert "W estimate" in toy.stdout and (tmp_path / "toy" / "toy_2d.gif").exists()
    table = run("examples/toy_losses.py", "--steps", "3", "--seeds", "0", "1",
                "--losses", "gan", "wgan-gp")
    assert table.returncode == 0, table.stderr
    assert "wgan-gp  seed 1:" in table.stdout and "3 G-updates, 15 D-updates" in table.stdout
    assert "| gan |" in table.stdout and "| wgan-gp |" in table.stdout


def test_wgan_figures_reads_critic_runs(tmp_path):
    for loss in ("wgan-gp", "wgan"):
        result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--loss", loss,
                     "--dry-run", "--out", str(tmp_path / loss))
        assert result.returncode == 0, result.stderr
    figure = run("examples/wgan_figures.py", str(tmp_path / "wgan-gp"), str(tmp_path / "wgan"),
                 "--n", "50", "--out", str(tmp_path / "w.png"))
    assert figure.returncode == 0, figure.stderr
    assert "||grad D(x_hat)|| median" in figure.stdout
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"

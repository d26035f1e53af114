"""The command-line entry points, run as a user would run them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.shell import printed_hint, python_as_shown, require_installed_npgan, typed_in_a_shell

ROOT = Path(__file__).resolve().parents[1]
# every test here starts the scripts as processes: the slow step of .ci/run runs them
pytestmark = pytest.mark.slow


def run(*args, cwd=ROOT):
    # a script's own folder comes first on sys.path, not the working directory: put this
    # checkout first, so the examples import its npgan and not another installed copy
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_train_mnist_dry_run_then_sample(tmp_path):
    out = tmp_path / "run"
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "done: 3 steps" in result.stdout
    assert "\ndata: MNIST-5k, the 4,500 bundled training digits\nmodel: MLP GAN, G " \
           "100-256-512-1024-784" in "\n" + result.stdout, result.stdout
    assert "\nsteps: 200 epochs x 70 steps (batch 64) = 14,000 steps; this run stops at " \
           "step 3\nthreads: 1 " in result.stdout, result.stdout
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
    assert "{" not in evaluation.stdout                     # the table, and no JSON
    assert f"wrote {tmp_path / 'eval.json'}" in evaluation.stdout
    assert json.loads((tmp_path / "eval.json").read_text())["n"] == 300
    as_json = run("-m", "npgan", "evaluate", str(out / "checkpoint.npz"), "--n", "300", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == json.loads((tmp_path / "eval.json").read_text())
    png = run("-m", "npgan", "sample", str(out / "checkpoint.npz"), "-n", "16", "-o", str(tmp_path / "s.png"))
    assert png.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_flags_fail_at_once_naming_the_flags_typed(tmp_path):
    result = run("examples/train_mnist.py", "--lr", "-1", "--batch-size", "0", "--out", str(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr == ("error: invalid settings:\n  --batch-size must be a positive "
                             "integer, got 0\n  --lr must be > 0, got -1.0\n"), result.stderr
    result = run("examples/train_mnist.py", "--batch-size", "0", "--out", str(tmp_path))
    assert result.stderr == "error: --batch-size must be a positive integer, got 0\n"
    result = run("examples/train_mnist.py", "--dataset", "nope", "--out", str(tmp_path))
    assert "unknown --dataset 'nope'" in result.stderr and "Traceback" not in result.stderr
    result = run("examples/train_mnist.py", "--dataset", "mnist-5k", "--data-dir", "x",
                 "--out", str(tmp_path))
    assert result.stderr.startswith("error: --dataset 'mnist-5k' is bundled and reads no "
                                    "--data-dir; use --dataset 'mnist'"), result.stderr
    (tmp_path / "a_file").write_text("mine")
    result = run("examples/train_mnist.py", "--dry-run", "--out", str(tmp_path / "a_file"))
    assert result.stderr == (f"error: --out {tmp_path / 'a_file'} is a file, not a folder: give "
                             f"the run a folder of its own (it writes checkpoint.npz, "
                             f"metrics.jsonl and samples/ there)\n"), result.stderr
    assert (tmp_path / "a_file").read_text() == "mine"


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
    assert "agree" in evaluation.stdout and "label_agreement" not in evaluation.stdout
    as_json = run("-m", "npgan", "evaluate", ck, "--n", "200", "--json")
    assert "label_agreement" in json.loads(as_json.stdout)
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


def test_sample_into_a_missing_folder_creates_it_and_a_bad_path_is_one_line(tmp_path):
    out = tmp_path / "run"
    assert run("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run",
               "--out", str(out)).returncode == 0
    ck = str(out / "checkpoint.npz")
    made = run("-m", "npgan", "sample", ck, "-n", "4", "-o", "missing/folder/x.npy", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert np.load(tmp_path / "missing" / "folder" / "x.npy").shape == (4, 784)
    (tmp_path / "a_file").write_text("not a folder")
    for output in ("a_file/folder/x.npy", "a_file/x.png"):
        bad = run("-m", "npgan", "sample", ck, "-n", "4", "-o", output, cwd=tmp_path)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: cannot "), bad.stderr
        assert output in bad.stderr and "a_file is a file, not a folder" in bad.stderr


def test_ctrl_c_then_the_printed_hint_typed_literally_ends_bit_identical(tmp_path):
    """The hint Ctrl-C prints, typed as printed into a shell without the venv active,
    continues the interrupted run (its data set and epochs, not the command line's
    defaults) and ends with the same weights, Adam moments and EMA as a run that was
    never interrupted. The interrupted run leaves its curves and GIF, as a finished one."""
    import signal
    import time
    require_installed_npgan()
    flags = ["--dataset", "mnist-5k", "--epochs", "3", "--batch-size", "500", "--seed", "7",
             "--log-every", "4"]
    full = run("examples/train_mnist.py", *flags, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "examples/train_mnist.py", *flags, "--out", str(cut)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (cut / "samples" / "epoch_0001.png").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)                          # Ctrl-C in epoch 2
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, (stdout, stderr)
    assert (cut / "curves.png").exists() and (cut / "samples.gif").exists()
    hint = printed_hint(stdout)
    assert hint == f"{python_as_shown()} examples/train_mnist.py --out {cut} --resume"
    resumed = typed_in_a_shell(hint)
    assert resumed.returncode == 0, resumed.stderr
    assert "dataset=mnist-5k" in resumed.stdout and "epochs=3 " in resumed.stdout
    assert "changed:" not in resumed.stdout
    with np.load(tmp_path / "full" / "checkpoint.npz") as a, np.load(cut / "checkpoint.npz") as b:
        arrays = [k for k in a.files if k.split("/")[0] in ("G", "D", "G_ema", "opt_g", "opt_d")]
        assert len(arrays) > 30 and sorted(a.files) == sorted(b.files)
        for k in arrays:
            assert np.array_equal(a[k], b[k]), k


def test_a_resume_refuses_settings_that_cannot_change_and_accepts_more_epochs(tmp_path):
    out = tmp_path / "run"
    assert run("examples/train_mnist.py", "--dataset", "mnist-5k", "--epochs", "1",
               "--batch-size", "500", "--out", str(out)).returncode == 0
    bad = run("examples/train_mnist.py", "--out", str(out), "--resume", "--dataset", "mnist",
              "--g-loss", "minimax", "--epochs", "2")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1, bad.stderr
    assert "--dataset='mnist' (the run has 'mnist-5k'), --g-loss='minimax' (the run has " \
           "'non-saturating')" in bad.stderr and "may change only --epochs, --out" in bad.stderr
    more = run("examples/train_mnist.py", "--out", str(out), "--resume", "--epochs", "2")
    assert more.returncode == 0, more.stderr
    assert "resuming" in more.stdout and "(1 of 2 epochs done)" in more.stdout
    assert "changed: epochs 1 -> 2" in more.stdout and "done: 18 steps, 2 epochs" in more.stdout


def test_the_offline_fallback_is_announced_by_its_message_alone(tmp_path):
    """No network (the MNIST mirror is a closed port): train_mnist.py says it falls back
    to MNIST-5k in one warning, without the file, line and line of npgan's source
    that Python's default warning format prints under it."""
    code = ("import runpy, sys; from npgan import download; "
            "download.MIRRORS['mnist'] = ('http://127.0.0.1:9/',); "
            f"sys.argv = ['train_mnist.py', '--dry-run', '--dataset', 'mnist', '--out', {str(tmp_path / 'run')!r}]; "
            "runpy.run_path('examples/train_mnist.py', run_name='__main__')")
    import os
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300,
                            env=dict(os.environ, NPGAN_DATA=str(tmp_path / "cache"),
                                     OPENBLAS_NUM_THREADS="1"))   # no busy-machine warning
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert err.count("warning: full MNIST is not available") == 1, err
    message_end = "to a folder with the four MNIST IDX files.\n"
    assert message_end in err, err
    after = err.split(message_end, 1)[1]
    assert "load_dataset(" not in err and "UserWarning" not in err and ".py:" not in err, err
    assert not after.strip() or after.lstrip().startswith(("epoch", "\r")), after[:200]


def test_optimal_d_and_gan_1d_run_small_and_write_their_figures(tmp_path):
    od = run("examples/optimal_d.py", "--steps", "60", "--batch-size", "128", "--hidden", "16",
             "--mc-samples", "4000", "--pairs", "2", "--out", str(tmp_path / "od"))
    assert od.returncode == 0, od.stderr
    assert "-log4+2JSD" in od.stdout and "max|D-D*|" in od.stdout
    assert "NOT met" in od.stdout                                   # 60 steps are too few
    assert (tmp_path / "od" / "optimal_d.png").read_bytes()[:4] == b"\x89PNG"
    g1 = run("examples/gan_1d.py", "--steps", "10", "--every", "5", "--batch-size", "64",
             "--d-steps", "1", "--hidden", "8", "--panels", "3", "--out", str(tmp_path / "g1"))
    assert g1.returncode == 0, g1.stderr
    assert "JSD(p_data, p_g)" in g1.stdout and "at step 10" in g1.stdout
    assert (tmp_path / "g1" / "gan_1d.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "g1" / "gan_1d.gif").read_bytes()[:3] == b"GIF"
    bad = run("examples/gan_1d.py", "--panels", "1", "--out", str(tmp_path / "g1"))
    assert bad.returncode != 0 and "--panels" in bad.stderr and "Traceback" not in bad.stderr


def test_d_at_half_trains_records_and_plots(tmp_path):
    out = tmp_path / "half"
    result = run("examples/d_at_half.py", "--max-steps", "4", "--log-every", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "d_at_half.png").read_bytes()[:4] == b"\x89PNG"
    assert "dx_fake_norm" in result.stdout and "acc_real" in result.stdout
    # an old run's metrics, without dx_fake_norm: a clear error, no traceback
    old = tmp_path / "old" / "metrics.jsonl"
    old.parent.mkdir()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    old.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "dx_fake_norm"}) + "\n"
                           for r in records))
    result = run("examples/d_at_half.py", "--metrics", str(old))
    assert result.returncode != 0 and "dx_fake_norm" in result.stderr
    assert "Traceback" not in result.stderr


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
    toy = run("examples/toy_2d.py", "--setting", "wgan-gp", "--steps", "4", "--every", "2",
              "--out", str(tmp_path / "toy"))
    assert toy.returncode == 0, toy.stderr
    assert "W estimate" in toy.stdout and (tmp_path / "toy" / "toy_2d.gif").exists()
    table = run("examples/toy_settings.py", "--steps", "3", "--seeds", "0", "1",
                "--settings", "gan", "wgan-gp", "gan+noise0.3")
    assert table.returncode == 0, table.stderr
    assert "wgan-gp      seed 1:" in table.stdout and "3 G-updates, 15 D-updates" in table.stdout
    assert "| gan |" in table.stdout and "| wgan-gp |" in table.stdout
    assert "| gan+noise0.3 |" in table.stdout
    old_flag = run("examples/toy_2d.py", "--loss", "hinge", "--steps", "2", "--every", "2",
                   "--out", str(tmp_path / "toy_hinge"))
    assert old_flag.returncode == 0, old_flag.stderr


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


@pytest.mark.slow
def test_a_log_file_gets_one_line_an_epoch_and_a_terminal_gets_a_bar(tmp_path):
    """Output redirected to a file: the plan, the estimate and the epoch lines, and not one
    progress-bar redraw. The control: the same run with stderr on a terminal (a pty) draws
    its bar there."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    flags = ["examples/train_mnist.py", "--dataset", "mnist-5k", "--epochs", "2",
             "--batch-size", "100", "--log-every", "5"]
    with open(tmp_path / "log.txt", "w") as log:
        result = subprocess.run([sys.executable, *flags, "--out", str(tmp_path / "file")],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, timeout=300,
                                env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert result.returncode == 0
    text = (tmp_path / "log.txt").read_text()
    assert "\r" not in text and "step/s" not in text, text
    lines = text.splitlines()
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch ")] == \
        ["epoch 1/2", "epoch 2/2"], text
    assert sum(line.startswith("estimated total: about ") for line in lines) == 1, text
    assert "left]" in [line for line in lines if line.startswith("epoch 1/2")][0]
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([sys.executable, *flags, "--epochs", "1", "--out", str(tmp_path / "tty")],
                            stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT,
                            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    os.close(stderr)
    shown = b""
    while True:                     # read while it runs: a pty holds a few kB, no more
        if select.select([terminal], [], [], 1.0)[0]:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:                                 # the child's end is closed
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(terminal)
    assert proc.wait(timeout=300) == 0
    assert b"\r" in shown and b"step/s" in shown, shown[-500:]


@pytest.mark.slow
def test_every_example_refuses_an_out_that_is_a_file_in_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    cases = {"examples/toy_2d.py": f"error: --out {a_file} is a file, not a folder",
             "examples/gan_1d.py": f"error: --out {a_file} is a file, not a folder",
             "examples/optimal_d.py": f"error: --out {a_file} is a file, not a folder",
             "examples/saturation.py": f"error: --out {a_file}/s.png: {a_file} is a file, not a folder",
             "examples/gradient_flow.py": f"error: --out {a_file} is a file, not a folder: give "
                                          f"the run a folder of its own"}
    for script, start in cases.items():
        out = a_file / "s.png" if script.endswith("saturation.py") else a_file
        result = run(script, "--out", str(out))
        assert result.returncode == 1 and "Traceback" not in result.stderr, (script, result.stderr)
        assert result.stderr.startswith(start) and result.stderr.count("\n") == 1, (script, result.stderr)
    assert a_file.read_text() == "mine"

"""Faults a long run meets, produced for real: a file-size limit (RLIMIT_FSIZE) while a
checkpoint, the metrics or a grid is written, kill -9 after a failed write, SIGTERM, two
runs in one folder, NaN weights and unknown settings in a checkpoint edited on disk,
and absurd sample counts. docs/faults.md lists what each test promises."""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from npgan.checkpoint import CheckpointError, load_checkpoint
from npgan.config import TrainConfig, resume_config
from npgan.files import AppendLog
from npgan.metrics import FeatureMoments
from npgan.models import generate, load_generator
from npgan.runlock import LOCK_NAME, FolderInUse, RunLock
from npgan.train import TrainingInterrupted, train
from tests.shell import printed_hint, python_as_shown, require_installed_npgan, typed_in_a_shell

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6                 # of the tiny GAN below: 70 steps each on mnist-5k, batch 64
CUT = 45                   # the step the stopped run stops at, mid-epoch 1
TOTAL = EPOCHS * 70
WEIGHTS = ("G", "D", "G_ema", "opt_g", "opt_d")


def tiny(out, **overrides):
    """A tiny GAN on the bundled digits: an epoch takes a fraction of a second."""
    settings = dict(dataset="mnist-5k", epochs=EPOCHS, latent_dim=8, g_hidden=(16,),
                    d_hidden=(16,), log_every=10, seed=3, out=str(out))
    return TrainConfig(**{**settings, **overrides})


def cli(*args, cwd=ROOT, fsize=None, **popen):
    """Run `python ARGS` as a user would (this checkout's npgan first on the path),
    under a file-size limit of `fsize` bytes if given (Python ignores SIGXFSZ, so a
    write past it fails with EFBIG instead of killing the process)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))

    def limit():
        # Ctrl-C as in a terminal: a test run started in the background (nohup, `cmd &`)
        # ignores SIGINT, its children inherit that, and Python then raises no
        # KeyboardInterrupt; a program run in a terminal always gets it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    if popen:
        return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, preexec_fn=limit,
                                text=True, **popen)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, preexec_fn=limit,
                          capture_output=True, text=True, timeout=300)


def weights(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k.split("/")[0].split("@")[0] in WEIGHTS}


def assert_same_weights(path, reference):
    got = weights(path)
    assert len(got) > 20 and sorted(got) == sorted(reference)
    for k in reference:
        assert np.array_equal(got[k], reference[k]), k


def temporaries(folder):
    return [p.name for p in Path(folder).rglob(".*.tmp")]


def one_error_line(result):
    """The one 'error: ' line of a failed command (its stderr may also hold progress bars)."""
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and result.stderr.rstrip().endswith(lines[0]), result.stderr
    return lines[0]


def edit_checkpoint(path, change):
    """Rewrite a checkpoint on disk with change(arrays, meta) applied."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The folder of a run stopped at step CUT, mid-epoch 1."""
    folder = tmp_path_factory.mktemp("faults") / "cut"
    train(tiny(folder, max_steps=CUT), progress=False)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The weights of the same run never stopped: what every resumed run below must
    end with, to the bit."""
    folder = tmp_path_factory.mktemp("faults") / "full"
    train(tiny(folder), progress=False)
    return weights(folder / "checkpoint.npz")


@pytest.fixture
def run(stopped, tmp_path):
    """A fresh copy of the stopped run's folder."""
    folder = tmp_path / "run"
    shutil.copytree(stopped, folder)
    return folder


def resume_to_the_end(folder, reference):
    """Resume as the error message says; the run must end as if never stopped."""
    resumed = cli("examples/train_mnist.py", "--out", str(folder), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"done: {TOTAL} steps" in resumed.stdout
    assert_same_weights(folder / "checkpoint.npz", reference)
    assert temporaries(folder) == []
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == TOTAL     # no torn or repeated record
    return resumed


# ------------------------------------------------------------- a full disk, ulimit -f
@pytest.mark.slow
@pytest.mark.parametrize("limit,fails", [
    (None, "metrics.jsonl"),                   # the log: 100 bytes more tear its next record
    (32_000, "samples/epoch_0001.png"),        # a 64 kB grid, at the end of epoch 1
    (128_000, "checkpoint.npz"),               # the 418 kB checkpoint after it
])
def test_a_file_size_limit_is_one_line_and_nothing_is_lost(run, uninterrupted, limit, fails):
    folder = run
    limit = limit or (folder / "metrics.jsonl").stat().st_size + 100
    assert (folder / "metrics.jsonl").stat().st_size < limit
    result = cli("examples/train_mnist.py", "--out", str(folder), "--resume", fsize=limit)
    line = one_error_line(result)
    assert result.returncode == 1
    assert line.startswith(f"error: cannot write {folder / fails}: file too large: the "
                           f"file-size limit (ulimit -f) was reached; nothing half-written "
                           f"was left; the last good checkpoint, {folder / 'checkpoint.npz'} "
                           f"(step {CUT}), is intact"), line
    assert line.endswith(f"resume with: {python_as_shown()} examples/train_mnist.py --out "
                         f"{folder} --resume")
    assert temporaries(folder) == []
    assert load_checkpoint(folder / "checkpoint.npz").meta["step"] == CUT
    resume_to_the_end(folder, uninterrupted)


@pytest.mark.slow
def test_kill_9_after_a_failed_write_leaves_the_previous_checkpoint(run, uninterrupted):
    """SIGXFSZ comes with the failed write; here its handler kill -9s the process at
    once, before our clean-up can run. The previous checkpoint loads, and the next run
    removes the temporary file and ends as if nothing had happened."""
    folder = run
    code = ("import os, runpy, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, lambda *a: os.kill(os.getpid(), signal.SIGKILL))\n"
            f"sys.argv = ['train_mnist.py', '--out', {str(folder)!r}, '--resume']\n"
            "runpy.run_path('examples/train_mnist.py', run_name='__main__')\n")
    killed = cli("-c", code, fsize=128_000)            # the checkpoint write fails
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(folder / "checkpoint.npz").meta["step"] == CUT
    resume_to_the_end(folder, uninterrupted)


# ------------------------------------------------------------------------- SIGTERM
def test_sigterm_in_train_finishes_the_step_saves_and_restores_the_handlers(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def terminate(run):
        if run.step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 5 \(SIGTERM\)") as info:
        train(tiny(tmp_path, epochs=1), on_step=terminate, progress=False)
    assert info.value.signum == signal.SIGTERM
    assert load_checkpoint(info.value.checkpoint).meta["step"] == 5
    assert {s: signal.getsignal(s) for s in before} == before
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.slow
def test_sigterm_to_train_mnist_saves_prints_the_hint_and_resumes_bit_identically(run, uninterrupted):
    require_installed_npgan()
    folder = run
    proc = cli("examples/train_mnist.py", "--out", str(folder), "--resume",
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log, deadline = folder / "metrics.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        lines = log.read_text().splitlines() if log.exists() else []
        if lines and json.loads(lines[-1])["step"] > CUT:     # training again: now
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, (stdout, stderr)
    step = load_checkpoint(folder / "checkpoint.npz").meta["step"]
    assert CUT < step < TOTAL, "the run ended before SIGTERM came: give it more epochs"
    assert f"interrupted at step {step} (SIGTERM); checkpoint saved to" in stdout
    hint = printed_hint(stdout)                          # typed as shown, no venv active
    assert hint.startswith(f"{python_as_shown()} examples/train_mnist.py --out ")
    resumed = typed_in_a_shell(hint)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(folder / "checkpoint.npz", uninterrupted)


# -------------------------------------------------------------- two runs, one folder
def test_a_locked_folder_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("the other run's log\n")
    with RunLock(out):
        assert (out / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderInUse, match=rf"the folder {out} is in use by another "
                                              rf"training run \(process {os.getpid()}\)"):
            train(tiny(out, epochs=1), progress=False)
        with pytest.raises(FolderInUse):
            RunLock(out).acquire()
    assert (out / "metrics.jsonl").read_text() == "the other run's log\n"
    assert not (out / LOCK_NAME).exists()                 # released and removed
    train(tiny(out, epochs=1, max_steps=2), progress=False)                # free again
    assert not (out / LOCK_NAME).exists()


@pytest.mark.slow
def test_two_real_runs_in_one_folder_and_a_dead_one_leaves_no_lock(run):
    folder = run
    first = cli("examples/train_mnist.py", "--out", str(folder), "--resume", "--epochs", "100000",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock, deadline = folder / LOCK_NAME, time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if lock.exists() and lock.read_text() == f"{first.pid}\n":
            break
        time.sleep(0.01)
    log = (folder / "metrics.jsonl").read_text()
    second = cli("examples/train_mnist.py", "--dataset", "mnist-5k", "--dry-run", "--out", str(folder))
    line = one_error_line(second)
    assert line == (f"error: the folder {folder} is in use by another training run (process "
                    f"{first.pid}); wait for it to end, stop it, or write this run elsewhere "
                    f"(another --out)")
    assert (folder / "metrics.jsonl").read_text().startswith(log)     # not truncated
    first.kill()                                                      # kill -9
    assert first.wait(timeout=60) == -signal.SIGKILL
    assert lock.exists()                                  # the file stays, the lock does not
    third = cli("examples/train_mnist.py", "--out", str(folder), "--resume", "--dry-run")
    assert third.returncode == 0, third.stderr
    assert not lock.exists() and temporaries(folder) == []


# ------------------------------------------------------------------ NaN/inf weights
def test_nan_weights_are_refused_when_loaded(run):
    folder = run
    ck = folder / "checkpoint.npz"
    edit_checkpoint(ck, lambda a, meta: a["G_ema/0.W"].__setitem__((0, 0), np.nan))
    with pytest.raises(CheckpointError, match=r"G_ema's weights hold NaN/inf in layer 0 "
                                              r"\(W: 1 of 128 values\)"):
        load_generator(ck)
    load_generator(ck, raw=True)                          # G itself is fine: a control
    edit_checkpoint(ck, lambda a, meta: [a["G_ema/0.W"].__setitem__((0, 0), 0.0),
                                         a["opt_d/m/1"].__setitem__(0, np.inf)])
    with pytest.raises(CheckpointError, match=r"opt_d's state holds NaN/inf in m/1"):
        train(tiny(folder), resume=ck, progress=False)


@pytest.mark.slow
def test_sample_evaluate_and_resume_refuse_a_checkpoint_with_nan_weights(run):
    folder = run
    ck = folder / "checkpoint.npz"
    clean = cli("-m", "npgan", "sample", str(ck), "-n", "4", "-o", str(folder / "s.npy"))
    assert clean.returncode == 0, clean.stderr                                  # control

    def poison(arrays, meta):
        arrays["G/0.W"][3, 2] = np.nan
        arrays["G_ema/0.W"][3, 2] = np.nan                   # a diverged G: both

    edit_checkpoint(ck, poison)
    for command in (("-m", "npgan", "sample", str(ck), "-n", "4", "-o", str(folder / "t.npy")),
                    ("-m", "npgan", "evaluate", str(ck), "--n", "100")):
        line = one_error_line(cli(*command))
        assert line == (f"error: {ck}: G_ema's weights hold NaN/inf in layer 0 (W: 1 of 128 "
                        f"values); this checkpoint cannot be used: take an earlier one")
    assert not (folder / "t.npy").exists()
    line = one_error_line(cli("examples/train_mnist.py", "--out", str(folder), "--resume"))
    assert "G's weights hold NaN/inf in layer 0 (W: 1 of 128 values)" in line
    edit_checkpoint(ck, lambda a, meta: [a["G/0.W"].fill(0.5), a["G_ema/0.W"].fill(0.5),
                                         a["D/2.b"].fill(np.inf)])
    line = one_error_line(cli("examples/train_mnist.py", "--out", str(folder), "--resume"))
    assert "D's weights hold NaN/inf in layer 2 (b: 1 of 1 values)" in line


# ------------------------------------------------------------ settings it does not know
def test_unknown_settings_are_named_and_model_settings_refused(run):
    folder = run
    ck = folder / "checkpoint.npz"
    assert "latent_dim" in load_checkpoint(ck).meta["model_settings"]
    edit_checkpoint(ck, lambda a, meta: meta["config"].update(r1_gamma=10.0, notes="mine"))
    config, _, at = resume_config(ck, max_steps=CUT + 1)
    assert at["step"] == CUT and not hasattr(config, "r1_gamma")
    with pytest.warns(UserWarning, match=r"settings this npgan does not know, and ignores: "
                                         r"notes='mine', r1_gamma=10\.0"):
        assert train(config, resume=ck, progress=False)["steps"] == CUT + 1
    with pytest.warns(UserWarning, match="r1_gamma"):
        load_generator(ck)

    def newer(arrays, meta):         # a newer npgan's model setting, listed as one
        meta["config"]["activation"] = "gelu"
        meta["model_settings"].append("activation")

    edit_checkpoint(ck, newer)
    for load in (lambda: resume_config(ck), lambda: load_generator(ck)):
        with pytest.raises(CheckpointError, match=r"settings that change its model and that "
                                                  r"this npgan does not know: activation='gelu'"):
            load()


@pytest.mark.slow
def test_unknown_settings_from_the_command_line(run):
    folder = run
    ck = folder / "checkpoint.npz"
    edit_checkpoint(ck, lambda a, meta: meta["config"].update(r1_gamma=10.0))
    resumed = cli("examples/train_mnist.py", "--out", str(folder), "--resume", "--dry-run")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("warning: ") == 1 and "r1_gamma=10.0" in resumed.stderr
    sampled = cli("-m", "npgan", "sample", str(ck), "-n", "4", "-o", str(folder / "s.npy"))
    assert sampled.returncode == 0 and "r1_gamma=10.0" in sampled.stderr
    edit_checkpoint(ck, lambda a, meta: [meta["config"].update(activation="gelu"),
                                         meta["model_settings"].append("activation")])
    for command in (("examples/train_mnist.py", "--out", str(folder), "--resume"),
                    ("-m", "npgan", "sample", str(ck), "-n", "4", "-o", str(folder / "t.npy"))):
        assert "activation='gelu'; it would build another model" in one_error_line(cli(*command))


# -------------------------------------------------------------------------- huge n
@pytest.mark.slow
def test_sample_refuses_up_front_what_the_disk_or_ulimit_cannot_hold(run):
    folder = run
    ck, out = folder / "checkpoint.npz", folder / "s.npy"
    n = max(10**9, shutil.disk_usage(folder).free // 3136 + 10**6)
    started = time.monotonic()
    line = one_error_line(cli("-m", "npgan", "sample", str(ck), "-n", str(n), "-o", str(out)))
    assert time.monotonic() - started < 60
    assert line.startswith(f"error: {n:,} images need ") and "(3,136 bytes each)" in line
    fit = int(line.split("at most ")[1].split(" fit")[0].replace(",", ""))
    assert 0 <= fit < n and not out.exists()
    line = one_error_line(cli("-m", "npgan", "sample", str(ck), "-n", "1000", "-o", str(out),
                              fsize=2**20))
    assert line == (f"error: 1,000 images need 3.1 MB in {out} (3,136 bytes each), but the "
                    f"file-size limit (ulimit -f) is 1.0 MB: at most 334 fit; ask for fewer (-n)")
    assert cli("-m", "npgan", "sample", str(ck), "-n", "334", "-o", str(out),
               fsize=2**20).returncode == 0                     # and 334 do fit
    assert np.load(out).shape == (334, 784)
    line = one_error_line(cli("-m", "npgan", "sample", str(ck), "-n", "10001", "-o", "x.png"))
    assert line.startswith("error: a .png grid shows at most 10,000 images")


@pytest.mark.slow
def test_a_sample_write_that_fails_midway_leaves_no_file(run):
    """The disk fills while the .npy is written (the up-front check passed): one line,
    and neither the file nor its temporary is left."""
    folder = run
    out = folder / "s.npy"
    code = ("import npgan.__main__ as m\n"
            "m.free_room = lambda folder: (10**15, 'room')   # the check passes\n"
            f"m.main(['sample', {str(folder / 'checkpoint.npz')!r}, '-n', '1000', '-o', {str(out)!r}])\n")
    line = one_error_line(cli("-c", code, fsize=2**20))
    assert line == (f"error: cannot write {out}: file too large: the file-size limit "
                    f"(ulimit -f) was reached; nothing was written")
    assert not out.exists() and temporaries(folder) == []


def test_sample_streams_the_npy_in_bounded_memory_with_the_same_numbers(run, tmp_path):
    from npgan.__main__ import main
    folder = run
    ck = str(folder / "checkpoint.npz")
    peaks = {}
    for n in (500, 2000, 8000):
        tracemalloc.start()
        main(["sample", ck, "-n", str(n), "-o", str(tmp_path / f"{n}.npy")])
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    G, be, config = load_generator(ck)
    expected = generate(G, be, 8000, config.latent_dim, prior=config.prior)   # in one piece
    assert np.array_equal(np.load(tmp_path / "8000.npy"), expected)
    # all 8,000 images at once would be 25 MB more than 2,000 (3,136 bytes each)
    assert peaks[8000] - peaks[2000] < 1e6, peaks


@pytest.mark.slow
def test_evaluate_generator_memory_does_not_grow_with_n(run):
    from npgan.backend import get_backend
    from npgan.classifier import load_or_train_classifier
    from npgan.metrics import evaluate_generator, reference_statistics
    folder = run
    G, be, config = load_generator(folder / "checkpoint.npz")
    model = load_or_train_classifier("mnist-5k", get_backend("numpy"))
    reference = reference_statistics(model, be, "mnist-5k")
    reference["train_feats"] = reference["train_feats"][:500]    # precision/recall keep 500
    peaks = {}
    for n in (1000, 2000, 8000):              # the first call warms up the allocations
        tracemalloc.start()
        result = evaluate_generator(G, be, "mnist-5k", n=n, classifier=model,
                                    reference=reference, latent_dim=8, batch_size=100)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result["n"] == n and result["n_pr"] == 500
    # keeping every sample's 128 features and 10 probabilities (float64) and its z would
    # need 6,000 * 1,136 bytes = 6.8 MB more for 8,000 than for 2,000
    assert peaks[8000] - peaks[2000] < 1e6, peaks


@pytest.mark.slow
def test_evaluate_a_billion_samples_runs_in_flat_memory_and_stops_cleanly(run, request):
    """On a terminal (a pty here) evaluate shows how far it is and the time left. Its
    peak memory (VmHWM) stays flat from 20,000 to 100,000 samples (well past the 4,500
    whose features precision and recall keep): keeping every sample's 128 float64
    features would add 80 MB, and all of z at once, as evaluate did before, is 32 GB.
    The peak, not the resident size of the moment: that swings by ~80 MB from one batch
    to the next (the classifier's temporaries come and go), so two single readings of
    it differ by chance (25 MB between 5,000 and 10,000 samples in one CI run)."""
    import fcntl
    import pty
    import re
    import select
    import struct
    import termios
    folder = run
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = cli("-m", "npgan", "evaluate", str(folder / "checkpoint.npz"), "--n", "1000000000",
               stdout=subprocess.PIPE, stderr=stderr)
    request.addfinalizer(proc.kill)        # a failed check leaves no billion-sample run behind
    os.close(stderr)
    shown = ""

    def read_terminal(timeout):
        nonlocal shown
        if select.select([terminal], [], [], timeout)[0]:
            try:
                shown += os.read(terminal, 65536).decode(errors="replace")
            except OSError:                           # the process closed its end
                pass

    def samples_done():
        counts = re.findall(r"(\d+)/1000000000", shown)
        return int(counts[-1]) if counts else 0

    def peak_rss():
        with open(f"/proc/{proc.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

    memory, deadline = {}, time.monotonic() + 240          # ~5,000 samples/s when idle
    for target in (20_000, 100_000):
        while samples_done() < target:
            assert proc.poll() is None and time.monotonic() < deadline, shown[-2000:]
            read_terminal(0.1)
        memory[target] = peak_rss()
    assert "sample/s" in shown and "<" in shown                       # rate, time left
    proc.send_signal(signal.SIGINT)
    stop_by = time.monotonic() + 120
    while proc.poll() is None:        # keep reading: a full terminal would block its writes,
        assert time.monotonic() < stop_by, shown[-2000:]    # and so its exit, on a busy machine
        read_terminal(0.1)
    read_terminal(1)
    os.close(terminal)
    assert proc.returncode == 130, shown[-2000:]
    assert "interrupted: evaluate stopped; nothing was written" in shown
    assert memory[100_000] - memory[20_000] < 16 * 2**20 and memory[100_000] < 2**30, memory


# ------------------------------------------------------------------ the pieces alone
def test_the_metrics_log_drops_what_came_after_the_checkpoint_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": s, "loss_d": 0.5} for s in (10, 20, 30, 40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 50, "lo')
    with AppendLog(path, "a", resume_step=30) as log:
        log.write(json.dumps({"step": 31}) + "\n")
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [10, 20, 30, 31]


@pytest.mark.parametrize("sizes", [(1000,), (1, 999), (300, 300, 400), (2, 500, 3, 495)])
def test_feature_moments_in_blocks_equal_numpy_on_all_rows(sizes):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, (sum(sizes), 6)) @ rng.normal(size=(6, 6))   # offset, correlated
    moments, start = FeatureMoments(), 0
    for size in sizes:
        moments.add(x[start:start + size])
        start += size
    np.testing.assert_allclose(moments.mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(moments.covariance(), np.cov(x, rowvar=False), rtol=1e-10,
                               atol=1e-10 * np.abs(np.cov(x, rowvar=False)).max())


def test_npy_writer_leaves_nothing_after_an_error_or_ctrl_c(tmp_path):
    from npgan.files import NpyWriter
    out = tmp_path / "s.npy"
    for fault in (KeyboardInterrupt, ValueError):
        with pytest.raises(fault):
            with NpyWriter(out, 4, 3) as writer:
                writer.write(np.ones((2, 3), np.float32))
                raise fault
        assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="2 rows written, 4 promised"):
        with NpyWriter(out, 4, 3) as writer:
            writer.write(np.ones((2, 3), np.float32))
    assert os.listdir(tmp_path) == []
    with NpyWriter(out, 4, 3) as writer:
        writer.write(np.arange(12, dtype=np.float32).reshape(4, 3))
    assert np.array_equal(np.load(out), np.arange(12, dtype=np.float32).reshape(4, 3))


@pytest.mark.slow
@pytest.mark.parametrize("signum,returncode", [(signal.SIGTERM, -signal.SIGTERM),
                                               (signal.SIGINT, -signal.SIGINT)])
def test_a_second_signal_stops_at_once(tmp_path, signum, returncode):
    """Two signals in one step: no waiting for the step to end, no checkpoint."""
    code = ("import os, sys\n"
            "sys.path.insert(0, 'tests')\n"
            "from test_faults import tiny\n"
            "from npgan.train import train\n"
            "def twice(run):\n"
            "    if run.step == 5:\n"
            f"        os.kill(os.getpid(), {int(signum)})\n"
            f"        os.kill(os.getpid(), {int(signum)})\n"
            f"train(tiny({str(tmp_path / 'run')!r}, epochs=1), on_step=twice, progress=False)\n")
    result = cli("-c", code)
    assert result.returncode == returncode, result.stderr
    if signum == signal.SIGINT:
        assert result.stderr.rstrip().endswith("KeyboardInterrupt")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


# ------------------------------------------------------- a study, stopped and continued
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_study_says_so_in_one_line_and_the_printed_command_continues_it(tmp_path, sig):
    """compare_settings runs for hours: a stop mid-training prints where it stopped and
    the command that continues (no traceback, exit 128 + signal), and that command,
    typed as printed, finishes the study from the checkpoint."""
    require_installed_npgan()
    out = tmp_path / "study"
    args = ["examples/compare_settings.py", "--study", "defaults", "--only", "classic",
            "--epochs", "3", "--max-steps", "160", "--seeds", "0", "--n", "200", "--out", str(out)]
    proc = cli(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log, deadline = out / "runs" / "label_smoothing=0.0-seed0" / "metrics.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().strip():          # its first record (step 50)
            break
        time.sleep(0.005)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (stdout, stderr)
    assert "Traceback" not in stderr + stdout, stderr
    name = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
    assert re.search(rf"interrupted at step \d+ \({name}\); checkpoint saved to .*; every "
                     rf"finished run and score is kept", stdout), stdout
    step = load_checkpoint(log.with_name("checkpoint.npz")).meta["step"]
    assert 50 <= step < 160 and not log.with_name("done.json").exists()
    hint = printed_hint(stdout, prefix="continue with: ")
    assert hint.startswith(f"{python_as_shown()} examples/compare_settings.py --study defaults ")
    finished = typed_in_a_shell(hint)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert json.loads(log.with_name("done.json").read_text())["g_updates"] == 160
    assert "| classic | 1 |" in (out / "results.md").read_text()

"""What a run tells a person: its plan (the data it really reads, the models, the steps,
the threads), the estimated total measured on its first steps, the time left on every
epoch line, a clock that goes on after a resume, and the pictures of an interrupted run."""
import json
import os
import re
import signal

import numpy as np
import pytest

from npgan import data as data_module
from npgan import progress
from npgan.checkpoint import load_checkpoint
from npgan.config import TrainConfig
from npgan.data import DataError
from npgan.progress import Clock, about, format_duration
from npgan.train import TrainingInterrupted, train

STEPS_PER_EPOCH = 4500 // 64    # mnist-5k's training split, batch 64: 70 steps


def tiny(tmp_path, **overrides):
    settings = dict(dataset="mnist-5k", epochs=2, latent_dim=8, g_hidden=(16,), d_hidden=(16,),
                    log_every=10, seed=3, out=str(tmp_path / "run"))
    return TrainConfig(**{**settings, **overrides})


def test_durations_read_as_a_person_reads_them():
    assert [format_duration(s) for s in (0, 41.6, 60, 581, 3600, 3600 + 5 * 60 + 59)] == \
        ["0 s", "42 s", "1 min 0 s", "9 min 41 s", "1 h 00 min", "1 h 05 min"]
    assert [about(s) for s in (0.2, 42, 581, 9000)] == ["1 s", "42 s", "10 min", "2 h 30 min"]


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_clock_times_the_steps_after_the_warm_up_and_goes_on_from_before(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(progress.time, "perf_counter", fake)
    clock = Clock(before=50.0, step=200)                  # a resumed run: 50 s so far
    assert clock.pace() is None and clock.left(10) is None
    for step in range(201, 201 + progress.WARMUP):        # slow warm-up steps: 1 s each
        fake.now += 1.0
        clock.tick(step)
    assert clock.pace() == pytest.approx(1.0)             # until warmed up: since the start
    due = []
    for step in range(201 + progress.WARMUP, 201 + progress.WARMUP + 40):
        fake.now += 0.25                                  # then 0.25 s a step
        clock.tick(step)
        due.append(clock.estimate_due(step))
    assert clock.pace() == pytest.approx(0.25)            # the warm-up is left out
    assert due.count(True) == 1 and due.index(True) == progress.TIMED - 1
    assert clock.elapsed() == pytest.approx(50.0 + progress.WARMUP + 40 * 0.25)
    assert clock.left(400) == pytest.approx(100.0)
    assert clock.epoch_suffix(300, 700) == "[1 min 5 s elapsed, 1 min 40 s left]"
    assert clock.epoch_suffix(700, 700) == "[1 min 5 s elapsed]"   # the last: nothing left


def run_lines(config, **kwargs):
    lines = []
    summary = train(config, progress=False, log=lines.append, **kwargs)
    return lines, summary


def test_a_run_states_its_plan_then_its_estimate_then_the_time_left(tmp_path):
    lines, summary = run_lines(tiny(tmp_path, epochs=3))
    assert lines[0] == "data: MNIST-5k, the 4,500 bundled training digits"
    assert lines[1].startswith("model: MLP GAN, G 8-16-784 (")
    assert " D 784-16-1 (" in lines[1] and "EMA of G (decay 0.999)" in lines[1]
    G_parameters = sum(p.data.size for p in summary["G"].parameters())
    assert f"G 8-16-784 ({G_parameters:,} parameters)" in lines[1]
    assert lines[2].startswith("loss gan: ")
    assert lines[3] == "steps: 3 epochs x 70 steps (batch 64) = 210 steps"
    assert lines[4] == "threads: 1 for BLAS and npgan's loops (npgan's default)"
    assert re.fullmatch(r"estimated total: about \d+ s \(0\.\d{3} s a step, timed on steps "
                        r"6-35; about \d+ s left\)", lines[5]), lines[5]
    epochs = lines[6:]
    assert [line.split("  ")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(re.search(r"\[\d+ s elapsed, \d+ s left\]$", line) for line in epochs[:2]), epochs
    assert re.search(r"\[\d+ s elapsed\]$", epochs[2]), epochs[2]


def test_a_short_run_has_no_estimate_and_a_stop_is_part_of_the_plan(tmp_path):
    lines, _ = run_lines(tiny(tmp_path, max_steps=3, threads=1))
    assert lines[3] == "steps: 2 epochs x 70 steps (batch 64) = 140 steps; this run stops at step 3"
    assert lines[4] == "threads: 1 for BLAS and npgan's loops (asked for)"
    assert not any(line.startswith("estimated total") for line in lines)


def test_the_plan_names_the_data_really_read_after_a_fallback(tmp_path, monkeypatch):
    """No full MNIST (no cache, no network): the run says it reads MNIST-5k, and its
    checkpoint records mnist-5k, so that its resume reads the same digits."""
    def no_network(name, *args, **kwargs):
        raise DataError("no network (a test)")

    monkeypatch.setenv("NPGAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(data_module, "download_dataset", no_network)
    with pytest.warns(UserWarning, match="falling back to the bundled"):
        lines, _ = run_lines(tiny(tmp_path, dataset="mnist", max_steps=3))
    assert lines[0] == ("data: MNIST-5k, the 4,500 bundled training digits (full mnist is not "
                        "available: see the warning)")
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert ck.config["dataset"] == "mnist-5k"
    # a checkpoint of an older npgan said "mnist" after a fallback: it still resumes
    with np.load(ck.path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["dataset"] = "mnist"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(ck.path, **arrays)
    with pytest.warns(UserWarning, match="falling back"):
        train(tiny(tmp_path, dataset="mnist", max_steps=5), resume=ck.path, progress=False)
    assert load_checkpoint(ck.path).config["dataset"] == "mnist-5k"


def test_an_interrupted_run_writes_its_pictures_and_its_resume_goes_on_with_the_clock(tmp_path):
    def press_ctrl_c(run):
        if run.step == STEPS_PER_EPOCH + 10:              # in epoch 2, one grid made
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        train(tiny(tmp_path, epochs=3), on_step=press_ctrl_c, progress=False)
    out = tmp_path / "run"
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "samples.gif").read_bytes()[:3] == b"GIF"
    ck = load_checkpoint(info.value.checkpoint)
    assert 0 < ck.meta["elapsed"] < 600
    # as if the first part had taken an hour: the resumed run's lines go on from there
    with np.load(ck.path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["elapsed"] = 3600.0
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(ck.path, **arrays)
    lines, summary = run_lines(tiny(tmp_path, epochs=3), resume=ck.path)
    assert lines[3] == "steps: 3 epochs x 70 steps (batch 64) = 210 steps, from step 80 on"
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in epochs] == ["epoch 2/3", "epoch 3/3"]
    assert all("1 h 00 min elapsed" in line for line in epochs), epochs
    assert 3600 < summary["seconds"] < 3600 + 600
    assert 3600 < load_checkpoint(ck.path).meta["elapsed"] < 3600 + 600


def test_the_timed_stretch_starts_and_ends_where_a_gpu_would_wait(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(progress.time, "perf_counter", fake)
    clock, syncs = Clock(step=0), []
    for step in range(1, 100):
        fake.now += 0.1
        if clock.wants_sync(step):
            syncs.append(step)
        clock.tick(step)
    assert syncs == [progress.WARMUP, progress.WARMUP + progress.TIMED]

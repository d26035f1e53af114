"""The training loop: outputs, exact resume, Ctrl-C, divergence, bad settings, host syncs."""
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from npgan import train as train_module
from npgan.backend import get_backend
from npgan.checkpoint import CheckpointError, load_checkpoint
from npgan.config import ConfigError, TrainConfig, resume_config
from npgan.data import DataError
from npgan.models import generate, load_generator
from npgan.train import TrainingDiverged, TrainingInterrupted, read_metrics, train

STEPS_PER_EPOCH = 4500 // 64    # mnist-5k's training split, batch 64: 70 steps


def tiny(tmp_path, **overrides):
    """A tiny GAN on the bundled digits: a whole epoch takes well under a second."""
    settings = dict(dataset="mnist-5k", epochs=2, latent_dim=8, g_hidden=(16,), d_hidden=(16,),
                    log_every=10, seed=3, out=str(tmp_path / "run"))
    settings.update(overrides)
    return TrainConfig(**settings)


def params(summary):
    return [p.data.copy() for m in (summary["G"], summary["D"]) for p in m.parameters()]


def test_a_run_writes_metrics_grids_gif_curves_and_a_checkpoint(tmp_path):
    summary = train(tiny(tmp_path, log_grad_norms=True), progress=False)
    out = tmp_path / "run"
    assert summary["steps"] == 2 * STEPS_PER_EPOCH and summary["epochs"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records][:3] == [10, 20, 30]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake",
            "dx_fake_norm"} <= set(records[0])
    assert "grad_norm/G.0.W" in records[0] and "grad_norm/D.2.b" in records[0]
    assert all(np.isfinite(v) for r in records for v in r.values())
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    for name in ("samples.gif", "curves.png", "checkpoint.npz"):
        assert (out / name).stat().st_size > 0, name
    ck = load_checkpoint(out / "checkpoint.npz")
    assert ck.meta["step"] == 2 * STEPS_PER_EPOCH and ck.meta["epoch"] == 2
    assert ck.config["g_hidden"] == [16] and ck.extra("fixed_z").shape == (64, 8)


@pytest.mark.slow
def test_stopping_and_resuming_mid_epoch_equals_an_uninterrupted_run(tmp_path):
    full = train(tiny(tmp_path / "a", ema=0.99), progress=False)
    first = train(tiny(tmp_path / "b", ema=0.99, max_steps=45), progress=False)  # mid-epoch 1
    assert first["steps"] == 45
    resumed = train(tiny(tmp_path / "b", ema=0.99),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    assert resumed["steps"] == full["steps"]
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full["G_sampler"].parameters(), resumed["G_sampler"].parameters()):
        np.testing.assert_array_equal(a.data, b.data)                      # the EMA too
    lines = (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == full["steps"]                # the log goes on


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_matches(tmp_path):
    before = signal.getsignal(signal.SIGINT)    # Python's default, or SIG_IGN under nohup / &
    full = train(tiny(tmp_path / "a"), progress=False)

    def press_ctrl_c(run):
        if run.step == 100:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="interrupted at step 100") as info:
        train(tiny(tmp_path / "b"), on_step=press_ctrl_c, progress=False)
    assert load_checkpoint(info.value.checkpoint).meta["step"] == 100
    resumed = train(tiny(tmp_path / "b"), resume=info.value.checkpoint, progress=False)
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    assert signal.getsignal(signal.SIGINT) is before                      # handler restored


def test_a_nan_stops_training_and_leaves_the_last_good_checkpoint_intact(tmp_path):
    def poison(run):
        if run.step == STEPS_PER_EPOCH + 5:                   # in epoch 2, after a checkpoint
            run.G.parameters()[0].data[...] = float("nan")

    checkpoint = tmp_path / "run" / "checkpoint.npz"
    with pytest.raises(TrainingDiverged, match=rf"became nan at step {STEPS_PER_EPOCH + 6};"
                                               rf" the last good checkpoint, .* was left intact"):
        train(tiny(tmp_path), on_step=poison, progress=False)
    ck = load_checkpoint(checkpoint)
    assert ck.meta["step"] == STEPS_PER_EPOCH
    assert all(np.all(np.isfinite(a)) for a in ck.arrays.values() if a.dtype.kind == "f")


@pytest.mark.parametrize("overrides,message", [
    (dict(lr=-0.1), "lr must be > 0, got -0.1"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(dataset="cifar"), "unknown dataset 'cifar'"),
    (dict(g_loss="hinge"), "unknown g_loss 'hinge'"),
    (dict(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
    (dict(batch_size=5000), "larger than the 4500 training images"),
])
def test_bad_settings_fail_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny(tmp_path, **overrides), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"^out {tmp_path}/a_file is a file, not a folder: "
                                          r"give the run a folder of its own") as info:
        train(tiny(tmp_path, out=str(tmp_path / "a_file")), progress=False)
    assert info.value.problems[0][0] == ("out",)
    with pytest.raises(ConfigError, match=rf"^out {tmp_path}/a_file/run cannot be made, "
                                          rf"because {tmp_path}/a_file is a file, not a folder"):
        train(tiny(tmp_path, out=str(tmp_path / "a_file" / "run")), progress=False)
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_a_config_error_names_the_fields_of_each_problem():
    with pytest.raises(ConfigError) as info:
        TrainConfig(batch_size=0, lr=-1.0, lr_d=0.0, dataset="mnist-5k", data_dir="x",
                    loss="hinge", label_smoothing=0.1).validate()
    fields = [fields for fields, _ in info.value.problems]
    assert fields == [("batch_size",), ("lr",), ("lr_d",), ("dataset", "data_dir"),
                      ("label_smoothing",)], info.value.problems
    assert str(info.value).startswith("invalid training settings:\n  batch_size must be")
    assert ConfigError("plain").problems == [((), "plain")]


def test_resume_refuses_another_architecture(tmp_path):
    train(tiny(tmp_path, max_steps=3), progress=False)
    with pytest.raises(CheckpointError, match=r"saved with g_hidden=\[16\], but this run has g_hidden=\[32\]"):
        train(tiny(tmp_path, g_hidden=(32,)), resume=tmp_path / "run" / "checkpoint.npz",
              progress=False)


def test_conditional_labels_are_checked_where_they_enter(tmp_path):
    """A data folder whose labels are not classes 0..9: CuPy's take would silently wrap
    label 12 to class 2 (NumPy's raises deep in a step). One DataError, before any step."""
    from tests.test_data import NAMES, idx_bytes, write_folder
    folder = tmp_path / "data"
    write_folder(folder, n_train=70)
    labels = np.arange(70, dtype=np.uint8) % 10
    labels[33] = 12
    (folder / NAMES["train_labels"]).write_bytes(idx_bytes(labels))
    steps = []
    with pytest.raises(DataError, match=r"data: class labels must be in 0\.\.9, got 12; a "
                                         r"conditional GAN needs labels that are classes 0\.\.9"):
        train(tiny(tmp_path, dataset="mnist", data_dir=str(folder), conditional=True,
                   batch_size=7), on_step=steps.append, progress=False)
    assert steps == []
    labels[33] = 3                                      # control: valid labels train
    (folder / NAMES["train_labels"]).write_bytes(idx_bytes(labels))
    summary = train(tiny(tmp_path, dataset="mnist", data_dir=str(folder), conditional=True,
                         batch_size=7, epochs=1), progress=False)
    assert summary["steps"] == 10


def test_the_loop_reads_the_device_only_at_logging_points(tmp_path, monkeypatch):
    """On array-api-strict's device1 (which, like CuPy, refuses implicit conversion to
    NumPy) the whole loop runs, and host transfers happen only when it logs."""
    monkeypatch.setattr(train_module, "get_backend",
                        lambda name, dtype, seed: get_backend("array-api-strict", dtype=dtype,
                                                              seed=seed, device="device1"))
    transfers = []
    train(tiny(tmp_path, epochs=1, max_steps=25), progress=False,
          on_step=lambda run: transfers.append(run.be.host_transfers))
    per_step = np.diff([0] + transfers)
    # on_step of step s runs before the loop logs at s, so the reads after steps 10 and
    # 20 show up at the next step: exactly one transfer per logging interval, no others
    assert list(np.nonzero(per_step)[0]) == [10, 20], per_step
    assert per_step[10] == per_step[20] == 1


def test_sampling_from_a_checkpoint(tmp_path):
    train(tiny(tmp_path, max_steps=5), progress=False)
    G, be, config = load_generator(tmp_path / "run" / "checkpoint.npz")
    images = generate(G, be, 1500, config.latent_dim)
    assert images.shape == (1500, 784) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_dcgan_trains_checkpoints_its_batchnorm_statistics_and_resumes(tmp_path):
    config = tiny(tmp_path, model="dcgan", base_channels=4, max_steps=4)
    summary = train(config, progress=False)
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    running = [k for k in ck.arrays if "@buffers/" in k and k.endswith("running_mean")]
    assert running and all(np.any(ck.arrays[k] != 0) for k in running)   # stats were updated
    resumed = train(tiny(tmp_path, model="dcgan", base_channels=4, max_steps=6),
                    resume=tmp_path / "run" / "checkpoint.npz", progress=False)
    assert (summary["steps"], resumed["steps"]) == (4, 6)
    G, be, _ = load_generator(tmp_path / "run" / "checkpoint.npz")
    assert not G.training and generate(G, be, 3, 8).shape == (3, 784)


@pytest.mark.slow
def test_ema_and_evaluation_during_training(tmp_path):
    # one epoch of a tiny G covers few digit classes: the collapse warning must say so
    with pytest.warns(UserWarning, match="possible mode collapse: only .* of 10 classes"):
        summary = train(tiny(tmp_path, epochs=1, ema=0.99, eval_every=1, eval_n=200),
                        progress=False)
    evaluation = summary["evaluation"]
    assert evaluation["n"] == 200 and 0 <= evaluation["classes_covered"] <= 10
    assert evaluation["frechet"] > evaluation["frechet_floor"] > 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["eval"]["step"] == STEPS_PER_EPOCH
    # the sampler is the average, not the last iterate, and the checkpoint keeps both
    G_ema, _, _ = load_generator(tmp_path / "run" / "checkpoint.npz")
    G_raw, _, _ = load_generator(tmp_path / "run" / "checkpoint.npz", raw=True)
    np.testing.assert_array_equal(G_raw[0].W.data, summary["G"][0].W.data)
    np.testing.assert_array_equal(G_ema[0].W.data, summary["G_sampler"][0].W.data)
    assert not np.array_equal(G_ema[0].W.data, G_raw[0].W.data)


@pytest.mark.slow
def test_conditional_run_resumes_exactly_and_samples_by_label(tmp_path):
    """--conditional: a 10 x 10 grid (row = class), exact mid-epoch resume, generate()
    by label, and a plain checkpoint refused for a conditional run (and back)."""
    full = train(tiny(tmp_path / "a", conditional=True), progress=False)
    first = train(tiny(tmp_path / "b", conditional=True, max_steps=45), progress=False)
    resumed = train(tiny(tmp_path / "b", conditional=True),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    assert first["steps"] == 45 and resumed["steps"] == full["steps"]
    ck = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")
    assert ck.config["conditional"] is True and ck.extra("fixed_z").shape == (100, 8)
    z = ck.extra("fixed_z")
    np.testing.assert_array_equal(z[:10], z[10:20])      # each column keeps its z
    from PIL import Image
    grid = Image.open(tmp_path / "a" / "run" / "samples" / "epoch_0002.png")
    from npgan.plots import TITLE_HEIGHT
    assert grid.size == (604, 604 + TITLE_HEIGHT)         # 10 x 10 images of 2 x 30 pixels

    G, be, config = load_generator(tmp_path / "a" / "run" / "checkpoint.npz")
    assert G.num_classes == 10 and config.conditional
    sevens = generate(G, be, 5, config.latent_dim, labels=[7] * 5)
    assert sevens.shape == (5, 784)
    with pytest.raises(ValueError, match=r"in 0\.\.9, got 10"):
        generate(G, be, 2, config.latent_dim, labels=[10, 1])
    with pytest.raises(CheckpointError, match="saved with conditional=True, but this run has "
                                              "conditional=False"):
        train(tiny(tmp_path / "a"), resume=tmp_path / "a" / "run" / "checkpoint.npz",
              progress=False)


@pytest.mark.slow
def test_resume_config_takes_the_runs_settings_and_only_changeable_changes(tmp_path):
    first = train(tiny(tmp_path, max_steps=45, g_loss="minimax", label_smoothing=0.0),
                  progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    config, changes, at = resume_config(checkpoint)
    assert (config.g_loss, config.label_smoothing, config.g_hidden, config.epochs) == \
        ("minimax", 0.0, (16,), 2)
    assert config.max_steps is None and config.out == str(tmp_path / "run") and changes == {}
    assert at == {"step": 45, "epoch": 0}
    config, changes, _ = resume_config(checkpoint, epochs=3, g_loss="minimax", backend="numpy")
    assert config.epochs == 3 and changes == {"epochs": (2, 3)}
    with pytest.raises(ConfigError, match=r"with dataset='mnist' \(the run has 'mnist-5k'\), "
                                          r"batch_size=32 \(the run has 64\): a resumed run keeps"):
        resume_config(checkpoint, dataset="mnist", batch_size=32, epochs=5)
    resumed = train(resume_config(checkpoint)[0], resume=checkpoint, progress=False)
    full = train(tiny(tmp_path / "full", g_loss="minimax", label_smoothing=0.0), progress=False)
    assert first["steps"] == 45 and resumed["steps"] == full["steps"]
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_a_config_whose_losses_differ(tmp_path):
    """Not only the architecture: a library caller resuming with another G loss (or
    data set, batch size, optimizer setting) would silently change the run."""
    train(tiny(tmp_path, max_steps=3), progress=False)
    with pytest.raises(CheckpointError, match=r"saved with g_loss='non-saturating', but this run "
                                              r"has g_loss='minimax'"):
        train(tiny(tmp_path, g_loss="minimax"), resume=tmp_path / "run" / "checkpoint.npz",
              progress=False)


# ------------------------------------------------------------------ the Wasserstein family
def critic(tmp_path, loss, **overrides):
    settings = dict(dataset="mnist-5k", epochs=2, latent_dim=8, g_hidden=(16,), d_hidden=(16,),
                    log_every=5, seed=3, out=str(tmp_path / "run"), d_steps=2)
    settings.update(overrides)
    return TrainConfig.for_loss(loss, **settings)


def test_for_loss_sets_the_papers_settings_and_validation_explains_mistakes():
    wgan, gp, hinge = (TrainConfig.for_loss(name) for name in ("wgan", "wgan-gp", "hinge"))
    assert (wgan.optimizer, wgan.lr, wgan.d_steps, wgan.clip) == ("rmsprop", 5e-5, 5, 0.01)
    assert (gp.optimizer, gp.lr, gp.beta1, gp.beta2, gp.d_steps, gp.gp_weight) == (
        "adam", 1e-4, 0.0, 0.9, 5, 10.0)
    assert (hinge.optimizer, hinge.lr, hinge.d_steps) == ("adam", 2e-4, 5)
    assert TrainConfig.for_loss("gan") == TrainConfig()          # today's defaults, unchanged
    assert TrainConfig.for_loss("wgan-gp", lr=3e-4).lr == 3e-4
    for config in (wgan, gp, hinge):
        config.validate()
        assert config.label_smoothing == 0.0
    with pytest.raises(ConfigError, match="unknown loss 'wgan_gp'"):
        TrainConfig.for_loss("wgan_gp")
    with pytest.raises(ConfigError, match=r"label_smoothing=0.1 is a target of the GAN's BCE "
                                          r"loss, and the wgan critic has no targets"):
        TrainConfig(loss="wgan").validate()
    with pytest.raises(ConfigError, match="g_loss='minimax' applies to loss 'gan' only"):
        TrainConfig.for_loss("hinge", g_loss="minimax").validate()
    with pytest.raises(ConfigError, match=r"clip must be > 0.*\n.*gp_weight must be >= 0"):
        TrainConfig.for_loss("wgan", clip=0.0, gp_weight=-1.0).validate()
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'"):
        TrainConfig(optimizer="sgd").validate()


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge"])
def test_a_critic_run_resumes_bit_identically(tmp_path, loss):
    """Mid-epoch stop and resume == an uninterrupted run, with the optimizer's state
    (RMSprop's square averages under wgan) and the EMA, under every critic loss."""
    full = train(critic(tmp_path / "a", loss, ema=0.99), progress=False)
    first = train(critic(tmp_path / "b", loss, ema=0.99, max_steps=20), progress=False)
    assert first["steps"] == 20 and full["steps"] == 2 * (4500 // 64 // 2)
    ck = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz")
    saved = {k.split("/")[1] for k in ck.arrays if k.startswith("opt_d/")}
    assert saved == ({"square_avg"} if loss == "wgan" else {"m", "v"})
    resumed = train(critic(tmp_path / "b", loss, ema=0.99),
                    resume=tmp_path / "b" / "run" / "checkpoint.npz", progress=False)
    for a, b in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full["G_sampler"].parameters(), resumed["G_sampler"].parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    if loss == "wgan":                                    # clipped after every D-update
        assert all(np.abs(p.data).max() <= 0.01 for p in full["D"].parameters())


def test_a_critic_run_logs_its_estimate_and_plots_it(tmp_path):
    summary = train(critic(tmp_path, "wgan-gp", epochs=1), progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g", "wasserstein", "gp", "grad_norm"} <= set(records[0])
    assert not {"acc_real", "acc_fake", "d_real", "d_fake"} & set(records[0])
    assert all(np.isfinite(v) for r in records for v in r.values())
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert summary["steps"] == 4500 // 64 // 2
    with pytest.raises(CheckpointError, match=r"saved with .*loss='wgan-gp'.*, but this run has "
                                              r".*loss='wgan'"):
        train(critic(tmp_path, "wgan"), resume=tmp_path / "run" / "checkpoint.npz", progress=False)


@pytest.mark.slow
def test_conditional_dcgan_under_wgan_gp_builds_a_critic_without_batchnorm(tmp_path):
    summary = train(critic(tmp_path, "wgan-gp", model="dcgan", base_channels=2, conditional=True,
                           max_steps=2), progress=False)
    names = [type(layer).__name__ for layer in summary["D"].layers]     # the fast twins
    assert "FastBatchNorm2d" not in names and names.count("FastConv2d") == 2, names
    resumed = train(critic(tmp_path, "wgan-gp", model="dcgan", base_channels=2, conditional=True,
                           max_steps=3), resume=tmp_path / "run" / "checkpoint.npz", progress=False)
    assert resumed["steps"] == 3
    G, be, config = load_generator(tmp_path / "run" / "checkpoint.npz")
    assert config.loss == "wgan-gp" and generate(G, be, 4, 8).shape == (4, 784)


def test_a_wgan_gp_loop_reads_the_device_only_at_logging_points(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "get_backend",
                        lambda name, dtype, seed: get_backend("array-api-strict", dtype=dtype,
                                                              seed=seed, device="device1"))
    transfers = []
    train(critic(tmp_path, "wgan-gp", epochs=1, max_steps=12), progress=False,
          on_step=lambda run: transfers.append(run.be.host_transfers))
    per_step = np.diff([0] + transfers)
    assert list(np.nonzero(per_step)[0]) == [5, 10], per_step


def test_cures_that_do_not_fit_a_critic_are_refused_and_sn_gan_is_allowed():
    with pytest.raises(ConfigError, match="instance_noise is a cure for the GAN's D"):
        TrainConfig.for_loss("wgan-gp", instance_noise=0.1).validate()
    with pytest.raises(ConfigError, match="spectral_norm has no double backward"):
        TrainConfig.for_loss("wgan-gp", spectral_norm=True).validate()
    TrainConfig.for_loss("hinge", spectral_norm=True).validate()     # SN-GAN: hinge + SN
    TrainConfig(instance_noise=0.1, spectral_norm=True).validate()   # both cures of a GAN's D


def test_train_still_exports_every_name_that_moved_to_config_and_models():
    """`from npgan.train import TrainConfig, ...` keeps working for users: train.py
    re-exports the very objects that live in npgan.config and npgan.models."""
    from npgan import config, models
    moved = {config: ("MODELS", "OPTIMIZERS", "NUM_CLASSES", "RESUME_CHANGEABLE", "ConfigError",
                      "TrainConfig", "DEFAULTS", "DEFAULT_G_LOSS", "resume_config"),
             models: ("build_models", "load_generator", "generate")}
    for module, names in moved.items():
        for name in names:
            assert getattr(train_module, name) is getattr(module, name), name


DOCS_TRAINING = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def logged_keys(configs):
    """Every key of the records the runs of `configs` write: 'grad_norm/<model>.<layer>.<name>'
    for the layers' gradient norms, and 'eval.<key>' for an evaluation record's."""
    keys = set()
    for config in configs:
        train(config, progress=False)
        for record in read_metrics(Path(config.out) / "metrics.jsonl"):
            keys |= {"grad_norm/<model>.<layer>.<name>" if k.startswith("grad_norm/") else k
                     for k in record if k != "eval"}
            keys |= {f"eval.{k}" for k in record.get("eval", {})}
    return keys


def undocumented(keys):
    text = DOCS_TRAINING.read_text(encoding="utf-8")
    return sorted(k for k in keys if f"`{k.removeprefix('eval.')}`" not in text)


def test_every_key_of_metrics_jsonl_is_explained_in_docs_training(tmp_path):
    """A GAN with every optional key on, and a critic; the control: a made-up key is caught."""
    keys = logged_keys([tiny(tmp_path / "gan", instance_noise=0.1, log_grad_norms=True,
                             max_steps=10),
                        TrainConfig.for_loss("wgan-gp", dataset="mnist-5k", latent_dim=8,
                                             g_hidden=(16,), d_hidden=(16,), log_every=5,
                                             max_steps=10, out=str(tmp_path / "gp"))])
    assert {"d_fake_g", "dx_fake_norm", "instance_noise", "wasserstein", "gp",
            "grad_norm/<model>.<layer>.<name>"} <= keys
    assert undocumented(keys) == []
    assert undocumented({"made_up_key"}) == ["made_up_key"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:epoch 1. possible mode collapse")      # 1 epoch: it is
def test_every_key_of_an_evaluation_record_is_explained_in_docs_training(tmp_path):
    keys = logged_keys([tiny(tmp_path, conditional=True, epochs=1, batch_size=500, eval_every=1,
                             eval_n=200)])
    assert {"eval.frechet", "eval.label_agreement", "eval.n_pr_floor"} <= keys
    assert undocumented(keys) == []

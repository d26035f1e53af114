"""The training loop: data on the device, train_step, logging, pictures, checkpoints.

The lesson lives in gan.py; this module is the plumbing around it:
  * every `log_every` steps the step statistics (kept on the device until then) are
    read in ONE host transfer, checked for NaN/inf, and appended to metrics.jsonl;
  * first, its plan (npgan.progress: the data really read, the models, the steps, the
    threads) and, once some steps are timed, the estimated total time;
  * every epoch: a sample grid from a fixed noise batch, a checkpoint, and a line with
    the time so far and the time left;
  * at the end, or at a stop: an animated GIF of the grids and a plot of the curves;
  * Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and stops; `resume`
    continues so exactly that the result equals an uninterrupted run (NumPy backend),
    and its clock goes on from the checkpoint's;
  * one run per output folder (npgan.runlock); what else a run survives: docs/faults.md.
What a run does is a TrainConfig (npgan/config.py); its G and D come from npgan/models.py.
"""
from __future__ import annotations

import json
import signal
import tempfile
import threading
import warnings
from dataclasses import replace
from pathlib import Path

from npgan.augment import DiffAugment
from npgan.backend import concat, get_backend, host
from npgan.checkpoint import load_checkpoint, save_checkpoint
# the settings of a run live in npgan.config, its models in npgan.models; their
# public names are re-exported here, so `from npgan.train import TrainConfig` works
from npgan.config import (DEFAULT_G_LOSS, DEFAULTS, MODEL_SETTINGS, MODELS, NUM_CLASSES,
                          OPTIMIZERS, RESUME_CHANGEABLE, ConfigError, TrainConfig,
                          resume_config, saved_settings)
from npgan.data import DataError, describe_dataset, iterate_batches, load_dataset_named, to_device
from npgan.fast import accelerate
from npgan.files import AppendLog, not_a_folder, remove_temporaries
from npgan.gan import StepSettings, train_step
from npgan.models import build_models, generate, load_generator
from npgan.noise import instance_noise_sigma, sample_z
from npgan.optim import Adam, RMSprop
from npgan.plots import plot_curves, save_gif, save_grid
from npgan.progress import Clock, plan_lines
from npgan.runlock import RunLock
from npgan.threads import limit_threads


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good checkpoint was left intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the run stopped after a checkpoint was saved (see .checkpoint);
    .signum is the signal (signal.SIGINT or signal.SIGTERM)."""

    def __init__(self, message, checkpoint, signum=signal.SIGINT):
        super().__init__(message)
        self.checkpoint, self.signum = checkpoint, signum


def _check_writable(folder: Path):
    """The output folder exists (made if need be) and takes files; else a ConfigError
    about `out` that names the file in the way, or the system's reason."""
    problem = not_a_folder(folder)
    if problem:
        message = (f"out {problem}: give the run a folder of its own (it writes "
                   f"checkpoint.npz, metrics.jsonl and samples/ there)")
        raise ConfigError(message, [(("out",), message)])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        message = f"out {folder}: cannot write to the output folder: {err.strerror or err}"
        raise ConfigError(message, [(("out",), message)]) from err


def _checked_labels(labels, config):
    """The data set's labels as host int64 (N,), or DataError if one is not a class."""
    from npgan.conditional import check_labels
    try:
        return check_labels(labels, NUM_CLASSES)
    except ValueError as err:
        raise DataError(f"{config.data_dir or config.dataset}: {err}; a conditional GAN "
                        f"needs labels that are classes 0..{NUM_CLASSES - 1}") from None


def make_optimizer(config: TrainConfig, params, lr=None):
    """config.optimizer over `params`: Adam(lr, betas=(beta1, beta2)) or RMSprop(lr);
    lr defaults to config.lr (TTUR gives D and G their own, see learning_rates)."""
    lr = config.lr if lr is None else lr
    if config.optimizer == "rmsprop":
        opt = RMSprop(params, lr=lr)
    else:
        opt = Adam(params, lr=lr, betas=(config.beta1, config.beta2))
    return opt if config.reference else accelerate(opt)   # npgan.fast's twin by default


def _grad_norms(models, xp):
    return {f"grad_norm/{prefix}.{name}": xp.sqrt(xp.sum(p.grad * p.grad))
            for prefix, model in models.items() for name, p in model.named_parameters()}


class _Run:
    """The state of one training run: models, optimizers, counters and output files."""

    def __init__(self, config: TrainConfig, resume=None):
        config.validate()
        self.config, self.out = config, Path(config.out)
        # the backend first: an unusable one (CuPy without a driver) fails before we write
        self.be = be = get_backend(config.backend, dtype=config.dtype, seed=config.seed)
        _check_writable(self.out)
        images, labels, used = load_dataset_named(config.dataset, data_dir=config.data_dir,
                                                  split="train")
        self.data = describe_dataset(used, images.shape[0], config.data_dir)
        self.asked_dataset = config.dataset
        if used != config.dataset:       # full MNIST fell back to mnist-5k: the run says
            self.data += f" (full {config.dataset} is not available: see the warning)"
            self.config = config = replace(config, dataset=used)   # so, and so does its checkpoint
        if config.batch_size * config.d_steps > images.shape[0]:
            message = (f"batch_size * d_steps = {config.batch_size * config.d_steps} is larger "
                       f"than the {images.shape[0]} training images of {config.dataset!r}")
            raise ConfigError(message, [(("batch_size", "d_steps"), message)])
        self.x = to_device(images, be)                  # (N, P): the whole set, once
        # the classes go too, for a conditional GAN: (N,) int64, also once, checked
        # here because the device does not check them (xp.take wraps on CuPy)
        self.y = be.asarray(_checked_labels(labels, config)) if config.conditional else None
        self.steps_per_epoch = images.shape[0] // config.batch_size // config.d_steps
        self.total_steps = config.epochs * self.steps_per_epoch   # for annealing
        self.settings = StepSettings.from_config(config)          # what every step does
        # the augmentation's transforms, made once (their random draws come from be)
        self.augment = DiffAugment(config.diffaug, be) if config.diffaug else None
        self.sigma = 0.0                                          # the last step's noise
        self.G, self.D = build_models(config, be)
        lr_d, lr_g = config.learning_rates()          # TTUR: each net its own rate
        self.opt_g = make_optimizer(config, self.G.parameters(), lr_g)
        self.opt_d = make_optimizer(config, self.D.parameters(), lr_d)
        self.ema = None
        if config.ema:
            from npgan.ema import EMA
            self.ema = EMA(self.G, build_models(config, be)[0], decay=config.ema)
        if config.conditional:
            # a 10 x 10 grid: row = class, and each column keeps one z for all classes,
            # so a column shows one "style" written as every digit
            z = sample_z(be, NUM_CLASSES, config.latent_dim, config.prior)  # (10, Z)
            self.fixed_z = concat([z] * NUM_CLASSES, axis=0)             # (100, Z)
        else:
            self.fixed_z = sample_z(be, 64, config.latent_dim, config.prior)  # the same every epoch
        self.step, self.epoch, self.batch, self.order = 0, 0, 0, None
        self.checkpoint_path = self.out / "checkpoint.npz"
        self.samples = []
        self.clock = Clock()            # a resumed run's goes on from its checkpoint's
        self.unknown_settings = {}      # a checkpoint's settings we do not know: kept as they are
        if resume is not None:
            self._resume(Path(resume))

    def _resume(self, path):
        ck = load_checkpoint(path)
        saved = saved_settings(ck)
        self.unknown_settings = {k: v for k, v in ck.config.items() if k not in saved}
        mine = self.config.to_dict()
        differ = [f for f in saved if f not in RESUME_CHANGEABLE and saved[f] != mine[f]
                  and not (f == "dataset" and saved[f] == self.asked_dataset)]   # a fallback
        if differ:                                          # every difference, in one line
            from npgan.checkpoint import CheckpointError
            raise CheckpointError(
                f"{path} was saved with " + ", ".join(f"{f}={saved[f]!r}" for f in differ)
                + ", but this run has " + ", ".join(f"{f}={mine[f]!r}" for f in differ)
                + "; use the same settings to resume (resume_config takes them from the checkpoint)")
        ck.restore_model("G", self.G, self.be)
        ck.restore_model("D", self.D, self.be)
        if self.ema is not None:
            ck.restore_model("G_ema", self.ema.shadow, self.be)
            self.ema.updates = ck.meta["step"]              # one EMA update per step
        ck.restore_optimizer("opt_g", self.opt_g, self.be)
        ck.restore_optimizer("opt_d", self.opt_d, self.be)
        # shapes from the model built from the config: checked before the data are read
        self.fixed_z = self.be.asarray(ck.extra("fixed_z", self.fixed_z.shape, self.config.dtype))
        order = ck.extra("order", (self.x.shape[0],))
        self.order = None if order is None else self.be.asarray(order)
        m = ck.meta
        self.step, self.epoch, self.batch = m["step"], m["epoch"], m["batch"]
        self.be.set_rng_state(m["rng"], self.step)
        self.clock = Clock(m.get("elapsed", 0.0), self.step)   # older checkpoints: from 0
        self.samples = sorted((self.out / "samples").glob("epoch_*.png"))

    def take_step(self, batches):
        """One train_step on the next k batches of `batches` (x, or (x, y) pairs)."""
        cfg = self.config
        real = [next(batches) for _ in range(cfg.d_steps)]     # k (B, P) batches
        real_labels = None
        if cfg.conditional:                                     # k (x, y) pairs
            real, real_labels = [x for x, _ in real], [y for _, y in real]
        self.sigma = instance_noise_sigma(cfg.instance_noise, self.step, self.total_steps)
        settings = replace(self.settings, instance_noise=self.sigma)
        stats = train_step(self.G, self.D, self.opt_g, self.opt_d, real, self.be, settings,
                           real_labels, augment=self.augment)
        if self.ema is not None:
            self.ema.update()                                   # after the G-update
        self.step += 1
        self.batch += cfg.d_steps
        return stats

    def stopping(self, flag) -> bool:
        """Ctrl-C was pressed, or the run has taken its max_steps."""
        max_steps = self.config.max_steps
        return flag["stop"] or (max_steps is not None and self.step >= max_steps)

    def save_checked(self, when):
        """Checkpoint, if every weight is finite; else TrainingDiverged (`when` says when),
        and the last good checkpoint stays."""
        if not self.params_finite():
            raise TrainingDiverged(f"a parameter became NaN or inf {when}; "
                                   f"{self.checkpoint_path} was left intact")
        self.save()

    def save(self):
        """Checkpoint now (mid-epoch too: the epoch's order and position go with it)."""
        extra = {"fixed_z": self.fixed_z}
        if self.order is not None:
            extra["order"] = self.order
        meta = {"config": {**self.unknown_settings, **self.config.to_dict()},
                "step": self.step, "epoch": self.epoch, "batch": self.batch,
                "rng": self.be.rng_state(), "elapsed": self.clock.elapsed(),
                "model_settings": list(MODEL_SETTINGS)}     # see check_unknown_settings
        models = {"G": self.G, "D": self.D}
        if self.ema is not None:
            models["G_ema"] = self.ema.shadow
        return save_checkpoint(self.checkpoint_path, models,
                               {"opt_g": self.opt_g, "opt_d": self.opt_d}, meta, extra)

    def evaluate(self, log_file, previous):
        """Sample-quality metrics (npgan.metrics) of the sampler, appended to the log."""
        import warnings

        from npgan.metrics import collapse_warning, evaluate_generator, reference_statistics
        if not hasattr(self, "_classifier"):
            from npgan.classifier import load_or_train_classifier
            self._classifier = load_or_train_classifier(self.config.dataset, self.be)
            self._reference = reference_statistics(self._classifier, self.be, self.config.dataset)
        result = evaluate_generator(self.sampler, self.be, self.config.dataset,
                                    n=self.config.eval_n, classifier=self._classifier,
                                    reference=self._reference,
                                    latent_dim=self.config.latent_dim, prior=self.config.prior)
        result.update(step=self.step, epoch=self.epoch)
        log_file.write(json.dumps({"step": self.step, "epoch": self.epoch, "eval": result}) + "\n")
        log_file.flush()
        message = collapse_warning(result, previous)
        if message:
            warnings.warn(f"epoch {self.epoch}: {message}", stacklevel=4)   # train's caller
        return result

    def host_values(self, sigma) -> dict:
        """Settings of the last step worth logging beside its statistics (host floats)."""
        return {"instance_noise": sigma} if self.config.instance_noise else {}

    def params_finite(self) -> bool:
        xp = self.be.xp
        flags = [xp.all(xp.isfinite(p.data)) for m in (self.G, self.D) for p in m.parameters()]
        return bool(self.be.to_numpy(xp.all(xp.stack(flags))))

    @property
    def sampler(self):
        """The G that makes samples: the EMA of G's weights when enabled, else G."""
        return self.ema.shadow if self.ema is not None else self.G

    def sample_grid(self):
        G = self.sampler
        G.eval()
        if self.config.conditional:                                 # row r: class r
            labels = self.be.asarray(host.repeat(host.arange(NUM_CLASSES), NUM_CLASSES))
            images = self.be.to_numpy(G.forward(self.fixed_z, labels))   # (100, P)
        else:
            images = self.be.to_numpy(G.forward(self.fixed_z))            # (64, P)
        G.train()
        nrow = NUM_CLASSES if self.config.conditional else 8
        path = save_grid(images, self.out / "samples" / f"epoch_{self.epoch:04d}.png", nrow=nrow,
                         title=f"epoch {self.epoch}, step {self.step:,}")
        self.samples.append(path)

    # -- logging ----------------------------------------------------------------
    def flush(self, pending, extra_arrays, log_file, host_values=None):
        """Read the pending per-step statistics in one host transfer, check them, log
        their means (and host_values, {name: float}, as they are). Returns the record,
        or raises TrainingDiverged."""
        xp = self.be.xp
        keys = list(pending[0])
        table = xp.stack([xp.stack([stats[k] for k in keys]) for stats in pending])  # (n, K)
        extras = list(extra_arrays)
        if extras:
            table_extra = xp.stack([extra_arrays[k] for k in extras])
            values = self.be.to_numpy(concat([xp.reshape(table, (-1,)), table_extra]))
            host_table, host_extra = values[:table.shape[0] * len(keys)], values[-len(extras):]
        else:
            host_table, host_extra = self.be.to_numpy(xp.reshape(table, (-1,))), []
        host_table = host_table.reshape(len(pending), len(keys))
        first_step = self.step - len(pending) + 1
        for i, row in enumerate(host_table):
            bad = [k for k, v in zip(keys, row) if not (abs(float(v)) < float("inf"))]
            if bad:
                last = (f"the last good checkpoint, {self.checkpoint_path}, was left intact"
                        if self.checkpoint_path.exists() else "no checkpoint had been saved yet")
                raise TrainingDiverged(
                    f"training diverged: {', '.join(bad)} became {row[keys.index(bad[0])]} "
                    f"at step {first_step + i}; {last}. Try a lower lr or another seed.")
        record = {"step": self.step, "epoch": self.epoch + 1,   # the epoch in progress, from 1
                  **{k: float(v) for k, v in zip(keys, host_table.mean(axis=0))},
                  **{k: float(v) for k, v in zip(extras, host_extra)},
                  **(host_values or {})}
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        return record


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)   # Ctrl-C; docker stop, systemd, Slurm, timeout


def _install_stop_handlers(flag):
    """Ctrl-C or SIGTERM sets flag['stop'] to the signal (the loop stops after the
    current step and saves); a second one stops at once: KeyboardInterrupt for Ctrl-C,
    the default action (death) for SIGTERM. Only possible in the main thread.
    Returns {signal: previous handler}, for _restore_handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame):
        if not flag["stop"]:
            flag["stop"] = signum
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def _restore_handlers(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def train(config: TrainConfig, resume=None, progress=True, on_step=None, log=None) -> dict:
    """Train a GAN as `config` says; returns a summary dict (steps, time, last record, files).

    resume: a checkpoint path to continue from. on_step(run): called after every step
    (tests and extensions). log(line): where the plan and the per-epoch lines go
    (default: tqdm.write with progress, else nowhere). progress: a progress bar, when
    stderr is a terminal (in a file it would be a redraw every few steps).
    The run uses config.threads threads (npgan.threads), and only while it lasts.
    """
    with limit_threads(config.threads) as threads:
        return _train(config, resume, progress, on_step, log, threads)


def _train(config, resume, progress, on_step, log, threads) -> dict:
    from tqdm.auto import tqdm

    run = _Run(config, resume)
    _warn_if_busy(run.be)
    log = log or (tqdm.write if progress else (lambda line: None))
    flag = {"stop": False}
    lock = RunLock(run.out).acquire()          # FolderInUse if another run writes here
    old_handlers = _install_stop_handlers(flag)
    record, evaluation = None, None
    for line in plan_lines(run.config, run.data, run.G, run.D, run.steps_per_epoch, run.step,
                           threads):
        log(line)
    on_step = _timed(run, on_step, log)
    try:
        for path in remove_temporaries(run.out):   # left by a run killed while writing
            warnings.warn(f"removed {path}, a temporary file left by a run killed while "
                          f"writing", stacklevel=2)
        with AppendLog(run.out / "metrics.jsonl", "a" if resume is not None else "w",
                       resume_step=run.step if resume is not None else None) as log_file:
            while run.epoch < config.epochs:
                record = _train_epoch(run, log_file, flag, on_step, progress) or record
                if run.stopping(flag):
                    _stop(run, flag)
                    break
                evaluation = _end_epoch(run, log_file, evaluation, log)
                if record is not None:
                    log(_epoch_line(run, record))
        return _finish(run, record, evaluation)
    finally:
        _restore_handlers(old_handlers)
        lock.release()


def _last_step(run) -> int:
    """The step this invocation ends at: the run's last, or max_steps."""
    total, stop = run.total_steps, run.config.max_steps
    return total if stop is None else min(total, stop)


def _timed(run, on_step, log):
    """on_step, after the clock's tick, and the estimated total once the pace is timed."""
    def timed(run):
        if run.clock.wants_sync(run.step):
            run.be.synchronize()                  # CuPy: time the work, not its launch
        run.clock.tick(run.step)
        if run.clock.estimate_due(run.step) and run.step < _last_step(run):
            log(run.clock.estimate_line(run.step, _last_step(run)))
        if on_step is not None:
            on_step(run)
    return timed


def _warn_if_busy(be):
    """On NumPy, warn when other processes keep the CPU busy (npgan.info)."""
    if be.name == "numpy":
        from npgan.info import busy_machine_warning
        advice = busy_machine_warning()
        if advice:
            warnings.warn(advice, stacklevel=3)                 # train's caller


def _train_epoch(run, log_file, flag, on_step, progress):
    """The steps of the epoch in progress, from run.batch on, until its end or a stop;
    their statistics go to log_file. Returns the last record logged (None: none was)."""
    from tqdm.auto import tqdm

    cfg, k = run.config, run.config.d_steps
    if run.order is None:
        run.order = run.be.permutation(run.x.shape[0])          # this epoch's shuffle
    batches = iterate_batches(run.x, cfg.batch_size, run.be, order=run.order,
                              start=run.batch, labels=run.y)
    # disable=None: tqdm draws only on a terminal; in a log file it would be redraws
    bar = tqdm(total=run.steps_per_epoch, initial=run.batch // k, unit="step", leave=False,
               desc=f"epoch {run.epoch + 1}/{cfg.epochs}", disable=None if progress else True)
    record, pending = None, []
    while run.batch + k <= run.steps_per_epoch * k:
        pending.append(run.take_step(batches))
        bar.update(1)
        if on_step is not None:
            on_step(run)
        if run.step % cfg.log_every == 0:
            grads = _grad_norms({"G": run.G, "D": run.D}, run.be.xp) if cfg.log_grad_norms else {}
            record = run.flush(pending, grads, log_file, run.host_values(run.sigma))
            pending = []
            bar.set_postfix(**_postfix(record))
        if run.stopping(flag):
            break
    bar.close()
    if pending:
        record = run.flush(pending, {}, log_file, run.host_values(run.sigma))
    return record


def _stop(run, flag):
    """A stop before the epoch's end: checkpoint; after Ctrl-C or SIGTERM, the pictures
    (as at the end of a run) and TrainingInterrupted."""
    run.save_checked(f"by step {run.step}")
    if flag["stop"]:
        _pictures(run)
        name = "Ctrl-C" if flag["stop"] == signal.SIGINT else "SIGTERM"
        raise TrainingInterrupted(
            f"interrupted at step {run.step} ({name}); checkpoint saved to "
            f"{run.checkpoint_path} (continue with resume)", run.checkpoint_path, flag["stop"])


def _end_epoch(run, log_file, evaluation, log):
    """An epoch is done: a sample grid, a checkpoint and, every eval_every epochs, the
    sample-quality metrics. Returns the latest evaluation."""
    run.epoch += 1
    run.batch, run.order = 0, None
    run.sample_grid()
    run.save_checked(f"in epoch {run.epoch}")
    if run.config.eval_every and run.epoch % run.config.eval_every == 0:
        evaluation = run.evaluate(log_file, evaluation)
        log(_evaluation_line(run.epoch, evaluation))
    return evaluation


def _evaluation_line(epoch, e):
    line = (f"epoch {epoch}: Frechet {e['frechet']:.2f} (real floor {e['frechet_floor']:.2f}), "
            f"precision {e['precision']:.3f}, recall {e['recall']:.3f}, classes "
            f"{e['classes_covered']}/10, KL {e['kl_uniform']:.3f}")
    if "label_agreement" in e:
        line += f", label agreement {e['label_agreement']:.3f}"
    return line


def _epoch_line(run, record):
    noise = f"noise sigma {run.sigma:.4f}  " if run.config.instance_noise else ""
    return (f"epoch {run.epoch}/{run.config.epochs}  step {run.step}  {summarize(record)}  "
            f"{noise}{run.clock.epoch_suffix(run.step, _last_step(run))}")


def _postfix(record):
    if "wasserstein" in record:           # a critic: its Wasserstein estimate, not D(x)
        return {"loss_d": f"{record['loss_d']:.3f}", "loss_g": f"{record['loss_g']:.3f}",
                "W": f"{record['wasserstein']:.3f}"}
    return {"loss_d": f"{record['loss_d']:.3f}", "loss_g": f"{record['loss_g']:.3f}",
            "d_x": f"{record['d_real']:.2f}", "d_gz": f"{record['d_fake']:.2f}"}


def summarize(record) -> str:
    """A metrics record in one line: D(x) and D(G(z)) for a GAN (and R1, when on); for a critic its
    Wasserstein estimate (and the penalty's gradient norm under wgan-gp)."""
    line = f"loss_d {record['loss_d']:.4f}  loss_g {record['loss_g']:.4f}  "
    if "wasserstein" not in record:
        r1 = f"  R1 {record['r1']:.4f}" if "r1" in record else ""
        return line + f"D(x) {record['d_real']:.3f}  D(G(z)) {record['d_fake']:.3f}{r1}"
    line += f"W estimate {record['wasserstein']:.4f}"
    if "grad_norm" in record:
        line += f"  ||grad D(x_hat)|| {record['grad_norm']:.3f}"
    return line


def read_metrics(path) -> list[dict]:
    """The records of a metrics.jsonl, in order: step records (with loss_d) and, with
    --eval-every, evaluation records (with frechet) between them."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _pictures(run) -> dict:
    """samples.gif (of the epochs' grids) and curves.png (of metrics.jsonl): {name: path}."""
    files = {}
    if run.samples:
        files["gif"] = str(save_gif(run.samples, run.out / "samples.gif"))
        files["last_grid"] = str(run.samples[-1])
    records = read_metrics(run.out / "metrics.jsonl")
    if records:
        cfg = run.config
        title = (f"{run.out}: {cfg.model} {cfg.loss} on {cfg.dataset}, step {run.step:,} "
                 f"(epoch {run.epoch} of {cfg.epochs} done)")
        files["curves"] = str(plot_curves(records, run.out / "curves.png", title=title))
    return files


def _finish(run, record, evaluation=None) -> dict:
    """The summary; "seconds" is the run's whole time, a resumed run's earlier time included."""
    files = {"checkpoint": str(run.checkpoint_path), "metrics": str(run.out / "metrics.jsonl"),
             **_pictures(run)}
    return {"steps": run.step, "epochs": run.epoch, "seconds": run.clock.elapsed(), "last": record,
            "evaluation": evaluation, "files": files, "G": run.G, "D": run.D,
            "G_sampler": run.sampler}

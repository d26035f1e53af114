"""The settings of a training run: TrainConfig, one dataclass that says everything.

A TrainConfig names the data, the model (MODELS: mlp or dcgan), the losses, the
optimizer (OPTIMIZERS), the batch, the seed, and where and how often the run writes.
Its defaults (DEFAULTS) are the classic MNIST GAN; TrainConfig.for_loss(loss) starts
from the paper's settings of a critic loss instead (LOSS_DEFAULTS).
validate() runs before any work (train() calls it first, before it touches the device
or the disk) and raises one ConfigError that lists every invalid setting.
A checkpoint keeps its run's settings (to_dict()). A resumed run may change only
RESUME_CHANGEABLE: how long it runs, where it writes, how often it logs and evaluates,
and the backend. resume_config builds the config that continues a saved run, and
refuses, naming each, the settings that belong to the run (data, model, losses, ...).
A setting the checkpoint has and TrainConfig does not is named in a warning, or refused
where it changes the model (MODEL_SETTINGS, check_unknown_settings).
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from npgan.checkpoint import CheckpointError, load_checkpoint
from npgan.data import DATASETS
from npgan.losses import G_LOSSES, LOSSES
from npgan.noise import PRIORS

MODELS = ("mlp", "dcgan")
# the transforms of --diffaug, in npgan.augment's order (config stays below the models,
# so it names them here; a test checks that the two lists agree)
DIFFAUG_POLICIES = ("translation", "cutout", "color")
OPTIMIZERS = ("adam", "rmsprop")
# The papers' settings, by --loss (losses.LOSSES); TrainConfig.for_loss and the command
# line use them. hinge: SN-GAN's setting for its standard CNN (Miyato et al. 2018,
# Table 1, setting C): Adam lr 2e-4, betas (0.5, 0.999), n_critic 5, here without
# spectral normalization.
LOSS_DEFAULTS = {
    "gan": dict(optimizer="adam", lr=2e-4, beta1=0.5, beta2=0.999, d_steps=1,
                label_smoothing=0.1),
    "wgan": dict(optimizer="rmsprop", lr=5e-5, beta1=0.5, beta2=0.999, d_steps=5,
                 label_smoothing=0.0, clip=0.01),
    "wgan-gp": dict(optimizer="adam", lr=1e-4, beta1=0.0, beta2=0.9, d_steps=5,
                    label_smoothing=0.0, gp_weight=10.0),
    "hinge": dict(optimizer="adam", lr=2e-4, beta1=0.5, beta2=0.999, d_steps=5,
                  label_smoothing=0.0),
}
# R1's gamma when TrainConfig(r1=None), the default: what won the 5-seed studies of
# docs/results.md ("The data-efficient cures"): gamma 10 (the value of the issue's
# PyTorch check) on the MLP at 100 epochs, and on the DCGAN at about 5,000 updates
# (at 1,400 it was level). On the DCGAN it also means a D without BatchNorm. Fixed at
# construction: replace(config, model=...) keeps the gamma already chosen
R1_DEFAULTS = {"mlp": 10.0, "dcgan": 10.0}
# the value a setting had before npgan had it: a checkpoint written then lacks the
# setting, and its run ran this way (saved_settings), whatever today's default is
BEFORE_IT_EXISTED = {"r1": 0.0, "diffaug": "", "mbstd": False, "d_batchnorm": True}
NUM_CLASSES = 10     # every dataset npgan reads (MNIST, Fashion-MNIST) has 10 classes
# what a resumed run may change: how long, where, how often it logs and evaluates, and
# the device (the backend: CuPy re-seeds its generator) and the threads. Every other setting (data,
# architecture, losses, optimizer, batch, seed) belongs to the run and stays.
RESUME_CHANGEABLE = ("epochs", "out", "log_every", "log_grad_norms", "eval_every", "eval_n",
                     "max_steps", "backend", "threads", "reference")
# the settings that decide what G and D compute (build_models) and what G is fed. A
# checkpoint lists them (meta "model_settings"), so that an older npgan, which does not
# know a setting a newer one added here, can tell that it would build another model.
MODEL_SETTINGS = ("model", "conditional", "spectral_norm", "latent_dim", "prior", "g_hidden",
                  "d_hidden", "base_channels", "loss", "dtype", "mbstd", "d_batchnorm",
                  "r1")        # r1 > 0 builds the DCGAN's D without BatchNorm


class ConfigError(ValueError):
    """A training setting is invalid; raised before any work starts.

    .problems: [(fields, message)], each message in the library's words, naming the
    settings in `fields` (a tuple of TrainConfig field names; empty when none), so that a
    command line can show the flags its user typed instead (npgan.cli.config_error_lines).
    """

    def __init__(self, message, problems=None):
        super().__init__(message)
        self.problems = list(problems) if problems is not None else [((), message)]

    @classmethod
    def of(cls, problems):
        """One error for several problems, each a message as validate() writes them."""
        return cls("invalid training settings:\n  " + "\n  ".join(problems),
                   [(fields_named(m), m) for m in problems])


def fields_named(message) -> tuple:
    """The TrainConfig fields a message names: the one it begins with ('lr must be ...',
    'unknown dataset ...'), those written as 'field=value', and any with an underscore
    (data_dir: no English word has one)."""
    first = message.removeprefix("unknown ").replace("=", " ").split(" ", 1)[0]
    words = set(re.findall(r"[a-z][a-z0-9_]*", message))
    return tuple(f.name for f in dataclasses.fields(TrainConfig)
                 if f.name == first or f"{f.name}=" in message
                 or ("_" in f.name and f.name in words))


@dataclass
class TrainConfig:
    """Every setting of a run; defaults are the classic MNIST GAN (Goodfellow et al.
    2014, with Radford et al. 2015's Adam: lr 2e-4, beta1 0.5), plus one-sided label
    smoothing 0.1 and an EMA of G's weights (decay 0.999), the best combination we
    measured (docs/results.md, "Choosing the defaults"), and R1 with gamma 10, which
    beat them on both models (R1_DEFAULTS). label_smoothing=0, ema=0, r1=0: the classic."""
    backend: str = "numpy"
    dtype: str = "float32"
    threads: int | None = None        # BLAS and npgan threads; None: npgan.threads.DEFAULT_THREADS
    reference: bool = False           # the textbook classes, not npgan.fast's twins: slower,
                                      # the same numbers within 1e-6 per step
    dataset: str = "mnist-5k"         # the 4,500 bundled digits: 200 epochs in about 10 minutes
    data_dir: str | None = None
    model: str = "mlp"
    conditional: bool = False         # G(z, y) and D(x, y): a class-conditional GAN
    spectral_norm: bool = False       # every Linear/Conv2d of D: W / sigma(W) (npgan.spectral)
    epochs: int = 200
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float | None = None         # D's learning rate (TTUR, Heusel et al. 2017); None: lr
    lr_g: float | None = None         # G's learning rate; None: lr
    beta1: float = 0.5
    latent_dim: int = 100
    prior: str = "normal"             # z ~ N(0, I) ("normal") or U(-1, 1) ("uniform")
    g_hidden: tuple = (256, 512, 1024)
    d_hidden: tuple = (512, 256)
    base_channels: int = 64           # DCGAN only: channels of the widest conv layer / 2
    d_steps: int = 1                  # k: D-updates per G-update
    g_loss: str = "non-saturating"
    label_smoothing: float = 0.1      # D's real target is 1 - label_smoothing (measured best)
    instance_noise: float = 0.0       # sigma0 > 0: D sees images + N(0, sigma^2), sigma annealed
                                      # linearly from sigma0 to 0 over the run's epochs
                                      # (noise.instance_noise_sigma); 0: off
    seed: int = 0
    out: str = "runs/mnist"
    log_every: int = 50               # steps between host reads of the statistics
    max_steps: int | None = None      # stop (with a checkpoint) after this many steps
    log_grad_norms: bool = False      # record each layer's gradient norm when logging
    ema: float = 0.999                # > 0: keep an EMA of G's weights with this decay; 0: off
    eval_every: int = 0               # > 0: sample-quality metrics every N epochs
    eval_n: int = 2000                # samples per evaluation
    # the Wasserstein family (npgan.wgan); TrainConfig.for_loss sets each loss's defaults
    loss: str = "gan"                 # gan | wgan | wgan-gp | hinge
    optimizer: str = "adam"           # adam (lr, betas (beta1, beta2)) | rmsprop (lr)
    beta2: float = 0.999
    clip: float = 0.01                # wgan: D's parameters clipped to [-clip, clip]
    gp_weight: float = 10.0           # wgan-gp: lambda, the gradient penalty's weight
    # the cures for a D that learns a small data set by heart (issue 25)
    r1: float | None = None           # gamma > 0: R1 = gamma/2 E||grad D(x_real)||^2 (npgan.r1);
                                      # 0: off; None: default_r1 (10 for the GAN's D)
    diffaug: str = ""                 # DiffAugment of all D sees, e.g. "translation,cutout"
    mbstd: bool = False               # the batch's spread as an input of D's last layer
    d_batchnorm: bool = True          # DCGAN: BatchNorm in D (never under wgan-gp or r1)

    def __post_init__(self):
        if self.r1 is None:                 # the measured default, fixed now: the run and
            self.r1 = default_r1(self.model, self.loss, self.spectral_norm)  # its checkpoint say it

    @classmethod
    def for_loss(cls, loss="gan", **overrides):
        """A config with the paper's settings for `loss` (LOSS_DEFAULTS:
        optimizer, lr, betas, n_critic = d_steps, label smoothing only for gan), then
        `overrides` on top: TrainConfig.for_loss("wgan-gp", epochs=50)."""
        if loss not in LOSS_DEFAULTS:
            raise ConfigError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        return cls(**{**LOSS_DEFAULTS[loss], "loss": loss, **overrides})

    def describe_loss(self) -> str:
        """One line: the loss and the optimizer settings it runs with (printed at start)."""
        opt = (f"Adam lr {self.lr:g}, betas ({self.beta1:g}, {self.beta2:g})"
               if self.optimizer == "adam" else f"RMSprop lr {self.lr:g} (alpha 0.99)")
        what = {"gan": f"GAN, D on BCE, G loss {self.g_loss}, label smoothing "
                       f"{self.label_smoothing:g}",
                "wgan": f"WGAN, weight clipping to [-{self.clip:g}, {self.clip:g}]",
                "wgan-gp": f"WGAN-GP, gradient penalty weight {self.gp_weight:g}",
                "hinge": "hinge critic"}[self.loss]
        k = "k" if self.loss == "gan" else "n_critic"
        note = "" if self.loss == "gan" else \
            "; D's accuracy is not logged (a critic outputs a score, not a probability)"
        cures = self.describe_cures()
        cures = f"; with {cures}" if cures else ""
        return f"loss {self.loss}: {what}; {opt}; {k} = {self.d_steps}{cures}{note}"

    def validate(self):
        """Raise ConfigError listing every invalid setting."""
        problems = self._number_problems() + self._choice_problems() + self._loss_problems() \
            + self._cure_problems()
        if problems:
            raise ConfigError.of(problems)

    def _number_problems(self) -> list:
        """Counts, rates and levels out of their range."""
        problems = []
        positive_ints = ("epochs", "batch_size", "latent_dim", "d_steps", "log_every",
                         "base_channels")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int) or self.threads < 1):
            problems.append(f"threads must be a positive integer (or None: npgan's default), "
                            f"got {self.threads!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            problems.append(f"lr must be > 0, got {self.lr!r}")
        for name in ("lr_d", "lr_g"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                problems.append(f"{name} must be > 0 (or None: the same as lr), got {value!r}")
        if not 0.0 <= self.beta1 < 1.0:
            problems.append(f"beta1 must be in [0, 1), got {self.beta1!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        noise = self.instance_noise
        if not (isinstance(noise, (int, float)) and 0.0 <= noise < 10.0):
            problems.append(f"instance_noise must be a sigma in [0, 10) (images are in [-1, 1]; "
                            f"0 = off; e.g. 0.1), got {noise!r}")
        if not (self.ema == 0.0 or 0.0 < self.ema < 1.0):
            problems.append(f"ema must be 0 (off) or a decay in (0, 1) such as 0.999, got {self.ema!r}")
        for name in ("eval_every", "eval_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be a non-negative integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            problems.append(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        return problems

    def _choice_problems(self) -> list:
        """Names (data set, model, losses, prior) and switches that are not valid ones."""
        problems = []
        if self.dataset not in DATASETS:
            problems.append(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASETS)} "
                            f"(for other MNIST-format files give data_dir as well)")
        elif self.dataset == "mnist-5k" and self.data_dir is not None:
            problems.append("dataset 'mnist-5k' is bundled and reads no data_dir; "
                            "use dataset 'mnist' (or 'fashion-mnist') with data_dir")
        if self.g_loss not in G_LOSSES:
            problems.append(f"unknown g_loss {self.g_loss!r}; valid: {', '.join(G_LOSSES)}")
        if not isinstance(self.conditional, bool):
            problems.append(f"conditional must be True or False, got {self.conditional!r}")
        if not isinstance(self.spectral_norm, bool):
            problems.append(f"spectral_norm must be True or False, got {self.spectral_norm!r}")
        if self.prior not in PRIORS:
            problems.append(f"unknown prior {self.prior!r}; valid: {', '.join(PRIORS)}")
        if self.model not in MODELS:
            problems.append(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        return problems

    def learning_rates(self) -> tuple[float, float]:
        """(lr of D, lr of G): lr_d and lr_g where given, else lr (one rate for both)."""
        return (self.lr if self.lr_d is None else self.lr_d,
                self.lr if self.lr_g is None else self.lr_g)

    def _loss_problems(self) -> list:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.beta2, (int, float)) and 0.0 <= self.beta2 < 1.0):
            problems.append(f"beta2 must be in [0, 1), got {self.beta2!r}")
        if not (isinstance(self.clip, (int, float)) and self.clip > 0):
            problems.append(f"clip must be > 0, got {self.clip!r}")
        if not (isinstance(self.gp_weight, (int, float)) and self.gp_weight >= 0):
            problems.append(f"gp_weight must be >= 0, got {self.gp_weight!r}")
        if self.loss in LOSSES and self.loss != "gan":
            if self.label_smoothing != 0.0:
                problems.append(
                    f"label_smoothing={self.label_smoothing!r} is a target of the GAN's BCE "
                    f"loss, and the {self.loss} critic has no targets: use label_smoothing=0 "
                    f"(TrainConfig.for_loss({self.loss!r}) sets the paper's settings)")
            if self.loss == "wgan-gp" and self.spectral_norm:
                problems.append("spectral_norm has no double backward, which the gradient "
                                "penalty of wgan-gp needs: use one or the other")
            if self.instance_noise:
                problems.append(f"instance_noise is a cure for the GAN's D (loss 'gan'), not "
                                f"for the {self.loss} critic: use instance_noise=0")
            if self.g_loss != DEFAULT_G_LOSS:
                problems.append(f"g_loss={self.g_loss!r} applies to loss 'gan' only; against "
                                f"a critic G minimizes -mean D(G(z))")
        return problems

    def _cure_problems(self) -> list:
        """R1, DiffAugment, minibatch stddev, and what they cannot be combined with."""
        problems, r1 = [], self.r1
        if isinstance(r1, bool) or not isinstance(r1, (int, float)) or not 0.0 <= r1 < float("inf"):
            problems.append(f"r1 must be a gamma >= 0 (0 = off; e.g. 10), got {r1!r}")
        elif r1 > 0.0:
            if self.spectral_norm:
                problems.append(f"r1={r1!r} (--r1) needs the double backward of every layer of "
                                f"D, and spectral_norm (--spectral-norm) has none: use one or "
                                f"the other")
            if self.loss in LOSSES and self.loss != "gan":
                problems.append(f"r1={r1!r} (--r1) is a penalty on the GAN's D (loss 'gan'), "
                                f"not on the {self.loss} critic: use r1=0")
        if not isinstance(self.diffaug, str):
            problems.append(f"diffaug must be a policy string such as 'translation,cutout', "
                            f"got {self.diffaug!r}")
        else:
            names = [n.strip() for n in self.diffaug.split(",") if n.strip()]
            if any(n not in DIFFAUG_POLICIES for n in names) or len(set(names)) != len(names):
                problems.append(f"diffaug={self.diffaug!r}: give each of "
                                f"{', '.join(DIFFAUG_POLICIES)} at most once, comma-separated "
                                f"(e.g. --diffaug translation,cutout)")
            if names and self.instance_noise:
                problems.append(f"diffaug={self.diffaug!r} (--diffaug) and instance_noise="
                                f"{self.instance_noise!r} (--instance-noise) both change the "
                                f"images D sees: use one or the other")
        for name in ("mbstd", "d_batchnorm"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.d_batchnorm is False and self.model == "mlp":
            problems.append("d_batchnorm=False (--no-d-batchnorm) is for the DCGAN's D; the "
                            "MLP's D has no BatchNorm")
        return problems

    def describe_cures(self) -> str:
        """The cures of issue 25 that this run uses, in one line ('' if none)."""
        cures = [f"R1 gamma {self.r1:g}" if self.r1 else "",
                 f"DiffAugment {self.diffaug}" if self.diffaug else "",
                 "minibatch stddev in D" if self.mbstd else "",
                 "D without BatchNorm" if self.model == "dcgan" and (
                     not self.d_batchnorm or self.r1 or self.loss == "wgan-gp") else ""]
        return ", ".join(c for c in cures if c)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def default_r1(model, loss, spectral_norm) -> float:
    """R1's gamma when none is given: R1_DEFAULTS[model] for the GAN's D; 0 where R1
    cannot be (a critic loss; spectral norm, which has no double backward)."""
    if loss != "gan" or spectral_norm:
        return 0.0
    return R1_DEFAULTS.get(model, 0.0)


DEFAULTS = TrainConfig()
DEFAULT_G_LOSS = DEFAULTS.g_loss


def saved_settings(ck, warn=True) -> dict:
    """The checkpoint's settings as TrainConfig.to_dict() gives them; a field that an
    older checkpoint lacks has the value it had before npgan had it (BEFORE_IT_EXISTED),
    else its default (unknown ones: check_unknown_settings)."""
    check_unknown_settings(ck, warn)
    return {k: ck.config.get(k, BEFORE_IT_EXISTED.get(k, v))
            for k, v in DEFAULTS.to_dict().items()}


def check_unknown_settings(ck, warn=True) -> list:
    """The names of the checkpoint's settings that TrainConfig does not have (a hand-
    edited checkpoint, or one written by a newer npgan). We warn and ignore them,
    unless the checkpoint lists one among its model_settings (what changes G or D):
    then this npgan would build another model than the one trained, and we refuse.
    An unknown setting that changes the weights' shapes is also refused, later, by
    Checkpoint.restore_model's architecture check. warn=False: refuse, but say nothing
    (resume_config, whose config train() then resumes with, and warns about, once)."""
    unknown = sorted(set(ck.config) - set(DEFAULTS.to_dict()))
    shown = ", ".join(f"{k}={ck.config[k]!r}" for k in unknown)
    changes_model = [k for k in unknown if k in ck.meta.get("model_settings", ())]
    if changes_model:
        raise CheckpointError(
            f"{ck.path} has settings that change its model and that this npgan does not "
            f"know: {', '.join(f'{k}={ck.config[k]!r}' for k in changes_model)}; it would "
            f"build another model than the one trained: use the npgan that wrote it")
    if unknown and warn:
        warnings.warn(f"{ck.path} has settings this npgan does not know, and ignores: "
                      f"{shown} (a hand-edited checkpoint, or one written by a newer npgan)")
    return unknown


def resume_config(checkpoint, **given):
    """The config that continues the run saved in `checkpoint`: every setting as the
    run had it, except the ones given here, which must be in RESUME_CHANGEABLE (or
    equal to the saved value). `out` defaults to the checkpoint's folder, and
    `max_steps` (a stop for one invocation) is not inherited.

    Returns (config, changes, position): changes = {field: (saved, given)} of the
    accepted changes, position = {"step": ..., "epoch": ...} of the checkpoint.
    Raises ConfigError, one line, naming every setting that cannot change mid-run.
    """
    path = Path(checkpoint)
    ck = load_checkpoint(path)
    saved = saved_settings(ck, warn=False)                      # train() warns
    saved.update(out=str(path.parent), max_steps=None)
    unknown = sorted(set(given) - set(saved))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    if given.get("out") is not None:
        given["out"] = str(Path(given["out"]))                   # "runs/x/" is "runs/x"
    fresh = TrainConfig(**given).to_dict()                       # lists, like saved
    changes = {k: (saved[k], fresh[k]) for k in given if fresh[k] != saved[k]}
    refused = [f"{k}={new!r} (the run has {old!r})" for k, (old, new) in changes.items()
               if k not in RESUME_CHANGEABLE]
    if refused:
        message = (f"cannot resume {path} with {', '.join(refused)}: a resumed run keeps the "
                   f"settings it started with (data, architecture, losses, optimizer) and may "
                   f"change only {', '.join(RESUME_CHANGEABLE)}; start a new run (another "
                   f"out folder) to change the others")
        fields = tuple(k for k in changes if k not in RESUME_CHANGEABLE) + RESUME_CHANGEABLE
        raise ConfigError(message, [(fields, message)])
    merged = dict(saved, **{k: fresh[k] for k in given})
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})
    return config, changes, {"step": ck.meta["step"], "epoch": ck.meta["epoch"]}

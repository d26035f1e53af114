"""Train the MNIST GAN with npgan: the classic MLP GAN, with label smoothing, an EMA of G
and R1 (gamma 10) by default.

    python examples/train_mnist.py --backend numpy            # or --backend cupy
    python examples/train_mnist.py --dataset fashion-mnist --epochs 5
    python examples/train_mnist.py --dry-run                  # a few steps, for CI
    python examples/train_mnist.py --out DIR --resume         # continue an interrupted run
    python examples/train_mnist.py --loss wgan-gp             # a critic: the paper's settings
    python examples/train_mnist.py --r1 10 --diffaug translation,cutout --mbstd   # the cures of docs/r1.md

A thin command line over npgan.train.train: every flag is a TrainConfig field. A
resumed run takes its settings from the checkpoint (npgan.config.resume_config); only
the flags typed on the command line change them, and only those that may change.
Ctrl-C or SIGTERM saves a checkpoint, writes the pictures, prints how to resume (with
the interpreter running now, so the line works as typed) and exits with 130 or 143
(128 + the signal); a full disk, or another run in the same --out, is one error line
(exit code 1), and a bad setting names its flag. What survives what: docs/faults.md.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

from npgan.backend import BACKENDS, BackendError, keep_freed_host_memory
from npgan.checkpoint import CheckpointError, last_good
from npgan.cli import command, config_error_text, flags_of, plain_warnings
from npgan.config import LOSS_DEFAULTS, ConfigError, TrainConfig, resume_config
from npgan.data import DATASETS, DataError
from npgan.files import WriteError, describe_write_error
from npgan.losses import G_LOSSES, LOSSES
from npgan.runlock import FolderInUse
from npgan.train import TrainingDiverged, TrainingInterrupted, train

DEFAULTS = TrainConfig()


def build_parser(argv=None):
    """The command line; argv's --loss (if any) sets the defaults of the optimizer flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backend", choices=[b for b in BACKENDS if b != "array-api-strict"],
                   default=DEFAULTS.backend)
    p.add_argument("--threads", type=int, default=DEFAULTS.threads,
                   help="threads for BLAS and npgan's loops (default: 1, fastest on a busy "
                        "machine; more can change the last bits of the numbers)")
    p.add_argument("--dataset", default=DEFAULTS.dataset,
                   help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="a folder with the four MNIST-format IDX files")
    p.add_argument("--model", choices=["mlp", "dcgan"], default=DEFAULTS.model,
                   help="mlp: the classic MLP GAN; dcgan: (transposed) convolutions + BatchNorm")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional GAN: G and D also get the label (one-hot)")
    p.add_argument("--spectral-norm", action="store_true",
                   help="spectral normalization of every Linear/Conv2d of D (Miyato et al. 2018)")
    p.add_argument("--base-channels", type=int, default=DEFAULTS.base_channels,
                   help="DCGAN width (G: 2x this, then 1x; D: 1x, then 2x)")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=DEFAULTS.lr)
    p.add_argument("--lr-d", type=float, default=DEFAULTS.lr_d,
                   help="D's learning rate (TTUR, e.g. 4e-4 with --lr-g 1e-4); None: --lr")
    p.add_argument("--lr-g", type=float, default=DEFAULTS.lr_g,
                   help="G's learning rate; None: --lr")
    p.add_argument("--beta1", type=float, default=DEFAULTS.beta1)
    p.add_argument("--latent-dim", type=int, default=DEFAULTS.latent_dim)
    p.add_argument("--prior", choices=["normal", "uniform"], default=DEFAULTS.prior,
                   help="z ~ N(0, I) or U(-1, 1); sample and evaluate use the checkpoint's")
    p.add_argument("--d-steps", type=int, default=DEFAULTS.d_steps, help="k: D-updates per G-update")
    p.add_argument("--g-loss", choices=list(G_LOSSES), default=DEFAULTS.g_loss)
    p.add_argument("--label-smoothing", type=float, default=DEFAULTS.label_smoothing,
                   help="one-sided: D's real target becomes 1 - this")
    p.add_argument("--instance-noise", type=float, default=DEFAULTS.instance_noise,
                   metavar="SIGMA", help="D sees every image + N(0, SIGMA^2), SIGMA annealed "
                                         "linearly to 0 over the run (e.g. 0.1; 0 = off)")
    # the cures for a D that memorizes a small data set (issue 25; docs/r1.md)
    p.add_argument("--r1", type=float, default=None, metavar="GAMMA",
                   help="R1 penalty GAMMA/2 E||grad D(x)||^2 at the real images (Mescheder et "
                        "al. 2018; 0 = off); default: 10 (it won the 5-seed studies of "
                        "docs/results.md), 0 for the critics and --spectral-norm; with R1 "
                        "the DCGAN's D is built without BatchNorm")
    p.add_argument("--diffaug", default=DEFAULTS.diffaug, metavar="POLICY",
                   help="augment every image D sees, real and fake, in D's and G's steps "
                        "(Zhao et al. 2020): comma-separated from translation,cutout,color")
    p.add_argument("--mbstd", action="store_true",
                   help="minibatch standard deviation: the batch's spread as one more input "
                        "of D's last layer (Karras et al. 2018)")
    p.add_argument("--no-d-batchnorm", dest="d_batchnorm", action="store_false",
                   help="DCGAN: D without BatchNorm (as --r1 and --loss wgan-gp build it)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--dtype", choices=["float32", "float64"], default=DEFAULTS.dtype)
    p.add_argument("--reference", action="store_true",
                   help="train on the textbook path: slower, same numbers within 1e-6 per step")
    p.add_argument("--out", default=DEFAULTS.out, help="output folder")
    p.add_argument("--log-every", type=int, default=DEFAULTS.log_every)
    p.add_argument("--log-grad-norms", action="store_true",
                   help="record every layer's gradient norm in metrics.jsonl")
    p.add_argument("--ema", type=float, default=DEFAULTS.ema,
                   help="decay of an EMA of G's weights used for samples (e.g. 0.999; 0 = off)")
    p.add_argument("--eval-every", type=int, default=DEFAULTS.eval_every,
                   help="sample-quality metrics every N epochs (0 = off)")
    p.add_argument("--eval-n", type=int, default=DEFAULTS.eval_n, help="samples per evaluation")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from OUT/checkpoint.npz (or the checkpoint given)")
    p.add_argument("--dry-run", action="store_true", help="run 3 steps and stop (checks the set-up)")
    # the Wasserstein family (npgan.wgan): each --loss brings its paper's settings as the
    # defaults of --optimizer, --lr, --beta1, --beta2, --d-steps, --label-smoothing
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS.loss,
                   help="gan: the BCE GAN; wgan: weight clipping (RMSprop lr 5e-5, n_critic 5, "
                        "clip 0.01); wgan-gp: gradient penalty (Adam lr 1e-4, betas (0, 0.9), "
                        "n_critic 5, lambda 10); hinge: SN-GAN's (Adam lr 2e-4, betas (0.5, "
                        "0.999), n_critic 5); explicit flags override these")
    p.add_argument("--optimizer", choices=["adam", "rmsprop"], default=DEFAULTS.optimizer)
    p.add_argument("--beta2", type=float, default=DEFAULTS.beta2)
    p.add_argument("--clip", type=float, default=DEFAULTS.clip,
                   help="wgan: clip D's parameters to [-CLIP, CLIP] after each update")
    p.add_argument("--gp-weight", type=float, default=DEFAULTS.gp_weight,
                   help="wgan-gp: lambda, the weight of the gradient penalty")
    known, _ = p.parse_known_args(argv)            # the loss decides the other defaults
    p.set_defaults(**LOSS_DEFAULTS.get(known.loss, {}))
    return p


def parse_args(argv=None):
    """(the arguments, the names of those typed on the command line)."""
    args = build_parser(argv).parse_args(argv)
    unset = object()                        # a default no command line can give
    again = build_parser(argv)
    again.set_defaults(**{name: unset for name in vars(args)})
    return args, {k for k, v in vars(again.parse_args(argv)).items() if v is not unset}


FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


def resumed_config(args, typed):
    """The interrupted run's settings, changed only by the flags typed (see resume_config)."""
    path = f"{args.out}/checkpoint.npz" if args.resume == "auto" else args.resume
    given = {name: getattr(args, name) for name in FIELDS if name in typed}
    config, changes, at = resume_config(path, **given)
    if args.dry_run:
        config = dataclasses.replace(config, log_every=1, max_steps=at["step"] + 3)
    shown = {k: v for k, v in config.to_dict().items() if v is not None and k != "max_steps"}
    print(f"resuming {path} at step {at['step']} ({at['epoch']} of {config.epochs} epochs done) with: "
          + " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in shown.items()))
    for name, (old, new) in changes.items():
        print(f"  changed: {name} {old} -> {new}")
    return config, path


def resume_hint(config):
    """The line that resumes this run, typed as shown, inside or outside a venv."""
    return command(__file__, "--out", config.out, "--resume")


def main(argv=None):
    plain_warnings()                        # "warning: <message>", no source line under it
    args, typed = parse_args(argv)
    if args.backend == "numpy" and keep_freed_host_memory():
        # this program owns its process, so it may tune malloc for all of it (the library never does)
        print("memory: this process keeps freed memory for the next step (glibc mallopt; "
              "NPGAN_KEEP_FREED_MEMORY=0 turns it off)")
    resume = None
    try:
        if args.resume is not None:
            config, resume = resumed_config(args, typed)
        else:
            config = TrainConfig(**{name: getattr(args, name) for name in FIELDS
                                    if hasattr(args, name)})
            if args.dry_run:
                config = dataclasses.replace(config, log_every=1, max_steps=3)
        summary = train(config, resume=resume)
    except ConfigError as err:              # named by the flags typed, not the fields
        sys.exit(f"error: {config_error_text(err, flags_of(build_parser(argv)))}")
    except (BackendError, DataError, CheckpointError, FolderInUse) as err:
        sys.exit(f"error: {err}")
    except TrainingDiverged as err:
        sys.exit(f"error: {err}")
    except WriteError as err:               # a full disk, a quota, ulimit -f: one line
        sys.exit(f"error: {describe_write_error(err)}; nothing half-written was left; "
                 f"{last_good(Path(config.out) / 'checkpoint.npz')}. Free some space (or "
                 f"raise the limit), then resume with: {resume_hint(config)}")
    except TrainingInterrupted as err:      # Ctrl-C (exit code 130) or SIGTERM (143)
        print(f"\n{err}\nresume with: {resume_hint(config)}")
        sys.exit(128 + err.signum)
    last = summary["last"] or {}
    if "wasserstein" in last:                   # a critic: no D(x), D(G(z)) probabilities
        from npgan.train import summarize
        print(f"done: {summary['steps']} steps, {summary['epochs']} epochs in "
              f"{summary['seconds']:.1f} s; {summarize(last)}")
    else:
        print(f"done: {summary['steps']} steps, {summary['epochs']} epochs in {summary['seconds']:.1f} s; "
              f"loss_d {last.get('loss_d', float('nan')):.4f}, loss_g {last.get('loss_g', float('nan')):.4f}, "
              f"D(x) {last.get('d_real', float('nan')):.3f}, D(G(z)) {last.get('d_fake', float('nan')):.3f}")
    if summary["evaluation"]:
        from npgan.metrics import format_table
        print(format_table(summary["evaluation"]))
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")


if __name__ == "__main__":
    main()

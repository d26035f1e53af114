"""Compare GAN settings on the same budget over 5 seeds, and say which one is better.

    python examples/compare_settings.py --study defaults --dataset mnist-5k --epochs 100
    python examples/compare_settings.py --study defaults --dataset fashion-mnist --epochs 5 \
        --only classic "label smoothing + EMA (default)"
    python examples/compare_settings.py --study data-efficient-dcgan --model dcgan \
        --base-channels 32 --epochs 20 --baseline "default, D without BatchNorm"

Each setting of a study is (changes to TrainConfig, which G samples: "raw" or "ema").
Every run keeps an EMA of G alongside, so a raw-vs-EMA pair of settings shares its
runs. Each (changes, seed) run trains once, then npgan.metrics scores it with the
reference CNN at --n samples: Frechet distance, precision, recall, classes, KL.
npgan.experiments pairs the runs by seed and prints the verdict of each setting
against the study's baseline (its first setting), decided by the Frechet distance
alone: better only when it wins so many seed pairs that chance would do it at most 5%
of the time (all 5 of 5) by a median gain of at least 5%; with fewer than 5 seeds the
verdict is "undecided: too few seeds". Precision and recall are reported beside it.

Runs are cached in OUT/runs/<changes>-seed<S>/ (a done.json marks a finished run, an
eval_*.json a finished evaluation), so a stopped comparison continues where it was,
and two processes with different --seeds can share the two cores of a small machine.
Writes OUT/results.jsonl, OUT/results.md (the table as printed) and OUT/grids/:
per setting, 64 samples of every seed in a row (<setting>_seeds.png), and one figure
with the median seed of every setting (median_seeds.png).
"""
import argparse
import json
import signal
import sys
import textwrap
from pathlib import Path

from npgan.classifier import load_or_train_classifier
from npgan.cli import command, plain_warnings
from npgan.config import LOSS_DEFAULTS, TrainConfig
from npgan.experiments import format_comparison, late_mean, median_range, median_seed
from npgan.files import write_atomically
from npgan.metrics import evaluate_generator, reference_statistics
from npgan.models import generate, load_generator
from npgan.plots import plot_d_accuracy, save_grid
from npgan.train import TrainingInterrupted, read_metrics, train

# A study: {setting name: (TrainConfig changes, sampler)}; the first setting is the
# baseline. Every run starts from TrainConfig's defaults with R1 off (UNCURED), so a
# setting is exactly its changes, as when the studies were first run: "default" in a
# name means label smoothing 0.1 and an EMA of G (0.999), the default until the
# data-efficient studies made R1 10 the default (docs/results.md).
UNCURED = {"r1": 0.0}
STUDIES = {
    "defaults": {   # what npgan's defaults rest on: label smoothing and the EMA of G
        "classic": ({"label_smoothing": 0.0}, "raw"),
        "label smoothing 0.1": ({"label_smoothing": 0.1}, "raw"),
        "EMA of G": ({"label_smoothing": 0.0}, "ema"),
        "label smoothing + EMA (default)": ({"label_smoothing": 0.1}, "ema"),
    },
    "classic-knobs": {   # the classic setting against its two knobs of the GAN paper
        "classic": ({"label_smoothing": 0.0}, "raw"),
        "minimax G loss": ({"label_smoothing": 0.0, "g_loss": "minimax"}, "raw"),
        "k=2 D-steps": ({"label_smoothing": 0.0, "d_steps": 2}, "raw"),
    },
}
# The other cures for an over-strong D (issue 13), as TrainConfig changes:
#   TTUR (Heusel et al. 2017) with the rates of SAGAN (Zhang et al. 2019, arXiv:1805.08318):
#     D 4e-4, G 1e-4, so D learns 4x faster than G;
#   instance noise (Sonderby et al. 2016): sigma 0.1 and 0.3 on images in [-1, 1] (the
#     values issue 13 asks for), annealed linearly to 0 over the run;
#   spectral normalization of every weight layer of D (Miyato et al. 2018);
#   the uniform prior U(-1, 1) of z instead of N(0, I).
CURES = {
    "TTUR lr_d 4e-4, lr_g 1e-4": {"lr_d": 4e-4, "lr_g": 1e-4},
    "instance noise 0.1": {"instance_noise": 0.1},
    "instance noise 0.3": {"instance_noise": 0.3},
    "spectral norm": {"spectral_norm": True},
    "uniform prior": {"prior": "uniform"},
}
STUDIES["cures"] = {   # each cure alone on the classic setting (raw G), label smoothing too
    "classic": ({"label_smoothing": 0.0}, "raw"),
    "label smoothing 0.1": ({"label_smoothing": 0.1}, "raw"),
    **{name: ({"label_smoothing": 0.0, **changes}, "raw") for name, changes in CURES.items()},
}
STUDIES["cures-on-default"] = {   # each cure added to today's default (smoothing 0.1 + EMA)
    "label smoothing + EMA (default)": ({"label_smoothing": 0.1}, "ema"),
    **{f"default + {name}": ({"label_smoothing": 0.1, **changes}, "ema")
       for name, changes in CURES.items()},
    # the best two cures combined: the two lowest median Frechet distances of the single
    # cures in this study (docs/results.md) that are different cures: noise 0.3, then the
    # uniform prior (noise 0.1 is the same cure at a lower level)
    "default + instance noise 0.3 + uniform prior": (
        {"label_smoothing": 0.1, "instance_noise": 0.3, "prior": "uniform"}, "ema"),
}

# the critics of npgan.wgan against today's default, each with its paper's settings
# (LOSS_DEFAULTS: optimizer, lr, betas, n_critic, no label smoothing) and the EMA of G
STUDIES["critics"] = {
    "label smoothing + EMA (default)": ({"label_smoothing": 0.1}, "ema"),
    **{f"{loss} (EMA)": ({"loss": loss, **LOSS_DEFAULTS[loss]}, "ema")
       for loss in ("wgan-gp", "wgan", "hinge")},
}

# The cures for a D that learns 4,000 digits by heart (issue 25; docs/r1.md), each on top
# of today's default, as TrainConfig changes:
#   R1 with gamma 10 (Mescheder et al. 2018), the value of the PyTorch check;
#   DiffAugment translation + cutout (Zhao et al. 2020), the paper's choice for few images;
#   minibatch standard deviation before D's last layer (Karras et al. 2018).
DATA_EFFICIENT = {
    "R1 10": {"r1": 10.0},
    "DiffAugment translation,cutout": {"diffaug": "translation,cutout"},
    "minibatch stddev": {"mbstd": True},
}
STUDIES["data-efficient"] = {   # the MLP: each cure alone, then two combinations
    "label smoothing + EMA (default)": ({"label_smoothing": 0.1}, "ema"),
    **{f"default + {name}": ({"label_smoothing": 0.1, **changes}, "ema")
       for name, changes in DATA_EFFICIENT.items()},
    # the PyTorch check: R1 helped the MLP and DiffAugment hurt it (an MLP D shares
    # no weights across positions), so the guess for the best is R1 with minibatch stddev
    "default + R1 10 + minibatch stddev": ({"label_smoothing": 0.1, "r1": 10.0, "mbstd": True},
                                           "ema"),
    "default + all three": ({"label_smoothing": 0.1, "r1": 10.0, "mbstd": True,
                             "diffaug": "translation,cutout"}, "ema"),
}
# --model dcgan: R1 needs a D without BatchNorm (docs/r1.md, section 3), so the study has
# that D as a setting of its own; compare R1 with it (--baseline "default, D without
# BatchNorm") to see R1's effect apart from BatchNorm's
STUDIES["data-efficient-dcgan"] = {
    "label smoothing + EMA (default)": ({"label_smoothing": 0.1}, "ema"),
    "default, D without BatchNorm": ({"label_smoothing": 0.1, "d_batchnorm": False}, "ema"),
    **{f"default + {name}": ({"label_smoothing": 0.1, **changes}, "ema")
       for name, changes in DATA_EFFICIENT.items()},
    "default + DiffAugment translation,cutout,color": (
        {"label_smoothing": 0.1, "diffaug": "translation,cutout,color"}, "ema"),
    "default + R1 10 + DiffAugment translation,cutout": (
        {"label_smoothing": 0.1, "r1": 10.0, "diffaug": "translation,cutout"}, "ema"),
    # at about 5,000 updates R1 won and minibatch stddev was level: the one combination left
    "default + R1 10 + minibatch stddev": ({"label_smoothing": 0.1, "r1": 10.0, "mbstd": True},
                                           "ema"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", choices=list(STUDIES), default="defaults")
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--model", choices=["mlp", "dcgan"], default="mlp")
    p.add_argument("--base-channels", type=int, default=32, help="--model dcgan: its width")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n", type=int, default=10000, help="samples per evaluation")
    p.add_argument("--out", default=None, help="default: runs/compare-STUDY-DATASET-EPOCHS")
    p.add_argument("--only", nargs="*", default=None, help="names of the study's settings to run")
    p.add_argument("--report-only", action="store_true",
                   help="train and evaluate nothing; print the table of what OUT holds")
    p.add_argument("--max-steps", type=int, default=None, help="cut every run short (smoke tests)")
    p.add_argument("--baseline", default=None,
                   help="the setting the others are judged against (default: the study's first)")
    p.add_argument("--correction", choices=["none", "bonferroni"], default="none",
                   help="bonferroni: share the 5%% chance of a false 'better' among the "
                        "candidates (needs more seeds; npgan.experiments)")
    return p.parse_args(argv)


def run_name(changes, seed):
    """'label_smoothing=0.1-seed3': a folder name that says what the run changed."""
    text = "-".join(f"{k}={v}" for k, v in sorted(changes.items())) or "defaults"
    return f"{text}-seed{seed}"


def slug(name):
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


class Judge:
    """The reference classifier and statistics, made once and only when needed."""

    def __init__(self, dataset):
        self.dataset, self.model, self.reference = dataset, None, None

    def evaluate(self, G, be, n, latent_dim, prior="normal"):
        if self.model is None:
            self.model = load_or_train_classifier(self.dataset, be)
            self.reference = reference_statistics(self.model, be, self.dataset)
        return evaluate_generator(G, be, self.dataset, n=n, classifier=self.model,
                                  reference=self.reference, latent_dim=latent_dim, prior=prior)


def train_once(run_dir, config):
    """Train (or finish an interrupted run of) `config`; returns done.json's contents."""
    done = run_dir / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    checkpoint = run_dir / "checkpoint.npz"
    summary = train(config, resume=checkpoint if checkpoint.is_file() else None, progress=False)
    # seconds: the whole run's, an interrupted part included (its checkpoint keeps it)
    info = {"seconds": summary["seconds"], "g_updates": summary["steps"],
            "d_updates": summary["steps"] * config.d_steps, "epochs": summary["epochs"]}
    write_atomically(done, (json.dumps(info) + "\n").encode())
    return info


def evaluate_once(run_dir, variant, n, judge):
    """The metrics of the run's raw G or EMA, cached in eval_<variant>_n<n>.json, and a
    grid of 64 of its samples (grid_<variant>.png)."""
    path = run_dir / f"eval_{variant}_n{n}.json"
    if path.is_file():
        return json.loads(path.read_text())
    G, be, config = load_generator(run_dir / "checkpoint.npz", raw=variant == "raw")
    result = judge.evaluate(G, be, n, config.latent_dim, config.prior)
    save_grid(generate(G, be, 64, config.latent_dim, prior=config.prior),
              run_dir / f"grid_{variant}.png", nrow=8)
    write_atomically(path, (json.dumps(result) + "\n").encode())
    return result


def save_seed_grids(rows, out, title_of):
    """One figure of grids with titles: rows = [(title, grid png path)]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(2.6 * len(rows), 2.9))
    for i, (title, png) in enumerate(rows):
        ax = fig.add_subplot(1, len(rows), i + 1)
        ax.imshow(Image.open(png), cmap="gray")
        lines = title_of(title).split("\n")          # long setting names wrap, not collide
        ax.set_title("\n".join(textwrap.fill(line, 34) for line in lines), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_figure(out, dpi=110, bbox_inches="tight")
    return out


def main(argv=None):
    """Run the study; Ctrl-C or SIGTERM stops it with one line and exit code 130 or 143,
    and the same command continues it (finished runs and scores are kept, and an
    interrupted training resumes from its checkpoint). This program owns its process,
    so it handles SIGTERM itself between trainings (train() does during one)."""
    plain_warnings()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        run_study(args)
    except KeyboardInterrupt as err:
        what = (str(err) if isinstance(err, TrainingInterrupted) else
                f"interrupted ({'SIGTERM' if getattr(err, 'signum', 0) else 'Ctrl-C'}) "
                f"outside a training; nothing half-written was kept")
        print(f"\n{what}; every finished run and score is kept\n"
              f"continue with: {command(__file__, *argv)}", flush=True)
        sys.exit(128 + getattr(err, "signum", signal.SIGINT))
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_on_sigterm(signum, frame):
    """SIGTERM (docker stop, timeout, Slurm) between trainings: stop as Ctrl-C does."""
    err = KeyboardInterrupt()
    err.signum = signum
    raise err


def run_study(args):
    study = STUDIES[args.study]
    names = [n for n in study if not args.only or n in args.only]
    unknown = (set(args.only or []) | ({args.baseline} if args.baseline else set())) - set(study)
    if unknown:
        raise SystemExit(f"error: no setting {sorted(unknown)} in study {args.study!r}; "
                         f"valid: {list(study)}")
    # the model is part of each run's changes, so its runs never share a folder with the MLP's
    model = {} if args.model == "mlp" else {"model": args.model,
                                            "base_channels": args.base_channels}
    suffix = "".join(f"-{v}" for v in model.values())
    out = Path(args.out or f"runs/compare-{args.study}-{args.dataset}-{args.epochs}{suffix}")
    judge = Judge(args.dataset)
    rows_by_setting, rows = {}, []
    for name in names:
        changes, variant = study[name]
        changes = {**changes, **model}
        for seed in args.seeds:
            run_dir = out / "runs" / run_name(changes, seed)
            finished = (run_dir / f"eval_{variant}_n{args.n}.json").is_file()
            if args.report_only and not finished:
                continue
            config = TrainConfig(dataset=args.dataset, epochs=args.epochs, seed=seed,
                                 ema=0.999, out=str(run_dir), max_steps=args.max_steps,
                                 **{**UNCURED, **changes})
            info = train_once(run_dir, config)
            result = evaluate_once(run_dir, variant, args.n, judge)
            row = {"setting": name, "seed": seed, "G": variant, "run": run_dir.name, **info,
                   **{k: v for k, v in result.items() if k != "histogram"},
                   "histogram": result["histogram"]}
            rows_by_setting.setdefault(name, []).append(row)
            rows.append(row)
            print(f"{name} seed {seed}: Frechet {row['frechet']:.1f}, precision "
                  f"{row['precision']:.3f}, recall {row['recall']:.3f}, classes "
                  f"{row['classes_covered']}, KL {row['kl_uniform']:.3f} "
                  f"[{row['seconds']:.0f} s]", flush=True)
    if not rows:
        raise SystemExit(f"nothing to report in {out}")
    with open(out / "results.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    baseline = args.baseline or next(iter(study))
    if baseline not in rows_by_setting:
        baseline = next(iter(rows_by_setting))
    first = next(iter(rows_by_setting.values()))[0]
    title = (f"{args.epochs} epochs of {args.dataset}, {args.n} samples per evaluation "
             f"(precision and recall on {first['n_pr']}); floors (real held-out images): "
             f"Frechet {first['frechet_floor']:.2f}, precision {first['precision_floor']:.3f}, "
             f"recall {first['recall_floor']:.3f}")
    table = format_comparison(rows_by_setting, baseline, title, args.correction)
    # grids: every seed of each setting in a row, and the median seed of every setting
    medians = []
    for name, setting_rows in rows_by_setting.items():
        variant = study[name][1]
        by_seed = sorted(setting_rows, key=lambda r: r["seed"])
        save_seed_grids([(r, out / "runs" / r["run"] / f"grid_{variant}.png") for r in by_seed],
                        out / "grids" / f"{slug(name)}_seeds.png",
                        lambda r: f"seed {r['seed']}: F {r['frechet']:.1f}, "
                                  f"P {r['precision']:.2f}, R {r['recall']:.2f}")
        seed = median_seed(setting_rows)
        row = next(r for r in setting_rows if r["seed"] == seed)
        medians.append(((name, row), out / "runs" / row["run"] / f"grid_{variant}.png"))
    save_seed_grids(medians, out / "grids" / "median_seeds.png",
                    lambda t: f"{t[0]}\nseed {t[1]['seed']}: Frechet {t[1]['frechet']:.1f}")
    accuracy = d_accuracy_report(study, rows_by_setting, out)
    (out / "results.md").write_text(table + "\n" + accuracy)
    print(table)
    print(accuracy, end="")
    print(f"grids: {out / 'grids'}")


def d_accuracy_report(study, rows_by_setting, out):
    """D's accuracy over training for the settings of loss 'gan' (a critic has none):
    figures/d_accuracy.png (npgan.plots.plot_d_accuracy) and a table of its mean over
    the last fifth of each run, median [min, max] over the seeds. '' if no such setting."""
    runs = {name: {r["seed"]: read_metrics(out / "runs" / r["run"] / "metrics.jsonl")
                   for r in setting_rows}
            for name, setting_rows in rows_by_setting.items()
            if study[name][0].get("loss", "gan") == "gan"}
    if not runs:
        return ""
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figure = plot_d_accuracy(runs, out / "figures" / "d_accuracy.png")

    def spread(by_seed, key):
        mid, lo, hi = median_range([late_mean(records, key) for records in by_seed.values()])
        return f"{mid:.2f} [{lo:.2f}, {hi:.2f}]"

    lines = ["", "D's accuracy over the last fifth of each run, median [min, max] over seeds "
             f"(over training: {figure})", "",
             "| setting | D right on real images | D right on fakes |", "|---|---|---|"]
    lines += [f"| {name} | {spread(by_seed, 'acc_real')} | {spread(by_seed, 'acc_fake')} |"
              for name, by_seed in runs.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

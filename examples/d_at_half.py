"""D at 50%, measured: D's accuracy and the gradient G receives, over an MNIST training.

    python examples/d_at_half.py --epochs 100 --out runs/d_at_half
    python examples/d_at_half.py --metrics runs/mnist/metrics.jsonl   # plot a past run

The notes read "D's accuracy near 50%" as the sign of a well-trained pair (at the
optimum D* = 1/2 everywhere), and warn that once G is good, D's feedback becomes
noise. This trains the default MLP GAN without R1 (the plain game the notes are
about; R1, the default since 7 December, holds D's real logits down on purpose)
and plots, from
metrics.jsonl, D's accuracy on real and on fake images (each batch, before D's
update) and the norm of the gradient that reaches G's output, dL/dx_fake (g_step's
dx_fake_norm), with npgan.plots.plot_d_at_half. It prints their means over each
fifth of the run.
"""
import argparse
import sys
from pathlib import Path

from npgan.backend import BackendError
from npgan.cli import config_error_text, flags_of
from npgan.config import ConfigError, TrainConfig
from npgan.data import DataError
from npgan.plots import plot_d_at_half
from npgan.train import read_metrics, train

KEYS = ("acc_real", "acc_fake", "d_real", "d_fake", "dx_fake_norm")


def summarize(records, parts=5):
    """Mean of each KEY over the first record and over each of `parts` equal step ranges."""
    last = records[-1]["step"]
    rows = [(f"step {records[0]['step']}", [records[0]])]
    for i in range(parts):
        lo, hi = i * last / parts, (i + 1) * last / parts
        chunk = [r for r in records if lo < r["step"] <= hi]
        if chunk:
            rows.append((f"steps {int(lo) + 1}-{int(hi)}", chunk))
    print(f"{'':>16s} " + " ".join(f"{k:>12s}" for k in KEYS))
    for name, chunk in rows:
        means = [sum(r[k] for r in chunk) / len(chunk) for k in KEYS]
        print(f"{name:>16s} " + " ".join(f"{m:12.3f}" for m in means))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metrics", help="plot this metrics.jsonl instead of training")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--log-every", type=int, default=50, help="steps between two records")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/d_at_half")
    args = p.parse_args(argv)

    if args.metrics:
        metrics, out_png = Path(args.metrics), Path(args.metrics).with_name("d_at_half.png")
        if not metrics.is_file():
            sys.exit(f"error: no metrics file at {metrics}")
    else:
        config = TrainConfig(backend=args.backend, dataset=args.dataset, epochs=args.epochs,
                             seed=args.seed, out=args.out, log_every=args.log_every,
                             max_steps=args.max_steps, r1=0.0)
        try:
            summary = train(config)
        except ConfigError as e:                    # named by the flags typed
            sys.exit(f"error: {config_error_text(e, flags_of(p))}")
        except (BackendError, DataError) as e:
            sys.exit(f"error: {e}")
        print(f"trained {summary['steps']} steps in {summary['seconds']:.1f} s")
        metrics, out_png = Path(summary["files"]["metrics"]), Path(args.out) / "d_at_half.png"
    records = [r for r in read_metrics(metrics) if "loss_d" in r]          # skip the evaluation records
    try:
        plot_d_at_half(records, out_png)
    except ValueError as e:
        sys.exit(f"error: {metrics}: {e}")
    summarize([r for r in records if "dx_fake_norm" in r])
    print(f"wrote {out_png}")


if __name__ == "__main__":
    main()

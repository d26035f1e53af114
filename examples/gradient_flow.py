"""Watch the gradient cross D into G: each layer's gradient norm over one MNIST run.

    python examples/gradient_flow.py --epochs 5 --out runs/gradient_flow
    python examples/gradient_flow.py --metrics runs/mnist/metrics.jsonl   # plot a past run

Trains the MLP GAN without R1 (the plain game, as the committed figure was drawn;
R1 would add its own gradient to D's) with npgan.train.train(log_grad_norms=True),
which writes ||dL/dW|| of every
layer of G and D into metrics.jsonl at each logging interval, then draws them with
npgan.plots.plot_grad_norms (log scale). Read the G panel from its last layer (nearest
to D) to its first: the chain rule multiplies by one more Jacobian at each layer, so
a gradient that shrinks or explodes layer by layer shows up as spread-out lines.
"""
import argparse
import sys
from pathlib import Path

from npgan.backend import BackendError
from npgan.cli import config_error_text, flags_of, plain_warnings
from npgan.config import ConfigError, TrainConfig
from npgan.data import DataError
from npgan.plots import plot_grad_norms
from npgan.train import read_metrics, train


def main(argv=None):
    plain_warnings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metrics", help="plot this metrics.jsonl instead of training")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--log-every", type=int, default=10, help="steps between two records")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/gradient_flow")
    args = p.parse_args(argv)

    if args.metrics:
        metrics, out_png = Path(args.metrics), Path(args.metrics).with_name("gradient_flow.png")
        if not metrics.is_file():
            sys.exit(f"error: no metrics file at {metrics}")
    else:
        config = TrainConfig(backend=args.backend, dataset=args.dataset, epochs=args.epochs,
                             seed=args.seed, out=args.out, log_every=args.log_every,
                             max_steps=args.max_steps, r1=0.0, log_grad_norms=True)
        try:
            summary = train(config)
        except ConfigError as e:                    # named by the flags typed
            sys.exit(f"error: {config_error_text(e, flags_of(p))}")
        except (BackendError, DataError) as e:
            sys.exit(f"error: {e}")
        metrics, out_png = Path(summary["files"]["metrics"]), Path(args.out) / "gradient_flow.png"
    records = read_metrics(metrics)
    try:
        plot_grad_norms(records, out_png)
    except ValueError as e:
        sys.exit(f"error: {metrics}: {e}")
    last = next(r for r in reversed(records) if "grad_norm/G.0.W" in r)
    norms = "  ".join(f"{k.split('/')[1]} {v:.2e}" for k, v in last.items()
                      if k.startswith("grad_norm/") and k.endswith(".W"))
    print(f"step {last['step']}: {norms}")
    print(f"wrote {out_png}")


if __name__ == "__main__":
    main()

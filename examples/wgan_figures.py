"""Two pictures of a critic's training, from runs made with examples/train_mnist.py:

    python examples/wgan_figures.py runs/wgan_gp5k runs/wgan5k --out runs/wgan_figures.png

Left: each run's Wasserstein estimate, mean D(x) - mean D(G(z)), over training (from its
metrics.jsonl), beside the Frechet distance of its evaluations (train with --eval-every):
the WGAN paper's claim is that the estimate falls as the samples get better.
Right: the histogram of ||grad_x D(x_hat)|| at interpolates x_hat between real digits and
G's samples, for each run's final critic: the penalty pulls these norms to 1.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from npgan.checkpoint import load_checkpoint
from npgan.data import load_dataset, to_device
from npgan.files import not_a_folder
from npgan.losses import gradient_norms
from npgan.models import build_models, generate, load_generator
from npgan.train import read_metrics
from npgan.wgan import interpolate


def interpolate_norms(run, n, seed=0):
    """||grad_x D(x_hat)|| for n interpolates between real images and G's samples."""
    G, be, config = load_generator(run / "checkpoint.npz", seed=seed)
    D = build_models(config, be)[1]
    load_checkpoint(run / "checkpoint.npz").restore_model("D", D, be)
    real, _ = load_dataset(config.dataset, split="train")
    rng = np.random.default_rng(seed)
    x_real = to_device(real[rng.choice(real.shape[0], n, replace=False)], be)  # (n, P) in [-1, 1]
    x_fake = be.asarray(generate(G, be, n, config.latent_dim))                 # (n, P)
    x_hat = interpolate(x_real, x_fake, be.uniform(0.0, 1.0, (n, 1)))
    logits = D.forward(x_hat)
    dx = D.backward(be.xp.ones_like(logits), param_grads=False)               # (n, P)
    return be.to_numpy(gradient_norms(dx)), config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="output folders of critic runs (--loss wgan, wgan-gp, hinge)")
    parser.add_argument("--out", default="runs/wgan_figures.png")
    parser.add_argument("--n", type=int, default=2000, help="interpolates per histogram")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    twin, all_norms = left.twinx(), []
    for i, run in enumerate(map(Path, args.runs)):
        records = read_metrics(run / "metrics.jsonl")
        train = [r for r in records if "wasserstein" in r]
        evals = [r["eval"] for r in records if "eval" in r]
        norms, config = interpolate_norms(run, args.n)
        all_norms += [float(norms.min()), float(norms.max())]
        label = f"{config.loss} ({run.name})"
        color = f"C{i}"
        left.plot([r["step"] for r in train], [r["wasserstein"] for r in train], color=color,
                  linewidth=0.8, alpha=0.8, label=f"{label}: W estimate")
        if evals:
            twin.plot([e["step"] for e in evals], [e["frechet"] for e in evals], "o--",
                      color=color, markersize=4, label=f"{label}: Frechet")
        right.hist(norms, bins=60, alpha=0.6, color=color,
                   label=f"{label}: median {np.median(norms):.3g}")
        print(f"{run}: {len(train)} records, final W estimate {train[-1]['wasserstein']:.4f}; "
              f"||grad D(x_hat)|| median {np.median(norms):.4g} "
              f"[{np.percentile(norms, 5):.4g}, {np.percentile(norms, 95):.4g}] (5-95%)"
              + (f"; Frechet {evals[0]['frechet']:.1f} (step {evals[0]['step']}) -> "
                 f"{evals[-1]['frechet']:.1f} (step {evals[-1]['step']})" if evals else ""))
    left.set_xlabel("G-updates")
    left.set_ylabel("Wasserstein estimate")
    twin.set_ylabel("Frechet distance (dashed)")
    left.set_title("the critic's estimate against sample quality", fontsize=10)
    handles = left.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    left.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7)
    right.axvline(1.0, color="k", linestyle=":", linewidth=1)
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    right.set_xticks([t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10)
                      if min(all_norms) / 2 < t < max(all_norms) * 2])
    right.set_xlabel("||grad_x D(x_hat)|| at interpolates")
    right.set_title("gradient norms of the final critic", fontsize=10)
    right.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.out)
    if not_a_folder(out.parent):  # a file in the way: one line, no traceback
        sys.exit(f"error: --out {out}: {not_a_folder(out.parent)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

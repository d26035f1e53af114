"""Why the minimax generator loss stalls early in training: plot the gradient that
reaches D's logit under npgan's two generator losses, as D(G(z)) goes from 0 to 1.

    python examples/saturation.py --out docs/figures/saturation.png

Both curves come from npgan.losses (g_loss_minimax, g_loss_nonsaturating): we feed
them logits l = log(p / (1 - p)), so that sigmoid(l) = p = D(G(z)), and plot the
dlogits they return. The losses average over the batch, so we multiply dlogits by
the batch size N to get the gradient of one sample.
"""
import argparse
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: we only write a file
import matplotlib.pyplot as plt
import numpy as np

from npgan import g_loss_minimax, g_loss_nonsaturating, get_backend
from npgan.files import not_a_folder

EXPLANATION = (
    "Early in training D rejects G's samples easily, so D(G(z)) is close to 0, and there "
    "the minimax loss log(1 - D(G(z))) is flat: its gradient at the logit is -D(G(z)), "
    "almost nothing, so G barely moves.\n"
    "The non-saturating loss -log D(G(z)) pushes towards the same goal but its gradient, "
    "-(1 - D(G(z))), is close to -1 exactly there, so G gets its strongest signal "
    "when it is worst."
)


def per_sample_gradients(p, backend):
    """dL/dl for each loss at D(G(z)) = p (host array (N,)), one sample at a time."""
    logits = backend.asarray(np.log(p) - np.log1p(-p))[:, None]    # (N, 1), sigmoid(l) = p
    n = logits.shape[0]
    grads = {}
    for name, loss_fn in [("minimax: log(1 - D(G(z)))", g_loss_minimax),
                          ("non-saturating: -log D(G(z))", g_loss_nonsaturating)]:
        _, dlogits = loss_fn(logits)                                 # (N, 1), each / N
        grads[name] = backend.to_numpy(dlogits)[:, 0] * n            # undo the batch mean
    return grads


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/saturation.png",
                        help="PNG to write (.png is added when missing)")
    args = parser.parse_args()

    be = get_backend("numpy", dtype="float64")
    p = np.logspace(-4, np.log10(0.9999), 400)                      # D(G(z)), (N,)
    grads = per_sample_gradients(p, be)

    print(f"{'D(G(z))':>10} " + " ".join(f"{name:>30}" for name in grads))
    for value in (1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9):
        i = int(np.argmin(np.abs(p - value)))
        print(f"{p[i]:10.4f} " + " ".join(f"{g[i]:30.4f}" for g in grads.values()))
    print()
    print(EXPLANATION)

    fig, ax = plt.subplots(figsize=(8, 5.6))
    for (name, g), style in zip(grads.items(), ["C3", "C0"]):
        ax.plot(p, np.abs(g), style, lw=2.5, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("D(G(z)): D's probability that a fake is real")
    ax.set_ylabel("|dL/dlogit| for one sample")
    ax.axvspan(p[0], 1e-2, color="0.9", zorder=0)
    ax.text(1.3e-4, 2e-4, "early training:\nD rejects the fakes", fontsize=9)
    ax.legend(loc="lower right")
    ax.grid(True, which="major", alpha=0.4)
    ax.set_title("The gradient a generator loss sends into D's logit")
    caption = "\n".join(textwrap.fill(line, 100) for line in EXPLANATION.split("\n"))
    fig.text(0.5, 0.015, caption, ha="center", va="bottom", fontsize=8.5)
    fig.subplots_adjust(bottom=0.3)
    out = Path(args.out)
    if out.suffix.lower() != ".png":        # matplotlib would add it anyway: say the real name
        out = out.with_name(out.name + ".png")
    if not_a_folder(out.parent):  # a file in the way: one line, no traceback
        sys.exit(f"error: --out {out}: {not_a_folder(out.parent)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

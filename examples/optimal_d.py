"""The optimal discriminator, measured: train D alone against a fixed G and compare with D*.

    python examples/optimal_d.py --steps 6000 --out runs/optimal_d

For four (p_data, p_g) pairs, from nearly equal to nearly disjoint, G is a fixed
Gaussian (G(z) = mu + s z, never stepped) and we train D alone with d_step
(npgan.toy1d.train_d). Then we check two statements of Goodfellow et al. (section 4):
  * D(x) against D*(x) = p_data(x) / (p_data(x) + p_g(x)), on a grid over the central
    98% of the combined mass (p_data + p_g) / 2: the largest error, target < 0.02;
  * V(D, G), by Monte Carlo, against -log 4 + 2 JSD(p_data || p_g), the JSD integrated
    numerically from the two known densities: target |difference| < 0.01.
It writes optimal_d.png, one panel per pair: the two densities, D* and the trained D.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: we only write files
import matplotlib.pyplot as plt

from npgan.backend import host as np
from npgan.files import not_a_folder
from npgan.threads import limit_threads
from npgan.toy1d import (Mixture1D, combined, decision, game_value, gaussian, grid, jsd,
                         optimal_d, train_d, value_at_optimum)

# (p_data, p_g), from nearly equal (JSD 0.005) to nearly disjoint (JSD 0.689 of log 2 = 0.693)
PAIRS = [
    (gaussian(0.0, 1.0), gaussian(0.2, 1.0)),
    (Mixture1D([-1.5, 1.5], [0.5, 0.5]), gaussian(0.0, 1.2)),
    (gaussian(-1.0, 0.6), gaussian(1.0, 0.6)),
    (gaussian(-1.5, 0.5), gaussian(1.5, 0.5)),
]
D_TARGET, V_TARGET, MASS = 0.02, 0.01, 0.98


def measure(p_data, p_g, args, seed):
    """Train D for one pair; return the numbers and the curves to plot."""
    with limit_threads(args.threads):          # this run only: see npgan/threads.py
        D, be = train_d(p_data, p_g, steps=args.steps, seed=seed, backend=args.backend,
                        batch_size=args.batch_size, hidden=args.hidden)
    x = grid(p_data, p_g)                                            # host float64 grid
    p, q = p_data.pdf(x), p_g.pdf(x)
    lo, hi = combined(p_data, p_g).interval(MASS)
    inside = (x >= lo) & (x <= hi)
    d = decision(D, x, be)                                           # sigmoid(D(x)), (n,)
    d_star = optimal_d(p, q)
    err = np.abs(d - d_star)[inside]
    divergence = jsd(p, q, x)
    v = game_value(D, p_data.sample(args.mc_samples, be), p_g.sample(args.mc_samples, be), be)
    return {"x": x, "p": p, "q": q, "d": d, "d_star": d_star, "lo": lo, "hi": hi,
            "d_err": float(err.max()), "worst_x": float(x[inside][err.argmax()]),
            "jsd": divergence, "v_mc": v, "v_theory": -math.log(4.0) + 2.0 * divergence,
            "v_integral": value_at_optimum(p, q, x)}


def draw(ax, r, p_data, p_g):
    ax.axvspan(r["lo"], r["hi"], color="0.93", zorder=0)
    ax.plot(r["x"], r["p"], "k:", lw=1.5, label="p_data")
    ax.plot(r["x"], r["q"], "g-", lw=1.2, label="p_g")
    ax.plot(r["x"], r["d_star"], "b-", lw=2.5, alpha=0.35, label="D* = p_data / (p_data + p_g)")
    ax.plot(r["x"], r["d"], "r--", lw=1.2, label="D, trained")
    ax.set_xlim(-4.0, 4.0)
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(f"{p_data!r} vs {p_g!r}\nJSD {r['jsd']:.3f}, max |D - D*| {r['d_err']:.3f}",
                 fontsize=8)
    ax.tick_params(labelsize=7)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6000, help="D-updates per pair")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=64, help="width of D's two hidden layers")
    parser.add_argument("--mc-samples", type=int, default=400_000,
                        help="samples of each density for the Monte Carlo V(D, G)")
    parser.add_argument("--pairs", type=int, default=len(PAIRS),
                        help=f"use the first N of the {len(PAIRS)} pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and npgan (default: npgan.threads.DEFAULT_THREADS)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--out", default="runs/optimal_d", help="folder for optimal_d.png")
    args = parser.parse_args(argv)
    if args.steps < 0 or args.batch_size < 1 or args.mc_samples < 1 or not 1 <= args.pairs <= len(PAIRS):
        sys.exit(f"error: need --steps >= 0, --batch-size >= 1, --mc-samples >= 1 and "
                 f"--pairs from 1 to {len(PAIRS)}")
    out = Path(args.out)
    if not_a_folder(out):  # a file in the way: one line, no traceback
        sys.exit(f"error: --out {not_a_folder(out)}")
    out.mkdir(parents=True, exist_ok=True)

    pairs = PAIRS[:args.pairs]
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.0), squeeze=False)
    print(f"{'p_data':>38s} {'p_g':>11s} {'JSD':>7s} | {'max|D-D*|':>9s} {'at x':>6s} | "
          f"{'V (MC)':>8s} {'-log4+2JSD':>10s} {'diff':>8s} | {'V(D*) integral':>14s}")
    met = True
    t0 = time.perf_counter()
    for i, (p_data, p_g) in enumerate(pairs):
        r = measure(p_data, p_g, args, seed=args.seed + i)
        diff = r["v_mc"] - r["v_theory"]
        met &= r["d_err"] < D_TARGET and abs(diff) < V_TARGET
        print(f"{p_data!r:>38s} {p_g!r:>11s} {r['jsd']:7.4f} | {r['d_err']:9.4f} {r['worst_x']:6.2f} | "
              f"{r['v_mc']:8.4f} {r['v_theory']:10.4f} {diff:+8.4f} | {r['v_integral']:14.4f}",
              flush=True)
        draw(axes[0, i], r, p_data, p_g)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "optimal_d.png", dpi=90)
    print(f"targets (max |D - D*| < {D_TARGET} over the central {MASS:.0%} of the combined mass, "
          f"|V - (-log 4 + 2 JSD)| < {V_TARGET}): {'met' if met else 'NOT met'} "
          f"for all {len(pairs)} pairs; {time.perf_counter() - t0:.1f} s")
    print(f"wrote {out / 'optimal_d.png'}")


if __name__ == "__main__":
    main()

"""Figure 1 of Goodfellow et al., made live: a 1-D GAN moves G's density onto the data's.

    python examples/gan_1d.py --steps 2000 --out runs/gan_1d

Each frame shows, like the paper's figure: the data's density (black, dotted), G's
density (green, a Gaussian KDE of 5,000 samples), D's output sigmoid(D(x)) (blue,
dashed), and below them the map x = G(z) from evenly spaced quantiles of z (lower
line) to the x axis, which bunches up where G puts more mass. The training is
npgan.toy1d.train_1d: npgan.gan.train_step on small MLPs, with G's noise z of size 1.
It writes gan_1d.png (--panels frames side by side) and gan_1d.gif (every snapshot),
and prints the JSD between p_data and G's density at the start and the end (next to
the same estimate made from real samples: the floor of the KDE), and D's range on
the central 98% of the data.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: we only write files
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation, PillowWriter

from npgan import get_backend
from npgan.backend import host as np
from npgan.files import not_a_folder
from npgan.threads import limit_threads
from npgan.toy1d import (Mixture1D, decision, eval_grid, gaussian, generate, jsd, kde,
                         train_1d)

DATA = {"gaussian": gaussian(1.5, 0.5), "mixture": Mixture1D([-2.0, 2.0], [0.5, 0.5])}
LIM = 4.0                        # plot window [-LIM, LIM], data units
Z_LINE, X_LINE = -0.3, -0.04     # heights of the z line and of the x line


def draw(ax, x, p, snap, legend=False):
    """One frame: the densities and D above, the map z -> x = G(z) below."""
    ax.clear()
    ax.plot(x, p, "k:", lw=1.8, label="data")
    ax.plot(x, snap["p_g"], "g-", lw=1.5, label="G's density")
    ax.plot(snap["x_d"], snap["d"], "b--", lw=1.5, label="D(x)")
    for zq, gx in zip(snap["z_pos"], snap["g_of_z"]):
        ax.plot([zq, gx], [Z_LINE, X_LINE], color="0.45", lw=0.6)
    ax.axhline(Z_LINE, color="k", lw=0.8)
    ax.axhline(X_LINE, color="k", lw=0.8)
    ax.text(-LIM + 0.1, Z_LINE - 0.1, "z", fontsize=8)             # below the z line
    ax.set_xlim(-LIM, LIM)
    ax.set_ylim(Z_LINE - 0.12, 1.3)       # a collapsed G's spike is cut off at the top
    ax.set_yticks([0.0, 0.5, 1.0])
    ax.tick_params(labelsize=7)
    ax.set_title(f"step {snap['step']}: JSD {snap['jsd']:.3f}", fontsize=9)
    if legend:
        ax.legend(fontsize=6, loc="upper left")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(DATA), default="gaussian",
                        help=f"gaussian: {DATA['gaussian']!r}; mixture: {DATA['mixture']!r}")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=50, help="steps between snapshots")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--d-steps", type=int, default=5, help="k: D-updates per G-update")
    parser.add_argument("--hidden", type=int, default=64, help="width of G's and D's hidden layers")
    parser.add_argument("--panels", type=int, default=5, help="frames in gan_1d.png (4 to 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and npgan (default: npgan.threads.DEFAULT_THREADS)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--fps", type=int, default=8, help="frames per second of the GIF")
    parser.add_argument("--out", default="runs/gan_1d", help="folder for the PNG and the GIF")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.every < 1 or args.batch_size < 1 or args.d_steps < 1 \
            or not 2 <= args.panels <= 8:
        sys.exit("error: need --steps, --every, --batch-size, --d-steps >= 1 and --panels from 2 to 8")
    out = Path(args.out)
    if not_a_folder(out):  # a file in the way: one line, no traceback
        sys.exit(f"error: --out {not_a_folder(out)}")
    out.mkdir(parents=True, exist_ok=True)
    p_data = DATA[args.data]
    x = eval_grid(p_data)                                            # host float64
    p = p_data.pdf(x)
    x_d = np.linspace(-LIM, LIM, 400)                                # where we draw D
    # the z line: 25 evenly spaced quantiles of N(0, 1), drawn evenly spaced across
    # the window, each joined to G(z) on the x line
    u = (np.arange(25) + 0.5) / 25
    z_line = np.array([statistics.NormalDist().inv_cdf(q) for q in u]).reshape(-1, 1)
    z_pos = -LIM + 2.0 * LIM * u
    snaps = []

    def snapshot(entry, G, D, be):
        snaps.append({"step": entry["step"], "jsd": entry["jsd"], "p_g": entry["p_g_hat"],
                      "x_d": x_d, "d": decision(D, x_d, be), "z_pos": z_pos,
                      "g_of_z": generate(G, be.asarray(z_line), be)})
        print(f"step {entry['step']:5d}  JSD(p_data, p_g) {entry['jsd']:.4f}  D on the data "
              f"[{entry['d_min']:.3f}, {entry['d_max']:.3f}]  D(x) {entry['d_real']:.3f}  "
              f"D(G(z)) {entry['d_fake']:.3f}", flush=True)

    t0 = time.perf_counter()
    with limit_threads(args.threads):          # this run only: see npgan/threads.py
        _, _, history = train_1d(p_data, steps=args.steps, seed=args.seed, backend=args.backend,
                                 batch_size=args.batch_size, hidden=args.hidden,
                                 d_steps=args.d_steps, eval_every=args.every, callback=snapshot)
    seconds = time.perf_counter() - t0
    # the KDE's own floor: the same estimate from as many real samples as G's
    plot_be = get_backend("numpy", seed=args.seed + 1)
    real = plot_be.to_numpy(p_data.sample(5000, plot_be)).reshape(-1)
    floor = jsd(p, kde(real, x, min_bandwidth=4.0 * (x[1] - x[0]))[0], x)
    first, last = history[0], history[-1]
    print(f"done in {seconds:.1f} s: JSD(p_data, p_g) {first['jsd']:.4f} at step 0 -> "
          f"{last['jsd']:.4f} at step {last['step']} (the KDE of 5,000 real samples gives "
          f"{floor:.4f}); D on the central 98% of the data: [{last['d_min']:.3f}, {last['d_max']:.3f}]")

    # the static figure: the first frame, then frames spaced geometrically up to the
    # last one (G moves most at the start): with 41 snapshots and 5 panels, 0 1 3 12 40
    last_i = len(snaps) - 1
    picks = sorted({0} | {round(last_i ** (i / (args.panels - 2))) for i in range(args.panels - 1)})
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 2.6), squeeze=False)
    for ax, i in zip(axes[0], picks):
        draw(ax, x, p, snaps[i], legend=ax is axes[0, 0])
    fig.tight_layout()
    fig.savefig(out / "gan_1d.png", dpi=90)

    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    anim = FuncAnimation(fig, lambda i: draw(ax, x, p, snaps[i], legend=True), frames=len(snaps))
    anim.save(out / "gan_1d.gif", writer=PillowWriter(fps=args.fps), dpi=60)
    print(f"wrote {out / 'gan_1d.png'} and {out / 'gan_1d.gif'}")


if __name__ == "__main__":
    main()

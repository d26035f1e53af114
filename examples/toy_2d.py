"""Watch a GAN learn a 2-D mixture of Gaussians: real points, G's points and D's view.

    python examples/toy_2d.py --shape ring --steps 3000 --every 100 --out runs/toy_2d
    python examples/toy_2d.py --setting wgan-gp --out runs/toy_wgan_gp    # a critic instead of D

Every --every steps we save a figure (real points, generated points, and D's decision
surface sigmoid(D(x)) as a heat map, with its colour bar) and print how many modes G
covers and what share of its samples lie within 3 std of a mode; at the end we
write an animation of all the snapshots (toy_2d.gif). The training is
npgan.toy.train_toy, i.e. npgan.gan.train_step on small MLPs.
"""
import argparse
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: we only write files
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation, PillowWriter

from npgan import get_backend
from npgan.files import not_a_folder
from npgan.threads import limit_threads
from npgan.toy import STD, TOY_SETTINGS, centers, decision_surface, generate, sample, train_toy

LIM = 3.0  # plot window [-LIM, LIM]^2, in data units


def draw(ax, cax, real, snap, critic=False):
    """One snapshot: D's surface on `ax`, its colour bar on `cax`, then the real and the
    generated points. critic: D's raw score (centred on its median, red = higher)."""
    ax.clear()
    cax.clear()
    surface = snap["surface"]
    if critic:
        mid = float(np.median(surface))
        half = max(float(np.max(np.abs(surface - mid))), 1e-12)
        vmin, vmax, label = mid - half, mid + half, "critic score D(x): red = high"
    else:
        vmin, vmax, label = 0.0, 1.0, "sigmoid(D(x)): 1 = 'real', 0 = 'fake'"
    image = ax.imshow(surface, origin="lower", extent=(-LIM, LIM, -LIM, LIM),
                      cmap="RdBu_r", vmin=vmin, vmax=vmax)
    colorbar = ax.figure.colorbar(image, cax=cax)
    colorbar.set_label(label, fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="k", alpha=0.35, label="real")
    ax.scatter(snap["fake"][:, 0], snap["fake"][:, 1], s=2, c="gold", label="G(z)")
    ax.legend(loc="lower right", fontsize=7, markerscale=3, framealpha=0.8)
    ax.set_xlim(-LIM, LIM)
    ax.set_ylim(-LIM, LIM)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"step {snap['step']}: {snap['covered']}/{snap['modes']} modes covered,\n"
                 f"{100 * snap['hq_share']:.0f}% of samples within 3 std of a mode", fontsize=9)


def new_figure():
    """The figure, the axes of the points and the axes of the colour bar."""
    fig = plt.figure(figsize=(4.8, 4.3))
    ax = fig.add_axes((0.02, 0.02, 0.74, 0.84))
    cax = fig.add_axes((0.80, 0.06, 0.04, 0.76))
    return fig, ax, cax


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["ring", "grid"], default="ring")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and npgan (default: npgan.threads.DEFAULT_THREADS)")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    parser.add_argument("--out", default="runs/toy_2d", help="folder for the PNGs and the GIF")
    parser.add_argument("--every", type=int, default=100, help="steps between snapshots")
    parser.add_argument("--std", type=float, default=STD, help="std of each Gaussian")
    parser.add_argument("--latent-dim", type=int, default=4, help="Z, the size of G's noise")
    parser.add_argument("--fps", type=int, default=8, help="frames per second of the GIF")
    parser.add_argument("--setting", "--loss", choices=list(TOY_SETTINGS), default="gan",
                        help="gan, a critic (wgan, wgan-gp, hinge) or a cure on top of the "
                             "GAN (gan+ttur, gan+noise0.1, ...): npgan.toy.TOY_SETTINGS")
    args = parser.parse_args()
    critic = TOY_SETTINGS[args.setting]["loss"] != "gan"

    out = Path(args.out)
    if not_a_folder(out):  # a file in the way: one line, no traceback
        sys.exit(f"error: --out {not_a_folder(out)}")
    out.mkdir(parents=True, exist_ok=True)
    be = get_backend(args.backend, seed=args.seed)
    # the plots draw their points from a second generator, so that the training run
    # is exactly train_toy(seed=args.seed)
    plot_be = get_backend(args.backend, seed=args.seed + 1)
    mus = centers(args.shape)                                        # (K, 2)
    real = plot_be.to_numpy(sample(args.shape, 1000, plot_be, args.std))  # (1000, 2)
    z_plot = plot_be.randn((1000, args.latent_dim))                  # fixed noise, (1000, Z)
    snaps, (fig, ax, cax) = [], new_figure()

    def snapshot(entry, G, D, backend):
        snap = {"step": entry["step"], "covered": entry["covered"], "modes": len(mus),
                "hq_share": entry["hq_share"], "fake": generate(G, z_plot, backend),
                "surface": decision_surface(D, backend, lim=LIM, n=80, critic=critic)}
        snaps.append(snap)
        draw(ax, cax, real, snap, critic)
        fig.savefig(out / f"toy_2d_{args.shape}_{entry['step']:06d}.png", dpi=80)
        judge = (f"W estimate {entry['wasserstein']:.3f}" if critic else
                 f"D(x) {entry['d_real']:.2f}  D(G(z)) {entry['d_fake']:.2f}")
        print(f"step {entry['step']:6d}  modes covered {entry['covered']}/{len(mus)}  "
              f"within 3 std of a mode {100 * entry['hq_share']:5.1f}%  {judge}", flush=True)

    t0 = time.perf_counter()
    with limit_threads(args.threads):          # this run only: see npgan/threads.py
        _, _, history = train_toy(args.shape, steps=args.steps, seed=args.seed, backend=be,
                                  std=args.std, latent_dim=args.latent_dim,
                                  eval_every=args.every, callback=snapshot,
                                  **TOY_SETTINGS[args.setting])
    seconds = time.perf_counter() - t0
    last = history[-1]
    print(f"done in {seconds:.1f} s: {last['covered']}/{len(mus)} modes covered, "
          f"{100 * last['hq_share']:.1f}% of samples within 3 std of a mode")
    print("samples per mode:", last["counts"].tolist())

    fig.savefig(out / f"toy_2d_{args.shape}.png", dpi=100)
    anim = FuncAnimation(fig, lambda i: draw(ax, cax, real, snaps[i], critic), frames=len(snaps))
    anim.save(out / "toy_2d.gif", writer=PillowWriter(fps=args.fps), dpi=60)
    print(f"wrote {out / f'toy_2d_{args.shape}.png'} and {out / 'toy_2d.gif'}")


if __name__ == "__main__":
    main()

"""Compare settings on the 2-D toy: modes covered over several seeds, same G-update budget.

    python examples/toy_settings.py --shape ring --steps 20000 --seeds 0 1 2 3 4
    python examples/toy_settings.py --settings gan wgan-gp --shape grid --steps 20000
    python examples/toy_settings.py --settings gan gan+ttur gan+noise0.1 gan+sn --shape ring

A setting is a name of npgan.toy.TOY_SETTINGS: a loss (gan, wgan, wgan-gp, hinge) or a
cure on top of the GAN (gan+ttur, gan+noise0.1, gan+noise0.3, gan+sn, gan+uniform).
Every run is npgan.toy.train_toy(**TOY_SETTINGS[name]); each prints its modes covered,
its share of samples within 3 std of a mode, its wall time and its budget
(G-updates, and D-updates = n_critic per G-update). At the end, one row per setting:
median [min, max] over the seeds.
"""
import argparse
import statistics
import time

from npgan.threads import limit_threads
from npgan.toy import TOY_SETTINGS, centers, train_toy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["ring", "grid"], default="ring")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and npgan (default: npgan.threads.DEFAULT_THREADS)")
    parser.add_argument("--steps", type=int, default=3000, help="G-updates per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--settings", "--losses", nargs="+", choices=list(TOY_SETTINGS),
                        default=["gan", "wgan", "wgan-gp", "hinge"],
                        help="names of npgan.toy.TOY_SETTINGS (default: the four losses)")
    args = parser.parse_args()

    modes, rows = len(centers(args.shape)), []
    for name in args.settings:
        settings = TOY_SETTINGS[name]
        covered, near, seconds = [], [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            with limit_threads(args.threads):  # this run only: see npgan/threads.py
                _, _, history = train_toy(args.shape, steps=args.steps, seed=seed,
                                          eval_every=args.steps, **settings)
            seconds.append(time.perf_counter() - t0)
            covered.append(history[-1]["covered"])
            near.append(100 * history[-1]["hq_share"])
            print(f"{name:12s} seed {seed}: {covered[-1]}/{modes} modes, {near[-1]:.1f}% within 3 std of a mode, "
                  f"{seconds[-1]:.1f} s, {args.steps} G-updates, "
                  f"{args.steps * settings['d_steps']} D-updates", flush=True)
        rows.append((name, covered, near, seconds))

    def spread(values, fmt):
        return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"

    print(f"\n{args.shape}, {args.steps} G-updates, seeds {' '.join(map(str, args.seeds))}: "
          f"median [min, max]")
    print(f"| setting | modes covered (of {modes}) | % of samples within 3 std of a mode | s per run |")
    print("|---|---|---|---|")
    for name, covered, near, seconds in rows:
        print(f"| {name} | {spread(covered, '{:g}')} | {spread(near, '{:.1f}')} | "
              f"{spread(seconds, '{:.0f}')} |")


if __name__ == "__main__":
    main()

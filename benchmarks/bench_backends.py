"""Time one full GAN training step on every backend, against the matrix-product floor.

    python benchmarks/bench_backends.py            # batch 32..1024, three model widths
    python benchmarks/bench_backends.py --quick    # batch 64 and 128, two widths

One step is npgan.gan.train_step: k D-updates and one G-update (Algorithm 1 of
Goodfellow et al.), float32. For each backend we first check (CuPy) that one step
agrees with NumPy on identical parameters and inputs, then warm up and time it,
synchronizing before the clock is read. The floor is the time of the matrix products
that the same step needs (same shapes, layouts and dtype) and nothing else; "x floor"
says how far each step is from it. We also time the two Adam updates alone (elementwise
work over every parameter, bound by memory bandwidth, not by BLAS), so that "x (floor +
Adam)" shows what is left for the activations, the losses and Python. Writes a markdown table and a PNG plot (steps per
second against batch size) into --out.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import common
import npgan
from npgan.backend import cupy_status
from npgan.backend import host as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="numpy,cupy",
                   help="comma-separated, from: numpy, cupy, array-api-strict (default: numpy,cupy)")
    p.add_argument("--batches", default="32,64,128,256,512,1024")
    p.add_argument("--widths", default="mnist,half,double",
                   help=f"from: {', '.join(common.WIDTHS)} (default: all)")
    p.add_argument("--k", type=int, default=1, help="D-updates per G-update (default 1)")
    p.add_argument("--repeat", type=int, default=7, help="timed repeats per point (median)")
    p.add_argument("--quick", action="store_true",
                   help="batch 64 and 128, widths mnist and half, 5 repeats")
    p.add_argument("--out", default="runs/benchmarks",
                   help="folder for the table (tools/publish.py copies it to benchmarks/results/)")
    args = p.parse_args()
    if args.quick:
        args.batches, args.widths, args.repeat = "64,128", "mnist,half", 5
    return args


def usable_backends(names):
    backends = []
    for name in names:
        if name == "cupy" and cupy_status() is not None:
            print(f"cupy: skipped, {cupy_status()}")
            continue
        device = "device1" if name == "array-api-strict" else None
        backends.append(npgan.get_backend(name, dtype="float32", seed=0, device=device))
    return backends


def agrees_with_numpy(be, width="mnist", batch=64):
    """One d_step + g_step on `be` and on NumPy from identical parameters, images and
    noise: the largest relative difference of the statistics and the parameters."""
    ref = npgan.get_backend("numpy", dtype="float32", seed=0)
    models = {b.name: common.make_gan(b, width) for b in (ref, be)}
    for p_ref, p in zip(*(m[0].parameters() + m[1].parameters() for m in models.values())):
        p.data[...] = be.asarray(p_ref.data)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, common.PIXELS)).astype(np.float32)
    z_d, z_g = (rng.standard_normal((batch, common.LATENT), dtype=np.float32) for _ in range(2))
    results = []
    for b, (G, D, opt_g, opt_d) in zip((ref, be), models.values()):
        stats = npgan.d_step(G, D, opt_d, b.asarray(x), b.asarray(z_d))
        stats.update(npgan.g_step(G, D, opt_g, b.asarray(z_g)))
        arrays = list(stats.values()) + [p.data for p in G.parameters() + D.parameters()]
        results.append([b.to_numpy(a) for a in arrays])
    return max(float(np.max(np.abs(a - r)) / (float(np.max(np.abs(r))) + 1e-12))
               for a, r in zip(results[1], results[0]))


def measure(be, width, batch, k, repeat):
    step = common.step_fn(be, width, batch, k)
    G, D, opt_g, opt_d = common.make_gan(be, width)
    products = common.step_products(G, D, batch, k)
    floor = common.floor_fn(be, products, batch)

    def adam():                    # what one step's k + 1 optimizer updates cost
        for _ in range(k):
            opt_d.step()
        opt_g.step()
    # the three share the machine's load: alternating rounds (common.time_fair); the
    # ratios below use each one's per-call median over all its rounds
    timings = common.time_fair([step, floor, adam], be.synchronize, rounds=repeat,
                               round_seconds=0.1)
    t_step, t_floor, t_adam = (np.concatenate([t.alone, t.alternated]) for t in timings)
    return dict(backend=be.name, width=width, batch=batch, step=float(np.median(t_step)),
                step_min=float(t_step.min()), floor=float(np.median(t_floor)),
                adam=float(np.median(t_adam)),
                gflops=common.product_flops(products, batch) / np.median(t_floor) / 1e9,
                load=common.load())


def markdown(rows, ratios, header):
    lines = [*(f"{h}  " for h in header), "",
             "| backend | width | batch | step ms (median) | step ms (min) | steps/s | "
             "floor ms | floor GFLOP/s | step / floor | Adam ms | step / (floor + Adam) | load |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['width']} | {r['batch']} | {r['step'] * 1e3:.2f} | "
                     f"{r['step_min'] * 1e3:.2f} | {1 / r['step']:.1f} | {r['floor'] * 1e3:.2f} | "
                     f"{r['gflops']:.1f} | {r['step'] / r['floor']:.2f} | {r['adam'] * 1e3:.2f} | "
                     f"{r['step'] / (r['floor'] + r['adam']):.2f} | {r['load']:.1f} |")
    if ratios:
        lines += ["", "| width | batch | NumPy / CuPy |", "|---|---:|---:|"]
        lines += [f"| {w} | {b} | {x:.1f} |" for (w, b), x in ratios.items()]
    return "\n".join(lines) + "\n"


def scaling_lines(rows):
    """How step time grows with the batch (per doubling) and with the width."""
    out = []
    for name in sorted({r["backend"] for r in rows}):
        for width in common.WIDTHS:
            pts = sorted((r["batch"], r["step"]) for r in rows
                         if r["backend"] == name and r["width"] == width)
            if len(pts) > 1:
                (b0, t0), (b1, t1) = pts[0], pts[-1]
                per_doubling = (t1 / t0) ** (1 / np.log2(b1 / b0))
                out.append(f"{name} {width}: batch {b0} -> {b1} costs x{t1 / t0:.1f} time "
                           f"(x{per_doubling:.2f} per doubling; x2.00 = linear)")
        base = {r["batch"]: r["step"] for r in rows if r["backend"] == name and r["width"] == "mnist"}
        for r in rows:
            if r["backend"] == name and r["width"] != "mnist" and r["batch"] in base:
                out.append(f"{name} width {r['width']} vs mnist at batch {r['batch']}: "
                           f"x{r['step'] / base[r['batch']]:.2f} time")
    return out


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted({r["backend"] for r in rows}):
        for width in common.WIDTHS:
            pts = sorted((r["batch"], r["step"], r["floor"]) for r in rows
                         if r["backend"] == name and r["width"] == width)
            if not pts:
                continue
            b, t, f = (np.array(c) for c in zip(*pts))
            line, = ax.plot(b, 1 / t, "o-", label=f"{name}, {width}")
            ax.plot(b, 1 / f, ":", color=line.get_color())
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training steps per second",
           title="npgan train_step (k=1, float32); dotted: matrix products only")
    batches = sorted({r["batch"] for r in rows})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    header = common.machine_lines()
    print("\n".join(header))
    backends = usable_backends(args.backends.split(","))
    for be in backends:
        if be.name != "numpy":           # correctness first, then time (llm.c's rule)
            err = agrees_with_numpy(be)
            print(f"{be.name} vs numpy, one step on identical inputs: max relative "
                  f"difference {err:.1e}")
            if err > 1e-3:
                sys.exit(f"{be.name} disagrees with numpy; not timing it")
    rows = []
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{'backend':>16} {'width':>6} {'batch':>5} {'step ms':>9} {'min ms':>8} "
          f"{'steps/s':>8} {'floor ms':>9} {'GFLOP/s':>8} {'x floor':>8} {'Adam ms':>8} "
          f"{'x (floor+Adam)':>14} {'load':>5}")
    for width in args.widths.split(","):
        for batch in batches:
            for be in backends:
                r = measure(be, width, batch, args.k, args.repeat)
                rows.append(r)
                print(f"{r['backend']:>16} {width:>6} {batch:>5} {r['step'] * 1e3:9.2f} "
                      f"{r['step_min'] * 1e3:8.2f} {1 / r['step']:8.1f} {r['floor'] * 1e3:9.2f} "
                      f"{r['gflops']:8.1f} {r['step'] / r['floor']:8.2f} {r['adam'] * 1e3:8.2f} "
                      f"{r['step'] / (r['floor'] + r['adam']):14.2f} {r['load']:5.1f}",
                      flush=True)
    ratios = {}
    by_key = {(r["backend"], r["width"], r["batch"]): r["step"] for r in rows}
    for (name, width, batch), t in by_key.items():
        if name == "numpy" and ("cupy", width, batch) in by_key:
            ratios[(width, batch)] = t / by_key[("cupy", width, batch)]
    for (width, batch), x in ratios.items():
        print(f"NumPy / CuPy, {width} batch {batch}: {x:.1f}x")
    print("\n".join(scaling_lines(rows)))
    os.makedirs(args.out, exist_ok=True)
    with open(Path(args.out) / "bench_backends.md", "w") as f:
        f.write(markdown(rows, ratios, header + [f"k = {args.k}, float32"]))
    plot(rows, Path(args.out) / "bench_backends.png")
    print(f"wrote {Path(args.out) / 'bench_backends.md'} and bench_backends.png")


if __name__ == "__main__":
    main()

"""Regenerate the figures and tables the repository shows: the ONE command that overwrites them.

    python tools/publish.py --list                 # every published file, its command, its time
    python tools/publish.py saturation toy_ring    # run those, then copy their outputs over
    python tools/publish.py --all                  # everything (hours: the studies are long)

Every script of examples/ and benchmarks/ writes under runs/ by default and never into a
tracked file. This tool runs a script exactly as listed below, into runs/publish/NAME,
and only then copies the files it made over the committed ones, saying which. A run
that fails overwrites nothing. The times are this project's 2-core CPU, one thread.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIG = "docs/figures"
STUDY = ("examples/compare_settings.py --study {study} --dataset mnist-5k --epochs 100 "
         "--out {out}")

# name: (command with {out} for its folder, {file it makes under {out}: published file}, time)
ARTIFACTS = {
    "saturation": ("examples/saturation.py --out {out}/saturation.png",
                   {"saturation.png": f"{FIG}/saturation.png"}, "3 s"),
    "toy_ring": ("examples/toy_2d.py --shape ring --steps 3000 --every 100 --out {out}",
                 {"toy_2d_ring.png": f"{FIG}/toy_ring.png", "toy_2d.gif": f"{FIG}/toy_ring.gif"},
                 "15 s"),
    "toy_grid": ("examples/toy_2d.py --shape grid --steps 5000 --every 250 --out {out}",
                 {"toy_2d_grid.png": f"{FIG}/toy_grid.png"}, "20 s"),
    "gan_1d": ("examples/gan_1d.py --out {out}",
               {"gan_1d.png": f"{FIG}/gan_1d.png", "gan_1d.gif": f"{FIG}/gan_1d.gif"}, "1 min"),
    "optimal_d": ("examples/optimal_d.py --out {out}", {"optimal_d.png": f"{FIG}/optimal_d.png"},
                  "3 min"),
    "gradient_flow": ("examples/gradient_flow.py --epochs 10 --out {out}",
                      {"gradient_flow.png": f"{FIG}/gradient_flow.png"}, "1 min"),
    "d_at_half": ("examples/d_at_half.py --out {out}", {"d_at_half.png": f"{FIG}/d_at_half.png"},
                  "6 min"),
    "mnist5k": ("examples/train_mnist.py --out {out}",
                {"samples.gif": f"{FIG}/mnist5k_training.gif", "curves.png": f"{FIG}/mnist5k_curves.png",
                 "samples/epoch_0200.png": f"{FIG}/mnist5k_epoch200.png"}, "10 min"),
    "defaults_study": (STUDY.format(study="defaults", out="{out}"),
                       {"grids/median_seeds.png": f"{FIG}/defaults_median_seeds.png"}, "3 h"),
    "cures_study": (STUDY.format(study="cures-on-default", out="{out}"),
                    {"grids/median_seeds.png": f"{FIG}/cures_median_seeds.png",
                     "figures/d_accuracy.png": f"{FIG}/cures_d_accuracy.png"}, "4 h"),
    "bench_conv": ("benchmarks/bench_conv.py --repeats 5 --out {out}",
                   {"bench_conv.md": "benchmarks/results/bench_conv.md"}, "3 min"),
    "bench_vs_torch": ("benchmarks/bench_vs_torch.py --batches 64,128 --rounds 5 --out {out}",
                       {"bench_vs_torch.md": "benchmarks/results/bench_vs_torch.md"}, "3 min"),
    "bench_backends": ("benchmarks/bench_backends.py --backends numpy --out {out}",
                       {"bench_backends.md": "benchmarks/results/bench_backends.md",
                        "bench_backends.png": "benchmarks/results/bench_backends.png"}, "5 min"),
}


def command(name, out):
    script, _, _ = ARTIFACTS[name]
    return [sys.executable, *shlex.split(script.format(out=out))]


def publish(name) -> list[str]:
    """Run `name`'s command into runs/publish/NAME; if it succeeds and made every file,
    copy them over the published ones. Returns the published paths."""
    out = Path("runs/publish") / name
    _, files, _ = ARTIFACTS[name]
    cmd = command(name, out)
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT)
    missing = [f for f in files if not (ROOT / out / f).is_file()]
    if done.returncode != 0 or missing:
        sys.exit(f"error: [{name}] failed (exit {done.returncode}; missing: {missing or 'none'}); "
                 f"nothing was overwritten")
    for made, target in files.items():
        shutil.copyfile(ROOT / out / made, ROOT / target)
        print(f"[{name}] overwrote {target} with {out / made}")
    print(f"[{name}] done in {time.perf_counter() - started:.0f} s")
    return list(files.values())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help=f"any of: {', '.join(ARTIFACTS)}")
    p.add_argument("--all", action="store_true", help="every artifact (hours)")
    p.add_argument("--list", action="store_true", help="list them and what each overwrites")
    args = p.parse_args(argv)
    if args.list or not (args.names or args.all):
        for name, (script, files, took) in ARTIFACTS.items():
            print(f"{name:16s} about {took:>6s}: python {script.format(out='runs/publish/' + name)}")
            for made, target in files.items():
                print(f"{'':16s}   overwrites {target}")
        return
    unknown = [n for n in args.names if n not in ARTIFACTS]
    if unknown:
        sys.exit(f"error: unknown artifact(s) {', '.join(unknown)}; "
                 f"`python tools/publish.py --list` shows them")
    for name in (ARTIFACTS if args.all else args.names):
        publish(name)


if __name__ == "__main__":
    main()

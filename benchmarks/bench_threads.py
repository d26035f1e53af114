"""How many threads should a run use? Step times at 1 and 2 threads beside 0, 1 and 2 busy jobs.

    python benchmarks/bench_threads.py [--seconds 3] [--rounds 2] [--out runs/benchmarks]

A learner's laptop is rarely idle. For each model (the MNIST MLP, the DCGAN at base 32,
the 2-D toy), each thread count (BLAS and npgan's own elementwise loops alike, set with
npgan.threads.limit_threads, as training does) and 0, 1 and 2 competing single-thread
busy loops (separate processes, started before and stopped after), a fresh process
times training steps and reports the median per-step time over --seconds. The rows are
measured in --rounds rounds, in alternating order, and the table gives each row's
median over the rounds; "best" marks the fastest thread count beside the same load,
and the last column says how far npgan's default is from it. The load average of the
machine is printed with every row: on a shared machine "0 busy jobs" is not an idle
machine. Writes bench_threads.md under --out.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
MODELS = ("mlp", "dcgan", "toy")

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
import common
from npgan.backend import host as np
from npgan.threads import limit_threads
model, threads, seconds = {model!r}, {threads}, {seconds}
with limit_threads(threads):
    if model == "toy":
        from npgan.toy import train_toy
        train_toy(steps=20, seed=0, eval_every=10**9)                 # warm-up
        times, steps = [], 100
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(times) < 3:
            t0 = time.perf_counter()
            train_toy(steps=steps, seed=len(times), eval_every=10**9)
            times.append((time.perf_counter() - t0) / steps)
    else:
        from npgan import get_backend
        from npgan.config import TrainConfig
        from npgan.gan import StepSettings, train_step
        from npgan.models import build_models
        from npgan.train import make_optimizer
        # the plain step, as measured in docs/performance.md (R1, the default since, adds
        # a double backward to D's update and takes the DCGAN's BatchNorm out of D)
        cfg = TrainConfig(dataset="mnist-5k", model=model, base_channels=32, r1=0.0)
        be = get_backend("numpy", dtype="float32", seed=0)
        G, D = build_models(cfg, be)
        opt_g, opt_d = make_optimizer(cfg, G.parameters()), make_optimizer(cfg, D.parameters())
        reals = [be.uniform(-1.0, 1.0, (cfg.batch_size, 784))]
        settings = StepSettings.from_config(cfg)
        step = lambda: train_step(G, D, opt_g, opt_d, reals, be, settings)
        for _ in range(3):
            step()
        times, t_end = [], time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(times) < 5:
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
print(json.dumps({{"median": float(np.median(times)), "n": len(times)}}))
"""


def busy_loops(n):
    """n single-thread busy processes (a Python loop each); stop them with .kill()."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def measure(model, threads, busy, seconds):
    """Median seconds per step of `model` at `threads`, beside `busy` busy loops."""
    loops = busy_loops(busy)
    try:
        time.sleep(0.5)                                  # let the loops get going
        code = CHILD.format(here=str(HERE), model=model, threads=threads, seconds=seconds)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=600)
    finally:
        for proc in loops:
            proc.kill()
            proc.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])["median"]


def main():
    from npgan.threads import DEFAULT_THREADS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--busy", default="0,1,2", help="busy loops to run beside the step")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="runs/benchmarks")
    args = p.parse_args()
    header = common.machine_lines()
    print("\n".join(header), flush=True)
    models, threads = args.models.split(","), [int(t) for t in args.threads.split(",")]
    rows = [(m, b, t) for m in models for b in map(int, args.busy.split(",")) for t in threads]
    times = {row: [] for row in rows}
    for r in range(args.rounds):
        for row in (rows if r % 2 == 0 else rows[::-1]):
            times[row].append(measure(*[row[0], row[2], row[1]], args.seconds))
            print(f"round {r + 1}: {row[0]}, {row[1]} busy, {row[2]} thread(s): "
                  f"{times[row][-1] * 1e3:8.2f} ms per step  (load {common.load():.1f})", flush=True)
    lines = [*(f"{h}  " for h in header), "",
             f"Median seconds per training step over {args.seconds:g} s per row, each row a fresh "
             f"process, {args.rounds} rounds in alternating order (the median of the rounds); "
             f"npgan's default: {DEFAULT_THREADS} thread(s).", "",
             "| model | busy jobs | threads | ms per step | rounds (ms) | best for this load | default / best |",
             "|---|---:|---:|---:|---|---|---:|"]
    for m in models:
        for b in map(int, args.busy.split(",")):
            med = {t: statistics.median(times[(m, b, t)]) for t in threads}
            best = min(med, key=med.get)
            for t in threads:
                ratio = med.get(DEFAULT_THREADS, float("nan")) / med[best]
                lines.append(f"| {m} | {b} | {t} | {med[t] * 1e3:.2f} | "
                             + ", ".join(f"{x * 1e3:.1f}" for x in times[(m, b, t)])
                             + f" | {'best' if t == best else ''} | {ratio:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_threads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[len(header) + 1:]))
    print(f"wrote {out / 'bench_threads.md'}")


if __name__ == "__main__":
    main()

"""The MLP step under load: BLAS and npgan threads against competing busy jobs.

    python benchmarks/bench_threads.py [--batch 64] [--seconds 3] [--out DIR]

A learner's laptop is rarely idle. For each setting of (BLAS threads, npgan's elementwise
threads) and 0, 1 and 2 competing single-thread busy loops (separate processes, started
before and stopped after), a fresh process times npgan.gan.train_step of the default MNIST
MLP (float32, NumPy) and reports steps per second: the median of per-step times over
--seconds. BLAS threads are set with OPENBLAS_NUM_THREADS (and MKL_/OMP_ for other BLAS
builds) before NumPy loads; npgan's with npgan.fast.set_num_threads. The load average
of the machine is printed with every row: on a shared machine "0 competing jobs" is not
an idle machine. Writes the table to --out/bench_threads.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
SETTINGS = [(1, 1), (2, 1), (2, 2), (1, 2)]        # (BLAS threads, npgan threads)

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
import common
from npgan import get_backend
from npgan.backend import host as np
from npgan.fast import set_num_threads
set_num_threads({npgan_threads})
be = get_backend("numpy", dtype="float32", seed=0)
step = common.step_fn(be, "mnist", {batch})
for _ in range(3):
    step()
times, t_end = [], time.perf_counter() + {seconds}
while time.perf_counter() < t_end or len(times) < 5:
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print(json.dumps({{"median": float(np.median(times)), "steps": len(times),
                  "blas": common.blas_kernel()}}))
"""


def busy_loops(n):
    """n single-thread busy processes (a Python loop each); stop them with .kill()."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def measure(blas_threads, npgan_threads, batch, seconds):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(blas_threads)
    code = CHILD.format(here=str(HERE), npgan_threads=npgan_threads, batch=batch,
                        seconds=seconds)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    p.add_argument("--competitors", default="0,1,2", help="busy loops to run beside the step")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()
    header = common.machine_lines()
    print("\n".join(header))
    rows = []
    for n_busy in [int(n) for n in args.competitors.split(",")]:
        for blas, ours in SETTINGS:
            busy = busy_loops(n_busy)
            try:
                time.sleep(0.5)                          # let the loops get going
                r = measure(blas, ours, args.batch, args.seconds)
            finally:
                for proc in busy:
                    proc.kill()
                    proc.wait()
            rows.append((n_busy, blas, ours, r["median"], common.load()))
            print(f"{n_busy} busy loop(s), BLAS {blas} thread(s), npgan {ours}: "
                  f"{r['median'] * 1e3:7.2f} ms per step, {1 / r['median']:6.1f} steps/s "
                  f"({r['steps']} steps; {r['blas']})  load {common.load():.1f}", flush=True)
    lines = [*(f"{h}  " for h in header), "",
             f"MLP train_step, batch {args.batch}, float32, NumPy; median of per-step times "
             f"over {args.seconds:g} s per row, each row a fresh process", "",
             "| busy loops | BLAS threads | npgan threads | ms per step | steps/s | load |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {b} | {o} | {t * 1e3:.2f} | {1 / t:.1f} | {ld:.1f} |"
              for n, b, o, t, ld in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_threads.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'bench_threads.md'}")


if __name__ == "__main__":
    main()

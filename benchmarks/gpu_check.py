"""One command for the first machine with a GPU: what works on CuPy, how fast, a training.

    pip install -e ".[test,cuda12]"            # npgan, its tests and CuPy (CUDA 12)
    python benchmarks/gpu_check.py             # about 8 minutes; writes runs/gpu_check/report.md

Steps, each with its own time limit, the whole run within --budget seconds (470, so
under 8 minutes on one data-centre GPU):
  1. `python -m npgan info`;
  2. the test suite with NPGAN_REQUIRE_CUDA=1: every CuPy case runs (none may skip for
     want of a device);
  3. one train_step on NumPy and on CuPy from the same weights, batch and noise: the
     gradients and the parameters after the step, compared (tolerances below);
  4. host synchronizations per training step on CuPy: none in train_step (inside
     cupyx.allow_synchronize(False), which raises at any implicit one), and in the
     training loop only at its logging points;
  5. bench_backends.py, NumPy and CuPy, batch 64 to 4096, and bench_vs_torch.py on
     CUDA where PyTorch with CUDA is installed;
  6. about 2 minutes of real training with --backend cupy on MNIST-5k (Ctrl-C is sent
     when the time is up: the run saves its checkpoint), the DCGAN for one epoch, and
     `python -m npgan evaluate` on each checkpoint, with wall times.
Without a usable GPU the first line says so; the script runs step 1, writes the report
and exits with status 1. Please send us the report (runs/gpu_check/report.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import common
import npgan
from npgan.backend import cupy_info, cupy_status
from npgan.backend import host as np

ROOT = Path(__file__).resolve().parents[1]
# (seconds) the most each step may take; later steps keep a floor for themselves
LIMITS = {"info": 10, "suite": 150, "bench": 60, "torch": 25, "train": 110, "evaluate": 25,
          "dcgan": 40}                 # steps 3 and 4 run in this process, in about 20 s each
FLOOR = 10          # seconds kept for every step still to come
# float32 tolerances of step 3. Gradients: the two sides sum the same products in
# another order (cuBLAS vs the CPU BLAS), so each element may differ by a few float32
# epsilons (1.2e-7) times the square root of the number of terms (up to 1,024 here),
# about 4e-6 of the tensor's largest gradient; 1e-4 leaves a margin of 25 and still
# catches any real error, which is of the gradient's own size.
GRAD_RTOL = 1e-4
# Parameters: Adam's first step moves a weight by lr * g / (|g| + eps), about
# lr = 2e-4 whatever |g|; 1e-6 is 0.5% of a step. Where |g| is below the gradients'
# noise floor (GRAD_RTOL * the largest), even its sign is noise and the step may go
# either way: those elements are counted and left out.
PARAM_ATOL = 1e-6


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/gpu_check", help="folder for the report and the runs")
    p.add_argument("--budget", type=float, default=470.0, help="seconds for the whole check")
    return p.parse_args()


class Check:
    """The running report: a deadline, one section per step, a verdict per step."""

    def __init__(self, out: Path, budget: float):
        self.out, self.start, self.budget = out, time.monotonic(), budget
        self.sections, self.verdicts = [], []

    def limit(self, step, steps_left):
        left = self.budget - (time.monotonic() - self.start) - FLOOR * steps_left
        return max(min(LIMITS[step], left), 1.0)

    def add(self, title, verdict, seconds, body="", command=None):
        self.verdicts.append((title, verdict, seconds))
        print(f"[{time.monotonic() - self.start:5.0f} s] {title}: {verdict} ({seconds:.1f} s)",
              flush=True)
        text = f"## {title}\n\n**{verdict}** ({seconds:.1f} s)\n"
        if command:
            text += f"\n```bash\n{command}\n```\n"
        if body:
            text += f"\n```text\n{body.rstrip()}\n```\n"
        self.sections.append(text)

    def report(self, first_line):
        total = time.monotonic() - self.start
        table = ["| step | verdict | seconds |", "|---|---|---:|"]
        table += [f"| {t} | {v.replace('|', '/')} | {s:.1f} |" for t, v, s in self.verdicts]
        text = "\n".join([f"# npgan gpu_check: {first_line}", "",
                          f"{time.strftime('%Y-%m-%d %H:%M')}, {total:.0f} s in all; "
                          f"`python benchmarks/gpu_check.py`", "", *table, "", *self.sections])
        (self.out / "report.md").write_text(text)
        return text


def run(cmd, limit, env=None, cwd=ROOT):
    """Run cmd (a list) for at most `limit` seconds; at the limit it gets Ctrl-C (a
    training run then saves its checkpoint; pytest prints what it has) and 20 more
    seconds. Returns (exit status, output, seconds, whether the limit was hit)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=dict(os.environ, **(env or {})), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    hit = False
    try:
        output, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        hit = True
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    return proc.returncode, output, time.monotonic() - started, hit


def tail(text, lines=40):
    # progress bars write \r-separated updates: keep each bar's last state
    rows = [[part for part in row.split("\r") if part.strip()] for row in text.split("\n")]
    return "\n".join([parts[-1] for parts in rows if parts][-lines:])


# ------------------------------------------------------------------------ the steps
def step_info(check):
    cmd = [sys.executable, "-m", "npgan", "info"]
    rc, output, seconds, _ = run(cmd, check.limit("info", 9))
    check.add("1. python -m npgan info", "ok" if rc == 0 else f"FAILED (exit {rc})", seconds,
              output, "python -m npgan info")
    return output


def step_suite(check):
    if importlib.util.find_spec("pytest") is None:
        check.add("2. the test suite with CuPy", "NOT RUN: pytest is not installed "
                  '(pip install -e ".[test,cuda12]")', 0.0)
        return
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
    limit = check.limit("suite", 8)
    rc, output, seconds, hit = run(cmd, limit, env={"NPGAN_REQUIRE_CUDA": "1"})
    summary = [row for row in output.splitlines() if " passed" in row or " failed" in row]
    no_device = [row for row in output.splitlines()
                 if row.startswith("SKIPPED") and "CuPy" in row]
    verdict = "ok" if rc == 0 and not no_device else f"FAILED (exit {rc})"
    if hit:
        verdict = f"STOPPED at its {limit:.0f} s limit"
    verdict += f"; {summary[-1].strip('= ') if summary else 'no summary'}; " \
               f"CuPy cases skipped for want of a device: {len(no_device)}"
    check.add("2. the test suite with CuPy", verdict, seconds, tail(output, 60),
              "NPGAN_REQUIRE_CUDA=1 python -m pytest -q -rs")


def one_train_step(be, weights, x, noise):
    """npgan.train_step on backend `be` from the given weights, images and noise (host
    arrays): the gradients it left (D's from the D-update, G's from the G-update) and
    the parameters after it, on the host, with their names."""
    G, D, opt_g, opt_d = common.make_gan(be)
    for p, w in zip(G.parameters() + D.parameters(), weights):
        p.data[...] = be.asarray(w)
    queue = [be.asarray(z) for z in noise]
    be.randn = lambda shape: queue.pop(0)        # the step's two noise draws: ours, in order
    npgan.train_step(G, D, opt_g, opt_d, [be.asarray(x)], be, latent_dim=common.LATENT)
    named = [(f"D.{n}", p) for n, p in D.named_parameters()] + \
        [(f"G.{n}", p) for n, p in G.named_parameters()]
    return [be.to_numpy(p.grad) for _, p in named], [be.to_numpy(p.data) for _, p in named], \
        [n for n, _ in named]


def step_parity(check, other=("cupy", None)):
    """other: the backend compared with NumPy, as (name, device); tests use a CPU
    stand-in ("array-api-strict", "device1") to run this step without a GPU."""
    started = time.monotonic()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, common.PIXELS)).astype(np.float32)
    noise = [rng.standard_normal((64, common.LATENT), dtype=np.float32) for _ in range(2)]
    G, D, _, _ = common.make_gan(npgan.get_backend("numpy", dtype="float32", seed=0))
    weights = [p.data.copy() for p in G.parameters() + D.parameters()]
    results = [one_train_step(npgan.get_backend(name, dtype="float32", seed=0, device=device),
                              weights, x, noise)
               for name, device in (("numpy", None), other)]
    (g0, p0, names), (g1, p1, _) = results
    lines, worst_g, worst_p, noisy, bad = [], 0.0, 0.0, 0, []
    for name, a, b, pa, pb in zip(names, g0, g1, p0, p1):
        scale = float(np.max(np.abs(a))) or 1.0
        err_g = float(np.max(np.abs(a - b))) / scale
        quiet = np.abs(a) < GRAD_RTOL * scale                   # sign of g is noise here
        err_p = float(np.max(np.where(quiet, 0.0, np.abs(pa - pb))))
        worst_g, worst_p, noisy = max(worst_g, err_g), max(worst_p, err_p), noisy + int(quiet.sum())
        if err_g > GRAD_RTOL or err_p > PARAM_ATOL:
            bad.append(name)
        lines.append(f"{name:8s} gradient max |diff| / max |g| {err_g:.2e}   "
                     f"parameter max |diff| {err_p:.2e}   below noise floor {int(quiet.sum())}")
    verdict = ("ok" if not bad else f"FAILED: {', '.join(bad)}") + \
        f"; gradients within {worst_g:.1e} of the largest (tolerance {GRAD_RTOL:g}), " \
        f"parameters within {worst_p:.1e} (tolerance {PARAM_ATOL:g}), {noisy} elements " \
        f"whose gradient is below the noise floor left out"
    check.add(f"3. one train_step, NumPy vs {other[0]}", verdict, time.monotonic() - started,
              "\n".join(lines))


def step_syncs(check, other=("cupy", None)):
    """other: as in step_parity; off CuPy there is no allow_synchronize to watch with."""
    import contextlib

    from npgan.config import TrainConfig
    from npgan.train import train
    started = time.monotonic()
    be = npgan.get_backend(other[0], dtype="float32", seed=0, device=other[1])
    if be.name == "cupy":
        import cupyx
        no_sync = cupyx.allow_synchronize(False)  # raises DeviceSynchronized at any sync
    else:
        no_sync = contextlib.nullcontext()
    G, D, opt_g, opt_d = common.make_gan(be)
    x = be.uniform(-1.0, 1.0, (64, common.PIXELS))
    npgan.train_step(G, D, opt_g, opt_d, [x], be, latent_dim=common.LATENT)   # warm-up
    be.synchronize()
    before, implicit = be.host_transfers, "none"
    try:
        with no_sync:
            for _ in range(20):
                npgan.train_step(G, D, opt_g, opt_d, [x], be, latent_dim=common.LATENT)
    except Exception as err:                      # cupyx.DeviceSynchronized
        implicit = f"{type(err).__name__}: {err}"
    be.synchronize()
    explicit = be.host_transfers - before
    per_step = []
    config = TrainConfig(backend=be.name, dataset="mnist-5k", max_steps=60, log_every=20,
                         out=str(check.out / "syncs"), ema=0.999)
    train(config, progress=False, on_step=lambda run: per_step.append(run.be.host_transfers))
    counts = np.diff([0] + per_step)
    at = [i + 1 for i, c in enumerate(counts) if c]      # steps after which a read showed
    ok = implicit == "none" and explicit == 0 and all(c == 1 for c in counts[counts > 0]) \
        and at == [21, 41]
    body = (f"train_step x 20 inside cupyx.allow_synchronize(False): implicit syncs: {implicit}; "
            f"explicit host transfers: {explicit}\n"
            f"training loop, 60 steps, log_every 20: host transfers seen after steps {at} "
            f"(expected [21, 41]: the reads at steps 20 and 40 show at the next step), "
            f"{int(counts.sum())} in all")
    check.add(f"4. host synchronizations per step on {be.name}",
              "ok: 0 per step outside the logging points" if ok else "FAILED",
              time.monotonic() - started, body)


def step_bench(check):
    out = check.out / "bench"
    cmd = [sys.executable, "benchmarks/bench_backends.py", "--backends", "numpy,cupy",
           "--batches", "64,256,1024,4096", "--widths", "mnist", "--repeat", "3",
           "--out", str(out)]
    limit = check.limit("bench", 5)
    rc, output, seconds, hit = run(cmd, limit)
    table = (out / "bench_backends.md").read_text() if (out / "bench_backends.md").exists() else ""
    verdict = "ok" if rc == 0 else f"STOPPED at its {limit:.0f} s limit" if hit else f"FAILED (exit {rc})"
    check.add("5. bench_backends.py, NumPy and CuPy", verdict, seconds,
              table or tail(output), " ".join(["python", *cmd[1:]]))
    probe = "import torch; print(torch.__version__, torch.cuda.is_available())"
    if importlib.util.find_spec("torch") is None:
        check.add("5b. bench_vs_torch.py on CUDA", "not run: PyTorch is not installed", 0.0)
        return
    rc, output, _, _ = run([sys.executable, "-c", probe], 30)
    if rc != 0 or not output.strip().endswith("True"):
        check.add("5b. bench_vs_torch.py on CUDA",
                  f"not run: PyTorch without CUDA ({output.strip()[-200:]})", 0.0)
        return
    cmd = [sys.executable, "benchmarks/bench_vs_torch.py", "--batches", "64,1024",
           "--rounds", "5", "--out", str(out)]
    rc, output, seconds, hit = run(cmd, check.limit("torch", 4))
    check.add("5b. bench_vs_torch.py on CUDA", "ok" if rc == 0 else f"FAILED (exit {rc})",
              seconds, tail(output), " ".join(["python", *cmd[1:]]))


def train_and_evaluate(check, title, name, flags, limit_key, steps_left):
    out = check.out / name
    cmd = [sys.executable, "examples/train_mnist.py", "--backend", "cupy", "--dataset",
           "mnist-5k", "--out", str(out), *flags]
    limit = check.limit(limit_key, steps_left)
    rc, output, seconds, hit = run(cmd, limit)
    done = [row for row in output.splitlines() if row.startswith(("done:", "interrupted at"))]
    ok = rc == 0 or (hit and rc == 130)                # Ctrl-C at the limit: checkpoint saved
    verdict = ("ok" if ok else f"FAILED (exit {rc})") + \
        (f"; Ctrl-C at its {limit:.0f} s limit" if hit else "") + \
        (f"; {done[-1]}" if done else "")
    check.add(title, verdict, seconds, tail(output, 25),
              " ".join(["python", *cmd[1:]]))
    checkpoint = out / "checkpoint.npz"
    if not checkpoint.exists():
        return
    cmd = [sys.executable, "-m", "npgan", "evaluate", str(checkpoint), "--backend", "cupy",
           "--n", "10000", "--json", str(out / "evaluation.json")]
    rc, output, seconds, hit = run(cmd, check.limit("evaluate", steps_left - 1))
    verdict = "ok" if rc == 0 else f"FAILED (exit {rc})" + (" at the time limit" if hit else "")
    body = output.split("\n{", 1)[0]                   # the table, not the JSON again
    check.add(f"{title}: python -m npgan evaluate", verdict, seconds, tail(body, 25),
              " ".join(["python", *cmd[1:]]))


def main():
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, args.budget)
    reason = cupy_status()
    if reason is not None:
        first = f"no GPU here: {reason}"
        print(first, flush=True)
        print(step_info(check))
        check.report(first)
        print(f"wrote {out / 'report.md'}; nothing else can be checked without a GPU")
        sys.exit(1)
    c = cupy_info()
    first = (f"GPU {c['device']} (compute capability {c['compute_capability']}, "
             f"{c['memory_gib'][1]} GiB), CuPy {c['version']}, CUDA runtime "
             f"{c['cuda_runtime']}, driver {c['cuda_driver']}")
    print(first, flush=True)
    step_info(check)
    step_suite(check)
    for title, step in (("3. one train_step, NumPy vs CuPy", step_parity),
                        ("4. host synchronizations per step on CuPy", step_syncs)):
        started = time.monotonic()
        try:
            step(check)
        except Exception as err:                   # report it and go on to the next step
            import traceback
            check.add(title, f"FAILED: {type(err).__name__}: {err}", time.monotonic() - started,
                      traceback.format_exc())
    step_bench(check)
    train_and_evaluate(check, "6a. MLP GAN on MNIST-5k, CuPy, about 2 minutes", "mlp",
                       ["--epochs", "200"], "train", 3)
    train_and_evaluate(check, "6b. DCGAN on MNIST-5k, CuPy, one epoch", "dcgan",
                       ["--model", "dcgan", "--epochs", "1"], "dcgan", 1)
    print(check.report(first))
    print(f"wrote {out / 'report.md'}: please send it to us")
    failed = [t for t, v, _ in check.verdicts if "FAILED" in v]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

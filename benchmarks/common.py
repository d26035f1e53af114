"""Shared helpers of the benchmark scripts: the machine, the models, timing, the floor.

Only the benchmark scripts import this; the library itself never prints or times.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

try:
    import npgan
except ImportError:              # a clone without `pip install -e .`: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import npgan
from npgan.backend import host as np
from npgan.backend import keep_freed_host_memory
from npgan.fast import accelerate, num_threads
from npgan.fast.inplace import into
from npgan.info import blas_name, blas_threads, cpu_model
from npgan.layers import Linear

# hidden widths of G and D: the default MNIST MLP and one half / twice as wide
WIDTHS = {
    "mnist": dict(g_hidden=(256, 512, 1024), d_hidden=(512, 256)),
    "half": dict(g_hidden=(128, 256, 512), d_hidden=(256, 128)),
    "double": dict(g_hidden=(512, 1024, 2048), d_hidden=(1024, 512)),
}
LATENT, PIXELS = 100, 784


# ----------------------------------------------------------------------- the machine
def threads_for_torch():
    """The thread count both sides use: the BLAS setting, else every core we may use."""
    n, _ = blas_threads()
    return n or num_threads()


def load():
    """The 1-minute load average (other jobs on a shared machine slow every timing)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def blas_kernel():
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel, threads. Without
    threadpoolctl (not a dependency) we say so; numpy.show_config() names the library."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"{blas_name()} (kernel unknown: pip install threadpoolctl to see it)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return f"{blas_name()} (threadpoolctl found no BLAS)"
    b = blas[0]
    return (f"{b.get('internal_api')} {b.get('version')}, kernel {b.get('architecture')}, "
            f"{b.get('num_threads')} thread(s)")


def machine_lines():
    threads, source = blas_threads()
    lines = [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, BLAS: {blas_kernel()}",
        f"BLAS threads: {threads if threads else 'default'} ({source}); "
        f"npgan elementwise threads: {num_threads()}; load average (1 min): {load():.2f}",
    ]
    if keep_freed_host_memory():                 # this script owns its process: opt in, for both sides
        lines.append("malloc: freed memory stays in the process (this script opts in with "
                     "npgan.backend.keep_freed_host_memory), for npgan and PyTorch alike. "
                     "NPGAN_KEEP_FREED_MEMORY=0: the C library's defaults for both")
    else:
        lines.append("malloc: the C library's own settings, for both sides (NPGAN_KEEP_FREED_MEMORY=0, "
                     "MALLOC_*/GLIBC_TUNABLES set, not glibc, or another malloc preloaded)")
    forced = {v: os.environ[v] for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
    if forced:
        lines.append("set in the environment: " + ", ".join(f"{k}={v}" for k, v in forced.items())
                     + " (OpenBLAS then runs that kernel, not the one for this CPU)")
    if load() > 0.5 * (os.cpu_count() or 1):
        lines.append("warning: the machine is busy; with more threads than free cores, every "
                     "timing suffers (try OPENBLAS_NUM_THREADS=1 for a fair 1-thread run)")
    return lines


def torch_lines(torch):
    """PyTorch's version, BLAS, CPU kernels and threads, from its own build report."""
    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "unknown")
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = "unknown"
    return [f"PyTorch {torch.__version__}: BLAS {blas}, oneDNN "
            f"{'on' if torch.backends.mkldnn.is_available() else 'off'}, CPU kernels "
            f"{capability}, torch.get_num_threads() = {torch.get_num_threads()}"]


# ------------------------------------------------------------------------ the models
def make_gan(be, width="mnist"):
    """G, D and their Adam optimizers (the DCGAN paper's lr = 2e-4, betas = (0.5, 0.999)),
    on the fast path (npgan.fast), as training runs them."""
    w = WIDTHS[width]
    G = accelerate(npgan.build_generator(be, latent_dim=LATENT, hidden=w["g_hidden"], out_dim=PIXELS))
    D = accelerate(npgan.build_discriminator(be, in_dim=PIXELS, hidden=w["d_hidden"]))
    opt_g = accelerate(npgan.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    opt_d = accelerate(npgan.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    return G, D, opt_g, opt_d


def n_params(*models):
    return sum(int(np.prod(p.shape)) for m in models for p in m.parameters())


def step_fn(be, width, batch, k=1):
    """A function doing one npgan.gan.train_step (k D-updates + one G-update) on a fixed
    real batch already on the device, as the training loop would."""
    G, D, opt_g, opt_d = make_gan(be, width)
    reals = [be.uniform(-1.0, 1.0, (batch, PIXELS)) for _ in range(k)]

    def step():
        return npgan.train_step(G, D, opt_g, opt_d, reals, be, latent_dim=LATENT)
    return step


# ---------------------------------------------------------------------------- timing
def time_per_call(fn, be, number=5, repeat=7, warmup=2):
    """Seconds per call of fn, one value per repeat (each the mean of `number` calls).

    We synchronize before reading the clock (a no-op on the CPU), because CUDA only
    queues the work."""
    for _ in range(warmup):
        fn()
    be.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        be.synchronize()
        times.append((time.perf_counter() - t0) / number)
    return np.array(times)


def calls_for(seconds_per_call, budget=0.25):
    """How many calls fill about `budget` seconds (at least 1)."""
    return max(1, int(budget / max(seconds_per_call, 1e-6)))


def per_call(fn, sync, number):
    """Seconds of each of `number` calls of fn, timed one by one (sync before the clock)."""
    times = []
    for _ in range(number):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


class Fair:
    """One side's timings from time_fair: per-call seconds when it ran alone (before
    and after the alternation) and in the alternating rounds."""

    def __init__(self, alone, alternated):
        self.alone, self.alternated = np.array(alone), np.array(alternated)

    @property
    def median(self):
        """The number we report: the median of every timed call, alone and alternated.
        Both are the side running undisturbed by the others (the alternating rounds begin
        with an untimed call); pooled, they span the same minutes for every side, which
        matters on a machine whose load comes and goes."""
        return float(np.median(np.concatenate([self.alone, self.alternated])))

    @property
    def drift(self):               # alternated / alone - 1
        return float(np.median(self.alternated) / np.median(self.alone) - 1.0)


def time_fair(fns, sync, rounds=5, round_seconds=0.5):
    """Per-call seconds of every fn of fns, timed so that no side disturbs another.

    1. each fn alone: one long round of its own calls (about round_seconds);
    2. `rounds` alternating rounds, fn after fn, each round starting with one untimed
       call (a library's worker threads may still spin from the other side's last call:
       OpenMP threads busy-wait for a while after their work, and then steal cores from
       the other side's BLAS threads), then its calls timed one by one;
    3. each fn alone again.
    Fair.median pools all of a side's calls; warn_lines() says where its standalone
    (1 and 3) and alternated (2) medians differ by more than 10%: then a side disturbs
    another, or the load of the machine changed during the run.
    """
    for fn in fns:                                   # warm-up: allocators, thread pools
        fn()
        fn()
    sync()
    numbers = [calls_for(float(np.median(per_call(fn, sync, 2))), round_seconds) for fn in fns]
    numbers = [max(3, n) for n in numbers]
    alone = [per_call(fn, sync, n) for fn, n in zip(fns, numbers)]
    alternated = [[] for _ in fns]
    for _ in range(rounds):
        for fn, n, t in zip(fns, numbers, alternated):
            fn()                                     # untimed: the switch settles
            sync()
            t += per_call(fn, sync, n)
    for fn, n, t in zip(fns, numbers, alone):
        t += per_call(fn, sync, n)
    return [Fair(a, t) for a, t in zip(alone, alternated)]


def warn_lines(names, timings, limit=0.10):
    """A warning for each side whose alternated and standalone medians differ by more
    than `limit` (10%): then the two numbers tell different stories, and neither is safe."""
    return [f"warning: {name}: alternated {np.median(t.alternated) * 1e3:.2f} ms vs alone "
            f"{np.median(t.alone) * 1e3:.2f} ms ({t.drift:+.0%}); the sides disturb each other or the "
            f"load changed during the run" for name, t in zip(names, timings)
            if abs(t.drift) > limit]


# ------------------------------------------------------------------------- the floor
def linear_shapes(model):
    """(out, in) of every Linear layer of a Sequential, in order."""
    return [(layer.out_features, layer.in_features) for layer in model.layers
            if isinstance(layer, Linear)]


def step_products(G, D, batch, k=1):
    """The matrix products one train_step needs, as (kind, out, in) per Linear:
    'fwd' y = x @ W.T, 'dW' dout.T @ x, 'dx' dout @ W. Products whose result nobody
    uses (dx of D's first layer in the D-update, dz in the G-update) are left out."""
    g, d = linear_shapes(G), linear_shapes(D)
    fwd = lambda layers: [("fwd", o, i) for o, i in layers]          # noqa: E731
    dW = lambda layers: [("dW", o, i) for o, i in layers]            # noqa: E731
    dx = lambda layers: [("dx", o, i) for o, i in layers]            # noqa: E731
    d_update = (fwd(g)                                  # x_fake = G(z)
                + 2 * (fwd(d) + dW(d) + dx(d[1:])))     # real and fake halves through D
    g_update = fwd(g) + fwd(d) + dx(d) + dW(g) + dx(g[1:])
    return k * d_update + g_update


def floor_fn(be, products, batch):
    """A function running exactly those products (same shapes, layouts and dtype) into
    preallocated outputs: the time BLAS alone needs for one step."""
    calls = []
    for kind, out, inp in products:
        if kind == "fwd":          # (B, in) @ (in, out) -> (B, out)
            a, b, res = be.randn((batch, inp)), be.randn((out, inp)).T, be.zeros((batch, out))
        elif kind == "dW":         # (out, B) @ (B, in) -> (out, in)
            a, b, res = be.randn((batch, out)).T, be.randn((batch, inp)), be.zeros((out, inp))
        else:                      # (B, out) @ (out, in) -> (B, in)
            a, b, res = be.randn((batch, out)), be.randn((out, inp)), be.zeros((batch, inp))
        calls.append((res, a, b))

    def run():
        for res, a, b in calls:
            into(res, "matmul", a, b)
    return run


def product_flops(products, batch):
    return sum(2 * batch * out * inp for _, out, inp in products)

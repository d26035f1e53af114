"""Memory of GAN training: peak RSS, no growth over 1,000 steps, and the largest fit.

    python benchmarks/bench_memory.py            # 1,000 steps of the MNIST MLP, batch 64
    python benchmarks/bench_memory.py --quick    # 300 steps

It trains the default model on the bundled MNIST-5k digits (on the device, shuffled
each epoch, as npgan.train does) and reads the resident set size (RSS) every 100
steps: after the warm-up, RSS must stay flat. Then it measures, with tracemalloc, the
memory one step needs per sample (activations) and per parameter (weights, gradients,
Adam state, buffers), and from those estimates the largest batch and the largest width
that fit in this machine's memory. NumPy backend (host memory).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tracemalloc

import common
import npgan
from npgan.data import iterate_batches, load_dataset, to_device

MIB = 2 ** 20


def rss_bytes():
    """Current resident set size, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return None


def peak_rss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # Linux reports KiB


def available_bytes():
    """MemAvailable from /proc/meminfo (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"], info["MemTotal"]
    except (OSError, KeyError):
        import os
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total


def rss_over_training(steps, batch):
    """RSS every 100 steps of real training on MNIST-5k (data on the device)."""
    be = npgan.get_backend("numpy", dtype="float32", seed=0)
    images, _ = load_dataset("mnist-5k")
    x = to_device(images, be)                                   # (N, P), scaled to [-1, 1]
    G, D, opt_g, opt_d = common.make_gan(be)
    readings, step = {}, 0
    while step < steps:
        for real in iterate_batches(x, batch, be):              # one shuffled epoch
            npgan.train_step(G, D, opt_g, opt_d, [real], be, latent_dim=common.LATENT)
            step += 1
            if step % 100 == 0:
                readings[step] = rss_bytes()
            if step == steps:
                break
    return readings


def traced_peak(fn):
    """Peak bytes allocated (NumPy arrays included) while fn runs, above what was live."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak, result


def per_sample_and_per_param(width="mnist", batches=(64, 512)):
    """(bytes per sample that one step allocates at its peak: the activations;
    bytes per parameter that stay: weights, gradients, Adam state, reused buffers)."""
    be = npgan.get_backend("numpy", dtype="float32", seed=0)
    peaks = []
    for batch in batches:
        step = common.step_fn(be, width, batch)
        step()                                      # warm-up: allocates the reused buffers
        peaks.append(traced_peak(step)[0])
    tracemalloc.start()
    step = common.step_fn(be, width, 1)
    step()
    live = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    params = common.n_params(*common.make_gan(be, width)[:2])
    per_sample = (peaks[1] - peaks[0]) / (batches[1] - batches[0])
    return per_sample, live / params, params


def width_params(scale):
    """Parameters of the MNIST MLP with every hidden width multiplied by `scale`."""
    g = [common.LATENT] + [int(h * scale) for h in common.WIDTHS["mnist"]["g_hidden"]] + [common.PIXELS]
    d = [common.PIXELS] + [int(h * scale) for h in common.WIDTHS["mnist"]["d_hidden"]] + [1]
    return sum((a + 1) * b for net in (g, d) for a, b in zip(net[:-1], net[1:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="300 steps")
    args = p.parse_args()
    steps = 300 if args.quick else args.steps
    print("\n".join(common.machine_lines()))

    readings = rss_over_training(steps, args.batch)
    print(f"RSS during training (MNIST MLP, batch {args.batch}, numpy float32):")
    for step, rss in readings.items():
        print(f"  step {step:5d}: {rss / MIB:8.1f} MiB")
    first, last = readings[100], readings[max(readings)]
    growth = last - first
    print(f"peak RSS: {max(peak_rss_bytes(), last) / MIB:.1f} MiB; RSS at step 100: {first / MIB:.1f} MiB, "
          f"at step {max(readings)}: {last / MIB:.1f} MiB, growth {growth / MIB:+.2f} MiB "
          f"-> {'no growth' if growth <= 1 * MIB else 'GROWS'} (tolerance 1 MiB)")

    per_sample, per_param, params = per_sample_and_per_param()
    avail, total = available_bytes()
    fixed = params * per_param
    print(f"one step needs {per_sample / 1024:.1f} KiB per sample (activations, measured "
          f"between batch 64 and 512) and {per_param:.1f} bytes per parameter "
          f"({params:,} parameters = {fixed / MIB:.1f} MiB)")
    budget = avail - last                       # what this process could still take
    print(f"memory: {total / 2**30:.1f} GiB total, {avail / 2**30:.1f} GiB available now")
    print(f"estimate, largest batch of the MNIST MLP: {int(budget // per_sample):,} "
          f"(activations alone; in practice the dataset and other processes share it)")
    if not args.quick:                          # check the per-sample figure once, for real
        big = 16384
        before = max(peak_rss_bytes(), rss_bytes())
        step = common.step_fn(npgan.get_backend("numpy", dtype="float32", seed=0), "mnist", big)
        step()
        print(f"check: one step at batch {big} raised the peak RSS by "
              f"{(peak_rss_bytes() - before) / MIB:.0f} MiB; per-sample estimate: "
              f"{(per_sample * big + fixed) / MIB:.0f} MiB")
    scale = 1.0
    while width_params(scale * 2) * per_param + per_sample * scale * 2 * args.batch < budget:
        scale *= 2
    lo, hi = scale, scale * 2
    for _ in range(30):                         # bisection on the width multiplier
        mid = (lo + hi) / 2
        fits = width_params(mid) * per_param + per_sample * mid * args.batch < budget
        lo, hi = (mid, hi) if fits else (lo, mid)
    print(f"estimate, largest width at batch {args.batch}: hidden widths x{lo:.0f} "
          f"(G {', '.join(str(int(h * lo)) for h in common.WIDTHS['mnist']['g_hidden'])}; "
          f"{width_params(lo) / 1e9:.2f} G parameters), assuming memory per parameter stays "
          f"{per_param:.0f} bytes and activations grow linearly with the width")


if __name__ == "__main__":
    main()

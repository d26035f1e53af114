"""npgan against the same GAN written plainly in PyTorch, timed in the same run.

    pip install torch==2.13.0      # optional; this benchmark is skipped without it
    python benchmarks/bench_vs_torch.py [--batches 64,128] [--rounds 15]

Same work on both sides: G 100-256-512-1024-784 (LeakyReLU 0.2, Tanh), D 784-512-256-1
(LeakyReLU 0.2), BCE with logits, non-saturating G loss, Adam(2e-4, betas=(0.5, 0.999)),
float32, one D-update (real and fake halves) + one G-update per step, fresh noise from
each library's own generator, the same thread count. PyTorch starts from npgan's
weights, and one step is checked to agree before anything is timed. Timing is fair
(common.time_fair): each side is timed alone, then in alternating rounds that start with
an untimed call, then alone again; the table gives the times alone and warns where a
side's alternated time differs from its time alone by more than 10%. Prints npgan time /
PyTorch time (below 1.0: npgan is faster), and the same for the step's matrix products
alone (NumPy's BLAS against PyTorch's), so that the gap splits into BLAS and npgan. On a CUDA machine with CuPy it also
compares the cupy backend with PyTorch on CUDA.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import common
import npgan
from npgan.backend import cupy_status
from npgan.backend import host as np
from npgan.fast import set_num_threads


def torch_models(torch, G, D, be, device):
    """PyTorch nn.Sequential copies of npgan's G and D (same layers, same weights)."""
    nn = torch.nn

    def copy(model):
        layers = []
        for layer in model.layers:
            if isinstance(layer, npgan.Linear):
                lin = nn.Linear(layer.in_features, layer.out_features)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(be.to_numpy(layer.W.data)))
                    lin.bias.copy_(torch.from_numpy(be.to_numpy(layer.b.data)))
                layers.append(lin)
            elif isinstance(layer, npgan.LeakyReLU):
                layers.append(nn.LeakyReLU(layer.slope))
            elif isinstance(layer, npgan.Tanh):
                layers.append(nn.Tanh())
            else:
                raise TypeError(f"no PyTorch twin for {layer!r}")
        return nn.Sequential(*layers).to(device)
    return copy(G), copy(D)


def torch_step(torch, G, D, opt_g, opt_d, x_real, noise):
    """One D-update and one G-update, written as a PyTorch user would."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    batch = x_real.shape[0]
    ones = torch.ones(batch, 1, device=x_real.device)
    # (1) update D: maximize log D(x) + log(1 - D(G(z)))
    opt_d.zero_grad()
    loss_real = bce(D(x_real), ones)
    loss_real.backward()
    with torch.no_grad():                      # G is frozen in the D-update
        x_fake = G(noise(batch))
    loss_fake = bce(D(x_fake), torch.zeros_like(ones))
    loss_fake.backward()
    opt_d.step()
    # (2) update G: minimize -log D(G(z)); D is frozen, so no weight gradients for D
    D.requires_grad_(False)
    opt_g.zero_grad()
    loss_g = bce(D(G(noise(batch))), ones)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    return loss_real + loss_fake, loss_g


def check_agreement(torch, be, device):
    """One step from identical weights, images and noise: npgan's losses and updated
    weights against PyTorch's (float32; BLAS libraries differ in rounding)."""
    G, D, opt_g, opt_d = common.make_gan(be)
    tG, tD = torch_models(torch, G, D, be, device)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 784)).astype(np.float32)
    z = [rng.standard_normal((64, 100), dtype=np.float32) for _ in range(2)]
    stats = npgan.d_step(G, D, opt_d, be.asarray(x), be.asarray(z[0]))
    stats.update(npgan.g_step(G, D, opt_g, be.asarray(z[1])))
    queue = [torch.from_numpy(a).to(device) for a in z]
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    loss_d, loss_g = torch_step(torch, tG, tD, adam(tG), adam(tD),
                                torch.from_numpy(x).to(device), lambda b: queue.pop(0))
    diffs = [abs(be.item(stats["loss_d"]) - loss_d.item()), abs(be.item(stats["loss_g"]) - loss_g.item())]
    for mine, theirs in ((G, tG), (D, tD)):
        ours = [be.to_numpy(p.data) for p in mine.parameters()]
        for a, t in zip(ours, [p.detach().cpu().numpy() for p in theirs.parameters()]):
            diffs.append(float(np.max(np.abs(a - t))))
    return max(diffs)


def torch_floor_fn(torch, products, batch, device):
    """common.floor_fn in PyTorch: the same products (shapes, layouts, float32) into
    preallocated outputs, so that PyTorch's BLAS can be compared with NumPy's alone."""
    calls = []
    randn = lambda *shape: torch.randn(*shape, device=device)  # noqa: E731
    for kind, out, inp in products:
        if kind == "fwd":          # (B, in) @ (in, out) -> (B, out)
            a, b, res = randn(batch, inp), randn(out, inp).T, randn(batch, out)
        elif kind == "dW":         # (out, B) @ (B, in) -> (out, in)
            a, b, res = randn(batch, out).T, randn(batch, inp), randn(out, inp)
        else:                      # (B, out) @ (out, in) -> (B, in)
            a, b, res = randn(batch, out), randn(out, inp), randn(batch, inp)
        calls.append((res, a, b))

    def run():
        for res, a, b in calls:
            torch.matmul(a, b, out=res)
    return run


def time_pair(torch, be, device, batch, rounds, sync):
    """common.time_fair of npgan's and PyTorch's steps and of their matmul floors (the
    step's products alone, in NumPy and in PyTorch), all four in the same rounds."""
    step = common.step_fn(be, "mnist", batch)
    G, D, _, _ = common.make_gan(be)
    tG, tD = torch_models(torch, G, D, be, device)
    t_opt = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (tG, tD)]
    x = torch.rand(batch, 784, device=device) * 2 - 1
    noise = lambda b: torch.randn(b, 100, device=device)  # noqa: E731

    def t_step():
        torch_step(torch, tG, tD, t_opt[0], t_opt[1], x, noise)

    prods = common.step_products(G, D, batch)
    timed = common.time_fair([step, t_step, common.floor_fn(be, prods, batch),
                              torch_floor_fn(torch, prods, batch, device)], sync, rounds)
    return timed[:2], timed[2:]                     # (steps, floors), in the same rounds


def compare(torch, be, device, batches, rounds, sync, label):
    err = check_agreement(torch, be, device)
    print(f"{label}: one step from identical weights and inputs, max abs difference "
          f"{err:.1e} (losses and weights)")
    if err > 1e-3:
        raise SystemExit(f"{label}: npgan and PyTorch disagree; not timing")
    rows, warnings = [], []
    for batch in batches:
        (ours, theirs), (f_np, f_t) = time_pair(torch, be, device, batch, rounds, sync)
        ratio = ours.median / theirs.median
        alt = np.median(ours.alternated) / np.median(theirs.alternated)
        rows.append((label, batch, ours.median, theirs.median, ratio, alt,
                     f_np.median, f_t.median, common.load()))
        print(f"{label} batch {batch:4d}: npgan {ours.median * 1e3:7.2f} ms, PyTorch "
              f"{theirs.median * 1e3:7.2f} ms (fair medians)  npgan / PyTorch = {ratio:.2f} "
              f"(alternated: {alt:.2f}); the step's matmuls alone: NumPy "
              f"{f_np.median * 1e3:.2f} ms, PyTorch {f_t.median * 1e3:.2f} ms "
              f"(NumPy / PyTorch = {f_np.median / f_t.median:.2f})  load {common.load():.1f}",
              flush=True)
        names = [f"{label} batch {batch}: {n}" for n in
                 ("npgan step", "PyTorch step", "NumPy matmuls", "PyTorch matmuls")]
        warnings += common.warn_lines(names, [ours, theirs, f_np, f_t])
    for line in warnings:
        print(line)
    return rows, warnings


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="64,128")
    p.add_argument("--rounds", type=int, default=5,
                   help="alternating rounds per batch (each about half a second per side)")
    p.add_argument("--out", default="runs/benchmarks",
                   help="folder for the table (tools/publish.py copies it to benchmarks/results/)")
    args = p.parse_args()
    try:
        import torch
    except ImportError as err:
        print(f"PyTorch is not installed ({err}); skipping. To run it: pip install torch==2.13.0")
        return
    threads = common.threads_for_torch()
    torch.set_num_threads(threads)          # the same thread count on both sides
    set_num_threads(threads)
    header = common.machine_lines() + common.torch_lines(torch)
    print("\n".join(header))
    batches = [int(b) for b in args.batches.split(",")]
    be = npgan.get_backend("numpy", dtype="float32", seed=0)
    rows, warnings = compare(torch, be, "cpu", batches, args.rounds, lambda: None,
                             "CPU: numpy vs torch")
    if cupy_status() is None and torch.cuda.is_available():
        gpu = npgan.get_backend("cupy", dtype="float32", seed=0)
        more, more_warnings = compare(torch, gpu, "cuda", batches, args.rounds,
                                      lambda: (gpu.synchronize(), torch.cuda.synchronize()),
                                      "CUDA: cupy vs torch")
        rows, warnings = rows + more, warnings + more_warnings
    else:
        print("CUDA comparison skipped: " + (cupy_status() or "torch.cuda.is_available() is False"))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    lines = [*(f"{h}  " for h in header), "",
             "| comparison | batch | npgan ms | PyTorch ms | npgan / PyTorch | (alternated) | "
             "NumPy matmuls ms | PyTorch matmuls ms | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2] * 1e3:.2f} | {r[3] * 1e3:.2f} | {r[4]:.2f} | "
              f"{r[5]:.2f} | {r[6] * 1e3:.2f} | {r[7] * 1e3:.2f} | {r[8]:.1f} |" for r in rows]
    lines += ["", "Times: per-step medians of each side over its standalone and alternating "
              "rounds (common.time_fair); (alternated): the ratio of the medians in the "
              "alternating rounds alone. Matmuls: the step's matrix products alone, same "
              "shapes and layouts.",
              *warnings]
    (Path(args.out) / "bench_vs_torch.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {Path(args.out) / 'bench_vs_torch.md'}")


if __name__ == "__main__":
    main()

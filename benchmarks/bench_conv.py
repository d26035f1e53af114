"""Benchmark: the DCGAN's convolutions and its train_step, NumPy against CuPy and PyTorch.

    python benchmarks/bench_conv.py [--batch 64] [--base-channels 64] [--repeats 5] [--out DIR]

Measured in float32 at batch B with c base channels, on numpy and, when a CUDA device is
usable, on cupy:
  - the DCGAN's two big convolutions (D's Conv2d c -> 2c at 14x14, G's ConvTranspose2d
    2c -> c at 7x7), forward + backward;
  - their "matmul floor": only the three matrix products of the layer's im2col formulation
    (forward, dW, dx), on arrays of the same shapes and layouts, so the gap to the layer's
    time is what gathering (im2col) and scattering (col2im) cost;
  - one DCGAN train_step (npgan.gan.train_step with npgan.dcgan's G and D: a D-update on a
    real and a fake half with G frozen, then a G-update through D with D not stepped);
  - the step's matmul floor: every matrix product that step performs (each Conv2d and
    ConvTranspose2d as its im2col products, each Linear; forward, dW and dx, leaving out
    exactly the products the step skips), same shapes, layouts and dtype, nothing else.
    "x floor" is the step's time over that floor, as for the MLP in bench_backends.py.
With PyTorch importable, the same two convolutions and the same DCGAN step written plainly
in PyTorch (same layers and weights, BCE with logits, non-saturating G loss, Adam(2e-4,
betas=(0.5, 0.999)), batch, float32 and thread count), on the CPU against numpy and on
CUDA against cupy. One step is first checked to agree from identical weights and inputs;
npgan's and PyTorch's steps, and their matmul floors, are then timed fairly
(common.time_fair: each alone, alternating rounds, each alone again; a warning where the
two differ by more than 10%) ("npgan / PyTorch" below 1.0: npgan is faster). The floors
side by side show which part of the gap is BLAS. CuPy's layers are first checked against
NumPy on the same inputs. Writes the table to --out/bench_conv.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import common
from bench_vs_torch import torch_step
from npgan import Adam, Linear, d_step, g_step, get_backend, train_step
from npgan.backend import cupy_status
from npgan.backend import host as np
from npgan.conv import Conv2d, ConvTranspose2d, conv_out_size
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
from npgan.fast import accelerate, set_num_threads
from npgan.fast.inplace import into

LATENT, PIXELS, SIDE = common.LATENT, common.PIXELS, 28


def timeit(fn, sync, repeats, warmup=1):
    """Median wall time of fn() in ms, sync() (the device) before reading the clock."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# --------------------------------------------------------------------- the products
def products(layer, x_shape):
    """The matrix products of one layer's forward and backward for an input of x_shape,
    as {kind: (m, k, n, a_t, b_t)}: an (m, k) @ (k, n) product whose left (a_t) or right
    (b_t) operand is a transposed view, as the layer computes it. Kinds: 'fwd', 'dW' (the
    weight gradient), 'dx' (the input gradient); see npgan/conv.py and npgan/layers.py."""
    B = x_shape[0]
    if isinstance(layer, Linear):        # y = x @ W.T, dW = dout.T @ x, dx = dout @ W
        i, o = layer.in_features, layer.out_features
        return {"fwd": (B, i, o, False, True), "dW": (o, B, i, True, False),
                "dx": (B, o, i, False, False)}
    _, _, H, W = x_shape
    kk = layer.k * layer.k
    if isinstance(layer, Conv2d):  # y = Wm @ cols, dW = dy @ cols.T, dcols = Wm.T @ dy
        OH = conv_out_size(H, layer.k, layer.s, layer.p)
        OW = conv_out_size(W, layer.k, layer.s, layer.p)
        n, ck, out = B * OH * OW, layer.in_ch * kk, layer.out_ch
        return {"fwd": (out, ck, n, False, False), "dW": (out, n, ck, False, True),
                "dx": (ck, out, n, True, False)}
    # ConvTranspose2d: cols = Wm.T @ x (then col2im), dW = x @ cols.T, dx = Wm @ im2col(dy)
    n, ok, c_in = B * H * W, layer.out_ch * kk, layer.in_ch
    return {"fwd": (ok, c_in, n, True, False), "dW": (c_in, n, ok, False, True),
            "dx": (c_in, ok, n, False, False)}


def with_products(model, x):
    """(layer, input shape) of each Linear / Conv2d / ConvTranspose2d of a Sequential, in
    order, found by running x through it (the shapes do not depend on the weights)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, (Linear, Conv2d, ConvTranspose2d)):
            found.append((layer, tuple(x.shape)))
        x = layer.forward(x)
    return found


def step_products(batch, c):
    """Every matrix product of one DCGAN train_step (k = 1), as products() tuples.

    As npgan.gan does it: the D-update runs G forward, and D forward + backward twice
    (real half, fake half) with dW, where Sequential.backward(input_grad=False) skips the
    dx of the first layer that moves numbers (G's Linear; D's first Conv2d, behind a
    Reshape); the G-update runs G forward, D forward, D backward with dx
    and no dW (D is not stepped), G backward with dW and dx except for the noise, dz."""
    host = get_backend("numpy", dtype="float32", seed=0)
    G = build_dcgan_generator(host, latent_dim=LATENT, base_channels=c)
    D = build_dcgan_discriminator(host, base_channels=c)
    g = with_products(G, host.zeros((batch, LATENT)))
    d = with_products(D, host.zeros((batch, PIXELS)))

    def kind(layers, what):
        return [products(layer, shape)[what] for layer, shape in layers]

    def dx(model, layers, input_grad):
        first = next(layer for layer in model.layers if not layer.shape_only)
        skip_first = not input_grad and first is layers[0][0]
        return kind(layers[1:] if skip_first else layers, "dx")

    d_update = kind(g, "fwd") + 2 * (kind(d, "fwd") + kind(d, "dW") + dx(D, d, False))
    g_update = kind(g, "fwd") + kind(d, "fwd") + dx(D, d, True) + kind(g, "dW") + dx(G, g, False)
    return d_update + g_update


def floor_fn(be, prods):
    """A function running exactly those products (same shapes, layouts and dtype) into
    preallocated outputs: the time the matrix products alone need."""
    calls = []
    for m, k, n, a_t, b_t in prods:
        a = be.randn((k, m)).T if a_t else be.randn((m, k))
        b = be.randn((n, k)).T if b_t else be.randn((k, n))
        calls.append((be.zeros((m, n)), a, b))

    def run():
        for res, a, b in calls:
            into(res, "matmul", a, b)
    return run


def gflop(prods):
    return sum(2 * m * k * n for m, k, n, _, _ in prods) / 1e9


# ------------------------------------------------------------------ the two layers
def layer_cases(be, batch, c):
    """(name, layer, input shape): D's second conv and G's first transposed conv, on the
    fast path (npgan.fast), as training runs them."""
    conv = accelerate(Conv2d(c, 2 * c, 4, 2, 1, backend=be))
    convt = accelerate(ConvTranspose2d(2 * c, c, 4, 2, 1, backend=be))
    return [(f"Conv2d {c}->{2 * c} k4 s2 p1, 14x14", conv, (batch, c, 14, 14)),
            (f"ConvT {2 * c}->{c} k4 s2 p1, 7x7", convt, (batch, 2 * c, 7, 7))]


def fwd_bwd(layer, x, dout):
    layer.forward(x)
    layer.backward(dout)


def check_agreement(be, ref_be, batch, c):
    """Same weights and inputs on be and on NumPy: outputs and gradients must agree."""
    pairs = zip(layer_cases(be, batch, c), layer_cases(ref_be, batch, c))
    for (name, layer, shape), (_, ref, _) in pairs:
        layer.W.data[...] = be.asarray(ref.W.data)
        layer.b.data[...] = be.asarray(ref.b.data)
        x = ref_be.randn(shape)
        y_ref = ref.forward(x)
        dout = ref_be.randn(y_ref.shape)
        dx_ref = ref.backward(dout)
        y, dx = layer.forward(be.asarray(x)), layer.backward(be.asarray(dout))
        for label, a, b in [("y", y, y_ref), ("dx", dx, dx_ref), ("dW", layer.W.grad, ref.W.grad)]:
            np.testing.assert_allclose(be.to_numpy(a), b, rtol=1e-3, atol=1e-3,
                                       err_msg=f"{name}: {label}")
    print(f"{be.name}: conv outputs and gradients agree with numpy (rtol 1e-3)")


def bench_layers(be, batch, c, repeats):
    """{row: ms}: each layer's forward + backward and its matmul floor, timed together
    (common.time_fair, so that both see the same load; each one's median alone)."""
    rows = {}
    for name, layer, shape in layer_cases(be, batch, c):
        x = be.randn(shape)
        dout = be.randn(tuple(layer.forward(x).shape))
        layer.backward(dout)
        floor = floor_fn(be, list(products(layer, shape).values()))
        t_layer, t_floor = common.time_fair([lambda: fwd_bwd(layer, x, dout), floor],
                                            be.synchronize, repeats, round_seconds=0.3)
        rows[name + ": fwd+bwd"] = t_layer.median * 1e3
        rows[name + ": matmul floor"] = t_floor.median * 1e3
    return rows


def bench_torch_layers(torch, device, sync, batch, c, repeats):
    """The same two layers in PyTorch, forward + backward (input and weight gradients)."""
    rows = {}
    for name, layer, shape in layer_cases(get_backend("numpy"), batch, c):
        module = (torch.nn.Conv2d(c, 2 * c, 4, 2, 1) if isinstance(layer, Conv2d)
                  else torch.nn.ConvTranspose2d(2 * c, c, 4, 2, 1)).to(device)
        x = torch.randn(shape, device=device, requires_grad=True)
        dout = torch.randn(module(x).shape, device=device)
        rows[name + ": fwd+bwd"] = timeit(lambda: module(x).backward(dout), sync, repeats)
    return rows


# ------------------------------------------------------------------- the DCGAN step
def dcgan(be, c):
    """npgan's DCGAN G and D with their Adam optimizers (lr 2e-4, betas (0.5, 0.999)),
    on the fast path (npgan.fast), as training runs them."""
    G = accelerate(build_dcgan_generator(be, latent_dim=LATENT, base_channels=c))
    D = accelerate(build_dcgan_discriminator(be, base_channels=c))
    adam = lambda m: accelerate(Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)))  # noqa: E731
    return G, D, adam(G), adam(D)


def torch_dcgan(torch, G, D, be, c, device):
    """The same G and D written plainly in PyTorch (see npgan/dcgan.py), with npgan's
    weights copied in (both keep PyTorch's layouts and parameter order)."""
    nn, s = torch.nn, SIDE // 4                           # s = 7
    tG = nn.Sequential(
        nn.Linear(LATENT, 2 * c * s * s), nn.BatchNorm1d(2 * c * s * s), nn.ReLU(),
        nn.Unflatten(1, (2 * c, s, s)),
        nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
        nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())
    tD = nn.Sequential(
        nn.Unflatten(1, (1, SIDE, SIDE)),
        nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * c * s * s, 1))
    for ours, theirs in ((G, tG), (D, tD)):
        pairs = list(zip(ours.parameters(), theirs.parameters(), strict=True))
        with torch.no_grad():
            for p, t in pairs:
                assert tuple(p.shape) == tuple(t.shape), (p.shape, t.shape)
                t.copy_(torch.from_numpy(be.to_numpy(p.data)))
    return tG.to(device), tD.to(device)


def torch_adam(torch, model):
    return torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))


def check_dcgan_agreement(torch, be, device, batch, c):
    """One d_step + g_step from identical weights, images and noise: the largest absolute
    difference of npgan's losses and updated weights from PyTorch's."""
    G, D, opt_g, opt_d = dcgan(be, c)
    tG, tD = torch_dcgan(torch, G, D, be, c, device)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, PIXELS)).astype(np.float32)
    z = [rng.standard_normal((batch, LATENT), dtype=np.float32) for _ in range(2)]
    stats = d_step(G, D, opt_d, be.asarray(x), be.asarray(z[0]))
    stats.update(g_step(G, D, opt_g, be.asarray(z[1])))
    queue = [torch.from_numpy(a).to(device) for a in z]
    loss_d, loss_g = torch_step(torch, tG, tD, torch_adam(torch, tG), torch_adam(torch, tD),
                                torch.from_numpy(x).to(device), lambda b: queue.pop(0))
    diffs = [abs(be.item(stats["loss_d"]) - loss_d.item()),
             abs(be.item(stats["loss_g"]) - loss_g.item())]
    for ours, theirs in ((G, tG), (D, tD)):
        for p, t in zip(ours.parameters(), theirs.parameters()):
            diffs.append(float(np.max(np.abs(be.to_numpy(p.data) - t.detach().cpu().numpy()))))
    return max(diffs)


def torch_floor_fn(torch, prods, device):
    """floor_fn in PyTorch: the same products, so PyTorch's BLAS meets NumPy's alone."""
    calls = []
    for m, k, n, a_t, b_t in prods:
        a = torch.randn(k, m, device=device).T if a_t else torch.randn(m, k, device=device)
        b = torch.randn(n, k, device=device).T if b_t else torch.randn(k, n, device=device)
        calls.append((torch.empty(m, n, device=device), a, b))

    def run():
        for res, a, b in calls:
            torch.matmul(a, b, out=res)
    return run


def bench_dcgan(be, batch, c, rounds, torch=None, device=None, sync=None):
    """common.time_fair of npgan's DCGAN train_step (and PyTorch's, when torch is
    given), then of the step's matmul floor (in NumPy, and in PyTorch when given).
    Returns (steps, floors): lists of common.Fair, npgan's first."""
    sync = sync or be.synchronize
    G, D, opt_g, opt_d = dcgan(be, c)
    reals = [be.uniform(-1.0, 1.0, (batch, PIXELS))]
    fns = [lambda: train_step(G, D, opt_g, opt_d, reals, be, latent_dim=LATENT)]
    prods = step_products(batch, c)
    floors = [floor_fn(be, prods)]
    if torch is not None:
        tG, tD = torch_dcgan(torch, *dcgan(be, c)[:2], be, c, device)
        t_opt = [torch_adam(torch, tG), torch_adam(torch, tD)]
        x = torch.rand(batch, PIXELS, device=device) * 2 - 1
        noise = lambda b: torch.randn(b, LATENT, device=device)  # noqa: E731
        fns.append(lambda: torch_step(torch, tG, tD, t_opt[0], t_opt[1], x, noise))
        floors.append(torch_floor_fn(torch, prods, device))
    # steps and floors in the same rounds: the ratios below compare like with like
    timed = common.time_fair(fns + floors, sync, rounds, round_seconds=1.0)
    return timed[:len(fns)], timed[len(fns):]


# ------------------------------------------------------------------------ the table
def markdown_table(header, rows):
    """A markdown table with its columns padded, readable as printed text too."""
    cells = [header, ["---"] * len(header)] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(  # noqa: E731
        (v.ljust(w) if i == 0 else v.rjust(w)) for i, (v, w) in enumerate(zip(r, widths))) + " |"
    lines = [fmt(r) for r in cells]
    lines[1] = "|" + "|".join("-" * (w + 1) + (":" if i else "-")
                              for i, w in enumerate(widths)) + "|"
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--base-channels", type=int, default=64,
                   help="c of npgan.dcgan: G and D have c and 2c channels (default 64)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed runs per layer, alternating rounds per step (median)")
    p.add_argument("--out", default="runs/benchmarks",
                   help="folder for the table (tools/publish.py copies it to benchmarks/results/)")
    args = p.parse_args()
    batch, c, repeats = args.batch, args.base_channels, args.repeats

    try:
        import torch
    except ImportError as err:
        torch = None
        print(f"PyTorch is not installed ({err}); skipping the PyTorch comparison. "
              f"To run it: pip install torch==2.13.0")
    threads = common.threads_for_torch()
    set_num_threads(threads)                # the same thread count on every side
    header = common.machine_lines()
    if torch is not None:
        torch.set_num_threads(threads)
        header += common.torch_lines(torch)
    print("\n".join(header))

    # (npgan backend, its PyTorch twin: (column, device, sync) or None)
    ref = get_backend("numpy", dtype="float32", seed=0)
    sides = [(ref, ("torch cpu", "cpu", lambda: None) if torch is not None else None)]
    reason = cupy_status()
    if reason is None:
        gpu = get_backend("cupy", dtype="float32", seed=0)
        check_agreement(gpu, ref, batch, c)
        cuda = None
        if torch is not None and torch.cuda.is_available():
            cuda = ("torch cuda", "cuda", torch.cuda.synchronize)
        elif torch is not None:
            print("PyTorch on CUDA skipped: torch.cuda.is_available() is False")
        sides.append((gpu, cuda))
    else:
        print(f"cupy skipped: {reason}")

    step_row = "DCGAN train_step (D + G update)"
    prods = step_products(batch, c)
    floor_row = f"DCGAN train_step: matmul floor ({len(prods)} products, {gflop(prods):.3g} GFLOP)"
    results, pairs, notes, warnings = {}, [], [], []   # pairs: (npgan, PyTorch) columns
    for be, twin in sides:
        results[be.name] = bench_layers(be, batch, c, repeats)
        if twin is None:
            steps, floors = bench_dcgan(be, batch, c, repeats)
        else:
            name, device, sync = twin
            err = check_dcgan_agreement(torch, be, device, batch, c)
            print(f"{be.name} vs {name}: one DCGAN step from identical weights and inputs, "
                  f"max abs difference {err:.1e} (losses and weights)")
            if err > 1e-3:
                raise SystemExit(f"npgan ({be.name}) and PyTorch ({device}) disagree; not timing")
            results[name] = bench_torch_layers(torch, device, sync, batch, c, repeats)
            steps, floors = bench_dcgan(be, batch, c, repeats, torch, device,
                                        lambda: (be.synchronize(), sync()))
            results[name][step_row] = steps[1].median * 1e3
            results[name][floor_row] = floors[1].median * 1e3
            pairs.append((be.name, name))
            notes.append(f"npgan / PyTorch, DCGAN train_step, {be.name} vs {name}: "
                         f"{steps[0].median / steps[1].median:.2f} (fair medians; in "
                         f"alternating rounds: {np.median(steps[0].alternated) / np.median(steps[1].alternated):.2f})")
            notes.append(f"the step's matrix products alone, {be.name} / {name}: "
                         f"{floors[0].median / floors[1].median:.2f} (the BLAS part of the gap)")
            warnings += common.warn_lines([f"npgan step ({be.name})", f"PyTorch step ({name})",
                                           f"matmul floor ({be.name})", f"matmul floor ({name})"],
                                          steps + floors)
        if twin is None:
            warnings += common.warn_lines([f"npgan step ({be.name})", f"matmul floor ({be.name})"],
                                          steps + floors)
        ours = results[be.name]
        ours[step_row] = steps[0].median * 1e3
        ours[floor_row] = floors[0].median * 1e3
        notes.append(f"{be.name}: DCGAN train_step = {ours[step_row] / ours[floor_row]:.2f}x its "
                     f"matmul floor (target <= 1.4; the floor runs at "
                     f"{gflop(prods) / ours[floor_row] * 1e3:.1f} GFLOP/s)")
        for layer_row in [r for r in ours if r.endswith("fwd+bwd")]:
            layer = layer_row.removesuffix(": fwd+bwd")
            notes.append(f"{be.name}: {layer} fwd+bwd = "
                         f"{ours[layer_row] / ours[layer + ': matmul floor']:.2f}x its matmul "
                         f"floor (target <= 1.3)")

    if "cupy" in results:
        pairs.insert(0, ("numpy", "cupy"))
    cols = list(results)
    table = []
    for row in results["numpy"]:
        cells = [f"{results[col][row]:.2f}" if row in results[col] else "-" for col in cols]
        cells += [f"{results[a][row] / results[b][row]:.2f}"
                  if row in results[a] and row in results[b] else "-" for a, b in pairs]
        table.append([row] + cells)
    with_torch = any(b.startswith("torch") for _, b in pairs)
    alternating = " and PyTorch's" if with_torch else ""
    lines = [f"batch {batch}, base channels {c} (npgan.dcgan), float32; npgan's layers with "
             f"their floors, and the DCGAN steps and floors (npgan's{alternating}): per-call "
             f"medians over standalone and {repeats} alternating rounds (common.time_fair); "
             f"PyTorch's layers: median of {repeats} runs", ""]
    lines += markdown_table(["", *cols, *(f"{a} / {b}" for a, b in pairs)], table)
    lines += ["", *notes, *warnings]
    print("\n" + "\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_conv.md").write_text("\n".join([*(f"{h}  " for h in header), "", *lines]) + "\n")
    print(f"wrote {out / 'bench_conv.md'}")


if __name__ == "__main__":
    main()

"""Benchmark: Conv2d / ConvTranspose2d forward+backward and one DCGAN train_step.

    python benchmarks/bench_conv.py [--batch 64] [--repeats 5]

For each backend (numpy, and cupy when a CUDA device is usable) it times:
  - the DCGAN's two big convolutions, forward + backward, at batch B;
  - the "matmul floor": only the three matrix products that the im2col formulation of
    that layer performs (forward, dW, dx), on arrays of the same shapes, so the gap to
    the layer's time is what gathering (im2col) and scattering (col2im) cost;
  - one DCGAN train_step (a D-update and a G-update).
CuPy results are first checked against NumPy on the same inputs, then timed after a
warm-up with the device synchronized; torch's CPU convolutions are timed when torch is
importable, as an outside reference.
"""
import argparse
import statistics
import time

from npgan import Adam, get_backend, train_step
from npgan.backend import cupy_status, host as np
from npgan.conv import Conv2d, ConvTranspose2d, conv_out_size
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator


def timeit(fn, be, repeats, warmup=1):
    """Median wall time of fn() in ms, device synchronized before reading the clock."""
    for _ in range(warmup):
        fn()
    be.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        be.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def layer_cases(be, batch):
    """(name, layer, input shape): D's second conv and G's first transposed conv."""
    return [("Conv2d 64->128 k4 s2 p1, 14x14", Conv2d(64, 128, 4, 2, 1, backend=be),
             (batch, 64, 14, 14)),
            ("ConvT 128->64 k4 s2 p1, 7x7", ConvTranspose2d(128, 64, 4, 2, 1, backend=be),
             (batch, 128, 7, 7))]


def matmul_shapes(layer, x_shape):
    """The (m, k) @ (k, n) products of the im2col formulation: forward, dW, dx."""
    B, _, H, W = x_shape
    kk = layer.k * layer.k
    if isinstance(layer, Conv2d):  # y = Wm @ cols, dW = dy @ cols.T, dcols = Wm.T @ dy
        OH = conv_out_size(H, layer.k, layer.s, layer.p)
        OW = conv_out_size(W, layer.k, layer.s, layer.p)
        n, ck, out = B * OH * OW, layer.in_ch * kk, layer.out_ch
        return [(out, ck, n), (out, n, ck), (ck, out, n)]
    n, ok, c_in = B * H * W, layer.out_ch * kk, layer.in_ch   # ConvTranspose2d
    return [(ok, c_in, n), (c_in, n, ok), (c_in, ok, n)]      # cols = Wm.T @ x, dW, dx


def fwd_bwd(layer, x, dout):
    layer.forward(x)
    layer.backward(dout)


def check_agreement(be, ref_be, batch):
    """Same weights and inputs on be and on NumPy: outputs and gradients must agree."""
    pairs = zip(layer_cases(be, batch), layer_cases(ref_be, batch))
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
    print(f"{be.name}: outputs and gradients agree with numpy (rtol 1e-3)")


def bench_backend(be, batch, repeats):
    rows = {}
    for name, layer, shape in layer_cases(be, batch):
        x = be.randn(shape)
        dout = be.randn(tuple(layer.forward(x).shape))
        layer.backward(dout)
        rows[name + "  fwd+bwd"] = timeit(lambda: fwd_bwd(layer, x, dout), be, repeats)
        mats = [(be.randn((m, k)), be.randn((k, n))) for m, k, n in matmul_shapes(layer, shape)]
        rows[name + "  matmul floor"] = timeit(lambda: [a @ b for a, b in mats], be, repeats)
    G, D = build_dcgan_generator(be), build_dcgan_discriminator(be)
    opt_g = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = [be.uniform(-1.0, 1.0, (batch, 784))]
    rows["DCGAN train_step (D + G update)"] = timeit(
        lambda: train_step(G, D, opt_g, opt_d, real, be, latent_dim=100), be, max(2, repeats // 2))
    return rows


def bench_torch(batch, repeats):
    """torch CPU float32 convolutions with the same shapes, or None without torch."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the torch CPU comparison")
        return None
    rows = {}
    cpu = get_backend("numpy")  # only for timeit's synchronize (a no-op)
    for name, layer, shape in layer_cases(cpu, batch):
        module = (torch.nn.Conv2d(64, 128, 4, 2, 1) if isinstance(layer, Conv2d)
                  else torch.nn.ConvTranspose2d(128, 64, 4, 2, 1))
        x = torch.randn(shape, requires_grad=True)
        dout = torch.randn(module(x).shape)
        rows[name + "  fwd+bwd"] = timeit(lambda: module(x).backward(dout), cpu, repeats)
    print(f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    ref = get_backend("numpy", dtype="float32", seed=0)
    results = {"numpy": bench_backend(ref, args.batch, args.repeats)}
    reason = cupy_status()
    if reason is None:
        gpu = get_backend("cupy", dtype="float32", seed=0)
        check_agreement(gpu, ref, args.batch)
        results["cupy"] = bench_backend(gpu, args.batch, args.repeats)
    else:
        print(f"cupy skipped: {reason}")
    torch_rows = bench_torch(args.batch, args.repeats)
    if torch_rows:
        results["torch cpu"] = torch_rows

    cols = list(results)
    print(f"\nbatch {args.batch}, float32, median ms of {args.repeats} runs")
    print(f"{'':52s}" + "".join(f"{c:>12s}" for c in cols)
          + ("  numpy/cupy" if "cupy" in results else ""))
    for row in results["numpy"]:
        cells = "".join(f"{results[c][row]:12.1f}" if row in results[c] else f"{'-':>12s}"
                        for c in cols)
        ratio = (f"  {results['numpy'][row] / results['cupy'][row]:10.1f}x"
                 if "cupy" in results else "")
        print(f"{row:52s}{cells}{ratio}")


if __name__ == "__main__":
    main()

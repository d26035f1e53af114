"""Properties behind the speed of a training step, checked without timing anything.

No host transfers per step, no float64 in a float32 step, no weight gradients of D in
the G-update and no unused input gradients, no weight-sized temporaries, no growth.
Training runs on the fast path (npgan.fast), so these checks do too, except where a
property belongs to the reference classes as well (the skipped gradients).
The times themselves are in benchmarks/ (tests never assert a duration).
"""
import tracemalloc

import numpy as np
import pytest

from npgan import (Adam, LeakyReLU, RMSprop, Linear, Sequential, build_discriminator,
                   build_generator, d_step, g_step, get_backend, train_step)
from npgan.fast import accelerate, map_blocks, num_threads, set_num_threads
from npgan.fast.inplace import into
from npgan.conv import Conv2d, ConvTranspose2d, Reshape
from npgan.layers import Sigmoid, Tanh
from npgan.norm import BatchNorm1d, BatchNorm2d
from npgan.spectral import SpectralNorm
from tests.backends import ALL_SPECS, host, make_backend

Z, P = 100, 784


def mnist_gan(be, g_hidden=(256, 512, 1024), d_hidden=(512, 256)):
    """The MNIST GAN as training runs it: on the fast path."""
    G = accelerate(build_generator(be, latent_dim=Z, hidden=g_hidden, out_dim=P))
    D = accelerate(build_discriminator(be, in_dim=P, hidden=d_hidden))
    opt_g = accelerate(Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    opt_d = accelerate(Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    return G, D, opt_g, opt_d


def small_gan(be):
    return mnist_gan(be, g_hidden=(32, 64), d_hidden=(64, 32))


@pytest.fixture
def threads():
    """set_num_threads for one test; the setting it found comes back afterwards."""
    original = num_threads()
    yield set_num_threads
    set_num_threads(original)


def arrays_of(obj):
    """Every array attribute of a layer (caches, buffers) or optimizer (state lists),
    and the arrays a fast twin keeps (its scratch dict)."""
    for value in vars(obj).values():
        items = value if isinstance(value, list) else \
            list(value.values()) if isinstance(value, dict) else [value]
        for item in items:
            if hasattr(item, "dtype") and hasattr(item, "shape"):
                yield item


# ----------------------------------------------------------- (a) host transfers
@pytest.mark.parametrize("k", [1, 2])
def test_train_step_makes_no_host_transfer(k):
    """array-api-strict's device1 refuses any implicit conversion to NumPy (as CuPy
    does), and Backend counts the explicit ones: a step must make none; only reading
    the statistics at a logging point does, one per statistic."""
    be = make_backend(("array-api-strict", "device1"), "float32", seed=1)
    G, D, opt_g, opt_d = small_gan(be)
    data = [be.uniform(-1.0, 1.0, (16, P)) for _ in range(k)]
    for _ in range(5):
        stats = train_step(G, D, opt_g, opt_d, data, be, latent_dim=Z)
    assert be.host_transfers == 0
    logged = {name: be.item(value) for name, value in stats.items()}   # logging point
    assert be.host_transfers == len(logged) == 8


# ----------------------------------------------------------------- (b) float32
def test_float32_step_has_no_float64_anywhere_on_numpy():
    """Every parameter, gradient, optimizer state, layer cache and reused buffer, and
    every statistic of a float32 step is float32 (float64 would double the traffic)."""
    be = get_backend("numpy", dtype="float32", seed=2)
    G, D, opt_g, opt_d = small_gan(be)
    x = be.uniform(-1.0, 1.0, (8, P))
    logits = D.forward(G.forward(be.randn((8, Z))))              # caches filled
    caches = [a for layer in G.layers + D.layers for a in arrays_of(layer)]
    assert logits.dtype == np.float32 and len(caches) >= 11
    assert all(a.dtype == np.float32 for a in caches)
    D.backward(logits, param_grads=False)
    G.backward(be.randn((8, P)))
    for real_label in (1.0, 0.9):
        stats = train_step(G, D, opt_g, opt_d, [x, x], be, latent_dim=Z, real_label=real_label)
    arrays = ([p.data for m in (G, D) for p in m.parameters()]
              + [p.grad for m in (G, D) for p in m.parameters()]
              + [a for opt in (opt_g, opt_d) for a in arrays_of(opt)]
              + [a for layer in G.layers + D.layers for a in arrays_of(layer)]
              + list(stats.values()))
    assert len(arrays) > 60
    assert all(a.dtype == np.float32 for a in arrays), {str(a.dtype) for a in arrays}


@pytest.mark.parametrize("g_loss", ["non-saturating", "minimax"])
def test_float32_step_runs_on_a_device_without_float64(g_loss):
    """array-api-strict's 'no_float64' device raises on any float64 array, so a whole
    step (losses, statistics, Adam) running there proves none is ever made."""
    be = make_backend(("array-api-strict", "no_float64"), "float32", seed=3)
    G, D, opt_g, opt_d = small_gan(be)
    data = [be.uniform(-1.0, 1.0, (8, P)) for _ in range(2)]
    for _ in range(2):
        stats = train_step(G, D, opt_g, opt_d, data, be, latent_dim=Z, g_loss=g_loss,
                           real_label=0.9)
    assert all(v.dtype == be.dtype for v in stats.values())
    assert all(m.dtype == be.dtype for opt in (opt_g, opt_d) for m in opt.m + opt.v)


# ------------------------------------------------- (c) no unneeded gradients
def test_g_update_leaves_D_grads_untouched_and_skips_unused_input_grads(monkeypatch):
    """In the G-update D's weight gradients are not computed (a sentinel stays); in
    the D-update D's first layer is asked for no dL/dx (images are data), and in the
    G-update G's first layer for no dL/dz."""
    be = get_backend("numpy", dtype="float32", seed=4)
    G, D, opt_g, opt_d = mnist_gan(be)
    calls = []

    def spy(name, layer):
        original = layer.backward

        def backward(dout, param_grads=True, input_grad=True, create_graph=False):
            dx = original(dout, param_grads=param_grads, input_grad=input_grad,
                          create_graph=create_graph)
            calls.append((name, input_grad, dx is None))
            return dx
        monkeypatch.setattr(layer, "backward", backward)

    spy("D0", D.layers[0])
    spy("G0", G.layers[0])
    d_step(G, D, opt_d, be.uniform(-1.0, 1.0, (16, P)), be.randn((16, Z)))
    assert calls == [("D0", False, True), ("D0", False, True)]     # real, then fake half

    calls.clear()
    for p in D.parameters():
        p.grad[...] = 7.0                                          # sentinel
    d_before = [p.data.copy() for p in D.parameters()]
    g_step(G, D, opt_g, be.randn((16, Z)))
    assert all(np.all(p.grad == 7.0) for p in D.parameters())
    assert all(np.array_equal(p.data, b) for p, b in zip(D.parameters(), d_before))
    # D's first layer must return dx_fake here (G needs it); G's first returns no dz
    assert calls == [("D0", True, False), ("G0", False, True)]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_backward_without_input_grad_gives_the_same_parameter_gradients(spec):
    be = make_backend(spec, "float32", seed=5)
    for first in (Linear(6, 5, be), LeakyReLU(0.2)):              # params / none
        width = 6 if isinstance(first, Linear) else 5
        net = Sequential(first, *([] if width == 5 else [LeakyReLU(0.2)]), Linear(5, 3, be))
        x, dout = be.randn((4, width)), be.randn((4, 3))
        grads = []
        for input_grad in (True, False):
            net.zero_grad()
            net.forward(x)
            dx = net.backward(dout, input_grad=input_grad)
            assert (dx is None) == (not input_grad)
            grads.append([host(p.grad).copy() for p in net.parameters()])
        for a, b in zip(*grads):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda be: (Linear(6, 3, be), (4, 6)),
    lambda be: (LeakyReLU(0.2), (4, 6)),
    lambda be: (Tanh(), (4, 6)),
    lambda be: (Sigmoid(), (4, 6)),
    lambda be: (BatchNorm1d(6, be), (4, 6)),
    lambda be: (BatchNorm2d(2, be), (4, 2, 3, 3)),
    lambda be: (Conv2d(2, 3, 3, 1, 1, backend=be), (2, 2, 4, 4)),
    lambda be: (ConvTranspose2d(2, 3, 4, 2, 1, backend=be), (2, 2, 3, 3)),
    lambda be: (Reshape((6,)), (4, 2, 3)),
    # eval: u and v stay put, so the two passes below compute with the same W_sn
    lambda be: (SpectralNorm(Linear(6, 3, be), be).eval(), (4, 6)),
    lambda be: (SpectralNorm(Conv2d(2, 3, 3, 1, 1, backend=be), be).eval(), (2, 2, 4, 4)),
], ids=["Linear", "LeakyReLU", "Tanh", "Sigmoid", "BatchNorm1d", "BatchNorm2d", "Conv2d",
        "ConvTranspose2d", "Reshape", "SpectralNorm(Linear)", "SpectralNorm(Conv2d)"])
def test_every_layer_backward_takes_input_grad_false(make):
    """backward(dout, input_grad=False) returns None, consumes the cache, and leaves
    the same parameter gradients as a backward that computes dx."""
    be = make_backend(("numpy", None), "float64", seed=7)
    layer, shape = make(be)
    x = be.randn(shape)
    dout = be.randn(tuple(layer.forward(x).shape))
    grads = []
    for input_grad in (True, False):
        layer.zero_grad()
        layer.forward(x)
        dx = layer.backward(dout, input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        grads.append([host(p.grad).copy() for p in layer.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="without a matching forward"):
        layer.backward(dout, input_grad=False)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_the_dcgan_d_skips_its_first_convolutions_input_grad(spec, monkeypatch):
    """D = Reshape, Conv2d, ...: with input_grad=False the Conv2d behind the Reshape
    skips dx (its col2im), and the parameter gradients are the same as with dx."""
    from npgan import conv
    from npgan.dcgan import build_dcgan_discriminator
    be = make_backend(spec, "float32", seed=6)
    D = build_dcgan_discriminator(be, base_channels=2, image_size=8)
    x, dout = be.uniform(-1, 1, (3, 64)), be.randn((3, 1))
    calls = []
    original = conv.conv2d_input_grad
    monkeypatch.setattr(conv, "conv2d_input_grad",
                        lambda *a, **k: calls.append(a[3]) or original(*a, **k))
    grads = []
    for input_grad in (True, False):
        calls.clear()
        D.zero_grad()
        D.forward(x)
        dx = D.backward(dout, input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        assert len(calls) == (2 if input_grad else 1)     # 2 Conv2d; the first one skipped
        grads.append([host(p.grad).copy() for p in D.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="without a matching forward"):
        D.backward(dout)                                  # every cache was consumed


# ------------------------------------------------------- (d) allocations
def traced_peak(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("n_threads", [1, 2])
def test_adam_and_rmsprop_steps_allocate_only_bookkeeping(threads, n_threads):
    """On the MNIST G and D (8 MiB of float32 parameters, the largest weight 3 MiB)
    a fast optimizer step allocates less than 128 KiB: views and bookkeeping, no
    temporary of any weight beyond G's smallest one (100 KiB). (SGD, which training
    never uses, has no fast twin.)"""
    threads(n_threads)
    be = get_backend("numpy", dtype="float32", seed=6)
    G, D, _, _ = mnist_gan(be)
    params = G.parameters() + D.parameters()
    for p in params:
        p.grad[...] = be.randn(p.shape)
    assert sum(p.data.nbytes for p in params) > 8_000_000
    for opt in (Adam(params, lr=2e-4, betas=(0.5, 0.999)), RMSprop(params, lr=5e-5)):
        accelerate(opt)
        opt.step()                                                 # warm-up
        peak = traced_peak(opt.step)
        assert peak < 128 * 1024, f"{type(opt).__name__}.step allocated {peak} bytes"


def forward_activation_floats(G, D, be):
    """Floats per sample of one forward of G and D: every layer output and cache
    (each array once: a Linear caches its input, which is the previous output)."""
    x, arrays = be.randn((1, Z)), {}
    for layer in G.layers + D.layers:
        x = layer.forward(x)
        caches = [v for name, v in vars(layer).items()
                  if not name.startswith("_") and hasattr(v, "dtype") and v.shape[0] == 1]
        arrays.update({id(a): a for a in [x, *caches]})
    return sum(a.size for a in arrays.values())


@pytest.mark.parametrize("batch", [8, 64])
def test_train_step_allocates_at_most_one_forward_of_activations(batch):
    """A step's peak allocation is bounded by the activations it cannot avoid: one
    forward's worth of outputs and caches of G and D (measured at batch 64: ~0.75
    of that). Weight-sized temporaries (dW = dout.T @ x without a reused buffer,
    3 MiB for G's last layer) would break the bound at small batches."""
    be = get_backend("numpy", dtype="float32", seed=7)
    G, D, opt_g, opt_d = mnist_gan(be)
    x = be.uniform(-1.0, 1.0, (batch, P))

    def step():
        train_step(G, D, opt_g, opt_d, [x], be, latent_dim=Z)
    step()
    step()                                                         # warm-up: buffers exist
    bound = 4 * batch * forward_activation_floats(G, D, be) + 64 * 1024
    peak = traced_peak(step)
    assert peak < bound, f"train_step peak {peak} bytes, bound {bound}"


# ---------------------------------------------------------------- (e) growth
def test_memory_does_not_grow_over_many_steps():
    be = get_backend("numpy", dtype="float32", seed=8)
    G, D, opt_g, opt_d = small_gan(be)
    x = be.uniform(-1.0, 1.0, (16, P))
    for _ in range(20):                                            # warm-up
        train_step(G, D, opt_g, opt_d, [x], be, latent_dim=Z)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(200):
        stats = train_step(G, D, opt_g, opt_d, [x], be, latent_dim=Z)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 16 * 1024, f"memory grew by {growth} bytes over 200 steps"
    assert np.isfinite(float(stats["loss_d"]))


# ------------------------------------------------- the backend's fast paths
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_into_writes_the_result_into_the_given_array(spec):
    be = make_backend(spec, "float32", seed=9)
    a, b = be.uniform(0.5, 2.0, (3, 4)), be.uniform(0.5, 2.0, (3, 4))
    out = be.zeros((3, 4))
    for op, args, expected in [("multiply", (a, b), host(a) * host(b)),
                               ("divide", (a, b), host(a) / host(b)),
                               ("sqrt", (a,), np.sqrt(host(a)))]:
        result = into(out, op, *args)
        assert result is out and out.dtype == be.dtype
        np.testing.assert_allclose(host(out), expected, rtol=1e-6)
    m = be.zeros((3, 3))
    into(m, "matmul", a, b.T)
    np.testing.assert_allclose(host(m), host(a) @ host(b).T, rtol=1e-5)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_map_blocks_equals_one_call_per_array(threads, n_threads):
    """Blocks (and threads) give bit-identical results; a non-contiguous array is
    passed whole, since a flat view of it does not exist; errors propagate."""
    threads(n_threads)
    rng = np.random.default_rng(0)
    shapes = [(300, 70), (5,), (64, 64)]
    a = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    b = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    a.append(rng.standard_normal((40, 30), dtype=np.float32).T)     # not contiguous
    b.append(rng.standard_normal((30, 40), dtype=np.float32))
    expected = [x * 3.0 + y * y for x, y in zip(a, b)]

    def fn(x, y):
        x *= 3.0
        x += y * y

    map_blocks(fn, list(zip(a, b)), block=1000)
    for got, want in zip(a, expected):
        np.testing.assert_array_equal(got, want)

    def fails(x):
        raise RuntimeError("inside a block")
    with pytest.raises(RuntimeError, match="inside a block"):
        map_blocks(fails, [(np.zeros(5000, np.float32),)], block=1000)


def test_adam_is_bit_identical_with_one_or_two_threads(threads, monkeypatch):
    """The MNIST GAN's big weights (1024 x 784 = 802,816 elements) are cut into blocks
    of 65,536 and shared by two threads; the result must not change by one bit. We
    watch the update's calls to check that arrays really were split and shared."""
    import threading

    from npgan.fast import optim
    calls = []

    def watched_map_blocks(fn, groups, **kwargs):
        def watched(*arrays):
            calls.append((threading.get_ident(), arrays[0].size))
            fn(*arrays)
        return map_blocks(watched, groups, **kwargs)

    monkeypatch.setattr(optim, "map_blocks", watched_map_blocks)
    results = []
    for n_threads in (1, 2):
        threads(n_threads)
        calls.clear()
        be = get_backend("numpy", dtype="float32", seed=10)
        G, D, opt_g, opt_d = mnist_gan(be)
        for _ in range(2):
            train_step(G, D, opt_g, opt_d, [be.uniform(-1.0, 1.0, (8, P))], be, latent_dim=Z)
        results.append([p.data.copy() for p in G.parameters() + D.parameters()])
        n_params = len(G.parameters() + D.parameters())
        if n_threads == 1:
            assert len(calls) == 2 * n_params                      # whole arrays, one thread
        else:
            assert len(calls) > 2 * n_params + 20, len(calls)      # blocks of the big ones
            assert max(size for _, size in calls) <= 1 << 16
            assert len({ident for ident, _ in calls}) == 2         # both threads worked
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_set_num_threads_rejects_nonsense():
    with pytest.raises(ValueError, match="int >= 1"):
        set_num_threads(0)
    with pytest.raises(ValueError, match="int >= 1"):
        set_num_threads(2.0)


# ------------------------------------------------- (f) the convolutions' buffers
def dcgan_step(be):
    from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
    G = build_dcgan_generator(be, latent_dim=Z, base_channels=8)
    D = build_dcgan_discriminator(be, base_channels=8)
    G, D = accelerate(G), accelerate(D)
    opt_g, opt_d = accelerate(Adam(G.parameters())), accelerate(Adam(D.parameters()))
    x = be.uniform(-1.0, 1.0, (16, P))
    convs = [layer for layer in G.layers + D.layers
             if isinstance(layer, (Conv2d, ConvTranspose2d))]
    return (lambda: train_step(G, D, opt_g, opt_d, [x], be, latent_dim=Z)), convs


def test_dcgan_step_reuses_the_convolution_buffers(monkeypatch):
    """After a warm-up step, a DCGAN train_step on the fast path allocates no im2col /
    col2im array: no buffer is made, every layer keeps the same buffers, and the step's
    peak allocation is well below that of the same step with fresh arrays per call (the
    control, in which the count is not zero)."""
    from npgan.fast import conv as fast_conv
    from npgan.fast import inplace
    zeros, made = inplace.zeros, []
    monkeypatch.setattr(inplace, "zeros", lambda shape, like: made.append(shape) or zeros(shape, like))
    peaks = {}
    for reuse in (True, False):
        if not reuse:                                     # the control: no buffers kept
            monkeypatch.setattr(fast_conv, "buffer",
                                lambda buffers, name, shape, like: inplace.buffer(None, name, shape, like))
        step, convs = dcgan_step(get_backend("numpy", dtype="float32", seed=11))
        step()
        step()                                            # warm-up: the buffers exist
        kept = [(id(b), b.shape) for layer in convs for b in vars(layer).get("scratch", {}).values()]
        made.clear()
        peaks[reuse] = traced_peak(step)
        step()
        if reuse:
            assert made == [] and len(kept) == 4 * 5      # 4 layers, 5 buffers each:
            # im2col's padded copy and cols, dcols, dW, and col2im's phase sums
            assert kept == [(id(b), b.shape) for layer in convs for b in layer.scratch.values()]
        else:
            assert len(made) >= 2 * 4 and kept == []      # fresh arrays at every call
    assert peaks[True] < 0.6 * peaks[False], peaks


# ------------------------------------------------- (g) freed memory stays in the process
CHURN = """
import resource, sys
import numpy as np
from npgan import get_backend
from npgan.backend import keep_freed_host_memory
get_backend("numpy")                # must change nothing
if sys.argv[1] == "opt-in":
    print("applied" if keep_freed_host_memory() else "not applied")
def churn():                        # a step's worth of arrays of a few MB, then all freed
    arrays = [np.ones(3 << 18, np.float32) for _ in range(50)]     # 50 x 3 MiB
    return sum(float(a[0]) for a in arrays)
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(); churn()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 2)
"""


def page_faults_per_churn(mode, **env):
    """(faults per churn, what keep_freed_host_memory said) in a fresh process."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "NPGAN_KEEP_FREED_MEMORY")} | env
    done = subprocess.run([sys.executable, "-c", CHURN, mode], env=env, capture_output=True,
                          text=True, check=True)
    lines = done.stdout.split("\n")
    return int(lines[-2]), (lines[0] if mode == "opt-in" else None)


@pytest.mark.slow
def test_freed_memory_is_kept_only_when_asked_and_never_over_the_users_malloc_settings():
    """get_backend("numpy") leaves the C library's malloc alone: freed arrays fault
    their pages in again at every step (the control). keep_freed_host_memory(), the
    explicit opt-in of the command-line programs, makes the next step reuse them without
    page faults, and does nothing where the user tunes malloc (MALLOC_* or
    GLIBC_TUNABLES) or says NPGAN_KEEP_FREED_MEMORY=0."""
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("keep_freed_host_memory tunes glibc's malloc; this C library is not glibc")
    control, _ = page_faults_per_churn("library-only")
    kept, said = page_faults_per_churn("opt-in")
    assert control > 30_000, control          # 50 x 3 MiB = 38,400 pages of 4 KiB
    assert said == "applied" and kept < 0.01 * control, (kept, control, said)
    for env in ({"MALLOC_TRIM_THRESHOLD_": "131072"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
                {"NPGAN_KEEP_FREED_MEMORY": "0"}):
        faults, said = page_faults_per_churn("opt-in", **env)
        assert said == "not applied" and faults > 0.5 * control, (env, faults, said)


# ------------------------------------------------- (h) gradients keep the layout of the data
def test_linear_input_gradient_is_laid_out_like_its_input():
    """FastLinear's dx comes out column-major when x is (the same numbers either way)."""
    from npgan.fast.inplace import column_major
    be = get_backend("numpy", dtype="float64", seed=3)
    layer = accelerate(Linear(12, 5, be))
    x = be.randn((7, 12))
    dout = be.randn((7, 5))
    for x_in in (x, np.asfortranarray(x)):
        layer.forward(x_in)
        dx = layer.backward(dout, param_grads=False)
        np.testing.assert_allclose(dx, dout @ layer.W.data, rtol=1e-12)
        assert column_major(dx) == column_major(x_in), (dx.strides, x_in.strides)
    assert not column_major(x) and column_major(np.asfortranarray(x))


@pytest.mark.parametrize("keep_layout", [True, False])
def test_dcgan_gradients_stay_channel_major_through_d(monkeypatch, keep_layout):
    """In D's backward the gradient that comes back through the Linear into D's second
    block (BatchNorm2d(16), Conv2d(8, 16)) is laid out like their data, (C, H, W, B) in
    memory (the batch fastest), so neither copies it nor mixes layouts. The control
    (Linear's dx always row-major) shows the test can fail."""
    from npgan.fast import FastBatchNorm2d, FastConv2d, layers
    if not keep_layout:
        monkeypatch.setattr(layers, "column_major", lambda a: False)
    seen = []
    for cls in (FastConv2d, FastBatchNorm2d):
        def spy(self, dout, *args, _backward=cls.backward, **kwargs):
            if getattr(self, "num_features", None) == 16 or getattr(self, "out_ch", 0) == 16:
                seen.append((repr(self), dout.strides[0] == dout.itemsize))   # D's 2nd block
            return _backward(self, dout, *args, **kwargs)
        monkeypatch.setattr(cls, "backward", spy)
    step, _ = dcgan_step(get_backend("numpy", dtype="float32", seed=5))
    step()
    assert len(seen) == 2 * 3                     # 2 layers, 3 backwards each
    channel_major = [ok for _, ok in seen]
    assert all(channel_major) if keep_layout else not any(channel_major), seen

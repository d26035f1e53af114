"""The fast path (npgan.fast) against the reference (npgan/layers.py, conv.py, norm.py,
optim.py): the same numbers on random inputs, layer by layer, optimizer by optimizer,
and over whole training runs.

"The same" is bit for bit where both compute the same operations in the same order,
else within 1e-6 (float32) or 1e-12 (float64) of the tensor's largest value: sums over
many terms round in another order, so an element's own size is no fair scale.
Over training steps Adam divides by |g| + eps, so a gradient near eps (1e-8) turns a
last-bit difference into a larger one: the small models here stay within 1e-6 in
float32; the default MLP is compared in float64 (it drifts to 2e-6 in float32).
"""
import numpy as np
import pytest

from npgan import (Adam, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU,
                   Linear, Parameter, ReLU, RMSprop, Sequential)
from npgan.fast import TWINS, accelerate
from npgan.layers import Layer
from tests.backends import ALL_SPECS, FLOAT64_SPECS, host, make_backend

TOL = {"float32": 1e-6, "float64": 1e-12}


def assert_same(got, want, dtype, exact, what):
    """exact: bit for bit; else max |got - want| <= TOL * max |want| (see the module doc)."""
    got, want = host(got), host(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=f"{what}: not bit-identical")
        return
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    worst = np.unravel_index(np.argmax(np.abs(got - want)), want.shape) if want.size else ()
    assert err <= TOL[dtype] * max(scale, np.finfo(want.dtype).tiny), (
        f"{what}: max |diff| {err:.3g} > {TOL[dtype]:g} * max |want| {scale:.3g} "
        f"at {worst}: fast {got[worst]!r}, reference {want[worst]!r}")


# name -> (make(backend), input shape, outputs that are bit-identical by construction)
# FastLinear's dW and LeakyReLU's mask are the reference's operations; Conv2d's dx and
# ConvTranspose2d's y go through col2im, whose phase sums add in another order; BatchNorm
# folds its factors; a column-major input makes FastLinear's dx another product.
CASES = {
    "Linear": (lambda be: Linear(12, 7, be), (5, 12), {"y", "dx", "W", "b", "g_dout"}),
    "LeakyReLU": (lambda be: LeakyReLU(0.2), (5, 9), {"y", "dx", "g_dout"}),
    "LeakyReLU(-1.5)": (lambda be: LeakyReLU(-1.5), (5, 9), {"y", "dx", "g_dout"}),
    "ReLU": (lambda be: ReLU(), (4, 3, 5), {"y", "dx", "g_dout"}),
    "Conv2d": (lambda be: Conv2d(3, 4, 4, 2, 1, backend=be), (5, 3, 8, 8),
               {"y", "W", "b", "g_dout"}),
    "Conv2d(s1)": (lambda be: Conv2d(2, 3, 3, 1, 0, backend=be), (3, 2, 6, 5),
                   {"y", "W", "b", "g_dout"}),
    "ConvTranspose2d": (lambda be: ConvTranspose2d(4, 3, 4, 2, 1, backend=be), (5, 4, 4, 4),
                        {"dx", "W", "b"}),
    "BatchNorm1d": (lambda be: BatchNorm1d(6, be), (8, 6), set()),
    "BatchNorm2d": (lambda be: BatchNorm2d(3, be), (4, 3, 5, 5), set()),
}


def randomized(layer, be):
    """Affine BatchNorm starts as the identity: give gamma and beta random values."""
    for p in layer.parameters():
        p.data[...] = be.uniform(0.5, 1.5, tuple(p.shape))
    return layer


def pair(case, spec, dtype, seed=0):
    """(reference layer, its fast twin, backend): the same parameters (same seed)."""
    make, shape, exact = CASES[case]
    ref = randomized(make(make_backend(spec, dtype, seed)), make_backend(spec, dtype, seed + 1))
    fast = randomized(make(make_backend(spec, dtype, seed)), make_backend(spec, dtype, seed + 1))
    accelerate(fast)
    assert type(fast) is TWINS[type(ref)] and type(fast) is not type(ref)
    return ref, fast, make_backend(spec, dtype, seed + 2), shape, exact


def test_every_twin_has_a_case_here():
    """A twin added to npgan.fast without a case here fails this test (the control of
    the coverage of the parity tests below)."""
    layers = {ref for ref in TWINS if issubclass(ref, Layer)}
    covered = {type(make(make_backend(("numpy", None), "float64"))) for make, _, _ in CASES.values()}
    assert layers <= covered, layers - covered
    assert len(DOUBLE) >= 4, DOUBLE


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_layer_gives_the_reference_numbers(spec, dtype, case):
    """forward and backward, with every combination of param_grads and input_grad, three
    times over on new inputs (the kept buffers must not leak numbers between calls), in
    training and in eval mode."""
    if spec[1] == "no_float64" and dtype == "float64":
        pytest.skip("no float64 on this device")
    ref, fast, be, shape, exact = pair(case, spec, dtype)
    flags = [(True, True), (False, True), (True, False)]
    for round_, (param_grads, input_grad) in enumerate(flags):
        for layer in (ref, fast):
            layer.zero_grad()
            layer.train(round_ < 2)
        x = be.randn(shape)
        y_ref, y_fast = ref.forward(x), fast.forward(x)
        assert_same(y_fast, y_ref, dtype, "y" in exact, f"{case} y")
        dout = be.randn(tuple(y_ref.shape))
        dx_ref = ref.backward(dout, param_grads=param_grads, input_grad=input_grad)
        dx_fast = fast.backward(dout, param_grads=param_grads, input_grad=input_grad)
        assert (dx_fast is None) == (dx_ref is None) == (not input_grad)
        if input_grad:
            assert_same(dx_fast, dx_ref, dtype, "dx" in exact, f"{case} dx")
        for (name, p_ref), (_, p_fast) in zip(ref.named_parameters(), fast.named_parameters()):
            assert_same(p_fast.grad, p_ref.grad, dtype, name in exact, f"{case} d{name}")
        for (name, b_ref), (_, b_fast) in zip(ref.named_buffers(), fast.named_buffers()):
            assert_same(b_fast, b_ref, dtype, False, f"{case} {name}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_linear_dx_in_the_inputs_layout_gives_the_same_numbers(dtype):
    """A column-major x (a convolution's output seen as (B, C*H*W)) takes FastLinear's
    other product; its dx has the reference's numbers (another order of the sum)."""
    ref, fast, be, _, _ = pair("Linear", ("numpy", None), dtype)
    x = np.asfortranarray(host(be.randn((6, 12))))
    dout = be.randn((6, 7))
    ref.forward(x)
    fast.forward(x)
    dx_ref, dx_fast = ref.backward(dout), fast.backward(dout)
    assert dx_fast.flags.f_contiguous and not dx_ref.flags.f_contiguous
    assert_same(dx_fast, dx_ref, dtype, False, "Linear dx, column-major x")
    assert_same(fast.W.grad, ref.W.grad, dtype, True, "Linear dW, column-major x")


DOUBLE = [name for name, (make, _, _) in CASES.items()
          if make(make_backend(("numpy", None), "float64")).supports_double_backward]


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("case", DOUBLE)
def test_fast_double_backward_gives_the_reference_numbers(spec, case):
    """backward(create_graph=True), then double_backward(g_dx): the second pass of
    WGAN-GP, on both paths, in float64."""
    ref, fast, be, shape, exact = pair(case, spec, "float64")
    x = be.randn(shape)
    outs = []
    for layer in (ref, fast):
        layer.zero_grad()
        y = layer.forward(x)
        dout = be.randn(tuple(y.shape)) if not outs else outs[0][0]
        dx = layer.backward(dout, create_graph=True)
        g_dx = be.randn(tuple(dx.shape)) if not outs else outs[0][1]
        outs.append((dout, g_dx, layer.double_backward(g_dx)))
    assert_same(outs[1][2], outs[0][2], "float64", "g_dout" in exact, f"{case} g_dout")
    for (name, p_ref), (_, p_fast) in zip(ref.named_parameters(), fast.named_parameters()):
        assert_same(p_fast.grad, p_ref.grad, "float64", name in exact, f"{case} d{name}")


# ------------------------------------------------------------------------ optimizers
OPTIMIZERS = {
    "Adam": (Adam, dict(lr=2e-4, betas=(0.5, 0.999))),
    "Adam(weight_decay)": (Adam, dict(lr=1e-2, weight_decay=0.1)),
    "RMSprop": (RMSprop, dict(lr=5e-5)),
    "RMSprop(momentum, centered, weight_decay)":
        (RMSprop, dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=0.01)),
}


@pytest.mark.parametrize("spec", ALL_SPECS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fast_optimizer_gives_the_reference_numbers(spec, dtype, name):
    """Six steps with new random gradients each: every state array bit for bit (the
    same operations in the same order), the parameters to rounding (FastAdam folds its
    bias corrections; RMSprop's lr * g / denom is lr * (g / denom) there). With weight
    decay the states see the parameters, so they too agree to rounding only."""
    if spec[1] == "no_float64" and dtype == "float64":
        pytest.skip("no float64 on this device")
    be = make_backend(spec, dtype, seed=3)
    start = [be.randn(shape) for shape in [(40, 30), (30,), (7,)]]
    cls, hyper = OPTIMIZERS[name]
    opts = []
    for fast in (False, True):
        opt = cls([Parameter(a + 0.0) for a in start], **hyper)
        opts.append(accelerate(opt) if fast else opt)
    assert type(opts[1]) is TWINS[type(opts[0])]
    for _ in range(6):
        grads = [be.randn(tuple(a.shape)) for a in start]
        for opt in opts:
            for p, g in zip(opt.params, grads):
                p.grad[...] = g
            opt.step()
    ref, fast = opts
    for i, (p_ref, p_fast) in enumerate(zip(ref.params, fast.params)):
        assert_same(p_fast.data, p_ref.data, dtype, False, f"{name} param {i}")
    for key, arrays in ref.state_arrays().items():
        for i, (a, b) in enumerate(zip(fast.state_arrays()[key], arrays)):
            assert_same(a, b, dtype, not hyper.get("weight_decay"), f"{name} {key}[{i}]")


def test_accelerate_walks_containers_and_keeps_the_objects():
    """A Sequential inside a Sequential, a SpectralNorm's wrapped layer: every layer with a
    twin gets its class; the objects, parameters and other classes stay. A subclass of a
    reference class is not swapped (the control: its own forward would be lost)."""
    from npgan import SpectralNorm, Tanh

    class MyLinear(Linear):
        pass
    be = make_backend(("numpy", None), "float64")
    inner = Sequential(Linear(4, 4, be), ReLU())
    sn = SpectralNorm(Linear(4, 4, be), be)
    model = Sequential(inner, sn, MyLinear(4, 4, be), Tanh())
    params = [id(p) for p in model.parameters()]
    assert accelerate(model) is model
    assert [type(layer).__name__ for layer in inner.layers] == ["FastLinear", "FastReLU"]
    assert type(sn).__name__ == "SpectralNorm" and type(sn.layer).__name__ == "FastLinear"
    assert type(model.layers[2]) is MyLinear and type(model.layers[3]) is Tanh
    assert [id(p) for p in model.parameters()] == params


# ------------------------------------------------------------------ whole training runs
def noise_driven(model):
    """Names of the biases that feed a BatchNorm: it subtracts their mean at once, so
    their gradient is 0 up to rounding, and Adam (which divides by |g|) moves them by
    +-lr steps whose sign is that rounding's. Both paths move them, by noise: these
    are compared by size only (|b| <= lr * steps)."""
    from npgan.norm import BatchNorm1d, BatchNorm2d
    layers = getattr(model, "layers", [])
    return {f"{i}.b" for i, (layer, after) in enumerate(zip(layers, layers[1:]))
            if isinstance(after, (BatchNorm1d, BatchNorm2d)) and hasattr(layer, "b")}


def run_steps(make_models, fast, dtype, steps=4):
    """A few npgan.gan.train_step calls from one seed: {name: parameter after them}."""
    from npgan import train_step
    be = make_backend(("numpy", None), dtype, seed=5)
    G, D = make_models(be)
    opt_g = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if fast:
        G, D, opt_g, opt_d = (accelerate(m) for m in (G, D, opt_g, opt_d))
    data = [be.uniform(-1.0, 1.0, (16, 64)) for _ in range(steps)]
    for real in data:
        train_step(G, D, opt_g, opt_d, [real], be, latent_dim=8)
    noisy = {f"G.{n}" for n in noise_driven(G)} | {f"D.{n}" for n in noise_driven(D)}
    return {f"{m}.{n}": host(p.data).copy() for m, model in (("G", G), ("D", D))
            for n, p in model.named_parameters()}, noisy


def mlp(be):
    from npgan import build_discriminator, build_generator
    return (build_generator(be, latent_dim=8, hidden=(32, 48), out_dim=64),
            build_discriminator(be, in_dim=64, hidden=(48, 32)))


def dcgan(be):
    from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
    return (build_dcgan_generator(be, latent_dim=8, base_channels=4, image_size=8),
            build_dcgan_discriminator(be, base_channels=4, image_size=8))


def assert_models_agree(fast, ref, noisy, dtype, steps):
    for name, want in ref.items():
        if name in noisy:
            assert np.max(np.abs(fast[name])) <= 2e-4 * steps * 1.01, name
        else:
            assert_same(fast[name], want, dtype, False, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_models", [mlp, dcgan], ids=["mlp", "dcgan"])
def test_training_steps_agree_on_both_paths(make_models, dtype):
    """Four D+G steps of the MLP and of the DCGAN (BatchNorm, convolutions): every
    parameter within 1e-6 (float32) / 1e-12 (float64) of the reference's largest, but
    the biases that feed a BatchNorm (noise_driven: 3 in the DCGAN, none in the MLP)."""
    (ref, noisy), (fast, _) = (run_steps(make_models, f, dtype) for f in (False, True))
    assert len(noisy) == (3 if make_models is dcgan else 0), noisy
    assert_models_agree(fast, ref, noisy, dtype, steps=4)


@pytest.mark.slow
@pytest.mark.parametrize("model, changes, n_noisy", [
    ("mlp", {}, 0), ("dcgan", {}, 4), ("dcgan", {"r1": 0.0}, 5)],
    ids=["mlp", "dcgan", "dcgan-r1=0"])
def test_train_on_the_reference_path_and_the_fast_path_agree(tmp_path, model, changes, n_noisy):
    """npgan.train.train on MNIST-5k, 6 steps, TrainConfig(reference=True) against the
    default: the checkpoints' parameters (G, D, G's EMA) agree within 1e-6 relative
    (noise_driven biases: by size; BatchNorm's running means, which hold those biases,
    are left out), and the run on the fast path did use the twins. The defaults train
    with R1 (its double backward on both paths; the DCGAN's D then has no BatchNorm,
    so only G's two biases before a BatchNorm, and their EMA, are noise-driven); with
    r1=0 the DCGAN's D has its BatchNorm (one more)."""
    from npgan.checkpoint import load_checkpoint
    from npgan.config import TrainConfig
    from npgan.train import train
    saved, used, noisy = {}, {}, set()
    for reference in (True, False):
        out = tmp_path / ("reference" if reference else "fast")
        config = TrainConfig(dataset="mnist-5k", model=model, latent_dim=8, g_hidden=(32,),
                             d_hidden=(32,), base_channels=4, batch_size=16, max_steps=6,
                             log_every=3, out=str(out), reference=reference, **changes)

        def on_step(run):
            used.setdefault(reference, type(run.G.layers[0]).__name__)
            for prefix, m in (("G", run.G), ("G_ema", run.G), ("D", run.D)):
                noisy.update(f"{prefix}/{n}" for n in noise_driven(m))
        train(config, progress=False, on_step=on_step)
        ck = load_checkpoint(out / "checkpoint.npz")
        saved[reference] = {k: np.asarray(ck.arrays[k]) for k in ck.arrays
                            if k.startswith(("G", "D")) and "@" not in k}
    assert used == {True: "Linear", False: "FastLinear"}, used
    assert saved[True].keys() == saved[False].keys() and len(saved[True]) > 8, saved[True].keys()
    assert noisy <= saved[True].keys() and len(noisy) == n_noisy, noisy
    assert_models_agree(saved[False], saved[True], noisy, "float32", steps=6)


@pytest.mark.slow
def test_the_reference_flag_trains_end_to_end_from_the_command_line(tmp_path):
    """examples/train_mnist.py --reference --dry-run: 3 steps of the default MLP on the
    textbook path, the same numbers as without the flag. In float64: in float32 the
    paths' last-bit differences (FastAdam's folded update) reach 2e-6 of the weights
    after one step, because Adam divides by |g| + eps and some gradients are near eps."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from npgan.checkpoint import load_checkpoint
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    saved = {}
    for flags in ([], ["--reference"]):
        out = tmp_path / ("reference" if flags else "fast")
        done = subprocess.run([sys.executable, "examples/train_mnist.py", "--dataset", "mnist-5k",
                               "--dry-run", "--dtype", "float64", "--out", str(out), *flags],
                              cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "done: 3 steps" in done.stdout, done.stderr
        ck = load_checkpoint(out / "checkpoint.npz")
        assert ck.config["reference"] is bool(flags)
        saved[bool(flags)] = {k: np.asarray(ck.arrays[k]) for k in ck.arrays
                              if k.startswith(("G", "D"))}
    assert saved[True].keys() == saved[False].keys() and len(saved[True]) >= 10
    for key, want in saved[True].items():
        assert_same(saved[False][key], want, "float64", False, key)

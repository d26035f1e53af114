"""DCGAN builders: shapes, the PyTorch-equivalent architecture, one GAN step on every
backend, G's gradient through the convolutional D, BatchNorm buffers and eval mode."""
import numpy as np
import pytest

from npgan import Adam, get_backend, get_g_loss, train_step
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
from npgan.gradcheck import assert_gradients_ok, directional_check
from tests.backends import FLOAT64_SPECS, host, make_backend

Z = 8   # a small latent size, with base_channels=4: small enough for float64 checks


def small_dcgan(be, init="normal"):
    G = build_dcgan_generator(be, latent_dim=Z, base_channels=4, init=init)
    D = build_dcgan_discriminator(be, base_channels=4, init=init)
    return G, D


def count(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def test_shapes_and_the_pytorch_parameter_count():
    be = get_backend("numpy", seed=0)
    G, D = build_dcgan_generator(be), build_dcgan_discriminator(be)
    x_fake = G.forward(be.randn((3, 100)))
    assert x_fake.shape == (3, 784) and np.all(np.abs(x_fake) <= 1.0)   # Tanh pixels
    assert D.forward(x_fake).shape == (3, 1)
    # the same layers in torch.nn have these counts (Linear 100->6272 with its BatchNorm1d,
    # ConvT 128->64 and 64->1; Conv 1->64 and 64->128, BatchNorm2d(128), Linear 6272->1)
    assert count(G) == 633_472 + 12_544 + 131_136 + 128 + 1_025
    assert count(D) == 1_088 + 131_200 + 256 + 6_273
    # N(0, 0.02) weights, as in the DCGAN paper
    assert abs(float(np.std(G[4].W.data)) - 0.02) < 0.001


def test_batchnorm_buffers_are_named_for_checkpoints():
    be = get_backend("numpy", seed=1)
    G, D = small_dcgan(be)
    assert [n for n, _ in G.named_buffers()] == [
        "1.running_mean", "1.running_var", "5.running_mean", "5.running_var"]
    assert [n for n, _ in D.named_buffers()] == ["4.running_mean", "4.running_var"]
    assert ("1.weight" in dict(G.named_parameters())) and ("4.bias" in dict(D.named_parameters()))


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_one_train_step_runs_and_moves_both_nets(spec):
    be = make_backend(spec, "float32", seed=2)
    G, D = small_dcgan(be)
    opt_g = Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_before = [host(p.data).copy() for p in G.parameters()]
    d_before = [host(p.data).copy() for p in D.parameters()]
    d_stats_before = host(D[4].running_mean).copy()
    stats = train_step(G, D, opt_g, opt_d, [be.uniform(-1, 1, (6, 784))], be, latent_dim=Z)
    assert be.host_transfers == 0 or be.name == "numpy"       # no sync inside the step
    assert all(not np.array_equal(a, host(p.data)) for a, p in zip(g_before, G.parameters()))
    assert all(not np.array_equal(a, host(p.data)) for a, p in zip(d_before, D.parameters()))
    assert not np.array_equal(d_stats_before, host(D[4].running_mean))
    assert all(np.isfinite(be.item(v)) for v in stats.values())
    assert all(p.data.dtype == be.dtype for p in G.parameters())


def test_same_seed_same_numbers():
    def run(seed):
        be = get_backend("numpy", seed=seed)
        G, D = small_dcgan(be)
        opts = [Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D)]
        train_step(G, D, *opts, [be.uniform(-1, 1, (4, 784))], be, latent_dim=Z)
        return [host(p.data) for p in G.parameters()]

    assert all(np.array_equal(a, b) for a, b in zip(run(3), run(3)))


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_generator_gradient_through_the_dcgan_discriminator(spec):
    """End to end, z -> G -> D -> loss with BatchNorm in train mode in both nets: the
    gradient of every G tensor along a random direction matches central differences."""
    be = make_backend(spec, "float64", seed=4)
    G, D = small_dcgan(be, init="default")
    z = be.randn((4, Z))
    loss_fn = get_g_loss("non-saturating")
    G.zero_grad()
    D.zero_grad()
    _, dlogits = loss_fn(D.forward(G.forward(z)))
    G.backward(D.backward(dlogits, param_grads=False))

    def unit_direction(shape):
        r = host(be.randn(shape))
        return be.asarray(r / np.sqrt(np.sum(r * r)))

    reports = [directional_check(f"G.{name}", lambda: loss_fn(D.forward(G.forward(z)))[0],
                                 p.data, p.grad, unit_direction(p.shape), h=1e-6, rtol=1e-5,
                                 atol=1e-10)
               for name, p in G.named_parameters()]
    assert len(reports) == 10
    assert_gradients_ok(reports)
    assert all(not np.any(host(p.grad)) for p in D.parameters())    # D frozen: no grads


def test_eval_mode_samples_do_not_depend_on_the_batch():
    """What sampling needs: G.eval() uses running statistics, so a sample is the same
    alone or in a batch; in train mode it is not."""
    be = get_backend("numpy", dtype="float64", seed=5)
    G, _ = small_dcgan(be)
    z = be.randn((5, Z))
    for _ in range(3):
        G.forward(be.randn((16, Z)))                       # accumulate running statistics
    assert not np.allclose(G.forward(z)[:2], G.forward(z[:2]))
    G.eval()
    np.testing.assert_allclose(G.forward(z)[:2], G.forward(z[:2]), rtol=1e-12, atol=1e-12)
    assert all(not layer.training for layer in G.layers)


def test_image_size_must_allow_two_stride_2_steps():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_dcgan_generator(get_backend("numpy"), image_size=30)

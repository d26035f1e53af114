"""DCGAN (Radford et al. 2015) for 28 x 28 images: convolutional G and D.

They keep the MLP's interface, so npgan.gan.d_step / g_step / train_step use them
unchanged: G maps z (B, Z) to images flattened as (B, P), D maps (B, P) to a logit (B, 1).

    G: z -> Linear -> BN -> ReLU -> (2c, 7, 7) -> ConvT 14x14 (c) -> BN -> ReLU
         -> ConvT 28x28 (1) -> Tanh -> (B, 784)
    D: (B, 784) -> (1, 28, 28) -> Conv 14x14 (c) -> LeakyReLU -> Conv 7x7 (2c) -> BN
         -> LeakyReLU [-> MinibatchStd] -> Linear -> logit
with c = base_channels (64). Every ConvT/Conv has k = 4, s = 2, p = 1, which doubles or
halves the side exactly; the paper's guidelines: no pooling (strided convolutions),
BatchNorm in both nets but not on G's output or D's input, ReLU in G with Tanh at the
end, LeakyReLU(0.2) in D, weights ~ N(0, 0.02).

Conditional DCGAN (num_classes = C > 0, see npgan.conditional): G's Linear takes
[z, onehot(y)] (Z + C inputs); D gets the label as C constant 28 x 28 planes beside the
image, so its first Conv sees channels + C input channels.

BatchNorm makes the train/eval mode matter: call G.eval() to sample with the running
statistics (and G.train() before the next step). In d_step, D's BatchNorm sees the real
and the fake batch separately, each normalized with its own statistics, as in
pytorch/examples' DCGAN.
reference: https://arxiv.org/abs/1511.06434
"""
from __future__ import annotations

from npgan.conditional import Conditional
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape
from npgan.layers import LeakyReLU, Linear, ReLU, Sequential, Tanh
from npgan.mbstd import MinibatchStd
from npgan.norm import BatchNorm1d, BatchNorm2d
from npgan.spectral import spectral_norm_all


def _check_size(image_size):
    if image_size % 4 != 0:
        raise ValueError(f"image_size must be divisible by 4 (two stride-2 steps), "
                         f"got {image_size}")
    return image_size // 4


def build_dcgan_generator(backend, latent_dim=100, base_channels=64, image_size=28,
                          channels=1, init="normal", num_classes=0):
    """G: z (B, Z) -> images (B, channels * image_size**2) in [-1, 1]; see the module doc."""
    c, side = base_channels, _check_size(image_size)      # side = 7 for MNIST
    net = Sequential(
        Linear(latent_dim + num_classes, 2 * c * side * side, backend, init),  # -> (B, 2c*7*7)
        BatchNorm1d(2 * c * side * side, backend),
        ReLU(),
        Reshape((2 * c, side, side)),                                    # -> (B, 2c, 7, 7)
        ConvTranspose2d(2 * c, c, 4, 2, 1, backend=backend, init=init),  # -> (B, c, 14, 14)
        BatchNorm2d(c, backend),
        ReLU(),
        ConvTranspose2d(c, channels, 4, 2, 1, backend=backend, init=init),  # -> (B, 1, 28, 28)
        Tanh(),
        Flatten(),                                                       # -> (B, P)
    )
    return Conditional(net, num_classes, backend) if num_classes else net


def build_dcgan_discriminator(backend, base_channels=64, image_size=28, channels=1,
                              slope=0.2, init="normal", num_classes=0, spectral_norm=False,
                              batchnorm=True, mbstd=False):
    """D: images (B, channels * image_size**2) -> logits (B, 1); see the module doc.
    spectral_norm: both Conv2d and the Linear divide their weight by its largest
    singular value (npgan.spectral; BatchNorm stays as it is).
    batchnorm=False: no BatchNorm2d, the WGAN-GP critic and the D of R1 (a gradient
    penalty needs each sample's score to depend on that sample alone, and a double
    backward of every layer).
    mbstd: the batch's spread as one more 7 x 7 plane before the Linear (npgan.mbstd,
    Karras et al. 2018): (B, 2c, 7, 7) -> (B, 2c + 1, 7, 7)."""
    c, side = base_channels, _check_size(image_size)
    cin = channels + num_classes                          # the label planes, if any
    norm = [BatchNorm2d(2 * c, backend)] if batchnorm else []
    spread = [MinibatchStd()] if mbstd else []            # -> (B, 2c + 1, 7, 7)
    width = (2 * c + len(spread)) * side * side
    net = Sequential(
        Reshape((cin, image_size, image_size)),                          # (B, P) -> (B, 1, 28, 28)
        Conv2d(cin, c, 4, 2, 1, backend=backend, init=init),             # -> (B, c, 14, 14)
        LeakyReLU(slope),
        Conv2d(c, 2 * c, 4, 2, 1, backend=backend, init=init),           # -> (B, 2c, 7, 7)
        *norm,
        LeakyReLU(slope),
        *spread,
        Flatten(),                                                       # -> (B, 2c*7*7 [+ 49])
        Linear(width, 1, backend, init),                                 # -> (B, 1)
    )
    if spectral_norm:
        net = Sequential(*spectral_norm_all(net.layers, backend))
    if num_classes:
        return Conditional(net, num_classes, backend, planes=image_size * image_size)
    return net

"""npgan: a GAN library written from scratch, with handwritten backward passes,
on NumPy (CPU) or CuPy (CUDA) through one backend switch.

Start reading at npgan/layers.py, then losses.py, gan.py (the G step is the lesson).
"""
from npgan.backend import (BACKENDS, Backend, BackendError, get_array_module,
                           get_backend, to_numpy)
from npgan.gan import (StepSettings, build_discriminator, build_generator, d_step, g_step,
                       train_step)
from npgan.gradcheck import (GradientCheckError, assert_gradients_ok, check_layer,
                             directional_check, numerical_grad, rel_error)
from npgan.layers import (Layer, LeakyReLU, Linear, Parameter, ReLU, Sequential,
                          Sigmoid, Tanh)
from npgan.losses import (G_LOSSES, bce, bce_with_logits, d_loss, g_loss_minimax,
                          g_loss_nonsaturating, get_g_loss, gradient_penalty, hinge_d_loss,
                          sigmoid, softmax_cross_entropy, softplus, wasserstein_d_loss,
                          wasserstein_g_loss)
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape
from npgan.norm import BatchNorm1d, BatchNorm2d, Dropout
from npgan.dcgan import build_dcgan_discriminator, build_dcgan_generator
from npgan.optim import SGD, Adam, RMSprop
from npgan.conditional import Conditional, random_labels
from npgan.spectral import SpectralNorm
from npgan.wgan import clip_parameters, critic_step, penalty_backward
from npgan.augment import DiffAugment
from npgan.mbstd import MinibatchStd
from npgan.r1 import r1_penalty

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "Backend", "BackendError", "get_array_module", "get_backend", "to_numpy",
    "StepSettings", "build_discriminator", "build_generator", "d_step", "g_step", "train_step",
    "GradientCheckError", "assert_gradients_ok", "check_layer", "directional_check",
    "numerical_grad", "rel_error",
    "Layer", "LeakyReLU", "Linear", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "G_LOSSES", "bce", "bce_with_logits", "d_loss", "g_loss_minimax",
    "g_loss_nonsaturating", "get_g_loss", "sigmoid", "softmax_cross_entropy", "softplus",
    "gradient_penalty", "hinge_d_loss", "wasserstein_d_loss", "wasserstein_g_loss",
    "Conv2d", "ConvTranspose2d", "Flatten", "Reshape", "BatchNorm1d", "BatchNorm2d", "Dropout",
    "build_dcgan_discriminator", "build_dcgan_generator",
    "SGD", "Adam", "RMSprop", "Conditional", "random_labels", "SpectralNorm",
    "clip_parameters", "critic_step", "penalty_backward",
    "DiffAugment", "MinibatchStd", "r1_penalty",
]

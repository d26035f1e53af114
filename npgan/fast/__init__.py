"""The fast path: twins of the reference layers and optimizers that give the same numbers
faster. Training uses it by default (TrainConfig.reference=False); a learner reads the
reference code in npgan/layers.py, conv.py, norm.py and optim.py, not this.

Each twin subclasses its reference class and overrides only forward / backward (or
step): same parameters, same attributes, same caches, plus the arrays it reuses, made
at its first call. tests/test_fast.py checks every twin against its reference (the
same bits where the operations come in the same order, else 1e-6 relative in float32).

    >>> G = accelerate(build_generator(be))                  # in place; returns G
    >>> opt_g = accelerate(Adam(G.parameters(), lr=2e-4))     # optimizers too

What is here, one idea per module:
  inplace.py  into (`out=`), kept buffers, column_major: the tools below use them
  threads.py  map_blocks and its thread pool, for the optimizers' elementwise steps
  layers.py   FastLinear (kept dW, dx in x's layout), FastLeakyReLU, FastReLU
  conv.py     FastConv2d, FastConvTranspose2d: strided im2col, phase-sum col2im, buffers
  norm.py     FastBatchNorm1d, FastBatchNorm2d: shared sums, folded factors, one buffer
  optim.py    FastAdam, FastRMSprop: in place, in blocks on every core
Why each one earns its place: the module docs and docs/performance.md. Gone, as they
earned less than 3% of a step: Tanh's in-place product, and SGD's in-place step (training
never uses SGD). LeakyReLU's kept mask (about 2% of a step's time by itself) and the
in-place bias adds stay: without them a DCGAN step (base 32) took 6% longer and its
peak memory rose from 7.9 to 13.2 MiB.
"""
from __future__ import annotations

from npgan.conv import Conv2d, ConvTranspose2d
from npgan.fast.conv import FastConv2d, FastConvTranspose2d
from npgan.fast.layers import FastLeakyReLU, FastLinear, FastReLU
from npgan.fast.norm import FastBatchNorm1d, FastBatchNorm2d
from npgan.fast.optim import FastAdam, FastRMSprop
from npgan.fast.threads import map_blocks, num_threads, set_num_threads
from npgan.layers import Layer, LeakyReLU, Linear, ReLU
from npgan.norm import BatchNorm1d, BatchNorm2d
from npgan.optim import Adam, RMSprop

# reference class -> its fast twin (exact classes: a user's subclass keeps its own code)
TWINS = {
    Linear: FastLinear, LeakyReLU: FastLeakyReLU, ReLU: FastReLU,
    Conv2d: FastConv2d, ConvTranspose2d: FastConvTranspose2d,
    BatchNorm1d: FastBatchNorm1d, BatchNorm2d: FastBatchNorm2d,
    Adam: FastAdam, RMSprop: FastRMSprop,
}


def accelerate(obj):
    """Give `obj` (a layer, a model or an optimizer) and every layer inside it its fast
    twin's class, in place: the objects, parameters and states stay the same. Returns obj.
    Containers are found through their attributes (Sequential's layers, SpectralNorm's
    layer, ...); classes without a twin are left as they are."""
    twin = TWINS.get(type(obj))
    if twin is not None:
        obj.__class__ = twin
    for value in vars(obj).values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, Layer):
                accelerate(item)
    return obj


__all__ = ["TWINS", "accelerate", "FastAdam", "FastBatchNorm1d", "FastBatchNorm2d",
           "FastConv2d", "FastConvTranspose2d", "FastLeakyReLU", "FastLinear", "FastReLU",
           "FastRMSprop", "map_blocks", "num_threads", "set_num_threads"]

"""Differentiable augmentation (Zhao et al. 2020): D sees every image, real and fake, randomly
moved, cut and recoloured, and G's gradient comes back through the same transform.

With 4,000 training images D can memorize the real ones. Augmenting only the real images
would teach G to make augmented digits; augmenting both, in D's step and in G's, keeps
the target the same while D never sees the same image twice. Each transform is a layer
without parameters: forward draws its random numbers from the backend's generator (on
its device: the same seed gives the same draws, and exact resume holds) and caches them;
backward applies the same draw's Jacobian, transposed:

    translation  shift by up to 1/8 of the side; what moves in is background   dx = shift back
    cutout       a square of half the side set to background                    dx = masked
    brightness   x + b,  b ~ U(-0.5, 0.5) per image                             dx = dout
    contrast     (x - mean) * k + mean,  k ~ U(0.5, 1.5) per image             dx = scaled around the mean
Images are in [-1, 1] with background -1. Saturation, the paper's third colour
transform, is left out: it does nothing to 1-channel images.
Shapes: x is (B, C, H, W); DiffAugment also takes D's flat (B, P) input.
reference: https://arxiv.org/abs/2006.10738, https://github.com/mit-han-lab/data-efficient-gans
"""
from __future__ import annotations

import math

from npgan.backend import astype, get_array_module, permute_dims
from npgan.backend import host as np
from npgan.layers import Layer, Sequential

BACKGROUND = -1.0


def _check_image(layer, x):
    if x.ndim != 4:
        raise ValueError(f"{layer!r} expects images (B, C, H, W), got {tuple(x.shape)}")


def _draw(backend, shape, like, low=0.0, high=1.0):
    """U(low, high) of `shape` from the backend's generator, in like's dtype."""
    return astype(backend.uniform(low, high, shape), like.dtype)


def _randint(backend, low, high, n, like):
    """n integers uniform in [low, high], as floats of like's dtype: (n,). floor(m u) is
    clipped because m u may round up to m in float32 (as in conditional.random_labels)."""
    xp = get_array_module(like)
    m = high - low + 1
    return xp.clip(xp.floor(_draw(backend, (n,), like) * m), 0.0, m - 1.0) + low


class _Augmentation(Layer):
    """A transform with random parameters drawn by forward from `backend`'s generator."""

    def __init__(self, backend):
        self.backend = backend
        self._ranges = {}                       # n -> arange(n) on the device, made once

    def _arange(self, n, like):
        """0, 1, ..., n-1 as a (n,) array of like's dtype on the backend's device."""
        if (n, like.dtype) not in self._ranges:
            self._ranges[(n, like.dtype)] = astype(self.backend.asarray(np.arange(n)),
                                                   like.dtype)
        return self._ranges[(n, like.dtype)]


class Translation(_Augmentation):
    """Shift each image by (t_h, t_w) whole pixels, |t| <= round(ratio * side); pixels
    shifted in from outside are background (-1).

    y[b, :, i, j] = x[b, :, i - t_h, j - t_w] (background outside). As matrices, with
    S[b, i, k] = 1 if k = i - t_b (a (B, n, n) shift, rows of zeros where nothing comes in):
    forward:  y = S_h @ x @ S_w^T + (valid - 1)        valid = 1 where a pixel came in
    backward: dx = S_h^T @ dout @ S_w                  (the shift moves the gradient back)
    """

    def __init__(self, backend, ratio=0.125):
        super().__init__(backend)
        self.ratio = ratio
        self.shifts = None                      # (S_h (B, 1, H, H), S_w (B, 1, W, W))

    def _shift(self, t, n, like):
        """S (B, 1, n, n): S[b, 0, i, k] = 1 if i - k == t_b, for shifts t (B,)."""
        xp = get_array_module(like)
        r = self._arange(n, like)
        diff = xp.reshape(r, (1, n, 1)) - xp.reshape(r, (1, 1, n))      # (1, n, n): i - k
        return xp.reshape(astype(diff == xp.reshape(t, (-1, 1, 1)), like.dtype),
                          (t.shape[0], 1, n, n))

    def forward(self, x):
        _check_image(self, x)
        xp = get_array_module(x)
        B, _, H, W = x.shape
        s_h, s_w = int(H * self.ratio + 0.5), int(W * self.ratio + 0.5)   # 4 at 28
        S_h = self._shift(_randint(self.backend, -s_h, s_h, B, x), H, x)   # (B, 1, H, H)
        S_w = self._shift(_randint(self.backend, -s_w, s_w, B, x), W, x)   # (B, 1, W, W)
        self.shifts = (S_h, S_w)
        # a row (column) of the output is valid when its row of S holds a 1
        valid = xp.sum(S_h, axis=3, keepdims=True) * \
            xp.reshape(xp.sum(S_w, axis=3), (B, 1, 1, W))                # (B, 1, H, W)
        S_wT = permute_dims(S_w, (0, 1, 3, 2))
        return S_h @ x @ S_wT + (valid - 1.0)                             # (B, C, H, W)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)     # R1 and WGAN-GP penalize D, not the augmentation
        S_h, S_w = self._need("shifts")
        if not input_grad:
            return None
        # in the forward pass this was: y = S_h @ x @ S_w^T (+ a constant), so
        return permute_dims(S_h, (0, 1, 3, 2)) @ dout @ S_w              # (B, C, H, W)

    def __repr__(self):
        return f"Translation(ratio={self.ratio})"


class Cutout(_Augmentation):
    """Set a square of side round(ratio * side) of each image to background (-1). Its
    centre is uniform over the image, so it may hang over the edge (as in the paper).

    forward:  y = x * m + (m - 1)     m = 0 inside the square, 1 outside, (B, 1, H, W)
    backward: dx = dout * m           (the cut pixels get no gradient)
    """

    def __init__(self, backend, ratio=0.5):
        super().__init__(backend)
        self.ratio = ratio
        self.mask = None

    def _inside(self, n, size, like):
        """(B, n): 1 on the `size` rows of each image's square, 0 elsewhere."""
        xp = get_array_module(like)
        B = like.shape[0]
        # the paper's offsets: a centre in [0, n + 1 - size % 2), the square from centre - size // 2
        low = _randint(self.backend, 0, n - size % 2, B, like) - size // 2   # (B,)
        low = xp.reshape(low, (B, 1))
        r = xp.reshape(self._arange(n, like), (1, n))
        return astype(r >= low, like.dtype) * astype(r < low + size, like.dtype)

    def forward(self, x):
        _check_image(self, x)
        xp = get_array_module(x)
        B, _, H, W = x.shape
        rows = self._inside(H, int(H * self.ratio + 0.5), x)             # (B, H)
        cols = self._inside(W, int(W * self.ratio + 0.5), x)             # (B, W)
        mask = 1.0 - xp.reshape(rows, (B, 1, H, 1)) * xp.reshape(cols, (B, 1, 1, W))
        self.mask = mask                                                  # (B, 1, H, W)
        return x * mask + (mask - 1.0)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)     # R1 and WGAN-GP penalize D, not the augmentation
        mask = self._need("mask")
        return dout * mask if input_grad else None                        # new array

    def __repr__(self):
        return f"Cutout(ratio={self.ratio})"


class Brightness(_Augmentation):
    """y = x + b, one b ~ U(-0.5, 0.5) per image. backward: dx = dout (passed through)."""

    def __init__(self, backend):
        super().__init__(backend)
        self.b = None

    def forward(self, x):
        _check_image(self, x)
        self.b = _draw(self.backend, (x.shape[0], 1, 1, 1), x, -0.5, 0.5)   # (B, 1, 1, 1)
        return x + self.b

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)     # R1 and WGAN-GP penalize D, not the augmentation
        self._need("b")                         # forward first, as for every layer
        return dout if input_grad else None

    def __repr__(self):
        return "Brightness()"


class Contrast(_Augmentation):
    """y = (x - mean) * k + mean, mean over each image's pixels, k ~ U(0.5, 1.5) per image.

    backward: dx = k * dout + (1 - k) * mean(dout)      (the mean over the same pixels)
    """

    def __init__(self, backend):
        super().__init__(backend)
        self.k = None

    def forward(self, x):
        _check_image(self, x)
        xp = get_array_module(x)
        k = _draw(self.backend, (x.shape[0], 1, 1, 1), x, 0.5, 1.5)          # (B, 1, 1, 1)
        self.k = k
        mean = xp.mean(x, axis=(1, 2, 3), keepdims=True)                     # (B, 1, 1, 1)
        return (x - mean) * k + mean

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)     # R1 and WGAN-GP penalize D, not the augmentation
        k = self._need("k")
        if not input_grad:
            return None
        xp = get_array_module(dout)
        # in the forward pass this was: y = k x + (1 - k) mean(x), and d mean / dx = 1 / n
        return k * dout + (1.0 - k) * xp.mean(dout, axis=(1, 2, 3), keepdims=True)

    def __repr__(self):
        return "Contrast()"


# the policy names of the paper, each a list of transforms (ratios of the paper's code)
POLICIES = {
    "translation": lambda be: [Translation(be, ratio=0.125)],
    "cutout": lambda be: [Cutout(be, ratio=0.5)],
    "color": lambda be: [Brightness(be), Contrast(be)],
}


class DiffAugment(Sequential):
    """The transforms of `policy` ("translation,cutout,color"), applied in that order.

    forward(x): x (B, P) flat images of shape image_shape = (C, H, W), or (B, C, H, W);
    returns the augmented images in x's shape. backward(dout) -> dx in the same shape.
    The default order puts colour last: the background and the filled-in pixels then get
    the same brightness and contrast, and stay alike. "" means no augmentation.

        >>> from npgan import get_backend
        >>> be = get_backend("numpy", seed=0)
        >>> aug = DiffAugment("translation,cutout,color", be)
        >>> aug.forward(be.uniform(-1, 1, (4, 784))).shape
        (4, 784)
    """

    supports_double_backward = False         # a penalty stops at D's input (see backward)
    double_backward = Layer.double_backward    # Sequential's would pass through

    def __init__(self, policy, backend, image_shape=(1, 28, 28)):
        names = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in names if name not in POLICIES]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"augmentation policy {policy!r}: each of "
                             f"{', '.join(POLICIES)} at most once, comma-separated")
        super().__init__(*[layer for name in names for layer in POLICIES[name](backend)])
        self.policy, self.image_shape = ",".join(names), tuple(image_shape)
        self.flat = None                        # cache: x was (B, P)

    def forward(self, x):
        xp = get_array_module(x)
        flat = x.ndim == 2
        if flat:
            if x.shape[1] != math.prod(self.image_shape):
                raise ValueError(f"DiffAugment for images {self.image_shape} expects "
                                 f"(B, {math.prod(self.image_shape)}), got {tuple(x.shape)}")
            x = xp.reshape(x, (x.shape[0], *self.image_shape))          # (B, P) -> (B, C, H, W)
        self.flat = flat
        y = super().forward(x)
        return xp.reshape(y, (y.shape[0], -1)) if flat else y

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        self._refuse_create_graph(create_graph)     # R1 and WGAN-GP penalize D, not the augmentation
        xp = get_array_module(dout)
        flat = self._need("flat")
        if flat:
            dout = xp.reshape(dout, (dout.shape[0], *self.image_shape))
        dx = super().backward(dout, input_grad=input_grad)
        if dx is None:
            return None
        return xp.reshape(dx, (dx.shape[0], -1)) if flat else dx

    def __repr__(self):
        return f"DiffAugment({self.policy!r}, image_shape={self.image_shape})"

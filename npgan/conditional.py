"""The conditional GAN (Mirza and Osindero 2014): G and D also see the class label.

G learns p(x | y) instead of p(x): we ask for a "7" and get a seven. The label enters
both models as a one-hot vector joined to their input, and nothing else changes:

    G: z (B, Z), y (B,)  ->  [z, onehot(y)] (B, Z + C)  -> net -> x_fake (B, P)
    D: x (B, P), y (B,)  ->  [x, onehot(y)] (B, P + C)  -> net -> logit (B, 1)

For a convolutional D the one-hot becomes C constant planes stacked on the image's
channels ("planes" mode): (B, ch, H, W) + (B, C, H, W) -> (B, ch + C, H, W), kept
flat as (B, (ch + C) * H * W), so D's first Reshape sees ch + C channels.

The labels are data, like the images: backward returns the gradient of the image or
noise part only. D now judges "is this a real *seven*?", so G gets punished both for
unrealistic images and for images of the wrong class.
reference: https://arxiv.org/abs/1411.1784
"""
from __future__ import annotations

from npgan.backend import astype, concat, get_array_module, to_numpy, zeros
from npgan.backend import host as np
from npgan.layers import Sequential


class Conditional(Sequential):
    """net([x, onehot(labels)]): a Sequential whose input is joined with a class label.

    forward(x, labels): x (B, n) float, labels (B,) integer class indices on the same
    device. Their values are not checked here (that would be a host sync per call):
    check them once where they enter, with check_labels, as train and generate do.
    Parameters keep net's names ("0.W", ...), so checkpoints, EMA and gradient-norm
    logging treat it like any Sequential.
    planes: None for vector mode; H * W for planes mode (x holds ch images of H * W).
    """

    def __init__(self, net, num_classes, backend, planes=None):
        super().__init__(*net.layers)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.num_classes, self.planes = num_classes, planes
        self.eye = backend.asarray(np.eye(num_classes))    # (C, C): row c = onehot(c)
        self.width = None                                  # cache: n, the width of x
        self.graph_width = None                            # kept by backward(create_graph=True)

    def forward(self, x, labels):
        xp = get_array_module(x)
        if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
            raise ValueError(f"labels must be (B,) = ({x.shape[0]},) class indices, one per "
                             f"row of x, got shape {tuple(labels.shape)}")
        b, n, c = x.shape[0], x.shape[1], self.num_classes
        y = astype(xp.take(self.eye, labels, axis=0), x.dtype)     # (B,) -> (B, C)
        if self.planes is None:
            xy = concat([x, y], axis=1)                         # (B, n + C)
        else:
            p = self.planes
            images = xp.reshape(x, (b, n // p, p))                 # (B, ch, H*W)
            planes = xp.broadcast_to(xp.reshape(y, (b, c, 1)), (b, c, p))   # (B, C, H*W)
            xy = xp.reshape(concat([images, planes], axis=1), (b, -1))  # (B, (ch+C) H W)
        self.width = n
        return super().forward(xy)

    def backward(self, dout, param_grads=True, input_grad=True, create_graph=False):
        """The gradient of x only (B, n): the label columns/planes are data, dropped."""
        n = self._need("width")
        if create_graph:
            self.graph_width = n
        dxy = super().backward(dout, param_grads=param_grads, input_grad=input_grad,
                               create_graph=create_graph)
        if dxy is None:
            return None
        if self.planes is None:
            return dxy[:, :n]                                      # (B, n + C) -> (B, n)
        xp, b, p = get_array_module(dxy), dxy.shape[0], self.planes
        dxy = xp.reshape(dxy, (b, n // p + self.num_classes, p))   # (B, ch + C, H*W)
        return xp.reshape(dxy[:, :n // p, :], (b, n))              # (B, ch*H*W)

    def double_backward(self, g_dx):
        """g_dx = dP/d(dx) for the image part (B, n). backward dropped the label part of
        dxy, so the penalty does not depend on it: its g is zero there."""
        xp = get_array_module(g_dx)
        n, b, c = self._need_graph("graph_width"), g_dx.shape[0], self.num_classes
        # the zeros: one column of g_dx made zero (its dtype, its device), repeated C times
        if self.planes is None:                                    # (B, n) -> (B, n + C)
            g_dxy = concat([g_dx, zeros((b, c), like=g_dx)], axis=1)
        else:
            p = self.planes
            images = xp.reshape(g_dx, (b, n // p, p))                  # (B, ch, H*W)
            g_dxy = xp.reshape(concat([images, zeros((b, c, p), like=g_dx)], axis=1),
                               (b, -1))                                # (B, (ch+C) H W)
        return super().double_backward(g_dxy)

    def __call__(self, x, labels):
        return self.forward(x, labels)

    def __repr__(self):
        mode = "one-hot columns" if self.planes is None else f"one-hot planes of {self.planes}"
        return f"Conditional(num_classes={self.num_classes}, {mode},\n" + \
            super().__repr__().split("\n", 1)[1]


def is_conditional(model) -> bool:
    return isinstance(model, Conditional)


def forward(model, x, labels=None):
    """model.forward(x), or model.forward(x, labels) for a conditional model: the one
    call the GAN steps make, whether or not G and D see classes. labels: (B,) or None."""
    return model.forward(x) if labels is None else model.forward(x, labels)


def random_labels(backend, n, num_classes):
    """n class indices drawn uniformly from 0..C-1 with the backend's generator, on its
    device: (n,) int64. floor(C u) with u ~ U[0, 1), clipped because C u may round up
    to C in float32."""
    xp = backend.xp
    u = backend.uniform(0.0, 1.0, (n,))
    return astype(xp.clip(xp.floor(u * num_classes), 0.0, num_classes - 1.0), xp.int64)


def check_labels(labels, num_classes):
    """Check labels where they enter, once, on the host: xp.take does no bounds check
    on CuPy, so a label out of range would silently pick another class's row there.
    labels: a list, host array or device array (N,) (a device array is copied to the
    host, a sync). Returns a host int64 array (N,), or raises ValueError saying what
    is wrong."""
    labels = to_numpy(labels)
    integral = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and bool(np.all(labels == np.round(labels))))
    if labels.ndim != 1 or not integral:
        raise ValueError(f"labels must be a 1-d array of integer class indices, got {labels!r}")
    labels = labels.astype(np.int64)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"class labels must be in 0..{num_classes - 1}, got {int(bad[0])}")
    return labels


def balanced_labels(n, num_classes):
    """0, 1, ..., C-1, 0, 1, ...: n host labels, every class equally often (+- 1)."""
    return np.arange(n, dtype=np.int64) % num_classes

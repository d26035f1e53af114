"""Optimizers: SGD (with momentum), Adam and RMSprop, with PyTorch's names and semantics.

An optimizer holds a list of Parameters and, in step(), updates each `p.data` in
place from `p.grad`. It never zeroes the gradients by itself: call zero_grad()
(on the optimizer or the model) before the backward passes of the next update.

Every constant is a Python float, so float32 stays float32 (NEP 50). The state arrays
(m, v, ...) are updated in place (`m[...] = ...`): they are the arrays a checkpoint saves.
Training uses the twins in npgan/fast/optim.py: the same updates without temporaries.
"""
from __future__ import annotations

from npgan.backend import get_array_module


def _check_params(params):
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    return params


class Optimizer:
    def __init__(self, params):
        self.params = _check_params(params)

    def zero_grad(self):
        for p in self.params:
            p.grad[...] = 0

    def state_arrays(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """Hyperparameters, the step count and the state arrays (lists, one per param)."""
        return {"hyper": dict(self.hyper), "step": self.t, **self.state_arrays()}

    def load_state_dict(self, state: dict):
        """Restore state_dict() output; arrays are copied into the existing buffers."""
        for key, arrays in self.state_arrays().items():
            loaded = state[key]
            if len(loaded) != len(arrays):
                raise ValueError(
                    f"optimizer state '{key}' has {len(loaded)} arrays, expected {len(arrays)}"
                )
            for i, (dst, src) in enumerate(zip(arrays, loaded)):
                if tuple(src.shape) != tuple(dst.shape):
                    raise ValueError(
                        f"optimizer state '{key}'[{i}] has shape {tuple(src.shape)}, "
                        f"expected {tuple(dst.shape)}"
                    )
                dst[...] = src
        self.hyper.update(state.get("hyper", {}))
        self.t = int(state["step"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, PyTorch semantics.

    g = grad + weight_decay * p
    buf = g (first step), else buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf;     p -= lr * g
    reference: https://pytorch.org/docs/stable/generated/torch.optim.SGD.html
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False):
        if lr < 0:
            raise ValueError(f"invalid learning rate lr={lr}: must be >= 0")
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum ({momentum}) and weight_decay ({weight_decay}) must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params)
        self.hyper = dict(lr=lr, momentum=momentum, dampening=dampening,
                          weight_decay=weight_decay, nesterov=nesterov)
        self.t = 0
        self.buf = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def state_arrays(self):
        return {"buf": self.buf}

    def step(self):
        h = self.hyper
        lr, mom, damp, wd = h["lr"], h["momentum"], h["dampening"], h["weight_decay"]
        self.t += 1
        for p, buf in zip(self.params, self.buf):
            g = p.grad + wd * p.data if wd else p.grad
            if mom:
                buf[...] = g if self.t == 1 else mom * buf + (1.0 - damp) * g
                g = g + mom * buf if h["nesterov"] else buf
            p.data -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, PyTorch semantics.

    m = b1 m + (1 - b1) g;        v = b2 v + (1 - b2) g^2        (t = 1, 2, ...)
    mhat = m / (1 - b1^t);        vhat = v / (1 - b2^t)
    p -= lr * mhat / (sqrt(vhat) + eps)
    So the first step is lr * g / (|g| + eps) ~ lr * sign(g).
    GAN setting (Radford et al. 2015): lr = 2e-4, betas = (0.5, 0.999).
    reference: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0:
            raise ValueError(f"invalid learning rate lr={lr}: must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas={betas}: each must be in [0, 1)")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"eps ({eps}) and weight_decay ({weight_decay}) must be >= 0")
        super().__init__(params)
        self.hyper = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        self.t = 0
        self.m = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def state_arrays(self):
        return {"m": self.m, "v": self.v}

    def step(self):
        h = self.hyper
        lr, (b1, b2), eps, wd = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        self.t += 1
        t = self.t
        for p, m, v in zip(self.params, self.m, self.v):
            xp = get_array_module(p.data)
            g = p.grad + wd * p.data if wd else p.grad    # L2 penalty, as PyTorch's Adam
            m[...] = b1 * m + (1.0 - b1) * g              # running mean of g
            v[...] = b2 * v + (1.0 - b2) * g * g          # running mean of g^2
            mhat = m / (1.0 - b1 ** t)                    # bias correction: m and v start at 0
            vhat = v / (1.0 - b2 ** t)
            p.data -= lr * mhat / (xp.sqrt(vhat) + eps)


class RMSprop(Optimizer):
    """RMSprop (Hinton, lecture 6e), PyTorch semantics: a step divided by a running RMS.

    g = grad + weight_decay * p
    v = alpha v + (1 - alpha) g^2                         (square_avg)
    centered: a = alpha a + (1 - alpha) g  (grad_avg),  v~ = v - a^2,  else v~ = v
    momentum > 0: buf = momentum buf + g / (sqrt(v~) + eps),  p -= lr * buf
    otherwise:    p -= lr * g / (sqrt(v~) + eps)
    No bias correction (unlike Adam): v starts at 0, so the first step is
    lr / sqrt(1 - alpha) * sign(g), 10 lr at alpha = 0.99.
    WGAN setting (Arjovsky et al. 2017): lr = 5e-5, the rest PyTorch's defaults.
    reference: https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        if lr < 0:
            raise ValueError(f"invalid learning rate lr={lr}: must be >= 0")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"invalid alpha={alpha}: must be in [0, 1)")
        for name, value in (("eps", eps), ("weight_decay", weight_decay), ("momentum", momentum)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        super().__init__(params)
        self.hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                          momentum=momentum, centered=bool(centered))
        self.t = 0
        zeros = [get_array_module(p.data).zeros_like for p in self.params]
        self.square_avg = [z(p.data) for z, p in zip(zeros, self.params)]
        # the other two states exist only when used (and only they go into checkpoints)
        self.grad_avg = [z(p.data) for z, p in zip(zeros, self.params)] if centered else None
        self.momentum_buffer = ([z(p.data) for z, p in zip(zeros, self.params)]
                                if momentum else None)

    def state_arrays(self):
        states = {"square_avg": self.square_avg}
        if self.grad_avg is not None:
            states["grad_avg"] = self.grad_avg
        if self.momentum_buffer is not None:
            states["momentum_buffer"] = self.momentum_buffer
        return states

    def load_state_dict(self, state: dict):
        """As Optimizer's; momentum and centered decide which states exist, so they
        must match the saved ones."""
        for key in ("momentum", "centered"):
            saved = state.get("hyper", {}).get(key, self.hyper[key])
            if bool(saved) != bool(self.hyper[key]):
                raise ValueError(f"saved with {key}={saved!r}, but this RMSprop has "
                                 f"{key}={self.hyper[key]!r}")
        super().load_state_dict(state)

    def step(self):
        h = self.hyper
        lr, alpha, eps, wd, mom = h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"]
        self.t += 1
        for i, p in enumerate(self.params):
            xp = get_array_module(p.data)
            g = p.grad + wd * p.data if wd else p.grad
            v = self.square_avg[i]
            v[...] = alpha * v + (1.0 - alpha) * g * g            # running mean of g^2
            if h["centered"]:
                a = self.grad_avg[i]
                a[...] = alpha * a + (1.0 - alpha) * g              # running mean of g
                denom = xp.sqrt(v - a * a) + eps                    # sqrt of a variance
            else:
                denom = xp.sqrt(v) + eps
            if mom:
                buf = self.momentum_buffer[i]
                buf[...] = mom * buf + g / denom
                p.data -= lr * buf
            else:
                p.data -= lr * g / denom

"""Adam and RMSprop without temporaries, in blocks on every core.

The reference updates (npgan/optim.py) make a new array at every operator. Here every
operator writes in place, into the state or into one scratch array per parameter, so a
step allocates nothing of a weight's size; and since the update is elementwise,
threads.map_blocks cuts it into blocks shared by num_threads() threads (NumPy).
The states get the reference's operations in the reference's order, so m, v (Adam)
and square_avg, grad_avg, momentum_buffer (RMSprop) are bit-identical to it. Adam's
parameter update folds the bias corrections into two scalars (two passes fewer), so the
parameters agree to rounding (tests/test_fast.py). The in-place m += (1 - b1)(g - m)
form that came before lost up to 10 bits of v in float32 (g^2 - b2 g^2 cancels).
"""
from __future__ import annotations

import math

from npgan.fast.inplace import buffer, into, scratch
from npgan.fast.threads import map_blocks
from npgan.optim import Adam, RMSprop


def _tmp(opt):
    """One scratch array per parameter, kept by the optimizer between steps."""
    kept = scratch(opt)
    return [buffer(kept, i, p.data.shape, p.data) for i, p in enumerate(opt.params)]


class FastAdam(Adam):
    """Adam, in place and in blocks."""

    def step(self):
        h = self.hyper
        b1, b2 = h["betas"]
        self.t += 1
        # p -= lr/(1 - b1^t) * m / (sqrt(v)/sqrt(bc2) + eps) = step * m / (sqrt(v) + eps_hat),
        # with the bias corrections in Python floats (double precision), beta**t, not beta
        sqrt_bc2 = math.sqrt(1.0 - b2 ** self.t)
        step = h["lr"] / (1.0 - b1 ** self.t) * sqrt_bc2
        eps_hat = h["eps"] * sqrt_bc2
        wd = h["weight_decay"]

        def update(p, g, m, v, tmp):                 # same-shaped arrays (or blocks of them)
            if wd:
                g = g + wd * p                       # L2 penalty (rare path; allocates)
            into(tmp, "multiply", g, 1.0 - b1)
            m *= b1
            m += tmp                                 # m = b1 m + (1 - b1) g
            into(tmp, "multiply", g, 1.0 - b2)
            tmp *= g
            v *= b2
            v += tmp                                 # v = b2 v + (1 - b2) g^2
            into(tmp, "sqrt", v)
            tmp += eps_hat                           # denom = sqrt(v) + eps_hat
            into(tmp, "divide", m, tmp)
            tmp *= step
            p -= tmp                                 # p -= step * m / denom

        map_blocks(update, [(p.data, p.grad, m, v, tmp) for p, m, v, tmp
                            in zip(self.params, self.m, self.v, _tmp(self))])


class FastRMSprop(RMSprop):
    """RMSprop, in place and in blocks."""

    def step(self):
        h = self.hyper
        lr, alpha, eps, wd, mom = h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"]
        centered = h["centered"]
        self.t += 1

        def update(p, g, v, tmp, *more):            # same-shaped arrays (or blocks of them)
            a = more[0] if centered else None
            buf = more[-1] if mom else None
            if wd:
                g = g + wd * p                       # L2 penalty (rare path; allocates)
            v *= alpha
            into(tmp, "multiply", g, 1.0 - alpha)
            tmp *= g
            v += tmp                                 # v = alpha v + (1 - alpha) g^2
            if centered:                             # (rare path; allocates)
                a *= alpha
                a += (1.0 - alpha) * g               # a = alpha a + (1 - alpha) g
                into(tmp, "multiply", a, a)
                into(tmp, "subtract", v, tmp)        # v~ = v - a^2
                into(tmp, "sqrt", tmp)
            else:
                into(tmp, "sqrt", v)
            tmp += eps                               # denom = sqrt(v~) + eps
            into(tmp, "divide", g, tmp)              # g / denom
            if mom:
                buf *= mom
                buf += tmp                           # buf = momentum buf + g / denom
                tmp[...] = buf
            tmp *= lr
            p -= tmp                                 # p -= lr * (buf or g / denom)

        groups = []
        for i, (p, tmp) in enumerate(zip(self.params, _tmp(self))):
            more = (([self.grad_avg[i]] if centered else [])
                    + ([self.momentum_buffer[i]] if mom else []))
            groups.append((p.data, p.grad, self.square_avg[i], tmp, *more))
        map_blocks(update, groups)                   # blocks on all cores (NumPy)

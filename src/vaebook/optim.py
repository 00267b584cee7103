"""Optimizers: `step(params, grads)` updates every array in `params` in place.

Derived in notebooks/04_building_blocks.ipynb.
"""

import math

import numpy as np


def _check_keys(params, grads):
    if params.keys() != grads.keys():
        raise ValueError(f"grads keys {sorted(grads)} do not match params keys {sorted(params)}")


class SGD:
    """v <- momentum * v + g;  p <- p - lr * v  (plain gradient descent when momentum = 0)."""

    def __init__(self, lr, momentum=0.0):
        if not lr > 0 or not 0 <= momentum < 1:
            raise ValueError(
                f"SGD needs lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}"
            )
        self.lr, self.momentum = lr, momentum
        self.velocity = {}

    def step(self, params, grads):
        _check_keys(params, grads)
        for name, p in params.items():
            g = grads[name]
            if self.momentum:
                v = self.velocity.setdefault(name, np.zeros_like(p))
                v *= self.momentum
                v += g
                g = v
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015), with bias correction:

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g²;
    p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + tiny).
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), tiny=1e-8):
        b1, b2 = betas
        if not lr > 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or not tiny > 0:
            raise ValueError(
                f"Adam needs lr > 0, 0 <= betas < 1, tiny > 0; got {lr}, {betas}, {tiny}"
            )
        self.lr, self.betas, self.tiny = lr, (b1, b2), tiny
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        _check_keys(params, grads)
        self.t += 1
        b1, b2 = self.betas
        lr_t = self.lr / (1 - b1**self.t)  # the bias corrections folded into two scalars
        root_c2 = math.sqrt(1 - b2**self.t)
        for name, p in params.items():
            g = grads[name]
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= (lr_t * m / (np.sqrt(v) / root_c2 + self.tiny)).astype(p.dtype, copy=False)

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
                if name not in self.velocity:
                    self.velocity[name] = np.zeros_like(p)
                v = self.velocity[name]
                v *= self.momentum
                v += g
                g = v
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015), with bias correction:

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g²;
    p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + tiny).

    It stores m / (1 - b1) in place of m, which turns the update of m into one scaling and one
    addition; `moments(name)` returns m and v as in the formulas.
    """

    scratch = ("tmp",)  # work space, not state: `fit` need not keep a copy of it

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), tiny=1e-8):
        b1, b2 = betas
        if not lr > 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or not tiny > 0:
            raise ValueError(
                f"Adam needs lr > 0, 0 <= betas < 1, tiny > 0; got {lr}, {betas}, {tiny}"
            )
        self.lr, self.betas, self.tiny = lr, (b1, b2), tiny
        self.t = 0
        self.m_sum, self.v, self.tmp = {}, {}, {}

    def moments(self, name):
        """The moments m and v of the parameter `name`, as in the formulas above (copies)."""
        return (1 - self.betas[0]) * self.m_sum[name], self.v[name].copy()

    def step(self, params, grads):
        _check_keys(params, grads)
        self.t += 1
        b1, b2 = self.betas
        # With M = m / (1 - b1), c1 = 1 - b1^t and c2 = sqrt(1 - b2^t), the update
        # lr m_hat / (sqrt(v_hat) + tiny) is step_size * M / (sqrt(v) + tiny c2), where
        # step_size = lr (1 - b1) c2 / c1: the bias corrections become scalars.
        c2 = math.sqrt(1 - b2**self.t)
        step_size, tiny = self.lr * (1 - b1) * c2 / (1 - b1**self.t), self.tiny * c2
        root_1_b2 = math.sqrt(1 - b2)
        for name, p in params.items():
            g = grads[name]
            if name not in self.m_sum:  # first step: zero moments, and a scratch array
                self.m_sum[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
                self.tmp[name] = np.empty_like(p)
            m_sum, v, tmp = self.m_sum[name], self.v[name], self.tmp[name]
            m_sum *= b1  # M <- b1 M + g
            m_sum += g
            np.multiply(g, root_1_b2, out=tmp)  # out= keeps every step allocation-free
            tmp *= tmp  # (1 - b2) g²: scaled, then squared, float32 holds it up to |g| ~ 6e20
            v *= b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += tiny
            np.divide(m_sum, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

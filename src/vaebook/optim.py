"""Optimizers: `step(params, grads)` updates every array in `params` in place.

Derived in notebooks/04_building_blocks.ipynb.
"""

import math
from concurrent.futures import ThreadPoolExecutor

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

    `threads` > 1 splits the update of large parameters over that many threads (NumPy releases
    the GIL in elementwise work); every element is updated the same way, so results are identical.
    """

    SPLIT = 2**16  # parameters with fewer elements are not worth splitting across threads

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), tiny=1e-8, threads=1):
        b1, b2 = betas
        if not lr > 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or not tiny > 0:
            raise ValueError(
                f"Adam needs lr > 0, 0 <= betas < 1, tiny > 0; got {lr}, {betas}, {tiny}"
            )
        if int(threads) < 1:
            raise ValueError(f"Adam needs threads >= 1, got {threads}")
        self.lr, self.betas, self.tiny, self.threads = lr, (b1, b2), tiny, int(threads)
        self.t = 0
        self.m, self.v, self.tmp = {}, {}, {}
        self._pool = None

    def step(self, params, grads):
        _check_keys(params, grads)
        self.t += 1
        # p -= lr m_hat / (sqrt(v_hat) + tiny), with the bias corrections moved onto scalars:
        # = (lr c2 / c1) m / (sqrt(v) + tiny c2), where c1 = 1 - b1^t and c2 = sqrt(1 - b2^t).
        c2 = math.sqrt(1 - self.betas[1] ** self.t)
        scalars = (self.lr * c2 / (1 - self.betas[0] ** self.t), self.tiny * c2)
        groups = [[] for _ in range(self.threads)]  # one list of array pieces per thread
        for name, p in params.items():
            if name not in self.m:  # first step: zero moments, and a scratch array
                self.m[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
                self.tmp[name] = np.empty_like(p)
            arrays = (p, grads[name], self.m[name], self.v[name], self.tmp[name])
            if self.threads == 1 or p.size < self.SPLIT or not p.flags.c_contiguous:
                groups[0].append(arrays)
                continue
            # Equal slices of the flat arrays: views, so the threads update p, m and v in place.
            slices = (np.array_split(np.ravel(a), self.threads) for a in arrays)
            for group, piece in zip(groups, zip(*slices, strict=True), strict=True):
                group.append(piece)
        if self.threads == 1:
            self._update(groups[0], *scalars)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads)
        list(self._pool.map(lambda group: self._update(group, *scalars), groups))

    def _update(self, pieces, step_size, tiny):
        b1, b2 = self.betas
        for p, g, m, v, tmp in pieces:
            # m += (1 - b1)(g - m) is b1 m + (1 - b1) g; out= keeps every step allocation-free.
            np.subtract(g, m, out=tmp)
            tmp *= 1 - b1
            m += tmp
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += tiny
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

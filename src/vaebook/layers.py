"""Layers with a forward and a backward pass.

Every layer has the same members: `params` and `grads` (dicts with the same keys), `forward(x)`,
which keeps in `self.cache` exactly what `backward` needs, and `backward(dy)`, which sets
`self.grads` and returns `dx`. Derived in notebooks/04_building_blocks.ipynb.
"""

import numpy as np


class Linear:
    """y = x @ W + b.   x: (B, D_in) -> y: (B, D_out).

    Initialised like PyTorch's `nn.Linear`: W and b uniform in ±1/sqrt(D_in).
    A first layer, whose input is data, can set `needs_dx = False`: backward then skips the
    product dy @ W.T, a sixth of a VAE step's work, and returns None.
    """

    needs_dx = True

    def __init__(self, d_in, d_out, *, rng, dtype=np.float32):
        rng = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(d_in)
        self.params = {
            "W": rng.uniform(-bound, bound, size=(d_in, d_out)).astype(dtype),
            "b": rng.uniform(-bound, bound, size=d_out).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.cache = x
        y = x @ self.params["W"]  # (B, D_out)
        y += self.params["b"]  # in place: no second (B, D_out) array
        return y

    def backward(self, dy):
        x = self.cache
        self.grads = {"W": x.T @ dy, "b": dy.sum(axis=0)}
        return dy @ self.params["W"].T if self.needs_dx else None  # (B, D_in)


class ReLU:
    """y = max(x, 0), elementwise; dy/dx = 1 where x > 0, else 0."""

    params: dict = {}
    grads: dict = {}

    def forward(self, x):
        self.cache = x > 0
        return x * self.cache  # multiplying by the mask is several times faster than np.where

    def backward(self, dy):
        return dy * self.cache


class Tanh:
    """y = tanh(x), elementwise; dy/dx = 1 - y²."""

    params: dict = {}
    grads: dict = {}

    def forward(self, x):
        y = np.tanh(x)
        self.cache = y
        return y

    def backward(self, dy):
        y = self.cache
        return dy * (1 - y * y)


class Sigmoid:
    """y = 1 / (1 + exp(-x)), elementwise; dy/dx = y (1 - y)."""

    params: dict = {}
    grads: dict = {}

    def forward(self, x):
        y = sigmoid(x)
        self.cache = y
        return y

    def backward(self, dy):
        y = self.cache
        return dy * y * (1 - y)


def sigmoid(x):
    """1 / (1 + exp(-x)) = ½ (1 + tanh(x / 2)), without overflow warnings for large |x|."""
    y = np.tanh(0.5 * x)
    y += 1  # in place: two new arrays (0.5 x and y) instead of four
    y *= 0.5
    return y


class Sequential:
    """Layers applied in order; its `params`/`grads` are named "<index>.<name>"."""

    def __init__(self, *layers):
        self.layers = list(layers)
        self.params = {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()
        }

    @property
    def grads(self):
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()
        }

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(sizes, *, rng, activation="relu", dtype=np.float32):
    """Linear layers of the given widths with `activation` between them (none after the last).

    mlp((D, H, K)) is Linear(D, H) -> ReLU -> Linear(H, K).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"mlp needs at least two positive widths, got {tuple(sizes)}")
    rng = np.random.default_rng(rng)
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [Linear(int(d_in), int(d_out), rng=rng, dtype=dtype), ACTIVATIONS[activation]()]
    return Sequential(*layers[:-1])

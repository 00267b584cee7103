"""Losses, the KL term and the reparameterization, each with its gradient.

Each loss returns one value per example (B,), summed over the data dimension D; the models
average over the batch. Each `*_backward` returns the gradient of the *sum* of those values.
Derived in notebooks/03_kl_divergence.ipynb (KL) and notebooks/04_building_blocks.ipynb (losses).
"""

import math

import numpy as np

from .layers import sigmoid

LOG_2PI = math.log(2 * math.pi)


def softplus(a):
    """log(1 + exp(a)), stable for any a: max(a, 0) + log1p(exp(-|a|))."""
    abs_a = np.abs(a)
    tail = np.log1p(np.exp(-abs_a))
    # max(a, 0) = (a + |a|) / 2, several times faster than np.maximum here; halving before
    # adding keeps every finite a finite.
    tail += 0.5 * a
    abs_a *= 0.5
    abs_a += tail
    return abs_a


def bernoulli_nll(logits, x):
    """-log Bernoulli(x | sigmoid(logits)) = softplus(logits) - x * logits, summed over D.

    logits, x: (B, D) -> (B,). Finite for logits of any size (no log(sigmoid(.)) underflow).
    """
    return softplus(logits).sum(axis=1) - np.vecdot(x, logits)  # vecdot: sum_D x * logits


def bernoulli_nll_backward(logits, x):
    """d/dlogits of the summed Bernoulli NLL: sigmoid(logits) - x.   (B, D)."""
    d_logits = sigmoid(logits)
    d_logits -= x
    return d_logits


def _float_type(*arrays):
    """The float dtype the arrays compute in: float32 stays float32, integers become float64."""
    return np.result_type(*arrays, 1.0)


def gaussian_nll(mean, x, logvar=0.0):
    """-log N(x | mean, exp(logvar)) = ½ [log 2π + logvar + (x - mean)² / exp(logvar)], sum over D.

    mean, x: (B, D); logvar broadcasts against them (a number, (D,) or (B, D)) -> (B,).
    """
    logvar = np.asarray(logvar, dtype=_float_type(mean, x))
    sq = (x - mean) ** 2 * np.exp(-logvar)
    return 0.5 * (LOG_2PI + logvar + sq).sum(axis=1)  # a Python float keeps float32 float32


def gaussian_nll_backward(mean, x, logvar=0.0):
    """Gradients of the summed Gaussian NLL: (dmean, dlogvar), dlogvar shaped like (B, D)."""
    logvar = np.asarray(logvar, dtype=_float_type(mean, x))
    inv_var = np.exp(-logvar)
    dmean = (mean - x) * inv_var
    dlogvar = 0.5 * (1 - (x - mean) ** 2 * inv_var)
    return dmean, dlogvar


def mse(x_hat, x):
    """Mean squared error over D: mean_d (x_hat - x)².   (B, D) -> (B,)."""
    return ((x_hat - x) ** 2).mean(axis=1)


def mse_backward(x_hat, x):
    """d/dx_hat of the summed per-example MSE: 2 (x_hat - x) / D.   (B, D)."""
    return 2 * (x_hat - x) / x.shape[1]


def kl_normal(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) = ½ Σ_k (mu² + exp(logvar) - 1 - logvar).

    mu, logvar: (B, K) -> (B,). Derived in notebooks/03_kl_divergence.ipynb.
    """
    # exp(s) - 1 as expm1(s): for s near 0 it keeps the digits that exp(s) - 1 cancels, so the
    # KL of a nearly collapsed dimension is never rounded below zero.
    return 0.5 * (mu * mu + np.expm1(logvar) - logvar).sum(axis=1)


def kl_normal_backward(mu, logvar):
    """Gradients of the summed KL: dmu = mu, dlogvar = ½ (exp(logvar) - 1).   (B, K) each."""
    return mu, 0.5 * np.expm1(logvar)


def log_mean_exp(log_w, axis=0):
    """log(mean(exp(log_w))) along `axis`, computed without overflow or underflow.

    With k log-weights log w_i per example, (k, B) -> (B,), this is the importance-weighted
    estimate of log p(x) (Burda et al. 2016). Derived in notebooks/10_evaluation.ipynb.
    """
    top = log_w.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(log_w - top).mean(axis=axis))


class Reparameterize:
    """z = mu + std * eps with std = exp(½ logvar).   mu, logvar, eps: (B, K) -> z: (B, K).

    The noise eps ~ N(0, I) is an input, so z is a differentiable function of (mu, logvar).
    Derived in notebooks/06_vae.ipynb.
    """

    params: dict = {}
    grads: dict = {}

    def forward(self, mu, logvar, eps):
        std = np.exp(0.5 * logvar)
        self.cache = (std, eps)
        return mu + std * eps  # (B, K)

    def backward(self, dz):
        std, eps = self.cache
        # dz/dlogvar = eps * dstd/dlogvar = eps * ½ std: the chain rule the original code missed.
        return dz, dz * eps * 0.5 * std  # dmu, dlogvar

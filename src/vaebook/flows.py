"""Normalizing flows: invertible maps with a tractable log-determinant of their Jacobian.

A flow layer has the members of every layer (`params`, `grads`, `forward`, `backward`), but its
forward pass also returns log|det ∂z_out/∂z| per example, and its backward pass takes the
gradient of the loss with respect to that log-determinant as well.
"""

import numpy as np

from .checks import float_dtype, whole_number


class PlanarFlow:
    """z_out = z + û tanh(w·z + b) (Rezende & Mohamed 2015).   z: (B, K) -> (B, K), log_det (B,).

    log|det ∂z_out/∂z| = log|1 + (1 - tanh²(w·z + b)) w·û|. The map is invertible when w·û ≥ -1,
    which û = u + (m(w·u) - w·u) w / ||w||², m(a) = -1 + softplus(a), guarantees for every u:
    then w·û = m(w·u) > -1. Parameters u, w: (K,), b: (1,).
    """

    tiny = 1e-12  # keeps ||w||² away from 0, where û is undefined

    def __init__(self, dim, *, rng, dtype=np.float32):
        if not whole_number(dim) or dim < 1:
            raise ValueError(f"dim must be a positive whole number, got {dim!r}")
        dtype, rng = float_dtype(dtype), np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(dim)
        self.params = {
            "u": rng.uniform(-bound, bound, size=int(dim)).astype(dtype),
            "w": rng.uniform(-bound, bound, size=int(dim)).astype(dtype),
            "b": np.zeros(1, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def u_hat(self):
        """û, the u that makes the map invertible (w·û = -1 + softplus(w·u) > -1).   (K,)"""
        u, w = self.params["u"], self.params["w"]
        alpha, n2 = w @ u, w @ w + self.tiny
        r = (np.logaddexp(0, alpha) - 1 - alpha) / n2
        return u + r * w

    def forward(self, z):
        w, b = self.params["w"], self.params["b"]
        if z.ndim != 2 or z.shape[1] != len(w):
            raise ValueError(f"z must have shape (B, {len(w)}), got {z.shape}")
        u_hat = self.u_hat()
        t = np.tanh(z @ w + b)  # (B,)
        c = w @ u_hat
        s = 1 + (1 - t * t) * c  # (B,), > 0 because c > -1
        self.cache = z, t, u_hat, c, s
        return z + t[:, None] * u_hat, np.log(np.abs(s))  # (B, K), (B,)

    def backward(self, dz_out, dlog_det):
        """Gradients of the loss given d loss/d z_out (B, K) and d loss/d log_det (B,)."""
        z, t, u_hat, c, s = self.cache
        u, w = self.params["u"], self.params["w"]
        dz = dz_out.copy()
        dt = dz_out @ u_hat  # (B,)
        du_hat = t @ dz_out  # (K,)
        ds = dlog_det / s  # (B,)
        one_minus_t2 = 1 - t * t
        dt += ds * c * (-2 * t)
        dc = ds @ one_minus_t2
        da = dt * one_minus_t2  # through tanh, (B,)
        dz += da[:, None] * w
        dw = z.T @ da + dc * u_hat
        db = np.atleast_1d(da.sum())
        du_hat += dc * w
        # û = u + r w with r = (m(α) - α) / n2, α = w·u, n2 = w·w + tiny
        alpha, n2 = w @ u, w @ w + self.tiny
        m_minus_alpha = np.logaddexp(0, alpha) - 1 - alpha
        r = m_minus_alpha / n2
        du = du_hat.copy()
        dw += r * du_hat
        dr = du_hat @ w
        dalpha = dr * (1 / (1 + np.exp(-alpha)) - 1) / n2  # m'(α) = sigmoid(α)
        dn2 = -dr * m_minus_alpha / (n2 * n2)
        du += dalpha * w
        dw += dalpha * u + 2 * dn2 * w
        dtype = self.params["u"].dtype
        self.grads = {"u": du.astype(dtype), "w": dw.astype(dtype), "b": db.astype(dtype)}
        return dz

"""Normalizing flows: invertible maps with a tractable log-determinant of their Jacobian.

A flow layer has the members of every layer (`params`, `grads`, `forward`, `backward`), but its
forward pass also returns log|det ∂z_out/∂z| per example, and its backward pass takes the
gradient of the loss with respect to that log-determinant as well. Derived in
notebooks/14_normalizing_flows.ipynb.
"""

import numpy as np

from .checks import float_dtype, whole_number
from .losses import log_mean_exp
from .vae import VAE

HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


class PlanarFlow:
    """z_out = z + û tanh(v·z + b) (Rezende & Mohamed 2015).   z: (B, K) -> (B, K), log_det (B,).

    log|det ∂z_out/∂z| = log|1 + (1 - tanh²(v·z + b)) v·û|. The map is invertible when v·û ≥ -1,
    which û = u + (softplus(v·u) - 1 - v·u) v / ||v||² guarantees for every u: then
    v·û = softplus(v·u) - 1 > -1. Parameters u, v: (K,), b: (1,). Derived in
    notebooks/14_normalizing_flows.ipynb (iota, chi, kappa, xi, rho as named there).
    """

    tiny = 1e-12  # keeps ||v||² away from 0, where û is undefined

    def __init__(self, dim, *, rng, dtype=np.float32):
        if not whole_number(dim) or dim < 1:
            raise ValueError(f"dim must be a positive whole number, got {dim!r}")
        dtype, rng = float_dtype(dtype), np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(dim)
        self.params = {
            "u": rng.uniform(-bound, bound, size=int(dim)).astype(dtype),
            "v": rng.uniform(-bound, bound, size=int(dim)).astype(dtype),
            "b": np.zeros(1, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}

    def u_hat(self):
        """û, the u that makes the map invertible (v·û = softplus(v·u) - 1 > -1).   (K,)"""
        u, v = self.params["u"], self.params["v"]
        kappa_u, n2 = v @ u, v @ v + self.tiny
        rho = (np.logaddexp(0, kappa_u) - 1 - kappa_u) / n2
        return u + rho * v

    def forward(self, z):
        v, b = self.params["v"], self.params["b"]
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != len(v):
            raise ValueError(f"z must have shape (B, {len(v)}), got {z.shape}")
        u_hat = self.u_hat()
        chi = np.tanh(z @ v + b)  # (B,)
        kappa = v @ u_hat
        xi = 1 + (1 - chi * chi) * kappa  # (B,), the determinant: > 0 because kappa > -1
        self.cache = z, chi, u_hat, kappa, xi
        return z + chi[:, None] * u_hat, np.log(np.abs(xi))  # (B, K), (B,)

    def backward(self, dz_out, dlog_det):
        """Gradients of the loss given d loss/d z_out (B, K) and d loss/d log_det (B,)."""
        z, chi, u_hat, kappa, xi = self.cache
        u, v = self.params["u"], self.params["v"]
        one_minus_chi2 = 1 - chi * chi
        dxi = dlog_det / xi  # (B,)
        dchi = dz_out @ u_hat + dxi * kappa * (-2 * chi)  # (B,): from z_out and from xi
        dkappa = dxi @ one_minus_chi2
        diota = dchi * one_minus_chi2  # through tanh, iota = v·z + b: (B,)
        dz = dz_out + diota[:, None] * v  # (B, K)
        dv = z.T @ diota + dkappa * u_hat
        db = np.atleast_1d(diota.sum())
        du_hat = chi @ dz_out + dkappa * v  # (K,)
        # û = u + rho v with rho = (softplus(kappa_u) - 1 - kappa_u) / n2, kappa_u = v·u,
        # n2 = v·v + tiny
        kappa_u, n2 = v @ u, v @ v + self.tiny
        rho_num = np.logaddexp(0, kappa_u) - 1 - kappa_u
        rho = rho_num / n2
        drho = du_hat @ v
        dkappa_u = drho * (1 / (1 + np.exp(-kappa_u)) - 1) / n2  # softplus' = sigmoid
        dn2 = -drho * rho_num / (n2 * n2)
        du = du_hat + dkappa_u * v
        dv = dv + rho * du_hat + dkappa_u * u + 2 * dn2 * v
        dtype = u.dtype
        self.grads = {"u": du.astype(dtype), "v": dv.astype(dtype), "b": db.astype(dtype)}
        return dz


def flows_forward(flows, z):
    """z_F = T_F(... T_1(z)) and Σ_l log|det ∂T_l/∂z|.   z: (B, K) -> (B, K), (B,)."""
    log_det = np.zeros(len(z), dtype=z.dtype)
    for flow in flows:
        z, layer_log_det = flow.forward(z)
        log_det = log_det + layer_log_det
    return z, log_det


def flows_backward(flows, dz, dlog_det):
    """The chain read in reverse: d loss/d z_0 from d loss/d z_F and d loss/d Σ log det."""
    for flow in reversed(flows):
        dz = flow.backward(dz, dlog_det)
    return dz


class RowPlanarFlow:
    """A planar flow whose u, v, b differ from example to example, as an encoder outputs them.

    Set `rows = (u, v, b)`, u, v: (B, K), b: (B,), before `forward`; the formulas are PlanarFlow's,
    row by row. It has no parameters of its own: `backward` leaves the gradients of u, v, b in
    `row_grads`, (B, K), (B, K), (B,), for the encoder to take.
    """

    tiny = PlanarFlow.tiny
    params: dict = {}
    grads: dict = {}

    def forward(self, z):
        u, v, b = self.rows
        kappa_u, n2 = (v * u).sum(axis=1), (v * v).sum(axis=1) + self.tiny  # (B,)
        rho = (np.logaddexp(0, kappa_u) - 1 - kappa_u) / n2
        u_hat = u + rho[:, None] * v  # (B, K)
        chi = np.tanh((z * v).sum(axis=1) + b)  # (B,)
        kappa = (v * u_hat).sum(axis=1)
        xi = 1 + (1 - chi * chi) * kappa  # (B,)
        self.cache = z, chi, u_hat, kappa, xi, kappa_u, n2, rho
        return z + chi[:, None] * u_hat, np.log(np.abs(xi))

    def backward(self, dz_out, dlog_det):
        z, chi, u_hat, kappa, xi, kappa_u, n2, rho = self.cache
        u, v, _ = self.rows
        one_minus_chi2, dxi = 1 - chi * chi, dlog_det / xi
        diota = ((dz_out * u_hat).sum(axis=1) - 2 * dxi * kappa * chi) * one_minus_chi2  # (B,)
        dkappa = dxi * one_minus_chi2
        du_hat = chi[:, None] * dz_out + dkappa[:, None] * v  # (B, K)
        drho = (du_hat * v).sum(axis=1)
        dkappa_u = drho * (1 / (1 + np.exp(-kappa_u)) - 1) / n2
        du = du_hat + dkappa_u[:, None] * v
        dv = diota[:, None] * z + dkappa[:, None] * u_hat + rho[:, None] * du_hat
        dv = dv + dkappa_u[:, None] * u - (2 * drho * rho / n2)[:, None] * v
        self.row_grads = du, dv, diota
        return dz_out + diota[:, None] * v  # (B, K)


def _flow_params(flows):
    return {
        f"flow{layer}.{k}": p for layer, flow in enumerate(flows) for k, p in flow.params.items()
    }


def _flow_grads(flows):
    return {
        f"flow{layer}.{k}": g for layer, flow in enumerate(flows) for k, g in flow.grads.items()
    }


class FlowDensity:
    """q(z): z_0 = mu + std * eps ~ N(mu, diag std²), z = z_F = T_F(... T_1(z_0)).

    log q(z_F) = log N(z_0 | mu, std²) - Σ_l log|det ∂T_l/∂z|. One density with free
    parameters (mu, logvar: (K,) and the flows' u, v, b), not an encoder: fitted to one
    posterior p(z | x) by the reparameterized gradient of KL(q || p(z | x)).
    """

    def __init__(self, dim, n_flows, *, rng, dtype=np.float32):
        if not whole_number(dim) or dim < 1:
            raise ValueError(f"dim must be a positive whole number, got {dim!r}")
        if not whole_number(n_flows) or n_flows < 0:
            raise ValueError(f"n_flows must be a whole number >= 0, got {n_flows!r}")
        dtype, rng = float_dtype(dtype), np.random.default_rng(rng)
        self.flows = [PlanarFlow(dim, rng=rng, dtype=dtype) for _ in range(int(n_flows))]
        self.params = {"mu": np.zeros(int(dim), dtype), "logvar": np.zeros(int(dim), dtype)}
        self.params |= _flow_params(self.flows)
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}

    def forward(self, eps):
        """Samples z = z_F and their log q(z).   eps: (S, K) -> (S, K), (S,)."""
        mu, logvar = self.params["mu"], self.params["logvar"]
        eps = np.asarray(eps)
        if eps.ndim != 2 or eps.shape[1] != len(mu) or len(eps) == 0:
            raise ValueError(f"eps must have shape (S, {len(mu)}) with S >= 1, got {eps.shape}")
        if not np.isfinite(eps).all():
            raise ValueError("eps contains NaN or infinite values")
        std = np.exp(0.5 * logvar)
        z, log_det = flows_forward(self.flows, mu + std * eps)
        log_q = -(0.5 * eps * eps + 0.5 * logvar + HALF_LOG_2PI).sum(axis=1) - log_det
        self.cache = eps, std
        return z, log_q

    def backward(self, dz, dlog_q):
        """Gradients given d loss/d z (S, K) and d loss/d log q (S,); sets self.grads."""
        eps, std = self.cache
        dz0 = flows_backward(self.flows, dz, -dlog_q)  # log q has -Σ log det
        dlogvar = (dz0 * eps).sum(axis=0) * 0.5 * std - 0.5 * dlog_q.sum()
        self.grads = {"mu": dz0.sum(axis=0), "logvar": dlogvar} | _flow_grads(self.flows)
        return self.grads


class FlowVAE(VAE):
    """A VAE whose q_φ(z|x) is the encoder's Gaussian pushed through `n_flows` planar flows.

    z_0 = mu(x) + std(x) * eps, z = T_F(... T_1(z_0)); the flows' parameters are shared by all
    x (only the Gaussian is amortized). The ELBO is sampled, as the KL has no closed form:
    ELBO = log p(x|z) + log p(z) - log N(z_0 | mu, std²) + Σ_l log|det ∂T_l/∂z|.
    Parameter names: enc.*, dec.* as in VAE, and flow{l}.u, flow{l}.v, flow{l}.b.
    """

    def __init__(self, x_dim, hidden, z_dim, *, n_flows, rng, dtype=np.float32, **kwargs):
        if not whole_number(n_flows) or n_flows < 0:
            raise ValueError(f"n_flows must be a whole number >= 0, got {n_flows!r}")
        rng = np.random.default_rng(rng)
        super().__init__(x_dim, hidden, z_dim, rng=rng, dtype=dtype, **kwargs)
        self.flows = [
            PlanarFlow(self.z_dim, rng=rng, dtype=self.dtype) for _ in range(int(n_flows))
        ]
        self.params |= _flow_params(self.flows)

    def _forward_q(self, x, mu, logvar, eps):
        """log w = log p(x|z) + log p(z) - log q(z|x) at z = flows(mu + std * eps), with parts."""
        z0 = self.reparam.forward(mu, logvar, eps)
        z, log_det = flows_forward(self.flows, z0)  # (B, K), (B,)
        out = self.decoder.forward(z)  # (B, D)
        recon = self._nll(out, x)  # -log p(x|z), (B,)
        log_q0 = -(0.5 * eps * eps + 0.5 * logvar + HALF_LOG_2PI).sum(axis=1)
        log_pz = -(0.5 * z * z + HALF_LOG_2PI).sum(axis=1)
        kl = log_q0 - log_det - log_pz  # log q(z|x) - log p(z), one draw: (B,)
        return out, z, recon, kl

    def _backward_q(self, x, out, z, scale):
        """d(scale * Σ_B -log w)/d(mu, logvar); sets the decoder's and the flows' grads."""
        d_out = self._nll_backward(out, x)  # (B, D)
        d_out *= scale
        dz = self.decoder.backward(d_out) + scale * z  # -log p(z) adds z
        dlog_det = np.full(len(z), -scale, dtype=z.dtype)  # -log w has -Σ log det
        dmu, dlogvar = self.reparam.backward(flows_backward(self.flows, dz, dlog_det))
        return dmu, dlogvar - 0.5 * scale  # +log q_0 adds -½ logvar per dimension

    def loss_and_grads(self, x, *, eps=None, rng=None, k=1):
        """mean_B(-ELBO) from one draw of z per example, and its gradients."""
        if isinstance(k, bool | np.bool_) or k != 1:
            raise ValueError(f"FlowVAE trains on the ELBO only: k must be 1, got {k!r}")
        if float(self.beta) != 1.0:
            raise ValueError(f"FlowVAE trains on the ELBO only: beta must be 1, got {self.beta!r}")
        x = self._check(x, self.x_dim, "x", targets=True)
        mu, logvar = self._encode(x)
        eps = self._noise(eps, rng, mu.shape)
        out, z, recon, kl = self._forward_q(x, mu, logvar, eps)
        dmu, dlogvar = self._backward_q(x, out, z, 1.0 / len(x))
        self.encoder.backward(np.concatenate([dmu, dlogvar, *self._code_grads()], axis=1))
        self.stats = {"recon": float(recon.mean()), "kl": float(kl.mean())}
        return float(np.mean(recon + kl)), self._grads()

    def local_loss_and_grads(self, x, mu, logvar, *, eps=None, rng=None):
        """mean_B(-ELBO) for a given q_0 = N(mu, diag exp(logvar)) per example, and
        d/d(mu, logvar): for optimising each example's q directly (no encoder). (B, K) each."""
        x = self._check(x, self.x_dim, "x", targets=True)
        mu, logvar = self._q0(x, mu, logvar)
        eps = self._noise(eps, rng, mu.shape)
        self._flows_for(x)
        out, z, recon, kl = self._forward_q(x, mu, logvar, eps)
        return float(np.mean(recon + kl)), self._backward_q(x, out, z, 1.0 / len(x))

    def elbo(self, x, *, eps=None, rng=None, mu=None, logvar=None):
        """Per-example ELBO (B,) from one draw, `.recon` and `.kl` (sampled) as its parts.

        mu, logvar: a q_0 to use instead of the encoder's (B, K)."""
        from .models import Elbo

        x = self._check(x, self.x_dim, "x", targets=True)
        if mu is None and logvar is None:
            mu, logvar = self._encode(x)
        else:
            mu, logvar = self._q0(x, mu, logvar)
            self._flows_for(x)
        _, _, recon, kl = self._forward_q(x, mu, logvar, self._noise(eps, rng, mu.shape))
        return Elbo(recon, kl)

    def log_likelihood(self, x, *, k, rng, mu=None, logvar=None):
        """log p(x) ≈ logsumexp_i log w_i - log k, z_i from q(z|x) (mu, logvar: as in elbo)."""
        if not whole_number(k) or k < 1:
            raise ValueError(f"k must be a positive whole number of samples, got {k!r}")
        x = self._check(x, self.x_dim, "x", targets=True)
        if mu is not None or logvar is not None:
            mu, logvar = self._q0(x, mu, logvar)
        k, rng, B = int(k), np.random.default_rng(rng), len(x)
        chunk = max(1, min(k, 2**20 // (B * max(self.x_dim, self.z_dim))))
        log_w = []
        for start in range(0, k, chunk):
            c = min(chunk, k - start)  # c draws per example at once: rows (draw, example)
            x_c = np.tile(x, (c, 1))
            if mu is None:  # the encoder on every copy: an amortized flow's rows need them
                mu_c, logvar_c = self._encode(x_c)
            else:
                mu_c, logvar_c = np.tile(mu, (c, 1)), np.tile(logvar, (c, 1))
                self._flows_for(x_c)
            eps = rng.standard_normal((c * B, self.z_dim)).astype(self.dtype)
            _, _, recon, kl = self._forward_q(x_c, mu_c, logvar_c, eps)
            log_w.append(-(recon + kl).astype(np.float64).reshape(c, B))
        return log_mean_exp(np.concatenate(log_w))  # (k, B) -> (B,)

    def _q0(self, x, mu, logvar):
        """A given q_0's (mu, logvar), checked: both (B, K), one row per example, finite."""
        if mu is None or logvar is None:
            raise ValueError("pass both mu and logvar (a q_0 per example), or neither")
        B, K = len(x), self.z_dim
        mu, logvar = self._check(mu, K, "mu"), self._check(logvar, K, "logvar")
        if mu.shape != (B, K) or logvar.shape != (B, K):
            raise ValueError(
                f"mu and logvar must have shape ({B}, {K}), one row per example of x, got "
                f"{mu.shape} and {logvar.shape}"
            )
        return mu, logvar

    def _flows_for(self, x):
        """Make the flows those of q(z|x): shared flows already are."""

    def _code_grads(self):
        """Gradients of the encoder's outputs beyond (mu, logvar): none for shared flows."""
        return []

    def _grads(self):
        return super()._grads() | _flow_grads(self.flows)

    @property
    def config(self):
        return super().config | {"n_flows": len(self.flows)}


class AmortizedFlowVAE(FlowVAE):
    """A FlowVAE whose flows' u, v, b the encoder computes from x (Rezende & Mohamed 2015).

    The encoder's last layer outputs mu, logvar (K each), then u, v (K each) and b of every
    flow: 2K + F (2K + 1) numbers per example. Otherwise as FlowVAE; with mu, logvar given (elbo,
    local_loss_and_grads, log_likelihood) the flows stay the encoder's for x.
    """

    def __init__(self, x_dim, hidden, z_dim, *, n_flows, rng, dtype=np.float32, **kwargs):
        if not whole_number(n_flows) or n_flows < 0:
            raise ValueError(f"n_flows must be a whole number >= 0, got {n_flows!r}")
        rng = np.random.default_rng(rng)
        super().__init__(x_dim, hidden, z_dim, n_flows=0, rng=rng, dtype=dtype, **kwargs)
        K = self.z_dim
        self._build(2 * K + int(n_flows) * (2 * K + 1), rng)  # a wider encoder, a new decoder
        self.flows = [RowPlanarFlow() for _ in range(int(n_flows))]

    def _encode(self, x):
        h = self.encoder.forward(x)  # (B, 2K + F(2K + 1))
        K = self.z_dim
        code = h[:, 2 * K :].reshape(len(x), len(self.flows), 2 * K + 1)
        for layer, flow in enumerate(self.flows):
            flow.rows = code[:, layer, :K], code[:, layer, K : 2 * K], code[:, layer, 2 * K]
        return h[:, :K], h[:, K : 2 * K]

    def _flows_for(self, x):
        self._encode(x)

    def _code_grads(self):
        return [
            np.concatenate([du, dv, db[:, None]], axis=1)
            for du, dv, db in (flow.row_grads for flow in self.flows)
        ]

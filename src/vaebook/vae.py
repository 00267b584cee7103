"""The variational autoencoder: q_φ(z|x), p_θ(x|z), the ELBO and its gradients.

Derived in notebooks/06_vae.ipynb; `log_likelihood` in notebooks/10_evaluation.ipynb.
"""

import numpy as np

from .checks import whole_number
from .losses import (
    Reparameterize,
    bernoulli_nll,
    bernoulli_nll_backward,
    gaussian_nll,
    gaussian_nll_backward,
    kl_normal,
    kl_normal_backward,
    log_mean_exp,
)
from .models import Elbo, _Model

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(_Model):
    """q_φ(z|x) = N(mu, diag exp(logvar)) from an MLP encoder; p_θ(x|z) from an MLP decoder.

    Encoder x -> hidden ReLU layers -> (mu, logvar), one output layer of width 2K split in two.
    Decoder z -> mirrored hidden ReLU layers -> logits (Bernoulli) or means (Gaussian with fixed
    standard deviation `obs_std`). `beta` weights the KL term in `loss_and_grads` (1 = the ELBO).
    """

    def __init__(
        self, x_dim, hidden, z_dim, *, rng, likelihood="bernoulli", dtype=np.float32, obs_std=1.0
    ):
        super().__init__(x_dim, hidden, z_dim, dtype)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}")
        if (
            isinstance(obs_std, bool | np.bool_)
            or not isinstance(obs_std, int | float | np.number)
            or not 0 < obs_std < np.inf
        ):
            raise ValueError(f"obs_std must be a positive finite number, got {obs_std!r}")
        self.likelihood, self._bounded = likelihood, likelihood == "bernoulli"
        self.obs_std = float(obs_std)  # kept as given: the config must rebuild it exactly
        self.obs_logvar = 2 * np.log(self.obs_std)
        self.beta = 1.0
        self._build(2 * self.z_dim, rng)  # the encoder's last layer outputs (mu, logvar)
        self.reparam = Reparameterize()

    def _encode(self, x):
        h = self.encoder.forward(x)  # (B, 2K)
        return h[:, : self.z_dim], h[:, self.z_dim :]  # mu, logvar: (B, K) views, no copy

    def encode(self, x):
        """(mu, logvar) of q(z|x).   (B, D) -> (B, K), (B, K)."""
        return self._encode(self._check(x, self.x_dim, "x"))

    def reconstruct(self, x):
        """decode(mu(x)): the reconstruction at the posterior mean.   (B, D) -> (B, D)."""
        return self.decode(self.encode(x)[0])

    def sample(self, n, *, rng):
        """n new examples: decode z ~ p(z) = N(0, I), the prior (not the posterior). -> (n, D)."""
        if not whole_number(n) or n < 1:
            raise ValueError(f"sample needs a whole number n >= 1, got {n!r}")
        rng = np.random.default_rng(rng)
        return self.decode(rng.standard_normal((int(n), self.z_dim)).astype(self.dtype))

    def _noise(self, eps, rng, shape):
        """eps ~ N(0, I) of `shape`: the given one (checked) or a fresh draw from rng."""
        if eps is None:
            if rng is None:
                raise ValueError("pass eps (B, z_dim) or rng to draw the noise from")
            return np.random.default_rng(rng).standard_normal(shape).astype(self.dtype)
        eps = self._check(eps, self.z_dim, "eps")
        if eps.shape != shape:
            raise ValueError(f"eps must have shape {shape} (one row per example), got {eps.shape}")
        return eps

    def _nll(self, out, x):
        if self._bounded:
            return bernoulli_nll(out, x)
        return gaussian_nll(out, x, self.obs_logvar)

    def _nll_backward(self, out, x):
        if self._bounded:
            return bernoulli_nll_backward(out, x)
        return gaussian_nll_backward(out, x, self.obs_logvar)[0]

    def elbo(self, x, *, eps=None, rng=None):
        """Per-example ELBO (B,) from one reparameterized sample, with `.recon` and `.kl` parts.

        ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), the expectation taken at z = mu + std * eps.
        """
        return self._elbo(self._check(x, self.x_dim, "x", targets=True), None, eps, rng)

    def loss_and_grads(self, x, *, eps=None, rng=None, k=1):
        """mean_B(recon + beta * KL) (the negative ELBO when beta = 1) and its gradients.

        k > 1: the batch mean of -L_k, the importance-weighted bound of Burda et al. (2016), with
        eps of shape (k, B, K); see `_iwae_loss_and_grads`. k = 1 is the ELBO above, eps (B, K).
        """
        if not whole_number(k) or k < 1:
            raise ValueError(f"k must be a positive whole number of samples, got {k!r}")
        if k > 1:
            return self._iwae_loss_and_grads(x, eps, rng, int(k))
        return self._loss_and_grads(self._check(x, self.x_dim, "x", targets=True), None, eps, rng)

    # The conditional VAE (cvae.py) feeds a label y to the encoder and the decoder beside x and
    # z; here y is None. x has been checked.
    def _inputs(self, a, y):
        return a if y is None else np.concatenate([a, y], axis=1)  # (B, D + Y) or (B, K + Y)

    def _elbo(self, x, y, eps, rng):
        mu, logvar = self._encode(self._inputs(x, y))
        z = self.reparam.forward(mu, logvar, self._noise(eps, rng, mu.shape))
        out = self.decoder.forward(self._inputs(z, y))
        return Elbo(self._nll(out, x), kl_normal(mu, logvar))

    def _loss_and_grads(self, x, y, eps, rng):
        mu, logvar = self._encode(self._inputs(x, y))  # (B, K) each
        eps = self._noise(eps, rng, mu.shape)
        z = self.reparam.forward(mu, logvar, eps)  # (B, K)
        out = self.decoder.forward(self._inputs(z, y))  # (B, D)
        recon, kl = self._nll(out, x), kl_normal(mu, logvar)  # (B,) each
        beta = float(self.beta)  # a Python float: a NumPy float64 would upcast float32 gradients
        loss = float(np.mean(recon + beta * kl))

        # Backward: the forward read in reverse, the batch mean giving the 1/B.
        scale = 1.0 / len(x)
        d_out = self._nll_backward(out, x)  # (B, D), a new array: scaled in place
        d_out *= scale
        dz = self.decoder.backward(d_out)  # (B, K), or (B, K + Y) with y: the label's part unused
        dmu, dlogvar = self.reparam.backward(dz if y is None else dz[:, : self.z_dim])
        dmu_kl, dlogvar_kl = kl_normal_backward(mu, logvar)
        dmu = dmu + (beta * scale) * dmu_kl
        dlogvar = dlogvar + (beta * scale) * dlogvar_kl
        self.encoder.backward(np.concatenate([dmu, dlogvar], axis=1))  # (B, 2K)
        self.stats = {"recon": float(recon.mean()), "kl": float(kl.mean())}
        return loss, self._grads()

    def _iwae_loss_and_grads(self, x, eps, rng, k):
        """-mean_B L_k, L_k = logsumexp_i log w_i - log k, and its gradients.

        log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i = mu + std * eps_i; eps: (k, B, K).
        The gradient is -sum_i w~_i grad log w_i with the self-normalized weights
        w~_i = w_i / sum_j w_j (Burda et al. 2016). L_k is derived in
        notebooks/10_evaluation.ipynb.
        """
        if float(self.beta) != 1.0:
            raise ValueError(
                f"the bound L_k (k > 1) has no KL term to weight: beta must be 1, got {self.beta}"
            )
        x = self._check(x, self.x_dim, "x", targets=True)
        B, K = len(x), self.z_dim
        if eps is None:
            if rng is None:
                raise ValueError("pass eps (k, B, z_dim) or rng to draw the noise from")
            eps = np.random.default_rng(rng).standard_normal((k, B, K)).astype(self.dtype)
        else:
            eps = np.asarray(eps)
            if eps.shape != (k, B, K):
                raise ValueError(f"eps must have shape {(k, B, K)} for k = {k}, got {eps.shape}")
            eps = self._check(eps.reshape(k * B, K), K, "eps").reshape(k, B, K)
        mu, logvar = self._encode(x)  # (B, K) each
        std = np.exp(0.5 * logvar)
        z = mu + std * eps  # (k, B, K)
        x_rep = np.broadcast_to(x, (k, B, self.x_dim)).reshape(k * B, self.x_dim)
        out = self.decoder.forward(z.reshape(k * B, K))  # (k*B, D)
        half_log_2pi = 0.5 * np.log(2 * np.pi, dtype=self.dtype)
        log_w = (
            -self._nll(out, x_rep).reshape(k, B)
            - (0.5 * z * z + half_log_2pi).sum(axis=2)  # log p(z_i)
            + (0.5 * (eps * eps + logvar) + half_log_2pi).sum(axis=2)  # -log q(z_i|x)
        )  # (k, B)
        top = log_w.max(axis=0)
        w = np.exp(log_w - top)  # (k, B)
        total = w.sum(axis=0)
        bound = top + np.log(total) - np.log(k)  # L_k per example, (B,)
        loss = float(-bound.mean())

        # Backward: d loss / d log w_i = -w~_i / B, then each log w_i read in reverse.
        g = (w / total) / B  # (k, B), sums to 1/B over i
        d_out = self._nll_backward(out, x_rep)  # (k*B, D)
        d_out *= g.reshape(k * B, 1)
        dz = self.decoder.backward(d_out).reshape(k, B, K) + g[:, :, None] * z  # log p(z_i)
        dmu = dz.sum(axis=0)
        dlogvar = (dz * eps).sum(axis=0) * (0.5 * std) - 0.5 / B  # -log q: +1/2 per dimension
        self.encoder.backward(np.concatenate([dmu, dlogvar], axis=1).astype(self.dtype))
        self.stats = {}  # L_k does not split into a reconstruction and a KL term
        return loss, self._grads()

    def log_likelihood(self, x, *, k, rng):
        """Importance-weighted estimate of log p(x) with k samples from q(z|x) (Burda et al. 2016).

        log p(x) ≈ logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k. (B, D) -> (B,)
        k = 1 is the ELBO (with the sampled, not the closed-form, KL). Derived in
        notebooks/10_evaluation.ipynb.
        """
        x = self._check(x, self.x_dim, "x", targets=True)
        return self._log_likelihood(x, None, k, rng)

    def _log_likelihood(self, x, y, k, rng):
        if not whole_number(k) or k < 1:
            raise ValueError(f"k must be a positive whole number of samples, got {k!r}")
        k, rng = int(k), np.random.default_rng(rng)
        mu, logvar = self._encode(self._inputs(x, y))
        std = np.exp(0.5 * logvar)
        chunk = max(1, min(k, 2**22 // (len(x) * max(self.x_dim, self.z_dim))))
        log_w = []
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            eps = rng.standard_normal((c, *mu.shape)).astype(self.dtype)  # (c, B, K)
            z = mu + std * eps
            z_in = z.reshape(-1, self.z_dim)  # (c*B, K)
            out = self.decoder.forward(
                z_in if y is None else self._inputs(z_in, np.tile(y, (c, 1)))
            )
            log_px_z = -self._nll(out, np.tile(x, (c, 1))).reshape(c, len(x))
            log_pz = -0.5 * (z * z + np.log(2 * np.pi)).sum(axis=2)
            log_qz = -0.5 * (eps * eps + np.log(2 * np.pi) + logvar).sum(axis=2)
            log_w.append((log_px_z + log_pz - log_qz).astype(np.float64))  # (c, B)
        return log_mean_exp(np.concatenate(log_w))  # (k, B) -> (B,)

    @property
    def config(self):
        return super().config | {
            "likelihood": self.likelihood,
            "obs_std": self.obs_std,
        }

"""The autoencoder and the variational autoencoder, built from `layers` and `losses`.

Both expose `params` (name -> array, updated in place by an optimizer) and
`loss_and_grads(x, *, eps=None, rng=None) -> (loss, grads)`, which is what `fit` calls.
Derived in notebooks/05_autoencoder.ipynb and notebooks/06_vae.ipynb.
"""

import numpy as np

from .layers import mlp, sigmoid
from .losses import (
    Reparameterize,
    bernoulli_nll,
    bernoulli_nll_backward,
    gaussian_nll,
    gaussian_nll_backward,
    kl_normal,
    kl_normal_backward,
    mse,
    mse_backward,
)

LIKELIHOODS = ("bernoulli", "gaussian")
AE_LOSSES = ("bernoulli", "mse")


class Elbo(np.ndarray):
    """The per-example ELBO, a (B,) array, carrying its parts as attributes (each (B,)):

    `recon`: -log p(x|z) at one z ~ q(z|x), the reconstruction loss in nats;
    `kl`: KL(q(z|x) || p(z)) in closed form;  and the array itself is -(recon + kl).
    Arithmetic on it gives plain arrays: the parts belong to these values only.
    """

    def __new__(cls, recon, kl):
        elbo = np.asarray(-(recon + kl)).view(cls)
        elbo.recon, elbo.kl = recon, kl
        return elbo

    def __array_finalize__(self, obj):
        self.recon, self.kl = None, None  # views and slices do not carry the parts

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        arr = np.asarray(arr).view(np.ndarray)
        return arr[()] if return_scalar else arr


class _Model:
    """What both models share: parameter naming, input checks, decoding."""

    def __init__(self, x_dim, hidden, z_dim, dtype):
        hidden = tuple(int(h) for h in np.atleast_1d(hidden)) if hidden is not None else ()
        if int(x_dim) < 1 or int(z_dim) < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"widths must be positive: x_dim={x_dim}, hidden={hidden}, z_dim={z_dim}"
            )
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.x_dim, self.hidden, self.z_dim = int(x_dim), hidden, int(z_dim)
        self.dtype = np.dtype(dtype)

    def _build(self, code_width, rng):
        """Encoder x -> hidden -> code_width, mirrored decoder z -> hidden -> x (ReLU between)."""
        rng = np.random.default_rng(rng)
        self.encoder = mlp((self.x_dim, *self.hidden, code_width), rng=rng, dtype=self.dtype)
        self.decoder = mlp((self.z_dim, *self.hidden[::-1], self.x_dim), rng=rng, dtype=self.dtype)
        self.encoder.layers[0].needs_dx = False  # its input is data: no gradient wanted
        self.params = {f"enc.{k}": v for k, v in self.encoder.params.items()}
        self.params |= {f"dec.{k}": v for k, v in self.decoder.params.items()}

    def _grads(self):
        grads = {f"enc.{k}": v for k, v in self.encoder.grads.items()}
        return grads | {f"dec.{k}": v for k, v in self.decoder.grads.items()}

    def _check(self, a, width, name, targets=False):
        """`a` as a (B, width) array of this model's dtype, or a ValueError naming the problem."""
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[1] != width:
            raise ValueError(f"{name} must have shape (B, {width}), got {a.shape}")
        if a.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch (B = 0)")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
        a = a.astype(self.dtype, copy=False)
        lo, hi = a.min(), a.max()  # NaN or ±inf anywhere shows up in one of the two
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if targets and self._bounded and (lo < 0 or hi > 1):
            raise ValueError(
                f"{name} must lie in [0, 1] for a Bernoulli likelihood, "
                f"got values in [{lo:.3g}, {hi:.3g}]"
            )
        return a

    def decode(self, z):
        """Mean of p(x|z): sigmoid(logits) (Bernoulli) or the means.   (B, K) -> (B, D)."""
        out = self.decoder.forward(self._check(z, self.z_dim, "z"))
        return sigmoid(out) if self._bounded else out

    @property
    def config(self):
        """Everything needed to rebuild this architecture (used by `save`/`load`)."""
        return {
            "class": type(self).__name__,
            "x_dim": self.x_dim,
            "hidden": list(self.hidden),
            "z_dim": self.z_dim,
            "dtype": self.dtype.name,
        }


class Autoencoder(_Model):
    """x -> hidden ReLU layers -> z -> mirrored hidden ReLU layers -> x_hat. No sampling.

    loss "bernoulli": decoder outputs logits, loss = Bernoulli NLL summed over D (as the VAE's
    reconstruction term); "mse": decoder outputs x_hat directly, loss = mean squared error over D.
    Both averaged over the batch.
    """

    def __init__(self, x_dim, hidden, z_dim, *, rng, dtype=np.float32, loss="bernoulli"):
        super().__init__(x_dim, hidden, z_dim, dtype)
        if loss not in AE_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {AE_LOSSES}")
        self.loss, self._bounded = loss, loss == "bernoulli"
        self._build(self.z_dim, rng)

    def encode(self, x):
        """The code z = encoder(x).   (B, D) -> (B, K)."""
        return self.encoder.forward(self._check(x, self.x_dim, "x"))

    def reconstruct(self, x):
        """decode(encode(x)).   (B, D) -> (B, D)."""
        return self.decode(self.encode(x))

    def _losses(self):
        if self._bounded:
            return bernoulli_nll, bernoulli_nll_backward
        return mse, mse_backward

    def recon_loss(self, x):
        """Per-example reconstruction loss (no gradients).   (B, D) -> (B,)."""
        x = self._check(x, self.x_dim, "x", targets=True)
        return self._losses()[0](self.decoder.forward(self.encoder.forward(x)), x)

    def loss_and_grads(self, x, *, eps=None, rng=None):
        """Batch-mean reconstruction loss and its gradients (eps, rng unused: no sampling)."""
        x = self._check(x, self.x_dim, "x", targets=True)
        nll, nll_backward = self._losses()
        z = self.encoder.forward(x)  # (B, K)
        out = self.decoder.forward(z)  # (B, D)
        loss = float(nll(out, x).mean())
        dz = self.decoder.backward(nll_backward(out, x) / len(x))
        self.encoder.backward(dz)
        self.stats = {"recon": loss}
        return loss, self._grads()

    @property
    def config(self):
        return super().config | {"loss": self.loss}


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
        if not obs_std > 0:
            raise ValueError(f"obs_std must be positive, got {obs_std}")
        self.likelihood, self._bounded = likelihood, likelihood == "bernoulli"
        self.obs_logvar = 2 * np.log(float(obs_std))
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
        if int(n) < 1:
            raise ValueError(f"sample needs n >= 1, got {n}")
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
        x = self._check(x, self.x_dim, "x", targets=True)
        mu, logvar = self._encode(x)
        z = self.reparam.forward(mu, logvar, self._noise(eps, rng, mu.shape))
        recon, kl = self._nll(self.decoder.forward(z), x), kl_normal(mu, logvar)
        return Elbo(recon, kl)

    def loss_and_grads(self, x, *, eps=None, rng=None):
        """mean_B(recon + beta * KL) (the negative ELBO when beta = 1) and its gradients."""
        x = self._check(x, self.x_dim, "x", targets=True)
        mu, logvar = self._encode(x)  # (B, K) each
        eps = self._noise(eps, rng, mu.shape)
        z = self.reparam.forward(mu, logvar, eps)  # (B, K)
        out = self.decoder.forward(z)  # (B, D)
        recon, kl = self._nll(out, x), kl_normal(mu, logvar)  # (B,) each
        loss = float(np.mean(recon + self.beta * kl))

        # Backward: the forward read in reverse, the batch mean giving the 1/B.
        scale = 1.0 / len(x)
        d_out = self._nll_backward(out, x)  # (B, D), a new array: scaled in place
        d_out *= scale
        dz = self.decoder.backward(d_out)
        dmu, dlogvar = self.reparam.backward(dz)
        dmu_kl, dlogvar_kl = kl_normal_backward(mu, logvar)
        dmu = dmu + (self.beta * scale) * dmu_kl
        dlogvar = dlogvar + (self.beta * scale) * dlogvar_kl
        self.encoder.backward(np.concatenate([dmu, dlogvar], axis=1))  # (B, 2K)
        self.stats = {"recon": float(recon.mean()), "kl": float(kl.mean())}
        return loss, self._grads()

    def log_likelihood(self, x, *, k, rng):
        """Importance-weighted estimate of log p(x) with k samples from q(z|x) (Burda et al. 2016).

        log p(x) ≈ logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k. (B, D) -> (B,)
        k = 1 is the ELBO (with the sampled, not the closed-form, KL). Derived in
        notebooks/10_evaluation.ipynb.
        """
        if int(k) < 1:
            raise ValueError(f"k must be a positive number of samples, got {k}")
        x = self._check(x, self.x_dim, "x", targets=True)
        rng = np.random.default_rng(rng)
        mu, logvar = self._encode(x)
        std = np.exp(0.5 * logvar)
        chunk = max(1, min(int(k), 2**22 // (len(x) * max(self.x_dim, self.z_dim))))
        log_w = []
        for start in range(0, int(k), chunk):
            c = min(chunk, int(k) - start)
            eps = rng.standard_normal((c, *mu.shape)).astype(self.dtype)  # (c, B, K)
            z = mu + std * eps
            out = self.decoder.forward(z.reshape(-1, self.z_dim))  # (c*B, D)
            log_px_z = -self._nll(out, np.tile(x, (c, 1))).reshape(c, len(x))
            log_pz = -0.5 * (z * z + np.log(2 * np.pi)).sum(axis=2)
            log_qz = -0.5 * (eps * eps + np.log(2 * np.pi) + logvar).sum(axis=2)
            log_w.append((log_px_z + log_pz - log_qz).astype(np.float64))  # (c, B)
        log_w = np.concatenate(log_w)  # (k, B)
        top = log_w.max(axis=0)
        return top + np.log(np.exp(log_w - top).mean(axis=0))

    @property
    def config(self):
        return super().config | {
            "likelihood": self.likelihood,
            "obs_std": float(np.exp(0.5 * self.obs_logvar)),
        }

"""The conditional VAE: q_φ(z|x, y) and p_θ(x|z, y) with a one-hot label y (Sohn et al. 2015).

The encoder reads [x, y] and the decoder [z, y]; the prior stays p(z) = N(0, I), so z is free
to hold what the label does not say (the style of a digit). Derived in
notebooks/13_conditional_vae.ipynb.
"""

import numpy as np

from .checks import whole_number
from .layers import sigmoid
from .vae import VAE


class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder also see a one-hot label y: (B, Y).

    Encoder [x, y] -> hidden ReLU layers -> (mu, logvar); decoder [z, y] -> mirrored hidden ReLU
    layers -> logits (Bernoulli) or means (Gaussian). Loss: mean_B(recon + beta * KL), the
    negative conditional ELBO  E_q[log p(x|z, y)] - KL(q(z|x, y) || p(z)). Every method takes
    the labels beside x or z, so `fit` (which passes x alone) does not train it: loop over
    batches of (x, y) and call `loss_and_grads(xb, yb, rng=rng)` and an optimizer's `step`.
    """

    def __init__(
        self,
        x_dim,
        y_dim,
        hidden,
        z_dim,
        *,
        rng,
        likelihood="bernoulli",
        dtype=np.float32,
        obs_std=1.0,
    ):
        if not whole_number(y_dim) or y_dim < 1:
            raise ValueError(f"y_dim must be a positive whole number, got {y_dim!r}")
        self.y_dim = int(y_dim)
        super().__init__(
            x_dim, hidden, z_dim, rng=rng, likelihood=likelihood, dtype=dtype, obs_std=obs_std
        )

    def _build(self, code_width, rng):
        super()._build(code_width, rng, extra_inputs=self.y_dim)

    def _check_y(self, y, n):
        """y as an (n, y_dim) one-hot array of this model's dtype, or a ValueError."""
        y = np.asarray(y)
        if y.ndim != 2 or y.shape != (n, self.y_dim):
            raise ValueError(
                f"y must have shape ({n}, {self.y_dim}) (one-hot labels), got {y.shape}"
            )
        if y.dtype != bool and not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"y must hold numbers, got dtype {y.dtype}")
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            rows = np.flatnonzero(~(np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)))
            raise ValueError(
                f"y must be one-hot (a single 1 per row, 0 elsewhere); rows {rows[:5].tolist()} "
                "are not"
            )
        return y.astype(self.dtype)

    def one_hot(self, labels):
        """Integer labels (n,) in 0..y_dim-1 as one-hot rows (n, y_dim)."""
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.y_dim):
            raise ValueError(f"labels must lie in 0..{self.y_dim - 1}")
        return np.eye(self.y_dim, dtype=self.dtype)[labels]

    def encode(self, x, y):
        """(mu, logvar) of q(z|x, y).   (B, D), (B, Y) -> (B, K), (B, K)."""
        x = self._check(x, self.x_dim, "x")
        return self._encode(self._inputs(x, self._check_y(y, len(x))))

    def decode(self, z, y):
        """Mean of p(x|z, y).   (B, K), (B, Y) -> (B, D)."""
        z = self._check(z, self.z_dim, "z")
        out = self.decoder.forward(self._inputs(z, self._check_y(y, len(z))))
        return sigmoid(out) if self._bounded else out

    def reconstruct(self, x, y):
        """decode(mu(x, y), y).   (B, D), (B, Y) -> (B, D)."""
        return self.decode(self.encode(x, y)[0], y)

    def sample(self, y, *, rng):
        """One new example per row of y: decode z ~ p(z) = N(0, I) with that label. -> (n, D)."""
        y = np.asarray(y)
        rng = np.random.default_rng(rng)
        z = rng.standard_normal((len(y), self.z_dim)).astype(self.dtype)
        return self.decode(z, y)

    def elbo(self, x, y, *, eps=None, rng=None):
        """Per-example conditional ELBO (B,), with `.recon` and `.kl` parts."""
        x = self._check(x, self.x_dim, "x", targets=True)
        return self._elbo(x, self._check_y(y, len(x)), eps, rng)

    def loss_and_grads(self, x, y, *, eps=None, rng=None):
        """mean_B(recon + beta * KL) (the negative conditional ELBO at beta = 1), its gradients."""
        x = self._check(x, self.x_dim, "x", targets=True)
        return self._loss_and_grads(x, self._check_y(y, len(x)), eps, rng)

    def log_likelihood(self, x, y, *, k, rng):
        """Importance-weighted estimate of log p(x|y) with k samples from q(z|x, y). -> (B,)"""
        x = self._check(x, self.x_dim, "x", targets=True)
        return self._log_likelihood(x, self._check_y(y, len(x)), k, rng)

    @property
    def config(self):
        return super().config | {"y_dim": self.y_dim}

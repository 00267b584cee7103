"""The autoencoder: a deterministic code z = encoder(x), trained to reconstruct x.

Derived in notebooks/05_autoencoder.ipynb.
"""

import numpy as np

from .losses import bernoulli_nll, bernoulli_nll_backward, mse, mse_backward
from .models import _Model

AE_LOSSES = ("bernoulli", "mse")


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

"""What the autoencoder (`autoencoder.py`) and the VAE (`vae.py`) share, and the `Elbo` array.

Both models expose `params` (name -> array, updated in place by an optimizer) and
`loss_and_grads(x, *, eps=None, rng=None) -> (loss, grads)`, which is what `fit` calls.
Derived in notebooks/05_autoencoder.ipynb and notebooks/06_vae.ipynb.
"""

import numpy as np

from .checks import float_dtype, whole_number
from .layers import mlp, sigmoid


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


def check_batch(a, width, name, dtype, bounded=False, why=""):
    """`a` as a (B, width) array of `dtype`, B >= 1, finite, and in [0, 1] if `bounded`; or a
    ValueError naming `name` and the problem (`why` says why the range, in that message).
    """
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{name} must have shape (B, {width}), got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if a.dtype != bool and (not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a)):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(dtype, copy=False)
    lo, hi = a.min(), a.max()  # NaN or ±inf anywhere shows up in one of the two
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if bounded and (lo < 0 or hi > 1):
        raise ValueError(
            f"{name} must lie in [0, 1]{why}, got values in [{float(lo)!r}, {float(hi)!r}]"
        )
    return a


class _Model:
    """What both models share: parameter naming, input checks, decoding."""

    def __init__(self, x_dim, hidden, z_dim, dtype):
        hidden = tuple(np.atleast_1d(hidden).tolist()) if hidden is not None else ()
        widths = {"x_dim": x_dim, "z_dim": z_dim} | {
            f"hidden[{i}]": h for i, h in enumerate(hidden)
        }
        for name, width in widths.items():
            if not whole_number(width) or width < 1:
                raise ValueError(f"{name} must be a positive whole number, got {width!r}")
        dtype = float_dtype(dtype)
        self.x_dim, self.hidden, self.z_dim = int(x_dim), tuple(int(h) for h in hidden), int(z_dim)
        self.dtype = dtype

    def _build(self, code_width, rng, extra_inputs=0):
        """Encoder x -> hidden -> code_width, mirrored decoder z -> hidden -> x (ReLU between).

        extra_inputs: columns appended to the inputs of both (the label of a conditional VAE).
        """
        rng, e = np.random.default_rng(rng), int(extra_inputs)
        self.encoder = mlp((self.x_dim + e, *self.hidden, code_width), rng=rng, dtype=self.dtype)
        self.decoder = mlp(
            (self.z_dim + e, *self.hidden[::-1], self.x_dim), rng=rng, dtype=self.dtype
        )
        self.encoder.layers[0].needs_dx = False  # its input is data: no gradient wanted
        self.params = {f"enc.{k}": v for k, v in self.encoder.params.items()}
        self.params |= {f"dec.{k}": v for k, v in self.decoder.params.items()}

    def _grads(self):
        grads = {f"enc.{k}": v for k, v in self.encoder.grads.items()}
        return grads | {f"dec.{k}": v for k, v in self.decoder.grads.items()}

    def _check(self, a, width, name, targets=False):
        """`a` as a (B, width) array of this model's dtype, or a ValueError naming the problem."""
        bounded = targets and self._bounded
        return check_batch(a, width, name, self.dtype, bounded, " for a Bernoulli likelihood")

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

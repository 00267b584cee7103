"""A VAE with two stochastic layers: p(z2) p(z1|z2) p(x|z1), with bottom-up or top-down inference.

Generative path (θ): z2 ~ N(0, I) -> MLP -> (mu, logvar) of p(z1|z2) -> z1 -> MLP -> logits of
the Bernoulli p(x|z1). Inference (φ), two choices:

- "bottom-up": q(z1|x) q(z2|z1), each an MLP giving (mu, logvar);
- "top-down" (Sønderby et al. 2016): a deterministic upward pass x -> d1 (enc1's hidden
  features) -> (mu_hat1, logvar_hat1), and d1 -> enc2 -> q(z2|x); then q(z1|z2, x) = the
  precision-weighted product of N(mu_hat1, exp(logvar_hat1)) and the generative p(z1|z2), so
  inference shares the generative path.

Derived in notebooks/15_hierarchical_vae.ipynb.
"""

import numpy as np

from .checks import whole_number
from .layers import mlp, sigmoid
from .losses import LOG_2PI, bernoulli_nll, bernoulli_nll_backward, kl_normal
from .models import Elbo, _Model

INFERENCE = ("bottom-up", "top-down")
NETS = ("enc1", "enc2", "dec2", "dec1")  # q(z1|x) or upward pass; q(z2|.); p(z1|z2); p(x|z1)


def _log_normal(z, mu, logvar):
    """log N(z | mu, exp(logvar)), summed over the last axis.   (..., K) -> (...)."""
    return -0.5 * ((z - mu) ** 2 * np.exp(-logvar) + logvar + LOG_2PI).sum(axis=-1)


def _weight(value):
    """True for a KL weight or a free-bits floor: a finite number >= 0 (not a bool)."""
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool | np.bool_)
        and bool(0 <= value < np.inf)
    )


def kl_gauss(mu_q, logvar_q, mu_p, logvar_p):
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))), summed over K.   (B, K) -> (B,).

    ½ Σ [logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)²) / exp(logvar_p) - 1].
    """
    r = (np.exp(logvar_q) + (mu_q - mu_p) ** 2) * np.exp(-logvar_p)
    return 0.5 * (logvar_p - logvar_q + r - 1).sum(axis=1)


def kl_gauss_backward(mu_q, logvar_q, mu_p, logvar_p):
    """Gradients of the summed `kl_gauss`: (dmu_q, dlogvar_q, dmu_p, dlogvar_p), (B, K) each."""
    inv_p = np.exp(-logvar_p)
    d_mu = (mu_q - mu_p) * inv_p
    r = (np.exp(logvar_q) + (mu_q - mu_p) ** 2) * inv_p
    return d_mu, 0.5 * (np.exp(logvar_q) * inv_p - 1), -d_mu, 0.5 * (1 - r)


class HierarchicalVAE(_Model):
    """Two Gaussian latent layers z1 (K1) and z2 (K2) over a Bernoulli p(x|z1).

    hidden: the hidden widths of each of the four MLPs (top-down: enc2 continues enc1's upward
    pass from its last hidden layer, so it has the widths after the first). The loss is
    mean_B [recon + beta * (kl1 + top_scale * kl2)], with `free_bits` λ > 0 replacing each
    layer's batch-mean KL by max(λ, KL) (Kingma et al. 2016). kl2 is KL(q(z2|.) || N(0, I)) in
    closed form; kl1 is log q(z1|x) - log p(z1|z2) at the sample (bottom-up) or
    KL(q(z1|z2, x) || p(z1|z2)) in closed form (top-down). `fit`'s val_loss uses `beta` only.
    """

    def __init__(self, x_dim, hidden, z_dims, *, rng, inference="bottom-up", dtype=np.float32):
        z_dims = tuple(np.atleast_1d(z_dims).tolist())
        if len(z_dims) != 2 or not all(whole_number(k) and k >= 1 for k in z_dims):
            raise ValueError(f"z_dims must be two positive whole numbers (K1, K2), got {z_dims}")
        if inference not in INFERENCE:
            raise ValueError(f"unknown inference {inference!r}; choose one of {INFERENCE}")
        super().__init__(x_dim, hidden, z_dims[0], dtype)
        self.z_dims, self.inference, self._bounded = tuple(int(k) for k in z_dims), inference, True
        self.beta, self.top_scale, self.free_bits = 1.0, 1.0, 0.0
        K1, K2, H, rng = *self.z_dims, self.hidden, np.random.default_rng(rng)
        # enc2 reads z1 (bottom-up), or enc1's last hidden features d1 (top-down), as the ladder
        # VAE's upward pass d2 = MLP(d1) does: a layer shorter, so no more parameters
        top_down = inference == "top-down"
        if top_down and not H:
            raise ValueError(
                "top-down inference needs at least one hidden layer: q(z2|x) reads enc1's last "
                "hidden features"
            )
        sizes = {
            "enc1": (self.x_dim, *H, 2 * K1),
            "enc2": (H[-1], *H[1:], 2 * K2) if top_down else (K1, *H, 2 * K2),
            "dec2": (K2, *H, 2 * K1),
            "dec1": (K1, *H, self.x_dim),
        }
        self.nets = {n: mlp(s, rng=rng, dtype=self.dtype) for n, s in sizes.items()}
        self.nets["enc1"].layers[0].needs_dx = False  # its input is data
        self.decoder = self.nets["dec1"]  # _Model.decode(z1) reads it
        self.params = {
            f"{n}.{k}": v for n, net in self.nets.items() for k, v in net.params.items()
        }
        self.stats = {}

    def _grads(self):
        return {f"{n}.{k}": v for n, net in self.nets.items() for k, v in net.grads.items()}

    def _split(self, name, a):
        h = self.nets[name].forward(a)
        k = h.shape[1] // 2
        return h[:, :k], h[:, k:]  # mu, logvar

    def _noise(self, eps, rng, B):
        """(eps1, eps2) of shapes (B, K1), (B, K2): given (tuple or dict) or drawn from rng."""
        shapes = ((B, self.z_dims[0]), (B, self.z_dims[1]))
        if eps is None:
            if rng is None:
                raise ValueError("pass eps (eps1, eps2) or rng to draw the noise from")
            rng = np.random.default_rng(rng)
            return tuple(rng.standard_normal(s).astype(self.dtype) for s in shapes)
        if isinstance(eps, dict):
            eps = (eps.get("z1"), eps.get("z2"))
        if not isinstance(eps, tuple | list) or len(eps) != 2:
            raise ValueError("eps must be a pair (eps1, eps2) or a dict with keys 'z1', 'z2'")
        out = []
        for e, s, name in zip(eps, shapes, ("eps1", "eps2"), strict=True):
            if e is None or np.shape(e) != s:
                raise ValueError(f"{name} must have shape {s}, got {np.shape(e)}")
            out.append(self._check(e, s[1], name))
        return tuple(out)

    def _forward(self, x, e1, e2):
        """Every quantity of one pass, as a dict; the nets keep their caches for `_backward`."""
        f = {"e1": e1, "e2": e2}
        if self.inference == "bottom-up":
            f["mq1"], f["lq1"] = self._split("enc1", x)
            f["z1"] = f["mq1"] + np.exp(0.5 * f["lq1"]) * e1
            f["mq2"], f["lq2"] = self._split("enc2", f["z1"])
            f["z2"] = f["mq2"] + np.exp(0.5 * f["lq2"]) * e2
            f["mp1"], f["lp1"] = self._split("dec2", f["z2"])
        else:
            *trunk, head = self.nets["enc1"].layers
            d1 = x
            for layer in trunk:  # the deterministic upward pass
                d1 = layer.forward(d1)  # (B, H)
            h = head.forward(d1)  # (B, 2 K1): the upward message
            f["mh1"], f["lh1"] = h[:, : self.z_dims[0]], h[:, self.z_dims[0] :]
            f["mq2"], f["lq2"] = self._split("enc2", d1)
            f["z2"] = f["mq2"] + np.exp(0.5 * f["lq2"]) * e2
            f["mp1"], f["lp1"] = self._split("dec2", f["z2"])
            # Precision weighting: 1/var_q = 1/var_hat + 1/var_p; w_h = var_q / var_hat.
            f["wh"] = sigmoid(f["lp1"] - f["lh1"])  # (B, K1)
            f["mq1"] = f["wh"] * f["mh1"] + (1 - f["wh"]) * f["mp1"]
            f["lq1"] = -np.logaddexp(-f["lh1"], -f["lp1"])
            f["z1"] = f["mq1"] + np.exp(0.5 * f["lq1"]) * e1
        f["logits"] = self.nets["dec1"].forward(f["z1"])  # (B, D)
        return f

    def _terms(self, f, x):
        """Per-example recon, kl1, kl2 (B,) each, closed form where there is one."""
        recon = bernoulli_nll(f["logits"], x)
        kl2 = kl_normal(f["mq2"], f["lq2"])
        if self.inference == "bottom-up":  # log q(z1|x) - log p(z1|z2) at the sample
            kl1 = _log_normal(f["z1"], f["mq1"], f["lq1"]) - _log_normal(
                f["z1"], f["mp1"], f["lp1"]
            )
        else:
            kl1 = kl_gauss(f["mq1"], f["lq1"], f["mp1"], f["lp1"])
        return recon, kl1, kl2

    def elbo(self, x, *, eps=None, rng=None):
        """Per-example ELBO (B,) from one sample, with `.recon`, `.kl` = kl1 + kl2, `.kl1`, `.kl2`.

        ELBO = E_q[log p(x|z1)] - E_q[kl1] - E_q[kl2], the expectations taken at one (z1, z2).
        """
        x = self._check(x, self.x_dim, "x", targets=True)
        recon, kl1, kl2 = self._terms(self._forward(x, *self._noise(eps, rng, len(x))), x)
        elbo = Elbo(recon, kl1 + kl2)
        elbo.kl1, elbo.kl2 = kl1, kl2
        return elbo

    def _weights(self, beta):
        """(b1, b2), the KL weights: beta as a number or a pair; None: (beta, beta * top_scale)."""
        if beta is None:
            for name in ("beta", "top_scale"):
                if not _weight(getattr(self, name)):
                    raise ValueError(
                        f"{name} must be a finite number >= 0, got {getattr(self, name)!r}"
                    )
            return [float(self.beta), float(self.beta) * float(self.top_scale)]
        pair = beta.tolist() if isinstance(beta, np.ndarray) else beta
        pair = list(pair) if isinstance(pair, tuple | list) else [pair, pair]
        if len(pair) != 2 or not all(_weight(b) for b in pair):
            raise ValueError(
                f"beta must be a number >= 0 or a pair (b1, b2) of them, got {beta!r}"
            )
        return [float(b) for b in pair]

    def loss_and_grads(self, x, *, eps=None, rng=None, beta=None):
        """mean_B [recon + b1 kl1 + b2 kl2] and its gradients (b1 = b2 = 1: the negative ELBO).

        beta: a number (both layers) or a pair (b1, b2); None: (beta, beta * top_scale).
        eps: (eps1 (B, K1), eps2 (B, K2)) or {"z1": eps1, "z2": eps2}; else drawn from rng.
        With free_bits λ > 0 a layer's term is b max(λ, mean_B kl): no gradient below λ.
        """
        x = self._check(x, self.x_dim, "x", targets=True)
        weights = self._weights(beta)
        if not _weight(self.free_bits):
            raise ValueError(f"free_bits must be a finite number >= 0, got {self.free_bits!r}")
        f = self._forward(x, *self._noise(eps, rng, len(x)))
        recon, kl1, kl2 = self._terms(f, x)
        loss, w = float(recon.mean()), []
        for b, kl in zip(weights, (kl1, kl2), strict=True):
            mean_kl = float(kl.mean())
            loss += b * max(mean_kl, self.free_bits)
            w.append(0.0 if mean_kl < self.free_bits else b / len(x))
        self._backward(f, x, *w)
        self.stats = {"recon": float(recon.mean()), "kl": float((kl1 + kl2).mean())}
        return loss, self._grads()

    def _backward(self, f, x, w1, w2):
        """The forward read in reverse; w1, w2: the KL weights over B (the batch mean's 1/B)."""
        s = 1.0 / len(x)
        d_logits = bernoulli_nll_backward(f["logits"], x)
        d_logits *= s
        dz1 = self.nets["dec1"].backward(d_logits)  # (B, K1)
        std1, std2 = np.exp(0.5 * f["lq1"]), np.exp(0.5 * f["lq2"])
        if self.inference == "bottom-up":
            inv_p = np.exp(-f["lp1"])
            r = (f["z1"] - f["mp1"]) * inv_p
            dmp1, dlp1 = -w1 * r, 0.5 * w1 * (1 - r * (f["z1"] - f["mp1"]))
            dz2 = self.nets["dec2"].backward(np.concatenate([dmp1, dlp1], axis=1))
            dmq2 = dz2 + w2 * f["mq2"]
            dlq2 = dz2 * f["e2"] * 0.5 * std2 + 0.5 * w2 * np.expm1(f["lq2"])
            dz1 = dz1 + w1 * r + self.nets["enc2"].backward(np.concatenate([dmq2, dlq2], axis=1))
            dmq1, dlq1 = dz1, dz1 * f["e1"] * 0.5 * std1 - 0.5 * w1
        else:
            g = kl_gauss_backward(f["mq1"], f["lq1"], f["mp1"], f["lp1"])
            dmq1, dlq1 = dz1 + w1 * g[0], dz1 * f["e1"] * 0.5 * std1 + w1 * g[1]
            wh = f["wh"]
            wp = 1 - wh
            cross = dmq1 * (f["mh1"] - f["mp1"]) * wh * wp  # through the weights' dependence
            dmp1 = w1 * g[2] + dmq1 * wp
            dlp1 = w1 * g[3] + dlq1 * wp + cross
            dmh1, dlh1 = dmq1 * wh, dlq1 * wh - cross
            dz2 = self.nets["dec2"].backward(np.concatenate([dmp1, dlp1], axis=1))
            dmq2 = dz2 + w2 * f["mq2"]
            dlq2 = dz2 * f["e2"] * 0.5 * std2 + 0.5 * w2 * np.expm1(f["lq2"])
            *trunk, head = self.nets["enc1"].layers
            dd1 = self.nets["enc2"].backward(np.concatenate([dmq2, dlq2], axis=1))  # (B, H)
            dd1 = dd1 + head.backward(np.concatenate([dmh1, dlh1], axis=1).astype(self.dtype))
            for layer in reversed(trunk):  # d1 feeds both the message and q(z2|x)
                dd1 = layer.backward(dd1)
            return
        self.nets["enc1"].backward(np.concatenate([dmq1, dlq1], axis=1).astype(self.dtype))

    def log_likelihood(self, x, *, k, rng):
        """Importance-sampled log p(x) with k samples of the whole q(z1, z2|x) as the proposal.

        log p(x) ≈ logsumexp_i [log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1, z2|x)]_i
        - log k.   (B, D) -> (B,), float64. Derived in notebooks/15_hierarchical_vae.ipynb.
        """
        if not whole_number(k) or k < 1:
            raise ValueError(f"k must be a positive whole number of samples, got {k!r}")
        x = self._check(x, self.x_dim, "x", targets=True)
        k, rng, B = int(k), np.random.default_rng(rng), len(x)
        chunk = max(1, min(k, 2**20 // (B * max(self.x_dim, *self.hidden, 1))))
        log_w = []
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            xc = np.tile(x, (c, 1))  # (c*B, D)
            e1, e2 = self._noise(None, rng, c * B)
            log_w.append(self._log_weight(self._forward(xc, e1, e2), xc).reshape(c, B))
        log_w = np.concatenate(log_w).astype(np.float64)  # (k, B)
        top = log_w.max(axis=0)
        return top + np.log(np.exp(log_w - top).mean(axis=0))

    def _log_weight(self, f, x):
        """log p(x, z1, z2) - log q(z1, z2|x) at the sampled (z1, z2).   (B,)."""
        zeros = np.zeros_like(f["z2"])
        log_p = -bernoulli_nll(f["logits"], x) + _log_normal(f["z1"], f["mp1"], f["lp1"])
        log_p = log_p + _log_normal(f["z2"], zeros, zeros)
        log_q = _log_normal(f["z1"], f["mq1"], f["lq1"]) + _log_normal(f["z2"], f["mq2"], f["lq2"])
        return log_p - log_q

    def encode(self, x, *, rng=None):
        """((mu1, logvar1), (mu2, logvar2)) of q.   (B, D) -> (B, K1) pair, (B, K2) pair.

        The layer conditioned on the other one takes that layer's mean (eps = 0), or a sample
        when rng is given."""
        x = self._check(x, self.x_dim, "x")
        if rng is None:
            e1, e2 = (np.zeros((len(x), k), self.dtype) for k in self.z_dims)
        else:
            e1, e2 = self._noise(None, rng, len(x))
        f = self._forward(x, e1, e2)
        return (f["mq1"], f["lq1"]), (f["mq2"], f["lq2"])

    def prior_z1(self, z2):
        """(mu, logvar) of p(z1|z2).   (B, K2) -> (B, K1), (B, K1)."""
        return self._split("dec2", self._check(z2, self.z_dims[1], "z2"))

    def sample(self, n, *, rng, z2=None):
        """n examples by ancestral sampling: z2 ~ N(0, I) (or the given z2, (n, K2) or (1, K2)),
        z1 ~ p(z1|z2), then the mean of p(x|z1).   -> (n, D)."""
        if not whole_number(n) or n < 1:
            raise ValueError(f"sample needs a whole number n >= 1, got {n!r}")
        rng, n = np.random.default_rng(rng), int(n)
        if z2 is None:
            z2 = rng.standard_normal((n, self.z_dims[1])).astype(self.dtype)
        elif np.ndim(z2) == 2 and len(z2) not in (1, n):
            raise ValueError(f"z2 must have 1 or n = {n} rows, got {len(z2)}")
        z2 = np.broadcast_to(self._check(z2, self.z_dims[1], "z2"), (n, self.z_dims[1]))
        mu, logvar = self.prior_z1(z2)
        z1 = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape).astype(self.dtype)
        return self.decode(z1)

    @property
    def config(self):
        config = super().config
        del config["z_dim"]  # two layers: z_dims
        return config | {"z_dims": list(self.z_dims), "inference": self.inference}

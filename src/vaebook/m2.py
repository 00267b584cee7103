"""Semi-supervised learning with the M2 model of Kingma et al. (2014): a classifier q_φ(y|x)
beside a conditional VAE q_φ(z|x, y), p_θ(x|z, y), trained on labelled and unlabelled digits.

The loss has three terms, each a batch mean:  -L(x, y) on the labelled digits (the conditional
ELBO plus log p(y)), -U(x) on the unlabelled ones (the ELBO summed over y under q(y|x), plus
the entropy of q(y|x)), and eta * (-log q(y|x)) on the labelled ones. Derived in
notebooks/13_conditional_vae.ipynb.
"""

import numpy as np

from .checks import float_dtype, whole_number
from .cvae import ConditionalVAE
from .layers import mlp
from .losses import kl_normal, kl_normal_backward
from .models import _Model


def log_softmax(a):
    """log softmax(a) along the last axis, stable for any logits.   (B, Y) -> (B, Y)."""
    shifted = a - a.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Classifier:
    """q(y|x) = softmax(MLP(x)): ReLU hidden layers, Y logits.   x: (B, D) -> probs (B, Y).

    `loss_and_grads(x, y)` is the mean cross-entropy -mean_B log q(y|x) of one-hot labels y,
    plus `weight_decay` / 2 times the summed squares of the weights W (not the biases).
    """

    _bounded = False  # x is an input, not a target: any real numbers
    _check = _Model._check  # x: shape (B, D), real, finite
    _check_y = ConditionalVAE._check_y  # y: one-hot (B, Y)

    def __init__(self, x_dim, hidden, y_dim, *, rng, dtype=np.float32):
        hidden = tuple(np.atleast_1d(hidden).tolist())
        widths = {"x_dim": x_dim, "y_dim": y_dim} | {
            f"hidden[{i}]": h for i, h in enumerate(hidden)
        }
        for name, width in widths.items():
            if not whole_number(width) or width < 1:
                raise ValueError(f"{name} must be a positive whole number, got {width!r}")
        self.dtype = float_dtype(dtype)
        self.x_dim, self.hidden, self.y_dim = int(x_dim), tuple(int(h) for h in hidden), int(y_dim)
        self.net = mlp((self.x_dim, *self.hidden, self.y_dim), rng=rng, dtype=self.dtype)
        self.net.layers[0].needs_dx = False
        self.params = {f"cls.{k}": v for k, v in self.net.params.items()}

    def log_proba(self, x):
        """log q(y|x) for every class.   (B, D) -> (B, Y)."""
        return log_softmax(self.net.forward(self._check(x, self.x_dim, "x")))

    def predict_proba(self, x):
        """q(y|x) for every class; rows sum to 1.   (B, D) -> (B, Y)."""
        return np.exp(self.log_proba(x))

    def backward(self, d_logits):
        """Gradients of the classifier's parameters from d loss / d logits (B, Y)."""
        self.net.backward(d_logits)
        return {f"cls.{k}": v for k, v in self.net.grads.items()}

    def loss_and_grads(self, x, y, *, weight_decay=0.0):
        """Mean cross-entropy of one-hot y (B, Y) under q(y|x), plus weight decay; gradients."""
        if (
            isinstance(weight_decay, bool | np.bool_)
            or not isinstance(weight_decay, int | float | np.number)
            or not 0 <= weight_decay < np.inf
        ):
            raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
        weight_decay = float(weight_decay)  # a NumPy float64 would upcast float32 gradients
        log_q = self.log_proba(x)  # (B, Y)
        y = self._check_y(y, len(log_q))
        loss = float(-(y * log_q).sum(axis=1).mean())
        grads = self.backward((np.exp(log_q) - y) / len(x))  # softmax + cross-entropy
        for name, p in self.params.items():
            if name.endswith("W") and weight_decay:
                loss += 0.5 * weight_decay * float((p * p).sum())
                grads[name] = grads[name] + weight_decay * p
        return loss, grads

    @property
    def config(self):
        """Everything needed to rebuild this architecture (used by `save`/`load`)."""
        return {
            "class": "Classifier",
            "x_dim": self.x_dim,
            "hidden": list(self.hidden),
            "y_dim": self.y_dim,
            "dtype": self.dtype.name,
        }


class M2:
    """Kingma et al.'s M2: q_φ(y|x) (a `Classifier`), q_φ(z|x, y) and p_θ(x|z, y) (a
    `ConditionalVAE`), and a uniform prior p(y) = 1/Y.

    Parameters: `params` = the CVAE's "enc.*", "dec.*" and the classifier's "cls.*".
    Noise: the labelled term takes eps of shape (B_l, K); the unlabelled term one draw per
    example and class, eps of shape (Y, B_u, K).
    """

    def __init__(
        self, x_dim, y_dim, hidden, z_dim, *, rng, likelihood="bernoulli", dtype=np.float32
    ):
        rng = np.random.default_rng(rng)
        self.cvae = ConditionalVAE(
            x_dim, y_dim, hidden, z_dim, rng=rng, likelihood=likelihood, dtype=dtype
        )
        self.classifier = Classifier(x_dim, hidden, y_dim, rng=rng, dtype=self.cvae.dtype)
        self.x_dim, self.y_dim, self.z_dim = self.cvae.x_dim, self.cvae.y_dim, self.cvae.z_dim
        self.hidden, self.likelihood = self.cvae.hidden, self.cvae.likelihood
        self.dtype = self.cvae.dtype
        self.log_prior_y = -float(np.log(self.y_dim))  # a Python float keeps float32
        self.params = self.cvae.params | self.classifier.params

    def predict_proba(self, x):
        """q(y|x).   (B, D) -> (B, Y)."""
        return self.classifier.predict_proba(self.cvae._check(x, self.x_dim, "x"))

    def _noise(self, eps, rng, shape):
        if eps is None:
            if rng is None:
                raise ValueError("pass eps or rng to draw the noise from")
            return np.random.default_rng(rng).standard_normal(shape).astype(self.dtype)
        eps = np.asarray(eps)
        if eps.shape != shape:
            raise ValueError(f"eps must have shape {shape}, got {eps.shape}")
        return self.cvae._check(eps.reshape(-1, self.z_dim), self.z_dim, "eps").reshape(shape)

    def _zero_grads(self):
        return {k: np.zeros_like(v) for k, v in self.params.items()}

    def _elbo_forward(self, x, y, eps):
        """Conditional ELBO + log p(y) of every row (n,), keeping what the backward pass needs."""
        c = self.cvae
        mu, logvar = c._encode(c._inputs(x, y))  # (n, K) each
        z = c.reparam.forward(mu, logvar, eps)
        out = c.decoder.forward(c._inputs(z, y))  # (n, D)
        self._cache = (x, mu, logvar, out)
        return -(c._nll(out, x) + kl_normal(mu, logvar)) + self.log_prior_y

    def _elbo_backward(self, weights):
        """Gradients of -sum_n weights_n * ELBO_n for the CVAE's parameters; weights: (n,)."""
        c, (x, mu, logvar, out) = self.cvae, self._cache
        w = weights[:, None].astype(self.dtype)
        dz = c.decoder.backward(c._nll_backward(out, x) * w)[:, : self.z_dim]
        dmu, dlogvar = c.reparam.backward(dz)
        dmu_kl, dlogvar_kl = kl_normal_backward(mu, logvar)
        c.encoder.backward(np.concatenate([dmu + w * dmu_kl, dlogvar + w * dlogvar_kl], axis=1))
        return self._zero_grads() | c._grads()

    def labelled_elbo(self, x, y, *, eps=None, rng=None):
        """L(x, y) = E_q(z|x,y)[log p(x|z, y)] - KL(q(z|x, y) || p(z)) + log p(y), per row (B,)."""
        x = self.cvae._check(x, self.x_dim, "x", targets=True)
        y = self.cvae._check_y(y, len(x))
        return self._elbo_forward(x, y, self._noise(eps, rng, (len(x), self.z_dim)))

    def labelled_loss_and_grads(self, x, y, *, eps=None, rng=None):
        """-mean_B L(x, y) and its gradients (zero for the classifier)."""
        elbo = self.labelled_elbo(x, y, eps=eps, rng=rng)
        return float(-elbo.mean()), self._elbo_backward(np.full(len(elbo), 1.0 / len(elbo)))

    def _unlabelled_forward(self, x, eps, rng):
        x = self.cvae._check(x, self.x_dim, "x", targets=True)
        B, Y = len(x), self.y_dim
        eps = self._noise(eps, rng, (Y, B, self.z_dim)).reshape(Y * B, self.z_dim)
        y = np.repeat(np.eye(Y, dtype=self.dtype), B, axis=0)  # row y * B + b: class y
        elbo = self._elbo_forward(np.tile(x, (Y, 1)), y, eps).reshape(Y, B).T  # (B, Y)
        log_q = self.classifier.log_proba(x)  # (B, Y)
        q = np.exp(log_q)
        bound = (q * (elbo - log_q)).sum(axis=1)  # sum_y q L(x, y) + H[q(y|x)], (B,)
        return elbo, log_q, q, bound

    def unlabelled_bound(self, x, *, eps=None, rng=None):
        """U(x) = sum_y q(y|x) L(x, y) + H[q(y|x)] <= log p(x), per row (B,)."""
        return self._unlabelled_forward(x, eps, rng)[3]

    def unlabelled_loss_and_grads(self, x, *, eps=None, rng=None):
        """-mean_B U(x) and its gradients.

        d(-U)/d(-L(x, y)) = q(y|x); through the softmax, the classifier's logits o get
        d(-U)/do = -q * (L(x, y) - log q(y|x) - U(x)).
        """
        elbo, log_q, q, bound = self._unlabelled_forward(x, eps, rng)
        B = len(bound)
        grads = self._elbo_backward(q.T.reshape(-1) / B)  # rows ordered as y * B + b
        d_logits = -q * (elbo - log_q - bound[:, None]) / B  # (B, Y)
        return float(-bound.mean()), grads | self.classifier.backward(d_logits)

    def classification_loss_and_grads(self, x, y):
        """-mean_B log q(y|x) of the labelled digits, and its gradients (zero for the CVAE)."""
        x = self.cvae._check(x, self.x_dim, "x")
        loss, grads = self.classifier.loss_and_grads(x, self.cvae._check_y(y, len(x)))
        return loss, self._zero_grads() | grads

    def loss_and_grads(self, x_labelled, y_labelled, x_unlabelled, *, eta, eps=None, rng=None):
        """-mean L(x_l, y_l) - mean U(x_u) + eta * (-mean log q(y_l|x_l)), and its gradients.

        eps: None (drawn from rng) or a pair (eps_labelled (B_l, K), eps_unlabelled (Y, B_u, K)).
        """
        if (
            isinstance(eta, bool | np.bool_)
            or not isinstance(eta, int | float | np.number)
            or not 0 <= eta < np.inf
        ):
            raise ValueError(f"eta must be a non-negative number, got {eta!r}")
        eta = float(eta)  # a Python float: a NumPy float64 would upcast float32 gradients
        if eps is not None and (not isinstance(eps, tuple | list) or len(eps) != 2):
            raise ValueError(
                "eps must be None or a pair (eps_labelled (B_l, K), eps_unlabelled (Y, B_u, K))"
            )
        eps_l, eps_u = (None, None) if eps is None else eps
        rng = None if rng is None else np.random.default_rng(rng)
        loss_l, g_l = self.labelled_loss_and_grads(x_labelled, y_labelled, eps=eps_l, rng=rng)
        loss_u, g_u = self.unlabelled_loss_and_grads(x_unlabelled, eps=eps_u, rng=rng)
        loss_c, g_c = self.classification_loss_and_grads(x_labelled, y_labelled)
        self.stats = {"labelled": loss_l, "unlabelled": loss_u, "classification": loss_c}
        grads = {k: g_l[k] + g_u[k] + eta * g_c[k] for k in self.params}
        return loss_l + loss_u + eta * loss_c, grads

    @property
    def config(self):
        """Everything needed to rebuild this architecture (used by `save`/`load`)."""
        return {
            "class": "M2",
            "x_dim": self.x_dim,
            "y_dim": self.y_dim,
            "hidden": list(self.hidden),
            "z_dim": self.z_dim,
            "likelihood": self.likelihood,
            "dtype": self.dtype.name,
        }

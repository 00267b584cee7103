"""A diffusion model as a VAE with a fixed encoder (Ho et al. 2020), for binary images.

The encoder is the forward (noising) process q(x_t | x_{t-1}) = N(sqrt(1 - nu_t) x_{t-1}, nu_t I),
t = 1..T, on x_0 = 2x - 1 in {-1, 1}^D (nu_t is Ho et al.'s beta_t; the book keeps beta for the
KL weight and beta_1, beta_2 for Adam). Its marginal and posterior are Gaussians in closed form:

    q(x_t | x_0)           = N(sqrt(zeta_t) x_0, (1 - zeta_t) I),  zeta_t = prod_s (1 - nu_s)
    q(x_{t-1} | x_t, x_0)  = N(mu_tilde_t, nu_tilde_t I),
        mu_tilde_t = sqrt(zeta_{t-1}) nu_t / (1 - zeta_t) x_0
                     + sqrt(1 - nu_t) (1 - zeta_{t-1}) / (1 - zeta_t) x_t,
        nu_tilde_t = (1 - zeta_{t-1}) / (1 - zeta_t) nu_t.

The decoder p(x_{t-1} | x_t) = N(mu_theta(x_t, t), var_t I) predicts the noise:
mu_theta = (x_t - nu_t / sqrt(1 - zeta_t) eps_theta(x_t, t)) / sqrt(1 - nu_t), where eps_theta
is an MLP reading [x_t, a sinusoidal embedding of t]. Its variance var_t is nu_t
(reverse_var="nu", Ho et al.'s default) or nu_tilde_t ("posterior"); the network does not depend
on it, so a trained model can be evaluated with either. The last step is discretized at the two
pixel values (Ho et al. 2020, section 3.3, two bins): p(x_0 = +1 | x_1) = Phi(mu / sqrt(nu_1)).
The ELBO is the sum of L_T = KL(q(x_T | x_0) || N(0, I)), L_{t-1} = KL(q(x_{t-1} | x_t, x_0) ||
p(x_{t-1} | x_t)) for t = 2..T, and L_0 = -log p(x_0 | x_1); the training loss is the simplified
one, ||eps - eps_theta(x_t, t)||^2 at a uniform t, the L_{t-1} without their weights.
Derived in notebooks/16_diffusion.ipynb.
"""

import numpy as np
from scipy.special import log_ndtr, ndtr

from .checks import float_dtype, whole_number
from .layers import mlp
from .models import check_batch

EMBED_DIM = 16  # sinusoidal features of t fed to the network beside x_t
REVERSE_VARS = ("nu", "posterior")


def linear_schedule(T, start=1e-4, end=0.02):
    """nu_1..nu_T rising linearly, Ho et al.'s schedule for T = 1000 scaled by 1000 / T.

    The scaling keeps sum(nu), and so zeta_T ~ exp(-sum(nu)), about the same for any T.
    """
    if not whole_number(T) or T < 1:
        raise ValueError(f"T must be a positive whole number of steps, got {T!r}")
    numbers = all(isinstance(v, int | float | np.number) for v in (start, end))
    if not (numbers and 0 < start <= end < np.inf):
        raise ValueError(
            f"start and end must be numbers, 0 < start <= end, got {start!r}, {end!r}"
        )
    scale = 1000 / int(T)
    nu = np.linspace(start * scale, end * scale, int(T))
    if not (nu[0] > 0 and nu[-1] < 1):
        raise ValueError(f"the schedule for T = {T} has steps outside (0, 1); use a larger T")
    return nu


def cosine_schedule(T, s=0.008, max_nu=0.5):
    """nu_1..nu_T from zeta_t = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) pi/2)
    (Nichol & Dhariwal 2021), each nu_t clipped at max_nu.

    The last nu_t of the unclipped schedule is 1 (f(T) = 0). Nichol & Dhariwal clip at 0.999;
    with the fixed variance var_t = nu_t the bound weighs the noise error of step t by
    lambda_t = nu_t / (2 (1 - nu_t)(1 - zeta_t)), about 500 at 0.999.
    The default clip of 1/2 keeps every lambda_t <= 1 / (2 (1 - zeta_t)), below 1 for any T and
    near the linear schedule's largest weights, and the clipped steps still halve the signal each,
    so zeta_T < 0.03 for T >= 10 (L_T < 1 nat for 64 pixels); max_nu=0.999 gives the paper's.
    """
    if not isinstance(max_nu, int | float | np.number) or not 0 < max_nu < 1:
        raise ValueError(f"max_nu must lie in (0, 1), got {max_nu!r}")
    if not isinstance(s, int | float | np.number) or not 0 <= s < np.inf:
        # s < 0 makes f rise at the first steps: nu_t < 0
        raise ValueError(f"the offset s must be a finite number >= 0, got {s!r}")
    if not whole_number(T) or T < 1:
        raise ValueError(f"T must be a positive whole number of steps, got {T!r}")
    f = np.cos((np.arange(int(T) + 1) / int(T) + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - f[1:] / f[:-1], max_nu)


def time_embedding(t, T, dim=EMBED_DIM):
    """(B,) steps in 1..T -> (B, dim): sin and cos of t at dim/2 frequencies from 1 to 1/T."""
    freqs = np.exp(-np.log(T) * np.arange(dim // 2) / max(dim // 2 - 1, 1))
    angles = np.asarray(t, dtype=np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


class Diffusion:
    """A denoising diffusion model on binary images x in {0, 1}^D (see the module docstring).

    `params`/`loss_and_grads(x, rng=)` as every model, so `fit` trains it (the simplified loss).
    `schedule`: nu_1..nu_T as a plain (T,) array (default `cosine_schedule(T)`, clipped at
    nu_t = 1/2: defined for any T, no step's noise error weighted by 1 or more in the bound; see
    its docstring. `linear_schedule(T)` needs T >= 21). `reverse_var`: "nu" or "posterior", the
    decoder's variance (see the module docstring); an attribute, so it can be switched after
    training.
    """

    def __init__(
        self, x_dim, hidden, *, T, rng, dtype=np.float32, schedule=None, reverse_var="nu"
    ):
        hidden = tuple(np.atleast_1d(hidden).tolist())
        widths = {"x_dim": x_dim, "T": T} | {f"hidden[{i}]": h for i, h in enumerate(hidden)}
        for name, width in widths.items():
            if not whole_number(width) or width < 1:
                raise ValueError(f"{name} must be a positive whole number, got {width!r}")
        self.x_dim, self.hidden, self.T = int(x_dim), tuple(int(h) for h in hidden), int(T)
        self.dtype = float_dtype(dtype)
        try:
            nu = cosine_schedule(self.T) if schedule is None else np.asarray(schedule, float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"schedule must be {self.T} numbers nu_1..nu_T: {err}") from err
        if nu.shape != (self.T,):
            raise ValueError(f"schedule must have shape ({self.T},), one per step, got {nu.shape}")
        bad = np.flatnonzero(~((nu > 0) & (nu < 1)))  # NaN too
        if bad.size:
            raise ValueError(
                "every nu_t of the schedule must lie in (0, 1); at t = "
                f"{(bad[:5] + 1).tolist()} it is {nu[bad[:5]].tolist()}"
            )
        if reverse_var not in REVERSE_VARS:
            raise ValueError(f"reverse_var must be one of {REVERSE_VARS}, got {reverse_var!r}")
        self.nu = nu
        self.zeta = np.cumprod(1 - nu)  # zeta_1..zeta_T
        self.reverse_var = reverse_var
        self.net = mlp(
            (self.x_dim + EMBED_DIM, *self.hidden, self.x_dim), rng=rng, dtype=self.dtype
        )
        self.net.layers[0].needs_dx = False
        self.params = {f"net.{k}": v for k, v in self.net.params.items()}
        self.stats = {}  # what fit records beside the loss: nothing

    # -- the fixed encoder --------------------------------------------------------------------

    def _zeta(self, t):
        """zeta_t for an int array t in 0..T (zeta_0 = 1)."""
        return np.concatenate([[1.0], self.zeta])[t]

    def marginal(self, x0, t):
        """Mean (B, D) and variance (B, 1) of q(x_t | x_0), for x0 in [-1, 1] and t in 1..T."""
        x0 = self._shape(x0, "x0")
        t = self._steps(t, len(x0))
        zeta = self._zeta(t)[:, None]
        return np.sqrt(zeta) * x0, 1 - zeta

    def posterior(self, x0, xt, t):
        """Mean (B, D) and variance (B, 1) of q(x_{t-1} | x_t, x_0), t in 2..T."""
        x0, xt = self._shape(x0, "x0"), self._shape(xt, "xt")
        if xt.shape != x0.shape:
            raise ValueError(f"xt must have the shape of x0, {x0.shape}, got {xt.shape}")
        t = self._steps(t, len(x0))
        if np.any(t < 2):
            raise ValueError("the posterior q(x_{t-1} | x_t, x_0) is a Gaussian for t >= 2 only")
        zeta, zeta_prev = self._zeta(t)[:, None], self._zeta(t - 1)[:, None]
        nu = self.nu[t - 1][:, None]
        mean = (np.sqrt(zeta_prev) * nu * x0 + np.sqrt(1 - nu) * (1 - zeta_prev) * xt) / (1 - zeta)
        return mean, (1 - zeta_prev) / (1 - zeta) * nu

    # -- the decoder --------------------------------------------------------------------------

    def predict_noise(self, xt, t):
        """eps_theta(x_t, t): (B, D) noisy images and (B,) steps -> (B, D) predicted noise."""
        xt = self._check(xt, self.x_dim, "xt")
        t = self._steps(t, len(xt))
        inputs = np.concatenate([xt, time_embedding(t, self.T)], axis=1).astype(self.dtype)
        return self.net.forward(inputs)

    def _mean(self, xt, t, eps_hat):
        nu, zeta = self.nu[t - 1][:, None], self._zeta(t)[:, None]
        return (xt - nu / np.sqrt(1 - zeta) * eps_hat) / np.sqrt(1 - nu)

    def reverse_variance(self, step):
        """var_t of p(x_{t-1} | x_t) for one step in 1..T: nu_t, or nu_tilde_t for
        reverse_var="posterior" (nu_1 at t = 1, where nu_tilde_1 = 0)."""
        if self.reverse_var not in REVERSE_VARS:
            raise ValueError(
                f"reverse_var must be one of {REVERSE_VARS}, got {self.reverse_var!r}"
            )
        if not whole_number(step) or not 1 <= step <= self.T:
            raise ValueError(f"step must be a whole number in 1..{self.T}, got {step!r}")
        step = int(step)
        nu = self.nu[step - 1]
        if self.reverse_var == "nu" or step == 1:
            return nu
        return (1 - self._zeta(step - 1)) / (1 - self._zeta(step)) * nu

    # -- training -----------------------------------------------------------------------------

    def loss_and_grads(self, x, *, rng=None, t=None, eps=None):
        """The simplified loss mean_B ||eps - eps_theta(x_t, t)||^2 and its gradients.

        x: (B, D) in [0, 1], mapped to x_0 = 2x - 1. t: (B,) steps in 1..T and eps: (B, D)
        noise, each drawn from rng (t uniform) when not given; fix both for a gradient check.
        """
        x0 = 2 * self._check(x, self.x_dim, "x", targets=True) - 1
        B = len(x0)
        if t is None or eps is None:
            if rng is None:
                raise ValueError("pass t and eps, or rng to draw them from")
            rng = np.random.default_rng(rng)
        t = self._steps(rng.integers(1, self.T + 1, size=B) if t is None else t, B)
        if eps is None:
            eps = rng.standard_normal(x0.shape)
        eps = self._check(eps, self.x_dim, "eps")
        if eps.shape != x0.shape:
            raise ValueError(
                f"eps must have shape {x0.shape}, one row per example, got {eps.shape}"
            )
        mean, var = self.marginal(x0, t)
        xt = (mean + np.sqrt(var) * eps).astype(self.dtype)
        diff = self.predict_noise(xt, t) - eps
        loss = float((diff * diff).sum(axis=1).mean())
        self.net.backward(2 * diff / B)
        return loss, {f"net.{k}": v for k, v in self.net.grads.items()}

    # -- the bound ----------------------------------------------------------------------------

    def elbo_terms(self, x, *, rng):
        """Per-example terms of the negative ELBO in nats, (B, T + 1): column 0 is L_0,
        column t (1..T-1) is L_t = KL(q(x_t | x_{t+1}, x_0) || p(x_t | x_{t+1})) at one draw of
        x_{t+1} ~ q(x_{t+1} | x_0), and column T is L_T, in closed form. x must be binary.
        """
        x = self._check(x, self.x_dim, "x", targets=True)
        if np.any((x != 0) & (x != 1)):
            raise ValueError(
                "x must be binary (0 or 1): L_0 is discretized at the two pixel values; "
                "binarize grey levels first"
            )
        rng = np.random.default_rng(rng)
        x0 = 2 * x.astype(np.float64) - 1
        B, D, T = len(x0), self.x_dim, self.T
        terms = np.empty((B, T + 1))
        zeta_T = self.zeta[-1]
        terms[:, T] = 0.5 * (zeta_T * x0**2 + (1 - zeta_T) - 1 - np.log(1 - zeta_T)).sum(axis=1)
        for step in range(1, T + 1):
            t = np.full(B, step)
            eps = rng.standard_normal(x0.shape)
            mean, var = self.marginal(x0, t)
            xt = mean + np.sqrt(var) * eps
            mu = self._mean(xt, t, self.predict_noise(xt, t).astype(np.float64))
            var_p = self.reverse_variance(step)
            if step == 1:  # L_0 = -log p(x_0 | x_1), two bins split at 0
                terms[:, 0] = -log_ndtr(x0 * mu / np.sqrt(var_p)).sum(axis=1)
            else:  # L_{t-1}: a KL between Gaussians of variances nu_tilde_t and var_t
                post_mean, post_var = self.posterior(x0, xt, t)
                ratio = post_var[:, 0] / var_p
                terms[:, step - 1] = (
                    0.5 * D * (ratio - 1 - np.log(ratio))
                    + 0.5 * ((post_mean - mu) ** 2).sum(axis=1) / var_p
                )
        return terms

    def elbo(self, x, *, rng):
        """Per-example ELBO (B,) in nats: -(L_0 + L_1 + ... + L_{T-1} + L_T), one draw per term."""
        return -self.elbo_terms(x, rng=rng).sum(axis=1)

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, n, *, rng, return_path=False):
        """n images by ancestral sampling: x_T ~ N(0, I), x_{t-1} ~ p(x_{t-1} | x_t), t = T..2,
        then p(x_0 = +1 | x_1) per pixel, returned as (n, D) probabilities of a white pixel.

        return_path: also the (T + 1, n, D) path of images in [0, 1]: row i is (x_{T-i} + 1) / 2
        clipped to [0, 1] for i < T (row 0 is the pure noise x_T), and row T the probabilities.
        """
        if not whole_number(n) or n < 1:
            raise ValueError(f"sample needs a whole number n >= 1, got {n!r}")
        rng = np.random.default_rng(rng)
        n = int(n)
        xt = rng.standard_normal((n, self.x_dim))
        path = [xt]
        for step in range(self.T, 0, -1):
            t = np.full(n, step)
            mu = self._mean(xt, t, self.predict_noise(xt, t).astype(np.float64))
            if step > 1:
                xt = mu + np.sqrt(self.reverse_variance(step)) * rng.standard_normal(xt.shape)
                path.append(xt)
        probs = ndtr(mu / np.sqrt(self.reverse_variance(1))).astype(self.dtype)
        if not return_path:
            return probs
        images = [np.clip((p + 1) / 2, 0, 1).astype(self.dtype) for p in path]
        return probs, np.stack([*images, probs])

    @property
    def config(self):
        """Everything needed to rebuild this model (used by `save`/`load`)."""
        return {
            "class": "Diffusion",
            "x_dim": self.x_dim,
            "hidden": list(self.hidden),
            "T": self.T,
            "dtype": self.dtype.name,
            "schedule": self.nu.tolist(),  # JSON writes each float so that it reads back exact
            "reverse_var": self.reverse_var,
        }

    # -- checks -------------------------------------------------------------------------------

    def _shape(self, a, name):
        """`a` as an array of shape (B, x_dim), B >= 1, its dtype kept; or a ValueError."""
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[1] != self.x_dim or a.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (B, {self.x_dim}) with B >= 1, got {a.shape}"
            )
        return a

    def _steps(self, t, B):
        t = np.asarray(t)
        if t.shape != (B,) or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"t must be a ({B},) array of whole-number steps, got {t!r}")
        if t.min() < 1 or t.max() > self.T:
            raise ValueError(
                f"steps t must lie in 1..{self.T}, got values in {t.min()}..{t.max()}"
            )
        return t

    def _check(self, a, width, name, targets=False):
        """`a` as a (B, width) array of this model's dtype, or a ValueError naming the problem;
        targets (images) must also lie in [0, 1]. The same contract as the VAE's, used by `fit`.
        """
        return check_batch(a, width, name, self.dtype, targets, " (x_0 = 2x - 1 in [-1, 1])")

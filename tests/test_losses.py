"""Losses, KL and the reparameterization: values, gradients, extremes."""

import numpy as np
import pytest

from vaebook import Reparameterize, gradcheck
from vaebook.losses import (
    bernoulli_nll,
    bernoulli_nll_backward,
    gaussian_nll,
    gaussian_nll_backward,
    kl_normal,
    kl_normal_backward,
    log_mean_exp,
    mse,
    mse_backward,
    softplus,
)

TOL = 1e-6


def test_bernoulli_nll_value_and_grad(rng):
    logits, x = rng.standard_normal((4, 7)) * 3, rng.random((4, 7))
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    assert np.allclose(bernoulli_nll(logits, x), expected)
    errors = gradcheck(
        lambda: bernoulli_nll(logits, x).sum(),
        {"logits": logits},
        {"logits": bernoulli_nll_backward(logits, x)},
    )
    assert errors["logits"] < TOL


def test_bernoulli_nll_extreme_logits_are_finite():
    logits = np.array([[1e4, -1e4, 1e4, -1e4]], dtype=np.float32)
    x = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        nll = bernoulli_nll(logits, x)
        grad = bernoulli_nll_backward(logits, x)
    assert np.allclose(nll, [2e4])  # two confident mistakes cost 1e4 nats each
    assert np.array_equal(grad, [[0.0, 0.0, 1.0, -1.0]])
    assert nll.dtype == grad.dtype == np.float32


def test_softplus_matches_naive_where_safe(rng):
    a = rng.uniform(-30, 30, size=100)
    assert np.allclose(softplus(a), np.log1p(np.exp(a)))
    assert softplus(np.array(1e4)) == 1e4
    big = np.float32(3e38)  # near float32's largest: softplus must not overflow on the way
    with np.errstate(over="raise"):
        assert np.array_equal(softplus(np.array([big, -big])), [big, 0])


def test_gaussian_nll_value_and_grads(rng):
    mean, x = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    logvar = rng.standard_normal((3, 5)) * 0.5
    var = np.exp(logvar)
    expected = (0.5 * np.log(2 * np.pi * var) + (x - mean) ** 2 / (2 * var)).sum(axis=1)
    assert np.allclose(gaussian_nll(mean, x, logvar), expected)
    dmean, dlogvar = gaussian_nll_backward(mean, x, logvar)
    f = lambda: gaussian_nll(mean, x, logvar).sum()
    errors = gradcheck(f, {"mean": mean, "logvar": logvar}, {"mean": dmean, "logvar": dlogvar})
    assert max(errors.values()) < TOL, errors


def test_mse_value_and_grad(rng):
    x_hat, x = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert np.allclose(mse(x_hat, x), ((x_hat - x) ** 2).mean(axis=1))
    err = gradcheck(
        lambda: mse(x_hat, x).sum(), {"x_hat": x_hat}, {"x_hat": mse_backward(x_hat, x)}
    )
    assert err["x_hat"] < TOL


@pytest.mark.parametrize("views", [False, True])
def test_kl_gradients(rng, views):
    """views: mu and logvar as column slices of one (B, 2K) array, as the encoder returns them;
    gradcheck must perturb them where they live, not in a copy."""
    if views:
        h = rng.standard_normal((4, 6))
        mu, logvar = h[:, :3], h[:, 3:]
    else:
        mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dmu, dlogvar = kl_normal_backward(mu, logvar)
    errors = gradcheck(
        lambda: kl_normal(mu, logvar).sum(),
        {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar},
    )
    assert max(errors.values()) < TOL, errors
    wrong = gradcheck(lambda: kl_normal(mu, logvar).sum(), {"mu": mu}, {"mu": 2 * dmu})
    assert wrong["mu"] > 0.1  # and a wrong gradient is caught


def test_kl_is_zero_only_at_the_prior(rng):
    assert np.array_equal(kl_normal(np.zeros((2, 3)), np.zeros((2, 3))), [0.0, 0.0])
    assert (kl_normal(rng.standard_normal((50, 3)), rng.standard_normal((50, 3))) > 0).all()


def test_kl_closed_form_matches_monte_carlo(rng):
    """E_q[log q(z) - log p(z)] by sampling agrees within 4 standard errors."""
    mu, logvar = np.array([[0.7, -1.2, 0.1]]), np.array([[-0.5, 0.8, -1.5]])
    n = 200_000
    eps = rng.standard_normal((n, 3))
    z = mu + np.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps**2 + np.log(2 * np.pi) + logvar).sum(axis=1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(axis=1)
    samples = log_q - log_p
    stderr = samples.std() / np.sqrt(n)
    assert abs(samples.mean() - kl_normal(mu, logvar)[0]) < 4 * stderr


def test_kl_extreme_logvar_is_finite():
    mu = np.zeros((1, 2), dtype=np.float32)
    logvar = np.array([[50.0, -50.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        kl = kl_normal(mu, logvar)
        dmu, dlogvar = kl_normal_backward(mu, logvar)
    assert np.isfinite(kl).all() and np.isfinite(dlogvar).all()


def test_reparameterize_forward_and_backward(rng):
    mu, logvar, eps = (rng.standard_normal((4, 3)) for _ in range(3))
    rep = Reparameterize()
    z = rep.forward(mu, logvar, eps)
    assert np.allclose(z, mu + np.exp(0.5 * logvar) * eps)  # std, not the variance, scales eps
    r = rng.standard_normal(z.shape)
    dmu, dlogvar = rep.backward(r)
    f = lambda: float((rep.forward(mu, logvar, eps) * r).sum())
    errors = gradcheck(f, {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar})
    assert max(errors.values()) < TOL, errors


def test_reparameterized_samples_have_the_right_moments(rng):
    mu, logvar = np.array([[2.0]]), np.array([[np.log(0.25)]])
    z = Reparameterize().forward(mu, logvar, rng.standard_normal((100_000, 1)))
    assert abs(z.mean() - 2.0) < 0.01 and abs(z.std() - 0.5) < 0.01


@pytest.mark.parametrize("logits", [np.float32(1e4), np.float32(-1e4)])
def test_bernoulli_backward_extremes_are_finite(logits):
    g = bernoulli_nll_backward(np.full((1, 3), logits), np.array([[0.0, 0.5, 1.0]], np.float32))
    assert np.isfinite(g).all()


def test_kl_of_a_nearly_collapsed_dimension_is_not_negative():
    """In float32, exp(s) - 1 - s rounds below 0 for s near 0; expm1 keeps the KL >= 0."""
    logvar = np.linspace(-1e-3, 1e-3, 20001, dtype=np.float32)[:, None]
    kl = kl_normal(np.zeros_like(logvar), logvar)
    assert kl.dtype == np.float32 and (kl >= 0).all()
    exact = 0.5 * (np.expm1(logvar.astype(np.float64)) - logvar.astype(np.float64))[:, 0]
    assert np.allclose(kl, exact, rtol=1e-3, atol=1e-12)


def test_gaussian_nll_with_integer_means_keeps_logvar():
    """Integer arrays compute in float64; logvar is not truncated to an integer."""
    mean, x = np.array([[0, 1]]), np.array([[0.5, 1.0]])
    value = gaussian_nll(mean, x, 0.7)
    expected = 0.5 * (2 * (np.log(2 * np.pi) + 0.7) + 0.25 / np.exp(0.7))
    assert value == pytest.approx([expected])
    dmean, _ = gaussian_nll_backward(mean, x, 0.7)
    assert np.allclose(dmean, (mean - x) / np.exp(0.7))


def test_log_mean_exp():
    rng = np.random.default_rng(0)
    log_w = rng.normal(size=(7, 5))
    np.testing.assert_allclose(log_mean_exp(log_w), np.log(np.exp(log_w).mean(axis=0)))
    np.testing.assert_allclose(log_mean_exp(log_w.T, axis=1), np.log(np.exp(log_w).mean(axis=0)))
    # weights of e^1000 and e^-1000 overflow or vanish as exp; their log-mean does not
    big = np.array([[1000.0, -1000.0], [1000.0 + np.log(3), -1000.0]])
    np.testing.assert_allclose(log_mean_exp(big), [1000.0 + np.log(2), -1000.0])

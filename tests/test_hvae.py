"""The two-layer VAE: float64 gradient checks for both inference modes, the ELBO against a Monte
Carlo average of log p(x, z1, z2) - log q(z1, z2|x) written out density by density, the ELBO
below the importance-sampled log p(x), and input checks."""

import numpy as np
import pytest

from vaebook import gradcheck
from vaebook.hvae import HierarchicalVAE, kl_gauss, kl_gauss_backward

TOL = 1e-6
MODES = ("bottom-up", "top-down")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def model_and_data(rng, inference, B=5, D=7, z_dims=(3, 2), hidden=(6,)):
    model = HierarchicalVAE(D, hidden, z_dims, rng=rng, inference=inference, dtype=np.float64)
    x = (rng.random((B, D)) < 0.5).astype(np.float64)
    eps = (rng.standard_normal((B, z_dims[0])), rng.standard_normal((B, z_dims[1])))
    return model, x, eps


def log_normal(z, mu, var):
    """log N(z | mu, diag var), written out from the density."""
    return np.sum(-0.5 * np.log(2 * np.pi * var) - (z - mu) ** 2 / (2 * var), axis=-1)


@pytest.mark.parametrize("inference", MODES)
@pytest.mark.parametrize("beta", [None, (0.3, 1.7)])
@pytest.mark.parametrize("hidden", [(6,), (6, 5)])
def test_gradients(rng, inference, beta, hidden):
    model, x, eps = model_and_data(rng, inference, hidden=hidden)
    _, grads = model.loss_and_grads(x, eps=eps, beta=beta)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps, beta=beta)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("inference", MODES)
def test_gradients_with_free_bits_and_top_scale(rng, inference):
    model, x, eps = model_and_data(rng, inference)
    model.top_scale = 0.25
    kl1 = model.elbo(x, eps=eps).kl1.mean()
    model.free_bits = float(kl1) + 1.0  # the first layer below λ: its KL gives no gradient
    _, grads = model.loss_and_grads(x, eps=eps)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


def test_kl_gauss_against_a_monte_carlo_and_its_gradient(rng):
    mu_q, lv_q, mu_p, lv_p = (rng.standard_normal((1, 3)) * 0.5 for _ in range(4))
    z = mu_q + np.exp(0.5 * lv_q) * rng.standard_normal((400_000, 3))
    mc = log_normal(z, mu_q, np.exp(lv_q)) - log_normal(z, mu_p, np.exp(lv_p))
    assert abs(mc.mean() - kl_gauss(mu_q, lv_q, mu_p, lv_p)[0]) < 4 * mc.std() / np.sqrt(len(mc))
    args = [mu_q, lv_q, mu_p, lv_p]
    grads = dict(zip("abcd", kl_gauss_backward(*args), strict=True))
    errors = gradcheck(
        lambda: float(kl_gauss(*args).sum()), dict(zip("abcd", args, strict=True)), grads
    )
    assert max(errors.values()) < TOL, errors


def brute_force_log_ratio(model, x, rng):
    """One sample of log p(x, z1, z2) - log q(z1, z2|x) per example, by ancestral sampling
    from q, every density written out here from the sub-networks' outputs."""
    nets, K2 = model.nets, model.z_dims[1]

    def split(name, a):
        h = nets[name].forward(a)
        return h[:, : h.shape[1] // 2], np.exp(h[:, h.shape[1] // 2 :])  # mean, variance

    if model.inference == "bottom-up":
        m1, v1 = split("enc1", x)
        z1 = m1 + np.sqrt(v1) * rng.standard_normal(m1.shape)
        m2, v2 = split("enc2", z1)
        z2 = m2 + np.sqrt(v2) * rng.standard_normal(m2.shape)
        mp, vp = split("dec2", z2)
    else:
        *trunk, head = nets["enc1"].layers
        d1 = x
        for layer in trunk:  # the upward pass's hidden features, which q(z2|x) reads
            d1 = layer.forward(d1)
        h = head.forward(d1)
        mh, vh = h[:, : h.shape[1] // 2], np.exp(h[:, h.shape[1] // 2 :])
        m2, v2 = split("enc2", d1)
        z2 = m2 + np.sqrt(v2) * rng.standard_normal(m2.shape)
        mp, vp = split("dec2", z2)
        v1 = 1 / (1 / vh + 1 / vp)
        m1 = v1 * (mh / vh + mp / vp)
        z1 = m1 + np.sqrt(v1) * rng.standard_normal(m1.shape)
    p_x = 1 / (1 + np.exp(-nets["dec1"].forward(z1)))
    log_px = np.sum(x * np.log(p_x) + (1 - x) * np.log(1 - p_x), axis=1)
    log_p = log_px + log_normal(z1, mp, vp) + log_normal(z2, 0.0, np.ones(K2))
    return log_p - log_normal(z1, m1, v1) - log_normal(z2, m2, v2)


@pytest.mark.parametrize("inference", MODES)
@pytest.mark.parametrize("hidden", [(6,), (6, 5)])
def test_elbo_matches_a_brute_force_monte_carlo(rng, inference, hidden):
    model, x, _ = model_and_data(rng, inference, B=3, hidden=hidden)
    n = 20_000
    xs = np.tile(x, (n, 1))
    brute = brute_force_log_ratio(model, xs, rng).reshape(n, 3)
    elbo = np.asarray(model.elbo(xs, rng=rng)).reshape(n, 3)
    for a in (brute, elbo):
        assert np.all(np.isfinite(a))
    diff = brute.mean(axis=0) - elbo.mean(axis=0)
    se = np.sqrt(brute.var(axis=0) / n + elbo.var(axis=0) / n)
    assert np.all(np.abs(diff) < 4 * se), (diff, se)
    # and the closed-form parts have less variance than the sampled ratio
    assert np.all(elbo.var(axis=0) < brute.var(axis=0))


@pytest.mark.parametrize("inference", MODES)
def test_fixed_noise_elbo_is_the_sampled_log_ratio_up_to_closed_form_kls(rng, inference):
    model, x, eps = model_and_data(rng, inference)
    f = model._forward(x, *eps)
    elbo = model.elbo(x, eps=eps)
    expected = -elbo.recon - elbo.kl1 - elbo.kl2
    np.testing.assert_allclose(np.asarray(elbo), expected)
    if inference == "bottom-up":  # kl1 is sampled: only kl2 is replaced by its mean over z2
        zeros = np.zeros_like(f["z2"])
        sampled_kl2 = log_normal(f["z2"], f["mq2"], np.exp(f["lq2"])) - log_normal(
            f["z2"], zeros, np.ones_like(zeros)
        )
        np.testing.assert_allclose(
            model._log_weight(f, x), np.asarray(elbo) + elbo.kl2 - sampled_kl2, atol=1e-10
        )


def prior_monte_carlo_log_px(model, x, n, rng):
    """log p(x) = log E_{p(z2) p(z1|z2)} p(x|z1), averaged over n ancestral samples."""
    z2 = rng.standard_normal((n, model.z_dims[1]))
    mu, logvar = model.prior_z1(z2)
    z1 = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)
    p_x = 1 / (1 + np.exp(-model.nets["dec1"].forward(z1)))  # (n, D)
    log_px_z = np.log(p_x) @ x.T + np.log(1 - p_x) @ (1 - x).T  # (n, B)
    top = log_px_z.max(axis=0)
    return top + np.log(np.exp(log_px_z - top).mean(axis=0))


@pytest.mark.parametrize("inference", MODES)
def test_log_likelihood_against_prior_sampling_and_above_the_elbo(rng, inference):
    model, x, _ = model_and_data(rng, inference, B=4)
    for name, p in model.params.items():  # q close to p: an estimator of low variance
        p *= 3.0 if name.startswith("dec1") else 0.3
    ll = model.log_likelihood(x, k=20_000, rng=1)
    np.testing.assert_allclose(ll, prior_monte_carlo_log_px(model, x, 400_000, rng), atol=0.15)
    elbo = np.mean([np.asarray(model.elbo(x, rng=r)) for r in range(2000)], axis=0)
    assert np.all(elbo < ll - 0.2)
    # k = 1 draws one log weight, whose mean is the ELBO
    one = np.mean([model.log_likelihood(x, k=1, rng=r) for r in range(3000)], axis=0)
    np.testing.assert_allclose(one, elbo, atol=0.15)


def test_top_down_reads_the_upward_features_with_no_more_parameters(rng):
    counts = {}
    for inference in MODES:
        model = HierarchicalVAE(64, (64, 64), (8, 8), rng=0, inference=inference)
        counts[inference] = sum(p.size for p in model.params.values())
    assert counts["top-down"] < counts["bottom-up"]
    model = HierarchicalVAE(9, (6, 5), (3, 2), rng=0, inference="top-down")
    assert model.nets["enc2"].layers[0].params["W"].shape == (5, 5)  # enc1's last hidden layer


def test_float32_runs_and_fit_compatible(rng):
    from vaebook import Adam, fit

    model = HierarchicalVAE(7, 8, (3, 2), rng=rng)
    x = (rng.random((40, 7)) < 0.3).astype(np.float32)
    loss, grads = model.loss_and_grads(x, rng=rng)
    assert all(g.dtype == np.float32 for g in grads.values())
    history = fit(
        model, x, epochs=2, batch_size=16, optimizer=Adam(1e-3), rng=0, x_val=x, progress=False
    )
    assert len(history.val_elbo) == 2 and np.isfinite(history.kl).all()
    assert model.sample(3, rng=0).shape == (3, 7)
    assert model.sample(4, rng=0, z2=np.zeros((1, 2))).shape == (4, 7)
    (m1, l1), (m2, l2) = model.encode(x)
    assert m1.shape == l1.shape == (40, 3) and m2.shape == l2.shape == (40, 2)


def test_input_checks(rng):
    with pytest.raises(ValueError, match="z_dims"):
        HierarchicalVAE(7, 8, (3,), rng=rng)
    with pytest.raises(ValueError, match="z_dims"):
        HierarchicalVAE(7, 8, (3, 0), rng=rng)
    with pytest.raises(ValueError, match="inference"):
        HierarchicalVAE(7, 8, (3, 2), rng=rng, inference="sideways")
    model, x, eps = model_and_data(rng, "top-down")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss_and_grads(x * 2, eps=eps)
    with pytest.raises(ValueError, match="shape"):
        model.elbo(x[:, :3], eps=eps)
    with pytest.raises(ValueError, match="eps2"):
        model.elbo(x, eps=(eps[0], eps[0]))
    with pytest.raises(ValueError, match="pair"):
        model.elbo(x, eps=eps[0])
    with pytest.raises(ValueError, match="rng"):
        model.elbo(x)
    with pytest.raises(ValueError, match="NaN"):
        model.elbo(np.full_like(x, np.nan), eps=eps)
    with pytest.raises(ValueError, match="k must"):
        model.log_likelihood(x, k=0, rng=0)
    with pytest.raises(ValueError, match="whole number"):
        model.sample(0, rng=0)
    np.testing.assert_allclose(
        model.elbo(x, eps={"z1": eps[0], "z2": eps[1]}), model.elbo(x, eps=eps)
    )


def test_top_down_needs_a_hidden_layer(rng):
    with pytest.raises(ValueError, match="top-down inference needs at least one hidden layer"):
        HierarchicalVAE(7, (), (3, 2), rng=rng, inference="top-down")  # was an IndexError
    HierarchicalVAE(7, (), (3, 2), rng=rng)  # bottom-up has no upward pass to continue


@pytest.mark.parametrize("beta", [(1.0, 2.0, 3.0), np.nan, (1.0, np.inf), -1.0, "1", True])
def test_bad_kl_weights_are_named(rng, beta):
    # a triple was a broadcasting error, "1" a conversion error, NaN and inf a NaN or inf loss
    model, x, eps = model_and_data(rng, "bottom-up")
    with pytest.raises(ValueError, match=r"beta must be a number >= 0 or a pair \(b1, b2\)"):
        model.loss_and_grads(x, eps=eps, beta=beta)


@pytest.mark.parametrize("name", ["beta", "top_scale", "free_bits"])
@pytest.mark.parametrize("value", [np.nan, -1.0, "2"])
def test_bad_kl_weight_attributes_are_named(rng, name, value):
    # NaN top_scale was a NaN loss, NaN or negative free_bits silently no floor, "2" a TypeError
    model, x, eps = model_and_data(rng, "top-down")
    setattr(model, name, value)
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        model.loss_and_grads(x, eps=eps)


def test_kl_weights_as_arrays_are_taken(rng):
    model, x, eps = model_and_data(rng, "bottom-up")
    pair = model.loss_and_grads(x, eps=eps, beta=(0.5, 2.0))[0]
    assert model.loss_and_grads(x, eps=eps, beta=np.array([0.5, 2.0]))[0] == pair
    one = model.loss_and_grads(x, eps=eps, beta=0.5)[0]
    assert model.loss_and_grads(x, eps=eps, beta=np.float64(0.5))[0] == one
    assert model.loss_and_grads(x, eps=eps, beta=np.array(0.5))[0] == one


def test_sample_names_a_z2_of_the_wrong_length(rng):
    model = HierarchicalVAE(7, 8, (3, 2), rng=rng)
    with pytest.raises(ValueError, match=r"z2 must have 1 or n = 4 rows, got 3"):
        model.sample(4, rng=0, z2=np.zeros((3, 2)))  # was a broadcasting error
    assert model.sample(3, rng=0, z2=np.zeros((3, 2))).shape == (3, 7)

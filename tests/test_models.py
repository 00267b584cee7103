"""Whole-model gradient checks with the noise held fixed, the ELBO's parts, the IWAE bound."""

import numpy as np
import pytest

from vaebook import VAE, Adam, Autoencoder, gradcheck
from vaebook.stats import assert_greater

TOL = 1e-6


def small_vae(rng, likelihood="bernoulli", hidden=(6,)):
    return VAE(5, hidden, 3, rng=rng, likelihood=likelihood, dtype=np.float64)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("hidden", [(6,), (7, 4)])
def test_vae_gradients_with_fixed_eps(rng, likelihood, hidden):
    model = small_vae(rng, likelihood, hidden)
    x = rng.random((4, 5))
    eps = rng.standard_normal((4, 3))
    loss, grads = model.loss_and_grads(x, eps=eps)
    assert grads.keys() == model.params.keys()
    assert all(grads[k].shape == p.shape for k, p in model.params.items())
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("obs_std", [0.3, 2.0])
def test_gaussian_vae_with_obs_std(rng, obs_std):
    """The observation noise enters the loss and the gradients (obs_std = 1 would hide it)."""
    model = VAE(5, (6,), 3, rng=rng, likelihood="gaussian", obs_std=obs_std, dtype=np.float64)
    model.beta = 0.7
    x, eps = rng.random((3, 5)), rng.standard_normal((3, 3))
    loss, grads = model.loss_and_grads(x, eps=eps)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors
    mu, logvar = model.encode(x)
    mean = model.decoder.forward(mu + np.exp(0.5 * logvar) * eps)
    log_px = -0.5 * (np.log(2 * np.pi * obs_std**2) + (x - mean) ** 2 / obs_std**2).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    assert loss == pytest.approx(np.mean(-log_px + 0.7 * kl), rel=1e-12)


def test_vae_gradients_with_beta(rng):
    model = small_vae(rng)
    model.beta = 0.3
    x, eps = rng.random((3, 5)), rng.standard_normal((3, 3))
    _, grads = model.loss_and_grads(x, eps=eps)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("loss", ["bernoulli", "mse"])
def test_autoencoder_gradients(rng, loss):
    model = Autoencoder(5, (6,), 2, rng=rng, dtype=np.float64, loss=loss)
    x = rng.random((4, 5))
    value, grads = model.loss_and_grads(x)
    assert value == pytest.approx(model.recon_loss(x).mean())
    errors = gradcheck(lambda: model.loss_and_grads(x)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


def test_loss_is_mean_negative_elbo_and_parts_add_up(rng):
    model = small_vae(rng)
    x, eps = rng.random((6, 5)), rng.standard_normal((6, 3))
    elbo = model.elbo(x, eps=eps)
    assert isinstance(elbo, np.ndarray) and elbo.shape == elbo.recon.shape == elbo.kl.shape == (6,)
    assert np.allclose(elbo, -(elbo.recon + elbo.kl))
    assert (elbo.recon > 0).all() and (elbo.kl > 0).all()
    mu, logvar = model.encode(x)  # each part is what its name says, recomputed here
    z = mu + np.exp(0.5 * logvar) * eps
    assert np.allclose(elbo.kl, 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1))
    logits = model.decoder.forward(z)
    log_px = (x * logits - np.logaddexp(0, logits)).sum(axis=1)  # log Bernoulli(x | sigmoid)
    assert np.allclose(elbo.recon, -log_px)
    model.loss_and_grads(x, eps=eps)
    assert model.stats == pytest.approx({"recon": elbo.recon.mean(), "kl": elbo.kl.mean()})
    assert model.loss_and_grads(x, eps=eps)[0] == pytest.approx(-elbo.mean())
    assert type(elbo * 2) is np.ndarray and elbo[:2].recon is None  # parts stay with the values
    assert np.allclose(model.decode(z), 1 / (1 + np.exp(-model.decoder.forward(z))))


def test_end_to_end_against_a_direct_computation(rng):
    """The whole VAE, sampler included, recomputed in plain NumPy from its parameters."""
    model = VAE(4, (5,), 2, rng=rng, dtype=np.float64)
    p = model.params
    x, eps = rng.random((3, 4)), rng.standard_normal((3, 2))
    h = np.maximum(x @ p["enc.0.W"] + p["enc.0.b"], 0) @ p["enc.2.W"] + p["enc.2.b"]
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + np.exp(0.5 * logvar) * eps
    logits = np.maximum(z @ p["dec.0.W"] + p["dec.0.b"], 0) @ p["dec.2.W"] + p["dec.2.b"]
    prob = 1 / (1 + np.exp(-logits))
    log_px = (x * np.log(prob) + (1 - x) * np.log(1 - prob)).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    assert np.allclose(model.elbo(x, eps=eps), log_px - kl)


def test_sample_decodes_prior_draws(rng):
    model = small_vae(rng)
    z = np.random.default_rng(7).standard_normal((8, 3))
    assert np.allclose(model.sample(8, rng=np.random.default_rng(7)), model.decode(z))
    assert not np.allclose(model.sample(8, rng=1), model.sample(8, rng=2))


def test_reconstruct_uses_posterior_mean(rng):
    model = small_vae(rng)
    x = rng.random((2, 5))
    assert np.allclose(model.reconstruct(x), model.decode(model.encode(x)[0]))


def test_iwae_bound_above_elbo_and_grows_with_k():
    """E[log p_k] is >= the ELBO and non-decreasing in k (Burda et al. 2016, Theorem 1).

    Each estimate is averaged over repeats; neighbours are compared within 3 standard errors.
    """
    rng = np.random.default_rng(0)
    model = VAE(6, (8,), 2, rng=rng, dtype=np.float64)
    x = rng.random((20, 6))
    elbo = np.array([model.elbo(x, rng=rng).mean() for _ in range(400)])
    runs = {
        k: np.array([model.log_likelihood(x, k=k, rng=rng).mean() for _ in range(40)])
        for k in (1, 4, 32, 256)
    }
    means = {k: r.mean() for k, r in runs.items()}
    stderr = {k: r.std() / np.sqrt(len(r)) for k, r in runs.items()}
    assert abs(means[1] - elbo.mean()) < 3 * (stderr[1] + elbo.std() / 20)  # k = 1: the ELBO
    assert means[256] > elbo.mean()
    ks = sorted(runs)
    for a, b in zip(ks, ks[1:], strict=False):
        assert means[a] <= means[b] + 3 * (stderr[a] + stderr[b]), means


def test_log_likelihood_is_exact_when_q_is_the_prior_and_decoder_ignores_z(rng):
    model = VAE(3, (4,), 2, rng=rng, dtype=np.float64)
    for p in model.params.values():
        p[...] = 0.0
    x = np.array([[0.0, 1.0, 1.0]])
    assert np.allclose(model.log_likelihood(x, k=5, rng=rng), 3 * np.log(0.5))


def test_float32_model_keeps_float32(rng):
    model = VAE(5, (6,), 3, rng=rng)
    loss, grads = model.loss_and_grads(rng.random((4, 5)), rng=rng)
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert all(g.dtype == np.float32 for g in grads.values())
    assert isinstance(loss, float)


class Float32Only(np.ndarray):
    """An array whose every ufunc result (matmul and reductions included) must be float32."""

    __array_priority__ = 1.0  # np.concatenate of these gives one of these

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        def plain(a):
            return a.view(np.ndarray) if isinstance(a, Float32Only) else a

        if "out" in kwargs:
            kwargs["out"] = tuple(plain(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*(plain(a) for a in inputs), **kwargs)
        for r in result if isinstance(result, tuple) else (result,):
            if isinstance(r, np.ndarray | np.generic):
                assert r.dtype == np.float32 or r.dtype == bool, f"{ufunc.__name__} -> {r.dtype}"
        return result.view(Float32Only) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE(5, (6,), 3, rng=0),
        lambda: VAE(5, (6,), 3, rng=0, likelihood="gaussian"),
        lambda: Autoencoder(5, (6,), 3, rng=0),
        lambda: Autoencoder(5, (6,), 3, rng=0, loss="mse"),
    ],
)
def test_float32_step_has_no_float64_intermediate(rng, make):
    """Every array a float32 training step computes stays float32: no silent upcast."""
    model = make()
    for layer in [*model.encoder.layers, *model.decoder.layers]:
        layer.params = {k: v.view(Float32Only) for k, v in layer.params.items()}
    model.params = {k: v.view(Float32Only) for k, v in model.params.items()}
    x = rng.random((4, 5), dtype=np.float32).view(Float32Only)
    adam = Adam()
    for _ in range(2):
        loss, grads = model.loss_and_grads(x, rng=rng)
        adam.step(model.params, grads)
    assert all(isinstance(g, Float32Only) for g in grads.values())  # the check saw them all


def test_float32_check_catches_an_upcast():
    with pytest.raises(AssertionError, match="float64"):
        np.ones(3, np.float32).view(Float32Only) * np.ones(3)


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((3, 4)), r"shape \(B, 5\)"),
        (np.zeros(5), r"shape \(B, 5\)"),
        (np.zeros((0, 5)), "empty batch"),
        (np.full((2, 5), np.nan), "NaN"),
        (np.full((2, 5), 1.5), r"\[0, 1\]"),
        (-np.ones((2, 5)), r"\[0, 1\]"),
        (np.array([["a"] * 5]), "real numbers"),
    ],
)
def test_bad_inputs_name_the_problem(rng, x, match):
    model = small_vae(rng)
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(x, rng=rng)


def test_bad_eps_and_missing_rng(rng):
    model = small_vae(rng)
    x = rng.random((2, 5))
    with pytest.raises(ValueError, match="eps must have shape"):
        model.loss_and_grads(x, eps=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="pass eps"):
        model.loss_and_grads(x)


def test_gaussian_targets_may_leave_unit_interval(rng):
    model = small_vae(rng, likelihood="gaussian")
    loss, _ = model.loss_and_grads(np.full((2, 5), 3.0), rng=rng)
    assert np.isfinite(loss)


def test_unknown_likelihood_and_bad_widths(rng):
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        VAE(5, (6,), 3, rng=rng, likelihood="poisson")
    with pytest.raises(ValueError, match="unknown loss"):
        Autoencoder(5, (6,), 3, rng=rng, loss="l1")
    with pytest.raises(ValueError, match="must be a positive whole number"):
        VAE(5, (0,), 3, rng=rng)
    with pytest.raises(ValueError, match="dtype"):
        VAE(5, (6,), 3, rng=rng, dtype=np.int32)


def test_extreme_parameters_give_finite_loss_and_grads(rng):
    model = VAE(5, (6,), 3, rng=rng)
    model.params["enc.2.b"][3:] = 50.0  # logvar = +50 for every input
    model.params["dec.2.b"][:] = 1e4  # logits = +1e4
    x = rng.integers(0, 2, size=(4, 5)).astype(np.float32)
    loss, grads = model.loss_and_grads(x, eps=np.zeros((4, 3), np.float32))
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    model.params["enc.2.b"][3:] = -50.0
    model.params["dec.2.b"][:] = -1e4
    loss, grads = model.loss_and_grads(x, eps=np.ones((4, 3), np.float32))
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())


def test_numpy_scalar_beta_keeps_float32_gradients(rng):
    model = VAE(5, (6,), 3, rng=rng)
    model.beta = np.float64(0.5)  # e.g. from an np.linspace schedule
    _, grads = model.loss_and_grads(rng.random((4, 5)).astype(np.float32), rng=rng)
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("obs_std", [0.0, -1.0, np.inf, np.nan])
def test_obs_std_must_be_positive_and_finite(rng, obs_std):
    with pytest.raises(ValueError, match="obs_std"):
        VAE(5, (6,), 3, rng=rng, likelihood="gaussian", obs_std=obs_std)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: VAE(5, (32.5,), 2, rng=0), r"hidden\[0\] must be a positive whole number"),
        (lambda: VAE(5, (6,), 2.7, rng=0), "z_dim must be a positive whole number"),
        (lambda: Autoencoder(5.5, (6,), 2, rng=0), "x_dim must be a positive whole number"),
        (lambda: VAE(5, (6,), True, rng=0), "z_dim must be a positive whole number"),
        (lambda: VAE(5, (6,), 2, rng=0, obs_std="1"), "obs_std must be a positive finite"),
        (lambda: VAE(5, (6,), 2, rng=0, dtype="int8"), "dtype must be float32 or float64"),
    ],
)
def test_sizes_and_settings_are_not_silently_truncated(make, match):
    with pytest.raises(ValueError, match=match):
        make()
    assert VAE(5, (6.0,), 2.0, rng=0).hidden == (6,)  # whole floats are accepted


@pytest.mark.parametrize("k", [1.9, np.inf, 0, -3, "5"])
def test_log_likelihood_wants_a_whole_number_of_samples(rng, k):
    with pytest.raises(ValueError, match="k must be a positive whole number"):
        small_vae(rng).log_likelihood(rng.random((2, 5)), k=k, rng=0)


def test_boolean_data_is_accepted_as_zeros_and_ones(rng):
    model = small_vae(rng)
    x = rng.random((4, 5)) < 0.5
    eps = rng.standard_normal((4, model.z_dim))
    assert model.loss_and_grads(x, eps=eps)[0] == model.loss_and_grads(x.astype(float), eps=eps)[0]


def test_out_of_range_message_shows_the_offending_value(rng):
    x = np.ones((2, 5))
    x[0, 0] = 1 + 1e-7
    with pytest.raises(ValueError, match=r"values in \[1\.0, 1\.0000001"):
        small_vae(rng).loss_and_grads(x, rng=rng)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("k", [2, 5])
def test_iwae_gradients_with_fixed_eps(rng, likelihood, k):
    model = small_vae(rng, likelihood, (7, 4))
    x = rng.random((4, 5))
    eps = rng.standard_normal((k, 4, 3))
    loss, grads = model.loss_and_grads(x, eps=eps, k=k)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps, k=k)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


def test_iwae_loss_is_minus_the_mean_bound_computed_directly(rng):
    """-mean_B [logsumexp_i log w_i - log k], log w from the densities written out."""
    model, k = small_vae(rng), 6
    x, eps = rng.random((3, 5)), rng.standard_normal((k, 3, 3))
    mu, logvar = model.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps  # (k, B, K)
    prob = model.decode(z.reshape(-1, 3)).reshape(k, 3, 5)
    log_px_z = (x * np.log(prob) + (1 - x) * np.log(1 - prob)).sum(axis=2)
    log_pz = -0.5 * (z**2 + np.log(2 * np.pi)).sum(axis=2)
    log_qz = -0.5 * ((z - mu) ** 2 / np.exp(logvar) + logvar + np.log(2 * np.pi)).sum(axis=2)
    log_w = log_px_z + log_pz - log_qz
    bound = np.log(np.exp(log_w).mean(axis=0))
    assert np.isclose(model.loss_and_grads(x, eps=eps, k=k)[0], -bound.mean())


def test_iwae_with_one_sample_is_todays_loss_and_more_samples_tighten_it(rng):
    model = small_vae(rng)
    x, eps = rng.random((4, 5)), rng.standard_normal((4, 3))
    assert model.loss_and_grads(x, eps=eps, k=1)[0] == model.loss_and_grads(x, eps=eps)[0]
    # E[-L_k] falls with k (Burda et al. 2016): averaged over many draws, by a clear margin
    draws = np.random.default_rng(1)
    losses = {k: [model.loss_and_grads(x, rng=draws, k=k)[0] for _ in range(400)] for k in (2, 20)}
    assert_greater(losses[2], losses[20], paired=False, what="-L_2 above -L_20")


def test_iwae_checks_its_arguments(rng):
    model = small_vae(rng)
    x = rng.random((4, 5))
    with pytest.raises(ValueError, match=r"eps must have shape \(3, 4, 3\) for k = 3"):
        model.loss_and_grads(x, eps=rng.standard_normal((4, 3)), k=3)
    with pytest.raises(ValueError, match="k must be a positive whole number"):
        model.loss_and_grads(x, rng=0, k=2.5)
    model.beta = 0.5
    with pytest.raises(ValueError, match="beta must be 1"):
        model.loss_and_grads(x, rng=0, k=3)


def test_iwae_step_keeps_float32(rng):
    model = VAE(5, (6,), 3, rng=0)
    loss, grads = model.loss_and_grads(rng.random((4, 5)), rng=0, k=4)
    assert np.isfinite(loss) and all(g.dtype == np.float32 for g in grads.values())

"""The conditional VAE: gradients, a direct computation, label checks, sampling, checkpoints."""

import numpy as np
import pytest

from vaebook import ConditionalVAE, gradcheck, load, save

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def small_cvae(rng, likelihood="bernoulli", hidden=(6,)):
    return ConditionalVAE(5, 3, hidden, 2, rng=rng, likelihood=likelihood, dtype=np.float64)


def labels(rng, n, y_dim=3):
    return np.eye(y_dim)[rng.integers(0, y_dim, n)]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("hidden", [(6,), (7, 4)])
def test_cvae_gradients_with_fixed_eps(rng, likelihood, hidden):
    model = small_cvae(rng, likelihood, hidden)
    x, y, eps = rng.random((4, 5)), labels(rng, 4), rng.standard_normal((4, 2))
    loss, grads = model.loss_and_grads(x, y, eps=eps)
    assert grads.keys() == model.params.keys()
    errors = gradcheck(lambda: model.loss_and_grads(x, y, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


def test_cvae_against_a_direct_computation(rng):
    """Encoder on [x, y], decoder on [z, y], recomputed in plain NumPy from the parameters."""
    model = ConditionalVAE(4, 3, (5,), 2, rng=rng, dtype=np.float64)
    p = model.params
    x, y, eps = rng.random((3, 4)), labels(rng, 3), rng.standard_normal((3, 2))
    h = np.maximum(np.c_[x, y] @ p["enc.0.W"] + p["enc.0.b"], 0) @ p["enc.2.W"] + p["enc.2.b"]
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + np.exp(0.5 * logvar) * eps
    logits = np.maximum(np.c_[z, y] @ p["dec.0.W"] + p["dec.0.b"], 0) @ p["dec.2.W"] + p["dec.2.b"]
    prob = 1 / (1 + np.exp(-logits))
    log_px = (x * np.log(prob) + (1 - x) * np.log(1 - prob)).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
    assert np.allclose(model.elbo(x, y, eps=eps), log_px - kl)
    assert np.isclose(model.loss_and_grads(x, y, eps=eps)[0], -(log_px - kl).mean())
    assert np.allclose(model.decode(z, y), prob)


def test_the_label_changes_the_decoding(rng):
    model = small_cvae(rng)
    z = rng.standard_normal((1, 2))
    images = [model.decode(z, np.eye(3)[[c]]) for c in range(3)]
    assert not np.allclose(images[0], images[1]) and not np.allclose(images[1], images[2])


@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros((4, 3)), "one-hot"),  # no class
        (np.ones((4, 3)), "one-hot"),  # every class
        (np.full((4, 3), 1 / 3), "one-hot"),  # soft labels
        (np.eye(4)[:4], r"shape \(4, 3\)"),  # wrong width
        (np.eye(3)[[0, 1, 2]], r"shape \(4, 3\)"),  # wrong count
        (np.array([0, 1, 2, 0]), r"shape \(4, 3\)"),  # integer labels, not one-hot
        (np.array([["a", "b", "c"]] * 4), "numbers"),
    ],
)
def test_bad_labels_are_a_clear_error(rng, y, match):
    model = small_cvae(rng)
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(rng.random((4, 5)), y, rng=0)


def test_one_hot_and_sample(rng):
    model = small_cvae(rng)
    y = model.one_hot([2, 0, 1])
    assert np.array_equal(y, np.eye(3)[[2, 0, 1]])
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        model.one_hot([3])
    a = model.sample(y, rng=5)
    assert a.shape == (3, 5) and np.array_equal(a, model.sample(y, rng=5))
    z = np.random.default_rng(5).standard_normal((3, 2))  # the prior draws sample makes
    assert np.allclose(a, model.decode(z, y))


def test_conditional_log_likelihood_is_above_the_elbo_on_average(rng):
    model = small_cvae(rng)
    x, y = rng.random((6, 5)), labels(rng, 6)
    estimate = model.log_likelihood(x, y, k=2000, rng=1)
    elbo = np.mean([model.elbo(x, y, rng=r) for r in range(200)], axis=0)  # (6,)
    assert np.all(estimate > elbo)


def test_cvae_checkpoint_round_trip(tmp_path, rng):
    model = small_cvae(rng, hidden=(7, 4))
    model.beta = 2.0
    save(model, tmp_path / "c.npz")
    back = load(tmp_path / "c.npz")
    assert isinstance(back, ConditionalVAE) and back.y_dim == 3 and back.beta == 2.0
    assert all(np.array_equal(back.params[k], p) for k, p in model.params.items())


def test_y_dim_must_be_a_positive_whole_number():
    with pytest.raises(ValueError, match="y_dim must be a positive whole number"):
        ConditionalVAE(5, 0, (6,), 2, rng=0)

"""The diffusion model: its closed forms against Monte Carlo, its ELBO against a brute-force sum
over whole trajectories, the gradient of its loss, its sampler and its input checks."""

import numpy as np
import pytest

from vaebook import Adam, binarize, fit, gradcheck, load_digits
from vaebook.diffusion import Diffusion, cosine_schedule, linear_schedule, time_embedding


def forward_chain(model, x0, rng, steps):
    """x_1..x_steps drawn one step at a time, x_t = sqrt(1 - nu_t) x_{t-1} + sqrt(nu_t) eps."""
    xs, x = [], x0
    for t in range(1, steps + 1):
        nu = model.nu[t - 1]
        x = np.sqrt(1 - nu) * x + np.sqrt(nu) * rng.standard_normal(x.shape)
        xs.append(x)
    return xs


def test_marginal_matches_the_chain():
    model = Diffusion(3, (8,), T=20, rng=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    n, t = 200_000, 13
    x0 = np.tile([[-1.0, 0.3, 1.0]], (n, 1))
    xt = forward_chain(model, x0, rng, t)[-1]
    mean, var = model.marginal(x0[:1], np.array([t]))
    se_mean = np.sqrt(var[0, 0] / n)
    assert np.all(np.abs(xt.mean(axis=0) - mean[0]) < 4 * se_mean)
    se_var = var[0, 0] * np.sqrt(2 / n)  # the SE of a Gaussian sample variance
    assert np.all(np.abs(xt.var(axis=0) - var[0, 0]) < 4 * se_var)


def test_posterior_matches_regression_on_the_chain():
    # Given x_0, (x_{t-1}, x_t) is jointly Gaussian: regressing x_{t-1} on x_t gives the
    # posterior's mean (intercept + slope * x_t) and its variance (the residual variance).
    model = Diffusion(1, (8,), T=10, rng=0, dtype=np.float64)
    rng = np.random.default_rng(2)
    n, t, x0 = 400_000, 4, 0.6
    xs = forward_chain(model, np.full((n, 1), x0), rng, t)
    prev, cur = xs[t - 2][:, 0], xs[t - 1][:, 0]
    slope, intercept = np.polyfit(cur, prev, 1)
    residual = (prev - (intercept + slope * cur)).var()
    points = np.array([[-1.0], [0.0], [1.0]])
    mean, var = model.posterior(np.full((3, 1), x0), points, np.full(3, t))
    np.testing.assert_allclose(intercept + slope * points[:, 0], mean[:, 0], atol=5e-3)
    np.testing.assert_allclose(residual, var[0, 0], rtol=1e-2)


def log_normal(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var).sum(axis=1)


@pytest.mark.parametrize("reverse_var", ["nu", "posterior"])
def test_elbo_equals_a_brute_force_sum_over_trajectories(reverse_var):
    # E_q[log p(x_{0:T}) - log q(x_{1:T} | x_0)] sampled over whole forward trajectories, with
    # every density written out: no closed-form KL, no posterior, no epsilon-parameterization.
    T, D = 4, 3
    schedule = np.array([0.1, 0.2, 0.3, 0.5])
    model = Diffusion(
        D, (6,), T=T, rng=3, dtype=np.float64, schedule=schedule, reverse_var=reverse_var
    )
    x = np.array([[0.0, 1.0, 1.0]])
    x0 = 2 * x - 1
    n = 100_000
    rng = np.random.default_rng(4)
    xs = [np.repeat(x0, n, axis=0), *forward_chain(model, np.repeat(x0, n, axis=0), rng, T)]
    log_w = log_normal(xs[T], 0.0, 1.0)  # log p(x_T)
    for t in range(T, 0, -1):
        nu = model.nu[t - 1]
        log_w -= log_normal(xs[t], np.sqrt(1 - nu) * xs[t - 1], nu)  # - log q(x_t | x_{t-1})
        var = nu  # the decoder's variance, written out
        if reverse_var == "posterior" and t > 1:
            var = (1 - model.zeta[t - 2]) / (1 - model.zeta[t - 1]) * nu
        steps = np.full(n, t)
        mu = model._mean(xs[t], steps, model.predict_noise(xs[t], steps))
        if t > 1:
            log_w += log_normal(xs[t - 1], mu, var)  # log p(x_{t-1} | x_t)
        else:  # log p(x_0 | x_1), two bins split at 0
            from scipy.special import log_ndtr

            log_w += log_ndtr(xs[0] * mu / np.sqrt(nu)).sum(axis=1)
    brute, brute_se = log_w.mean(), log_w.std() / np.sqrt(n)
    draws = model.elbo(np.repeat(x, 20_000, axis=0), rng=5)
    ours, ours_se = draws.mean(), draws.std() / np.sqrt(len(draws))
    assert abs(brute - ours) < 4 * np.hypot(brute_se, ours_se), (brute, ours)
    assert np.hypot(brute_se, ours_se) < 0.05  # precise enough to see a wrong term


def test_elbo_terms_layout():
    model = Diffusion(5, (8,), T=6, rng=0)
    x = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0]], dtype=float)
    terms = model.elbo_terms(x, rng=1)
    assert terms.shape == (2, 7)
    zeta = model.zeta[-1]
    x0 = 2 * x - 1
    expected_LT = 0.5 * (zeta * x0**2 + (1 - zeta) - 1 - np.log(1 - zeta)).sum(axis=1)
    np.testing.assert_allclose(terms[:, -1], expected_LT)
    assert np.all(terms >= 0)  # KLs and a -log of a probability
    np.testing.assert_allclose(model.elbo(x, rng=1), -terms.sum(axis=1))


@pytest.mark.parametrize("hidden", [(7,), (6, 5)])
def test_loss_gradients(hidden):
    model = Diffusion(4, hidden, T=10, rng=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    x = rng.random((5, 4))
    t = rng.integers(1, 11, size=5)
    eps = rng.standard_normal((5, 4))
    _, grads = model.loss_and_grads(x, t=t, eps=eps)
    grads = {k: v.copy() for k, v in grads.items()}
    errors = gradcheck(lambda: model.loss_and_grads(x, t=t, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_loss_is_the_noise_prediction_error():
    model = Diffusion(4, (6,), T=10, rng=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    x, t, eps = rng.random((3, 4)), np.array([1, 5, 10]), rng.standard_normal((3, 4))
    loss, _ = model.loss_and_grads(x, t=t, eps=eps)
    zeta = model.zeta[t - 1][:, None]
    xt = np.sqrt(zeta) * (2 * x - 1) + np.sqrt(1 - zeta) * eps
    expected = ((model.predict_noise(xt, t) - eps) ** 2).sum(axis=1).mean()
    assert loss == pytest.approx(expected)


def test_schedules():
    np.testing.assert_allclose(linear_schedule(1000), np.linspace(1e-4, 0.02, 1000))
    for T in (50, 200):
        assert np.exp(np.log1p(-linear_schedule(T)).sum()) < 1e-3  # x_T is almost pure noise
    T, s = 100, 0.008
    zeta = np.cumprod(1 - cosine_schedule(T, s=s, max_nu=0.999))  # the paper's clip
    f = np.cos((np.arange(1, T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    f0 = np.cos(s / (1 + s) * np.pi / 2) ** 2
    np.testing.assert_allclose(zeta[:-1], (f / f0)[:-1], rtol=1e-10)
    emb = time_embedding(np.array([1, 2, 50]), 50)
    assert emb.shape == (3, 16) and np.all(np.abs(emb) <= 1)
    assert len({tuple(np.round(row, 12)) for row in time_embedding(np.arange(1, 51), 50)}) == 50


def bound_weights(nu):
    """lambda_t of the squared noise error in L_{t-1}, with the decoder's variance nu_t."""
    return nu / (2 * (1 - nu) * (1 - np.cumprod(1 - nu)))


def test_default_schedule_weights_no_step_heavily():
    # The paper's clip at 0.999 weighs the last step's noise error by about 500; the default's
    # clip at 1/2 keeps every weight below 1, near the linear schedule's largest, for every T.
    for T in (1, 2, 3, 5, 10, 20, 50, 100, 1000):
        model = Diffusion(4, (5,), T=T, rng=0)
        np.testing.assert_array_equal(model.nu, cosine_schedule(T))
        assert np.all(model.nu <= 0.5) and np.all(np.diff(model.nu) >= 0)
        weights, zeta = bound_weights(model.nu)[1:], model.zeta[1:]
        assert np.all(weights <= 1 / (2 * (1 - zeta)) + 1e-12) and np.all(weights < 1), T
        if T >= 2:
            assert bound_weights(cosine_schedule(T, max_nu=0.999))[1:].max() > 499
        if T >= 10:
            assert model.zeta[-1] < 0.03, T  # x_T is close to pure noise: L_T < D / 60 nats
    assert bound_weights(linear_schedule(100))[1:].max() > 0.7 * 0.5  # the same scale
    with pytest.raises(ValueError, match="max_nu"):
        cosine_schedule(10, max_nu=1.0)


def test_default_schedule_gives_a_usable_bound():
    # Trained the same way, the default schedule's bound is near the linear schedule's, and the
    # paper's clip at 0.999 is thousands of nats worse, almost all of it in its last step.
    split = load_digits()
    x, x_test = binarize(split.x_train), binarize(split.x_test[:100])
    terms = {}
    for name, schedule in (
        ("default", None),
        ("linear", linear_schedule(50)),
        ("clip 0.999", cosine_schedule(50, max_nu=0.999)),
    ):
        model = Diffusion(64, (64,), T=50, rng=0, schedule=schedule)
        fit(model, x, epochs=6, batch_size=64, optimizer=Adam(lr=2e-3), rng=2, progress=False)
        terms[name] = model.elbo_terms(x_test, rng=1).mean(axis=0)
    bound = {name: -t.sum() for name, t in terms.items()}
    assert bound["default"] > bound["linear"] - 50, bound
    assert bound["clip 0.999"] < bound["default"] - 1000, bound
    assert terms["clip 0.999"][-2] > 0.5 * terms["clip 0.999"].sum()  # L_{T-1}, the last step
    assert terms["default"][-2] < 0.01 * terms["clip 0.999"][-2]


def test_sample_shapes_and_path():
    model = Diffusion(6, (8,), T=5, rng=0)
    probs, path = model.sample(3, rng=1, return_path=True)
    assert probs.shape == (3, 6) and path.shape == (6, 3, 6)
    assert np.all((probs >= 0) & (probs <= 1)) and np.all((path >= 0) & (path <= 1))
    np.testing.assert_array_equal(path[-1], probs)
    np.testing.assert_array_equal(model.sample(3, rng=1), probs)  # seeded: reproducible


def test_training_lowers_the_loss_and_the_bound():
    split = load_digits()
    x, x_test = binarize(split.x_train), binarize(split.x_test[:100])
    model = Diffusion(64, (128,), T=50, rng=0, schedule=linear_schedule(50))
    before = -model.elbo(x_test, rng=1).mean()
    history = fit(
        model, x, epochs=15, batch_size=64, optimizer=Adam(lr=2e-3), rng=2, progress=False
    )
    after = -model.elbo(x_test, rng=1).mean()
    assert history.loss[-1] < 0.6 * history.loss[0]
    assert after < 0.5 * before, (before, after)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="T must"):
        Diffusion(4, (5,), T=0, rng=0)
    with pytest.raises(ValueError, match="schedule must have shape"):
        Diffusion(4, (5,), T=3, rng=0, schedule=[0.1, 0.2])
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        Diffusion(4, (5,), T=2, rng=0, schedule=[0.1, 1.0])
    model = Diffusion(4, (5,), T=3, rng=0)
    with pytest.raises(ValueError, match="binary"):
        model.elbo(np.full((1, 4), 0.5), rng=0)
    with pytest.raises(ValueError, match="1..3"):
        model.loss_and_grads(np.zeros((2, 4)), t=np.array([0, 1]), eps=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        model.loss_and_grads(np.zeros((2, 5)), rng=0)
    with pytest.raises(ValueError, match="rng"):
        model.loss_and_grads(np.zeros((2, 4)))
    model.reverse_var = "beta"
    with pytest.raises(ValueError, match="reverse_var"):
        model.sample(1, rng=0)
    with pytest.raises(ValueError, match="t >= 2"):
        model.posterior(np.zeros((1, 4)), np.zeros((1, 4)), np.array([1]))


def test_noise_of_one_row_is_not_broadcast_over_the_batch():
    model = Diffusion(4, (5,), T=3, rng=0)
    x, t = np.zeros((3, 4)), np.array([1, 2, 3])
    with pytest.raises(ValueError, match=r"eps must have shape \(3, 4\), one row per example"):
        model.loss_and_grads(x, t=t, eps=np.ones((1, 4)))  # was a loss with one noise for all


def test_a_bad_reverse_variance_is_refused_when_built():
    with pytest.raises(ValueError, match="reverse_var must be one of"):
        Diffusion(4, (5,), T=3, rng=0, reverse_var="beta")  # was accepted until elbo or sample


@pytest.mark.parametrize("step", [0, -1, 4, 1.5, "1"])
def test_reverse_variance_checks_its_step(step):
    model = Diffusion(4, (5,), T=3, rng=0)
    with pytest.raises(ValueError, match=r"step must be a whole number in 1..3"):
        model.reverse_variance(step)  # 0 and -1 gave nu_T and nu_{T-1}, 4 an IndexError


def test_a_schedule_names_its_bad_steps():
    with pytest.raises(ValueError, match=r"at t = \[2, 4\] it is \[1.0, nan\]"):
        Diffusion(4, (5,), T=4, rng=0, schedule=[0.1, 1.0, 0.2, np.nan])
    with pytest.raises(ValueError, match="schedule must be 2 numbers"):
        Diffusion(4, (5,), T=2, rng=0, schedule=["a", "b"])


def test_cosine_schedule_checks_its_offset_and_clip():
    with pytest.raises(ValueError, match="offset s must be a finite number >= 0"):
        cosine_schedule(10, s=-0.5)  # was a schedule with negative nu_t
    with pytest.raises(ValueError, match="max_nu must lie in"):
        cosine_schedule(10, max_nu="0.5")  # was a TypeError


def test_the_networks_inputs_are_checked():
    model = Diffusion(4, (5,), T=3, rng=0)
    t = np.array([1, 2])
    with pytest.raises(ValueError, match=r"xt must have shape \(B, 4\)"):
        model.predict_noise(np.zeros((2, 5)), t)  # was a matmul error
    with pytest.raises(ValueError, match="xt contains NaN"):
        model.predict_noise(np.full((2, 4), np.nan), t)  # was a NaN prediction
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, 4\)"):
        model.marginal(np.zeros((2, 5)), t)  # was a mean of the wrong width
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, 4\) with B >= 1"):
        model.marginal(np.zeros((0, 4)), np.array([], dtype=int))  # was a zero-size min error
    with pytest.raises(ValueError, match=r"xt must have the shape of x0, \(2, 4\)"):
        model.posterior(np.zeros((2, 4)), np.zeros((1, 4)), np.array([2, 3]))  # broadcast


@pytest.mark.parametrize("start, end", [(np.nan, 0.02), (0.02, 1e-4), (0.0, 0.02), ("1e-4", 0.02)])
def test_linear_schedule_checks_its_ends(start, end):
    # NaN was reported as "use a larger T", start > end gave a falling schedule
    with pytest.raises(ValueError, match="0 < start <= end"):
        linear_schedule(100, start=start, end=end)

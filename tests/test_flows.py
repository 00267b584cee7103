"""Planar flows, a flow density and the flow VAE: gradients, the log-determinant against a
numerical Jacobian, invertibility, normalisation."""

import numpy as np
import pytest

from vaebook import VAE, binarize, gradcheck, numerical_grad
from vaebook.flows import AmortizedFlowVAE, FlowDensity, FlowVAE, PlanarFlow, RowPlanarFlow

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def loss_of(flow, z, r_out, r_det):
    z_out, log_det = flow.forward(z)
    return float((z_out * r_out).sum() + (log_det * r_det).sum())


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_planar_flow_gradients(rng, dim):
    flow = PlanarFlow(dim, rng=rng, dtype=np.float64)
    flow.params["u"][:] = 2 * rng.standard_normal(dim)  # large enough that û differs from u
    flow.params["b"][:] = 0.3
    z = rng.standard_normal((6, dim))
    r_out, r_det = rng.standard_normal((6, dim)), rng.standard_normal(6)
    loss_of(flow, z, r_out, r_det)
    dz = flow.backward(r_out, r_det)
    grads = flow.grads
    errors = gradcheck(lambda: loss_of(flow, z, r_out, r_det), flow.params, grads)
    assert max(errors.values()) < TOL, errors
    dz_num = numerical_grad(lambda: loss_of(flow, z, r_out, r_det), z)
    assert np.linalg.norm(dz - dz_num) / np.linalg.norm(dz + dz_num) < TOL


def test_log_det_matches_a_finite_difference_jacobian(rng):
    flow = PlanarFlow(3, rng=rng, dtype=np.float64)
    flow.params["u"][:] = [1.5, -2.0, 0.7]
    z = rng.standard_normal((4, 3))
    _, log_det = flow.forward(z)
    for n in range(len(z)):
        h, jac = 1e-6, np.zeros((3, 3))
        for j in range(3):
            step = np.zeros(3)
            step[j] = h
            up = flow.forward((z[n] + step)[None])[0][0]
            down = flow.forward((z[n] - step)[None])[0][0]
            jac[:, j] = (up - down) / (2 * h)
        assert np.isclose(log_det[n], np.log(abs(np.linalg.det(jac))), atol=1e-8)


def test_u_hat_keeps_the_map_invertible_where_plain_u_would_not(rng):
    flow = PlanarFlow(2, rng=rng, dtype=np.float64)
    flow.params["v"][:] = [3.0, 0.0]
    flow.params["u"][:] = [-2.0, 1.0]  # v·u = -6 < -1: z + u tanh(v·z) would fold over
    u_hat = flow.u_hat()
    assert flow.params["v"] @ u_hat > -1
    assert np.isclose(flow.params["v"] @ u_hat, -1 + np.log1p(np.exp(-6.0)))
    # along v the map is then strictly increasing, so no two points meet
    line = np.stack([np.linspace(-3, 3, 2001), np.zeros(2001)], axis=1)
    out, log_det = flow.forward(line)
    assert np.all(np.diff(out[:, 0]) > 0) and np.all(np.isfinite(log_det))
    raw = line[:, 0] + flow.params["u"][0] * np.tanh(3.0 * line[:, 0])  # with u as given
    assert np.any(np.diff(raw) < 0)


def test_planar_flow_checks_its_input():
    with pytest.raises(ValueError, match="dim must be a positive whole number"):
        PlanarFlow(2.5, rng=0)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 3\)"):
        PlanarFlow(3, rng=0).forward(np.zeros((2, 4)))


def test_float32_flow_stays_float32(rng):
    flow = PlanarFlow(4, rng=0)
    z_out, log_det = flow.forward(rng.standard_normal((5, 4)).astype(np.float32))
    dz = flow.backward(np.ones_like(z_out), np.ones_like(log_det))
    assert z_out.dtype == log_det.dtype == dz.dtype == np.float32
    assert all(g.dtype == np.float32 for g in flow.grads.values())


def test_flow_density_gradients(rng):
    q = FlowDensity(2, 3, rng=1, dtype=np.float64)
    for p in q.params.values():
        p[:] = rng.standard_normal(p.shape)
    eps = rng.standard_normal((7, 2))
    r_z, r_q = rng.standard_normal((7, 2)), rng.standard_normal(7)

    def loss():
        z, log_q = q.forward(eps)
        return float((z * r_z).sum() + (log_q * r_q).sum())

    loss()
    grads = q.backward(r_z, r_q)
    errors = gradcheck(loss, q.params, grads)
    assert max(errors.values()) < TOL, errors


def test_flow_density_integrates_to_one(rng):
    # in one dimension the flow is increasing: sum q(z_F) dz_F over a fine grid of z_0
    q = FlowDensity(1, 4, rng=2, dtype=np.float64)
    for flow in q.flows:
        flow.params["u"][:] = 3 * rng.standard_normal(1)
        flow.params["v"][:] = 2 * rng.standard_normal(1)
        flow.params["b"][:] = rng.standard_normal(1)
    q.params["mu"][:], q.params["logvar"][:] = 0.5, np.log(0.3)
    eps = np.linspace(-12, 12, 200_001)[:, None]
    z, log_q = q.forward(eps)
    assert np.all(np.diff(z[:, 0]) > 0)
    mass = np.trapezoid(np.exp(log_q), z[:, 0])
    assert abs(mass - 1) < 1e-6, mass


def flow_vae(n_flows):
    model = FlowVAE(6, (5,), 3, n_flows=n_flows, rng=1, dtype=np.float64)
    for layer in range(n_flows):  # large enough that the flows bend z
        model.params[f"flow{layer}.u"][:] *= 4
        model.params[f"flow{layer}.b"][:] = 0.3
    return model


@pytest.mark.parametrize("n_flows", [0, 1, 3])
def test_flow_vae_gradients(rng, n_flows):
    model = flow_vae(n_flows)
    x = binarize(rng.random((4, 6)))
    eps = rng.standard_normal((4, 3))
    _, grads = model.loss_and_grads(x, eps=eps)
    assert grads.keys() == model.params.keys()
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors


def assert_local_gradients(model, x, mu, logvar, eps):
    """The gradients in (mu, logvar) of the ELBO of a given q_0 against finite differences."""
    _, (dmu, dlogvar) = model.local_loss_and_grads(x, mu, logvar, eps=eps)
    errors = gradcheck(
        lambda: model.local_loss_and_grads(x, mu, logvar, eps=eps)[0],
        {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar},
    )
    assert max(errors.values()) < TOL, errors


def test_flow_vae_local_gradients(rng):
    model = flow_vae(2)
    x = binarize(rng.random((4, 6)))
    mu, logvar, eps = rng.standard_normal((3, 4, 3))
    assert_local_gradients(model, x, mu, logvar, eps)


def test_flow_vae_without_flows_is_the_vae_with_a_sampled_kl(rng):
    flow, plain = flow_vae(0), VAE(6, (5,), 3, rng=1, dtype=np.float64)
    assert all(np.array_equal(flow.params[n], plain.params[n]) for n in plain.params)
    x = binarize(rng.random((4, 6)))
    eps = rng.standard_normal((4, 3))
    sampled, closed = flow.elbo(x, eps=eps), plain.elbo(x, eps=eps)
    assert np.allclose(sampled.recon, closed.recon)
    # averaged over many draws, the sampled KL is the closed form
    many = np.repeat(x[:1], 200_000, axis=0)
    kl = flow.elbo(many, rng=3).kl
    assert abs(kl.mean() - closed.kl[0]) < 4 * kl.std() / np.sqrt(len(kl))
    # and log p(x) from the same q agrees within the estimators' noise
    a = flow.log_likelihood(x, k=20_000, rng=4)
    b = plain.log_likelihood(x, k=20_000, rng=5)
    assert np.allclose(a, b, atol=0.05)


def test_flow_vae_log_likelihood_is_above_the_elbo_and_checks_k(rng):
    model = flow_vae(2)
    x = binarize(rng.random((3, 6)))
    elbo = np.mean([model.elbo(x, rng=s) for s in range(2000)], axis=0)
    assert np.all(model.log_likelihood(x, k=2000, rng=1) > elbo)
    with pytest.raises(ValueError, match="k must be a positive whole number"):
        model.log_likelihood(x, k=0, rng=0)
    with pytest.raises(ValueError, match="trains on the ELBO only"):
        model.loss_and_grads(x, rng=0, k=5)


def test_row_planar_flow_is_the_planar_flow_row_by_row(rng):
    shared, rows = PlanarFlow(3, rng=rng, dtype=np.float64), RowPlanarFlow()
    shared.params["u"][:] = 2 * rng.standard_normal(3)
    shared.params["b"][:] = 0.3
    z = rng.standard_normal((4, 3))
    rows.rows = tuple(np.tile(shared.params[n], (4, 1)) for n in "uv") + (np.full(4, 0.3),)
    out, log_det = shared.forward(z)
    out_rows, log_det_rows = rows.forward(z)
    assert np.allclose(out, out_rows) and np.allclose(log_det, log_det_rows)
    r_out, r_det = rng.standard_normal((4, 3)), rng.standard_normal(4)
    assert np.allclose(shared.backward(r_out, r_det), rows.backward(r_out, r_det))
    for name, grad in zip("uvb", rows.row_grads, strict=True):  # summed over rows: the shared
        assert np.allclose(np.atleast_1d(grad.sum(axis=0)), shared.grads[name])


def test_row_planar_flow_gradients(rng):
    flow = RowPlanarFlow()
    u, v = 2 * rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    b, z = rng.standard_normal(5), rng.standard_normal((5, 2))
    r_out, r_det = rng.standard_normal((5, 2)), rng.standard_normal(5)
    flow.rows = u, v, b

    def loss():
        z_out, log_det = flow.forward(z)
        return float((z_out * r_out).sum() + (log_det * r_det).sum())

    loss()
    dz = flow.backward(r_out, r_det)
    arrays = {"u": u, "v": v, "b": b, "z": z}
    grads = dict(zip("uvb", flow.row_grads, strict=True)) | {"z": dz}
    errors = gradcheck(loss, arrays, grads)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("n_flows", [0, 2])
def test_amortized_flow_vae_gradients(rng, n_flows):
    model = AmortizedFlowVAE(6, (5,), 3, n_flows=n_flows, rng=1, dtype=np.float64)
    model.params["enc.2.W"][:] *= 4  # flows' parameters large enough to bend z
    x = binarize(rng.random((4, 6)))
    eps = rng.standard_normal((4, 3))
    _, grads = model.loss_and_grads(x, eps=eps)
    assert grads.keys() == model.params.keys()
    assert model.params["enc.2.W"].shape[1] == 2 * 3 + n_flows * (2 * 3 + 1)
    errors = gradcheck(lambda: model.loss_and_grads(x, eps=eps)[0], model.params, grads)
    assert max(errors.values()) < TOL, errors
    mu, logvar = model.encode(x)
    assert_local_gradients(model, x, mu, logvar, eps)


def test_amortized_flow_vae_elbo_and_log_likelihood_use_each_digits_flows(rng):
    model = AmortizedFlowVAE(6, (5,), 2, n_flows=2, rng=1, dtype=np.float64)
    model.params["enc.2.W"][:] *= 4
    x = binarize(rng.random((3, 6)))
    eps = rng.standard_normal((3, 2))
    loss, _ = model.loss_and_grads(x, eps=eps)
    assert np.isclose(loss, -model.elbo(x, eps=eps).mean())
    mu, logvar = model.encode(x)  # the same q given explicitly: the same ELBO
    assert np.allclose(model.elbo(x, eps=eps), model.elbo(x, eps=eps, mu=mu, logvar=logvar))
    one = model.elbo(x[:1], eps=eps[:1])  # a digit's ELBO does not depend on its batch
    assert np.isclose(one[0], model.elbo(x, eps=eps)[0])
    elbo = np.mean([model.elbo(x, rng=s) for s in range(2000)], axis=0)
    assert np.all(model.log_likelihood(x, k=2000, rng=1) > elbo)


def test_flow_density_checks_its_size_and_noise():
    for dim in (1.5, 0):  # was a density of int(dim) dimensions
        with pytest.raises(ValueError, match="dim must be a positive whole number"):
            FlowDensity(dim, 0, rng=0)
    q = FlowDensity(3, 2, rng=0, dtype=np.float64)
    with pytest.raises(
        ValueError, match=r"eps must have shape \(S, 3\) with S >= 1, got \(5, 1\)"
    ):
        q.forward(np.zeros((5, 1)))  # was broadcast to (5, 3) with log q of one dimension
    with pytest.raises(ValueError, match=r"eps must have shape \(S, 3\)"):
        FlowDensity(3, 0, rng=0).forward(np.zeros(3))  # was an AxisError
    with pytest.raises(ValueError, match="eps contains NaN"):
        q.forward(np.full((2, 3), np.nan))


def test_planar_flow_takes_a_nested_list():
    flow = PlanarFlow(2, rng=0, dtype=np.float64)
    z = [[0.5, -1.0], [2.0, 0.1]]  # was an AttributeError: 'list' object has no attribute 'ndim'
    z_out, log_det = flow.forward(z)
    assert np.array_equal(z_out, flow.forward(np.array(z))[0]) and log_det.shape == (2,)


def test_flow_vae_takes_a_whole_float_number_of_flows():
    model = FlowVAE(6, (5,), 2, n_flows=2.0, rng=0)  # was a TypeError from range(2.0)
    assert len(model.flows) == 2 and model.config["n_flows"] == 2


@pytest.mark.parametrize("cls", [FlowVAE, AmortizedFlowVAE])
def test_a_given_q0_is_checked(rng, cls):
    model = cls(6, (5,), 2, n_flows=2, rng=0, dtype=np.float64)
    x = binarize(rng.random((4, 6)))
    mu, logvar = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    one = r"mu and logvar must have shape \(4, 2\), one row per example of x, got \(1, 2\)"
    with pytest.raises(ValueError, match=one):  # was broadcast: one q_0 for every digit
        model.log_likelihood(x, k=1, rng=0, mu=mu[:1], logvar=logvar[:1])
    with pytest.raises(ValueError, match=one):
        model.local_loss_and_grads(x, mu[:1], logvar[:1], rng=0)
    with pytest.raises(ValueError, match=r"mu must have shape \(B, 2\), got \(4, 3\)"):
        model.elbo(x, rng=0, mu=np.zeros((4, 3)), logvar=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="pass both mu and logvar"):  # was a TypeError
        model.elbo(x, rng=0, mu=mu)
    with pytest.raises(ValueError, match="pass both mu and logvar"):
        model.log_likelihood(x, k=2, rng=0, logvar=logvar)
    with pytest.raises(ValueError, match="logvar contains NaN"):  # was a NaN loss
        model.local_loss_and_grads(x, mu, np.full((4, 2), np.nan), rng=0)


def test_flow_vae_names_a_bad_k_or_beta(rng):
    model = FlowVAE(6, (5,), 2, n_flows=1, rng=0)
    x = binarize(rng.random((2, 6)))
    for k in (0, 1.5, 2, True):
        with pytest.raises(ValueError, match=f"k must be 1, got {k!r}"):
            model.loss_and_grads(x, rng=0, k=k)
    model.beta = 0.5
    with pytest.raises(ValueError, match="beta must be 1, got 0.5"):
        model.loss_and_grads(x, rng=0)

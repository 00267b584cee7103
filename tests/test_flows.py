"""Planar flows: gradients, the log-determinant against a numerical Jacobian, invertibility."""

import numpy as np
import pytest

from vaebook import gradcheck, numerical_grad
from vaebook.flows import PlanarFlow

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
    flow.params["w"][:] = [3.0, 0.0]
    flow.params["u"][:] = [-2.0, 1.0]  # w·u = -6 < -1: z + u tanh(w·z) would fold over
    u_hat = flow.u_hat()
    assert flow.params["w"] @ u_hat > -1
    assert np.isclose(flow.params["w"] @ u_hat, -1 + np.log1p(np.exp(-6.0)))
    # along w the map is then strictly increasing, so no two points meet
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

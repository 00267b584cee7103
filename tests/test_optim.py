"""Optimizers against their published updates."""

import numpy as np
import pytest

from vaebook import SGD, Adam


def test_adam_first_step_moves_by_lr_times_sign():
    params = {"w": np.array([1.0, -2.0])}
    Adam(lr=0.1).step(params, {"w": np.array([0.5, -3.0])})
    assert np.allclose(params["w"], [0.9, -1.9])  # m_hat / sqrt(v_hat) = sign(g) at t = 1


def test_adam_matches_algorithm_1_of_kingma_and_ba():
    """Three steps against Algorithm 1 of the paper, written out by hand."""
    lr, b1, b2, tiny = 0.01, 0.9, 0.999, 1e-8
    grads = [np.array([0.5, -0.2]), np.array([-0.2, 0.1]), np.array([0.3, 0.3])]
    theta, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + tiny)
    params, adam = {"w": np.array([1.0, 2.0])}, Adam(lr=lr, betas=(b1, b2), tiny=tiny)
    for g in grads:
        adam.step(params, {"w": g})
    assert np.allclose(params["w"], theta, rtol=0, atol=1e-12)
    assert np.allclose(adam.moments("w"), (m, v), rtol=1e-12, atol=0)  # its stored state
    # Worked by hand: 1 -> 0.99 -> 0.986544 -> 0.981100 (updates 0.01, 0.003456, 0.005444).
    assert params["w"][0] == pytest.approx(0.981100, abs=1e-6)


def test_adam_updates_in_place_and_keeps_float32():
    w = np.ones(3, dtype=np.float32)
    params = {"w": w}
    Adam().step(params, {"w": np.ones(3, dtype=np.float32)})
    assert params["w"] is w and w.dtype == np.float32 and (w < 1).all()


def test_adam_second_moment_stays_finite_for_huge_float32_gradients():
    """g² overflows float32 past |g| ~ 1.8e19; (1 - b2) g² is formed without that overflow."""
    params, adam = {"w": np.zeros(2, np.float32)}, Adam()
    with np.errstate(over="raise"):
        adam.step(params, {"w": np.array([1e20, -1e20], np.float32)})
    m, v = adam.moments("w")
    assert np.isfinite(v).all() and np.allclose(v, 0.001 * 1e40, rtol=1e-5)
    assert np.allclose(params["w"], [-1e-3, 1e-3])  # the first step is still lr * sign(g)


def test_sgd_with_and_without_momentum():
    params = {"w": np.array([1.0])}
    SGD(lr=0.1).step(params, {"w": np.array([2.0])})
    assert params["w"][0] == pytest.approx(0.8)
    params, opt = {"w": np.array([1.0])}, SGD(lr=0.1, momentum=0.9)
    opt.step(params, {"w": np.array([1.0])})  # v = 1
    opt.step(params, {"w": np.array([1.0])})  # v = 1.9
    assert params["w"][0] == pytest.approx(1.0 - 0.1 - 0.19)


def test_optimizers_reject_bad_settings_and_keys():
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=0)
    with pytest.raises(ValueError, match="betas"):
        Adam(betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="do not match"):
        Adam().step({"w": np.ones(1)}, {"v": np.ones(1)})

"""Every layer's backward against central differences in float64."""

import numpy as np
import pytest

from vaebook import Linear, ReLU, Sequential, Sigmoid, Tanh, gradcheck, mlp

TOL = 1e-6


def check_layer(layer, x, rng):
    """Gradient check of f = sum(forward(x) * r) in x and every parameter."""
    r = rng.standard_normal(layer.forward(x).shape)
    f = lambda: float((layer.forward(x) * r).sum())
    f()
    dx = layer.backward(r)
    errors = gradcheck(f, {"x": x, **layer.params}, {"x": dx, **layer.grads})
    assert max(errors.values()) < TOL, errors
    return errors


@pytest.mark.parametrize("d_in,d_out,batch", [(3, 4, 5), (7, 2, 1), (1, 1, 3)])
def test_linear(rng, d_in, d_out, batch):
    layer = Linear(d_in, d_out, rng=rng, dtype=np.float64)
    check_layer(layer, rng.standard_normal((batch, d_in)), rng)


@pytest.mark.parametrize("cls", [Tanh, Sigmoid])
def test_smooth_activations(rng, cls):
    check_layer(cls(), rng.standard_normal((4, 6)) * 2, rng)


def test_relu(rng):
    x = rng.standard_normal((5, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep the finite differences away from the kink
    check_layer(ReLU(), x, rng)


def test_relu_zero_gradient_on_negative_side():
    relu = ReLU()
    relu.forward(np.array([[-1.0, 2.0]]))
    assert np.array_equal(relu.backward(np.array([[3.0, 3.0]])), [[0.0, 3.0]])


def test_sequential_mlp(rng):
    net = mlp((5, 8, 8, 3), rng=rng, dtype=np.float64)
    assert isinstance(net, Sequential)
    assert set(net.params) == {"0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}
    check_layer(net, rng.standard_normal((6, 5)), rng)


def test_tanh_sigmoid_mlp(rng):
    check_layer(
        mlp((4, 6, 2), rng=rng, activation="tanh", dtype=np.float64),
        rng.standard_normal((3, 4)),
        rng,
    )
    check_layer(
        mlp((4, 6, 2), rng=rng, activation="sigmoid", dtype=np.float64),
        rng.standard_normal((3, 4)),
        rng,
    )


def test_sigmoid_saturates_without_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Sigmoid().forward(np.array([[-1e4, 0.0, 1e4]], dtype=np.float32))
    assert np.allclose(y, [[0.0, 0.5, 1.0]])


def test_float32_stays_float32(rng):
    net = mlp((5, 8, 3), rng=rng)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = net.forward(x)
    dx = net.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.grads.values())


def test_mlp_rejects_bad_arguments(rng):
    with pytest.raises(ValueError, match="activation"):
        mlp((3, 2), rng=rng, activation="swish")
    with pytest.raises(ValueError, match="widths"):
        mlp((3,), rng=rng)


def test_init_is_seeded_and_uniform_like_pytorch():
    # PyTorch's nn.Linear: W and b uniform in ±1/sqrt(d_in), whose std is bound/sqrt(3).
    layer = Linear(100, 10_000, rng=np.random.default_rng(0), dtype=np.float64)
    bound = 1 / np.sqrt(100)
    for name, p in layer.params.items():  # 10^6 and 10^4 draws
        assert 0.99 * bound < np.abs(p).max() <= bound, name
        assert p.min() < -0.99 * bound and p.max() > 0.99 * bound, name
        assert abs(p.std() / (bound / np.sqrt(3)) - 1) < 0.02, name
        assert abs(p.mean()) < 0.02 * bound, name
    again = Linear(100, 10_000, rng=np.random.default_rng(0), dtype=np.float64)
    other = Linear(100, 10_000, rng=np.random.default_rng(1), dtype=np.float64)
    for name in ("W", "b"):
        assert np.array_equal(layer.params[name], again.params[name]), name
        assert not np.array_equal(layer.params[name], other.params[name]), name

"""The training loop: determinism, records, failure, and that it actually learns."""

import numpy as np
import pytest

from vaebook import SGD, VAE, Adam, Autoencoder, fit, load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def train(digits, seed, epochs=2):
    model = VAE(64, (32,), 4, rng=np.random.default_rng(seed))
    history = fit(
        model,
        digits.x_train,
        epochs=epochs,
        batch_size=100,
        optimizer=Adam(1e-3),
        rng=np.random.default_rng(seed),
        x_val=digits.x_test,
        progress=False,
    )
    return model, history


def test_same_seed_gives_bit_identical_parameters(digits):
    a, ha = train(digits, 3)
    b, hb = train(digits, 3)
    c, _ = train(digits, 4)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert ha == hb
    assert not np.array_equal(a.params["enc.0.W"], c.params["enc.0.W"])


def test_history_records_every_epoch(digits):
    _, history = train(digits, 0, epochs=3)
    for key in ("loss", "recon", "kl", "val_loss", "val_elbo"):
        assert len(getattr(history, key)) == 3, key
    assert history.steps == 3 * 15  # 1500 training digits in batches of 100
    assert np.allclose(np.array(history.recon) + history.kl, history.loss)


def test_vae_learns_the_digits(digits):
    _, history = train(digits, 0, epochs=30)
    assert history.val_elbo[-1] > history.val_elbo[0] + 5  # nats
    assert history.loss[-1] < history.loss[0]


def test_autoencoder_learns_the_digits(digits):
    model = Autoencoder(64, (32,), 2, rng=0)
    history = fit(
        model,
        digits.x_train,
        epochs=20,
        batch_size=50,
        optimizer=Adam(3e-3),
        rng=0,
        x_val=digits.x_test,
        progress=False,
    )
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.kl == [] and history.val_elbo == []


def test_non_finite_loss_stops_with_a_clear_error(digits):
    model = VAE(64, (32,), 4, rng=0)
    with pytest.raises(FloatingPointError, match="loss became"):
        fit(
            model,
            digits.x_train,
            epochs=5,
            batch_size=100,
            optimizer=SGD(lr=1e6),
            rng=0,
            progress=False,
        )
    assert all(np.isfinite(p).all() for p in model.params.values())


def test_callback_can_stop_early(digits):
    model = VAE(64, (32,), 4, rng=0)
    seen = []
    history = fit(
        model,
        digits.x_train[:200],
        epochs=10,
        batch_size=100,
        optimizer=Adam(),
        rng=0,
        progress=False,
        callback=lambda epoch, m, h: seen.append(epoch) or epoch == 2,
    )
    assert seen == [0, 1, 2] and history.epochs == 3


def test_fit_rejects_bad_arguments(digits):
    model = VAE(64, (32,), 4, rng=0)
    with pytest.raises(ValueError, match="non-empty"):
        fit(model, np.zeros((0, 64)), epochs=1, batch_size=10, optimizer=Adam(), rng=0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, digits.x_train, epochs=1, batch_size=0, optimizer=Adam(), rng=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(
            model,
            digits.x_train * 16,
            epochs=1,
            batch_size=100,
            optimizer=Adam(),
            rng=0,
            progress=False,
        )

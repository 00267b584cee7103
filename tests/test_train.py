"""The training loop: determinism, records, failure, and that it actually learns."""

import numpy as np
import pytest

from vaebook import SGD, VAE, Adam, Autoencoder, fit, kl_normal, load_digits


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


def quick_fit(model, x, **kwargs):
    options = dict(epochs=2, batch_size=100, optimizer=Adam(1e-3), rng=7, progress=False)
    return fit(model, x, **options | kwargs)


def test_x_val_never_shifts_training(digits):
    a, b = VAE(64, (16,), 3, rng=0), VAE(64, (16,), 3, rng=0)
    quick_fit(a, digits.x_train[:300], epochs=3)
    quick_fit(b, digits.x_train[:300], epochs=3, x_val=digits.x_test[:50])
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_val_loss_weights_the_kl_by_beta(digits):
    # elbo = -(recon + kl) with the closed-form kl, so whatever noise validation draws,
    # val_loss = mean(recon + beta kl) = -val_elbo + (beta - 1) mean(kl).
    model, x_val = VAE(64, (16,), 3, rng=0), digits.x_test[:50]
    model.beta = 0.25
    kl = []
    history = quick_fit(
        model,
        digits.x_train[:300],
        optimizer=Adam(1e-2),  # enough to pull the KL away from 0 in two epochs
        x_val=x_val,
        callback=lambda epoch, m, h: kl.append(float(kl_normal(*m.encode(x_val)).mean())),
    )
    assert min(kl) > 0.5  # so that beta makes a visible difference (val_elbo is about -40)
    expected = -np.array(history.val_elbo) + (model.beta - 1) * np.array(kl)
    assert np.allclose(history.val_loss, expected, rtol=1e-5)


def record_batches(model, monkeypatch):
    """Wrap model.loss_and_grads: a list of (batch size, loss, recon, closed-form kl) per call."""
    records, loss_and_grads = [], model.loss_and_grads

    def recording(xb, **kwargs):
        kl = float(kl_normal(*model.encode(xb)).mean())  # at the parameters of this step
        loss, grads = loss_and_grads(xb, **kwargs)
        records.append((len(xb), loss, model.stats["recon"], kl))
        return loss, grads

    monkeypatch.setattr(model, "loss_and_grads", recording)
    return records


def test_history_weights_a_partial_last_batch_per_example(digits, monkeypatch):
    model = VAE(64, (16,), 3, rng=0)
    model.beta = 0.5
    records = record_batches(model, monkeypatch)
    history = quick_fit(model, digits.x_train[:250], epochs=1)  # batches of 100, 100, 50
    n, loss, recon, kl = np.array(records).T
    assert list(n) == [100, 100, 50] and history.steps == 3
    assert np.isclose(history.loss[0], (n * loss).sum() / 250, rtol=1e-12)
    assert np.isclose(history.recon[0], (n * recon).sum() / 250, rtol=1e-12)
    assert np.isclose(history.kl[0], (n * kl).sum() / 250, rtol=1e-6)
    assert not np.isclose(history.loss[0], loss.mean(), rtol=1e-6)  # the weights matter here


def test_history_kl_is_the_closed_form_kl_and_recon_the_rest(digits, monkeypatch):
    model = VAE(64, (16,), 3, rng=0)
    records = record_batches(model, monkeypatch)
    history = quick_fit(model, digits.x_train[:200], epochs=2)
    n, loss, recon, kl = np.array(records).T
    for epoch in range(2):
        steps = slice(2 * epoch, 2 * epoch + 2)
        assert np.isclose(history.kl[epoch], kl[steps].mean(), rtol=1e-6)
        assert np.isclose(history.recon[epoch], (loss - kl)[steps].mean(), rtol=1e-6)
    assert min(history.recon) > 5 * max(history.kl)  # so a swap of the two would show


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
    # restored to before the step that diverged: the model works and can be saved
    loss, _ = model.loss_and_grads(digits.x_train, rng=0)
    assert np.isfinite(loss) and loss < 100, loss


def test_divergence_restores_the_parameters_and_the_optimizer_state(digits):
    """The parameters and Adam's moments after the error are those of a run stopped before
    the step whose result gave the non-finite loss."""
    x = digits.x_train[:400]
    model, adam = VAE(64, (32,), 4, rng=0), Adam(1e-3)
    steps_seen = []

    def poisoned(batch, *, rng):  # the fourth call returns a NaN loss
        steps_seen.append(len(steps_seen))
        loss, grads = VAE.loss_and_grads(model, batch, rng=rng)
        return (np.nan if len(steps_seen) == 4 else loss), grads

    model.loss_and_grads = poisoned
    with pytest.raises(FloatingPointError, match="restored to their state after 2 steps"):
        fit(model, x, epochs=1, batch_size=100, optimizer=adam, rng=0, progress=False)
    # the same run, stopped after two steps: what the model and Adam must now hold
    reference, ref_adam = VAE(64, (32,), 4, rng=0), Adam(1e-3)
    calls = []

    def counted(batch, *, rng):
        calls.append(1)
        return VAE.loss_and_grads(reference, batch, rng=rng)

    reference.loss_and_grads = counted

    class Stop(Exception):
        pass

    def stop_after_two(*args, _step=ref_adam.step):
        if len(calls) == 3:
            raise Stop
        _step(*args)

    ref_adam.step = stop_after_two
    with pytest.raises(Stop):
        fit(reference, x, epochs=1, batch_size=100, optimizer=ref_adam, rng=0, progress=False)
    for name, p in model.params.items():
        assert np.array_equal(p, reference.params[name]), name
        assert np.array_equal(adam.v[name], ref_adam.v[name]), name
        assert np.array_equal(adam.m_sum[name], ref_adam.m_sum[name]), name
    assert adam.t == ref_adam.t == 2


def test_a_non_finite_gradient_stops_before_the_step(digits):
    model = VAE(64, (32,), 4, rng=0)
    before = {k: p.copy() for k, p in model.params.items()}

    def infinite_grads(batch, *, rng):
        loss, grads = VAE.loss_and_grads(model, batch, rng=rng)
        grads["dec.0.W"][0, 0] = np.inf
        return loss, grads

    model.loss_and_grads = infinite_grads
    with pytest.raises(FloatingPointError, match="gradient of dec.0.W"):
        fit(model, digits.x_train, epochs=1, batch_size=100, optimizer=Adam(), rng=0)
    assert all(np.array_equal(p, before[k]) for k, p in model.params.items())


@pytest.mark.parametrize(
    "bad, match",
    [(np.nan, "x_val contains NaN"), (1.5, r"x_val must lie in \[0, 1\]")],
)
def test_x_val_contents_are_checked_before_training(digits, bad, match):
    model = VAE(64, (32,), 4, rng=0)
    before = {k: p.copy() for k, p in model.params.items()}
    x_val = digits.x_test.copy()
    x_val[3, 7] = bad
    with pytest.raises(ValueError, match=match):
        quick_fit(model, digits.x_train, x_val=x_val)
    assert all(np.array_equal(p, before[k]) for k, p in model.params.items())


@pytest.mark.parametrize("epochs, batch_size", [(2.5, 100), (1, 99.5), (1, True)])
def test_fit_wants_whole_numbers(digits, epochs, batch_size):
    model = VAE(64, (32,), 4, rng=0)
    with pytest.raises(ValueError, match="whole numbers"):
        fit(model, digits.x_train, epochs=epochs, batch_size=batch_size, optimizer=Adam(), rng=0)


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
    before = {k: p.copy() for k, p in model.params.items()}
    with pytest.raises(ValueError, match=r"x_val must be a non-empty \(M, 64\) array"):
        quick_fit(model, digits.x_train, x_val=digits.x_test[:, :63])
    assert all(np.array_equal(p, before[k]) for k, p in model.params.items())  # before training
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

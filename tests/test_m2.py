"""M2 (Kingma et al. 2014): each term's gradients and the total's, the unlabelled bound against
a direct sum over the classes, the classifier, and the input checks."""

import numpy as np
import pytest

from vaebook import M2, Classifier, binarize, gradcheck

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def small_m2(rng, likelihood="bernoulli"):
    return M2(5, 3, (6,), 2, rng=rng, likelihood=likelihood, dtype=np.float64)


def batch(rng):
    x_l, x_u = binarize(rng.random((4, 5))), binarize(rng.random((3, 5)))
    y_l = np.eye(3)[rng.integers(0, 3, 4)]
    eps = rng.standard_normal((4, 2)), rng.standard_normal((3, 3, 2))  # (B_l, K), (Y, B_u, K)
    return x_l, y_l, x_u, eps


def check(model, loss_and_grads):
    loss, grads = loss_and_grads()
    assert grads.keys() == model.params.keys()
    errors = gradcheck(lambda: loss_and_grads()[0], model.params, grads)
    assert max(errors.values()) < TOL, errors
    return grads


def test_labelled_term_gradients(rng):
    model = small_m2(rng)
    x_l, y_l, _, (eps_l, _) = batch(rng)
    grads = check(model, lambda: model.labelled_loss_and_grads(x_l, y_l, eps=eps_l))
    assert all(not g.any() for k, g in grads.items() if k.startswith("cls."))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_unlabelled_term_gradients(rng, likelihood):
    model = small_m2(rng, likelihood)
    _, _, x_u, (_, eps_u) = batch(rng)
    grads = check(model, lambda: model.unlabelled_loss_and_grads(x_u, eps=eps_u))
    assert any(g.any() for k, g in grads.items() if k.startswith("cls."))


def test_classification_term_gradients(rng):
    model = small_m2(rng)
    x_l, y_l, _, _ = batch(rng)
    grads = check(model, lambda: model.classification_loss_and_grads(x_l, y_l))
    assert all(not g.any() for k, g in grads.items() if not k.startswith("cls."))


def test_total_gradients_and_sum_of_terms(rng):
    model = small_m2(rng)
    x_l, y_l, x_u, eps = batch(rng)
    check(model, lambda: model.loss_and_grads(x_l, y_l, x_u, eta=2.5, eps=eps))
    total, _ = model.loss_and_grads(x_l, y_l, x_u, eta=2.5, eps=eps)
    parts = (
        model.labelled_loss_and_grads(x_l, y_l, eps=eps[0])[0]
        + model.unlabelled_loss_and_grads(x_u, eps=eps[1])[0]
        + 2.5 * model.classification_loss_and_grads(x_l, y_l)[0]
    )
    assert np.isclose(total, parts)


def test_unlabelled_bound_is_the_explicit_sum_over_classes(rng):
    """U(x) = sum_y q(y|x) (ELBO(x, y) + log p(y)) + H[q(y|x)], computed class by class."""
    model = small_m2(rng)
    _, _, x_u, (_, eps_u) = batch(rng)
    q = model.predict_proba(x_u)  # (B, Y)
    direct = np.zeros(len(x_u))
    for c in range(3):
        y = np.eye(3)[[c] * len(x_u)]
        elbo = model.cvae.elbo(x_u, y, eps=eps_u[c]) + np.log(1 / 3)
        direct += q[:, c] * (elbo - np.log(q[:, c]))
    assert np.allclose(model.unlabelled_bound(x_u, eps=eps_u), direct)
    assert np.allclose(q.sum(axis=1), 1)


def test_labelled_elbo_adds_the_label_prior(rng):
    model = small_m2(rng)
    x_l, y_l, _, (eps_l, _) = batch(rng)
    direct = model.cvae.elbo(x_l, y_l, eps=eps_l) - np.log(3)
    assert np.allclose(model.labelled_elbo(x_l, y_l, eps=eps_l), direct)


def test_float32_training_step_stays_float32(rng):
    model = M2(5, 3, (6,), 2, rng=rng)
    x_l, y_l, x_u, _ = batch(rng)
    loss, grads = model.loss_and_grads(x_l, y_l, x_u, eta=np.float64(1.0), rng=1)
    assert np.isfinite(loss) and all(g.dtype == np.float32 for g in grads.values())


def test_classifier_weight_decay_gradients(rng):
    clf = Classifier(5, (6,), 3, rng=rng, dtype=np.float64)
    x, y = rng.random((4, 5)), np.eye(3)[[0, 1, 2, 0]]
    loss, grads = clf.loss_and_grads(x, y, weight_decay=0.3)
    errors = gradcheck(lambda: clf.loss_and_grads(x, y, weight_decay=0.3)[0], clf.params, grads)
    assert max(errors.values()) < TOL, errors
    assert np.allclose(clf.predict_proba(x).sum(axis=1), 1)


@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros((4, 3)), "one-hot"),
        (np.full((4, 3), 1 / 3), "one-hot"),
        (np.eye(4), r"shape \(4, 3\)"),
        (np.array([0, 1, 2, 0]), r"shape \(4, 3\)"),
    ],
)
def test_bad_labels_are_a_clear_error(rng, y, match):
    model = small_m2(rng)
    x_l, _, x_u, _ = batch(rng)
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(x_l, y, x_u, eta=1.0, rng=0)


def test_bad_inputs_are_a_clear_error(rng):
    model = small_m2(rng)
    x_l, y_l, x_u, (eps_l, eps_u) = batch(rng)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\)"):
        model.loss_and_grads(x_l, y_l, x_u[:, :4], eta=1.0, rng=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss_and_grads(x_l, y_l, x_u + 2, eta=1.0, rng=0)
    with pytest.raises(ValueError, match="eta must be a non-negative number"):
        model.loss_and_grads(x_l, y_l, x_u, eta=-1.0, rng=0)
    with pytest.raises(ValueError, match=r"eps must have shape \(3, 3, 2\)"):
        model.loss_and_grads(x_l, y_l, x_u, eta=1.0, eps=(eps_l, eps_u[0]))
    with pytest.raises(ValueError, match="pass eps or rng"):
        model.loss_and_grads(x_l, y_l, x_u, eta=1.0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((5, (4,), 1.5), "y_dim must be a positive whole number, got 1.5"),  # was 1 class
        ((5.5, (4,), 3), "x_dim must be a positive whole number, got 5.5"),  # was 5 inputs
        ((5, (0,), 3), r"hidden\[0\] must be a positive whole number"),
    ],
)
def test_classifier_sizes_must_be_whole_numbers(args, match):
    with pytest.raises(ValueError, match=match):
        Classifier(*args, rng=0)


def test_classifier_checks_its_inputs(rng):
    model = Classifier(5, (4,), 3, rng=0, dtype=np.float64)
    x = rng.random((3, 5))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\), got \(3, 4\)"):
        model.predict_proba(x[:, :4])  # was a matmul error
    with pytest.raises(ValueError, match="x contains NaN"):
        model.log_proba(np.full((3, 5), np.nan))  # was NaN probabilities
    # integer labels where one-hot rows are due: with B = Y they broadcast to a wrong loss
    with pytest.raises(ValueError, match=r"y must have shape \(3, 3\) \(one-hot labels\)"):
        model.loss_and_grads(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y must have shape \(3, 3\)"):
        model.loss_and_grads(x, np.eye(4)[:3])  # was a broadcasting error
    for bad in (np.nan, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="weight_decay must be a non-negative number"):
            model.loss_and_grads(x, np.eye(3), weight_decay=bad)


def test_m2_checks_noise_and_eta(rng):
    model = small_m2(rng)
    x_l, y_l, x_u, (eps_l, eps_u) = batch(rng)
    with pytest.raises(ValueError, match="eps contains NaN"):  # was a NaN loss
        model.labelled_loss_and_grads(x_l, y_l, eps=np.full_like(eps_l, np.nan))
    with pytest.raises(ValueError, match="eps contains NaN"):
        model.unlabelled_bound(x_u, eps=np.where(eps_u > 0, np.inf, eps_u))
    with pytest.raises(ValueError, match="eps must hold real numbers"):
        model.labelled_elbo(x_l, y_l, eps=np.full(eps_l.shape, "a"))
    with pytest.raises(ValueError, match="eps must be None or a pair"):  # was unpacked by rows
        model.loss_and_grads(x_l, y_l, x_u, eta=1.0, eps=np.zeros((2, 4, 2)))
    for bad in ("1", True, np.inf, None):  # "1" was a TypeError from isfinite, True taken as 1
        with pytest.raises(ValueError, match="eta must be a non-negative number"):
            model.loss_and_grads(x_l, y_l, x_u, eta=bad, eps=(eps_l, eps_u))

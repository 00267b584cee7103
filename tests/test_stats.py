import numpy as np
import pytest

from vaebook.stats import assert_greater, mean_se


def test_mean_se_matches_its_definition():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    mean, se = mean_se(x)
    assert mean == pytest.approx(3.5)
    assert se == pytest.approx(np.sqrt(((x - 3.5) ** 2).sum() / 3) / 2)


def test_mean_se_refuses_one_value_and_nan():
    with pytest.raises(ValueError, match="at least 2"):
        mean_se([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        mean_se([1.0, np.nan])


def test_assert_greater_passes_a_clear_effect_and_fails_noise():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(5)
    diff, se = assert_greater(noise + 10.0, noise, what="shifted")  # paired: exact shift
    assert diff == pytest.approx(10.0) and se == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(AssertionError, match="not above 3 standard errors"):
        assert_greater(rng.standard_normal(5), rng.standard_normal(5))  # noise against noise
    with pytest.raises(AssertionError):
        assert_greater(noise, noise + 1.0)  # the negation of the claim


def test_assert_greater_unpaired_uses_both_standard_errors():
    a, b = np.array([10.0, 12.0]), np.array([0.0, 2.0])
    diff, se = assert_greater(a, b, paired=False)
    assert diff == pytest.approx(10.0) and se == pytest.approx(np.sqrt(2.0))
    with pytest.raises(AssertionError):
        assert_greater(a, b, paired=False, n_se=10.0)
    with pytest.raises(ValueError, match="equal shapes"):
        assert_greater(a, np.zeros(3))

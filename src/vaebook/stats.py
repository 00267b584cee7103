"""Small-experiment statistics the chapters share: means with standard errors, and claims
tested against their negation with a margin (see the intro's "Experiments as evidence")."""

import numpy as np


def mean_se(values, axis=0):
    """Mean and standard error of the mean along `axis`: (mean, std(ddof=1) / sqrt(n)).

    values: (n, ...) with n >= 2 runs (seeds, or independent draws) along `axis`.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if n < 2:
        raise ValueError(f"mean_se needs at least 2 values along axis {axis}, got {n}")
    if not np.all(np.isfinite(values)):
        raise ValueError("mean_se got non-finite values")
    return values.mean(axis=axis), values.std(axis=axis, ddof=1) / np.sqrt(n)


def assert_greater(a, b=0.0, *, n_se=3.0, paired=True, what="a > b"):
    """Assert mean(a) > mean(b) by more than `n_se` standard errors of the difference.

    paired=True: a[i] and b[i] come from the same seed, so the test is on a - b.
    paired=False: independent samples; the standard error is sqrt(se_a² + se_b²).
    b may be a number (a fixed reference). Returns (difference of means, its standard error).
    """
    a = np.asarray(a, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if b_arr.ndim == 0 or not paired:
        mean_a, se_a = mean_se(a)
        mean_b, se_b = (float(b_arr), 0.0) if b_arr.ndim == 0 else mean_se(b_arr)
        diff, se = mean_a - mean_b, float(np.hypot(se_a, se_b))
    else:
        if a.shape != b_arr.shape:
            raise ValueError(f"paired values need equal shapes, got {a.shape} and {b_arr.shape}")
        diff, se = mean_se(a - b_arr)
    diff, se = float(diff), float(se)
    if not diff > n_se * se:
        raise AssertionError(
            f"{what}: the difference {diff:.4g} is not above {n_se:g} standard errors ({se:.3g})"
        )
    return diff, se

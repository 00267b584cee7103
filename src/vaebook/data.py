"""Data sets as float arrays in [0, 1], one row per image."""

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """A fixed train/test split: x (N, D) in [0, 1], y (N,) integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(*, test_size=297, dtype=np.float32):
    """scikit-learn's bundled 1797 8x8 digits, pixels scaled from 0..16 to [0, 1].

    The split is fixed (a permutation with seed 0), so every chapter sees the same test digits:
    1500 for training and 297 held out by default. x: (N, 64).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    if not 0 < test_size < len(digits.target):
        raise ValueError(
            f"test_size must be between 1 and {len(digits.target) - 1}, got {test_size}"
        )
    x = (digits.data / 16.0).astype(dtype)  # (1797, 64)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[test_size:], order[:test_size]
    return Split(x[train], y[train], x[test], y[test])


def binarize(x, *, rng=None, threshold=0.5):
    """0/1 pixels: Bernoulli draws with probability x when rng is given, else x > threshold."""
    x = np.asarray(x)
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
        raise ValueError("binarize needs values in [0, 1] without NaN")
    if rng is None:
        return (x > threshold).astype(x.dtype)
    return (np.random.default_rng(rng).random(x.shape) < x).astype(x.dtype)

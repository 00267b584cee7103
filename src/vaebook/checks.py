"""Argument checks the package shares: whole numbers and float dtypes, with clear errors."""

import numpy as np


def whole_number(value):
    """True for an int or an integral float/NumPy number (3, 3.0, np.int64(3)); not for bools."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return False
    return bool(np.isfinite(value)) and float(value) == int(value)


def float_dtype(dtype):
    """np.float32 or np.float64 as a dtype, or a ValueError naming what was given."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from err
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype

"""Helpers for the book's pages: numbers glued into the prose."""

import numpy as np


def glue_number(name, value):
    """Glue `value` for the prose (`{glue:text}`name:.2f``) without displaying it.

    A NumPy scalar (or 0-d array) is glued as the Python number it holds: myst-nb stores a
    glued value's repr, and NumPy 2's repr ("np.float64(0.5)") is text `:.2f` cannot format.
    """
    from myst_nb import glue  # the book's build tool, needed only on the pages

    if isinstance(value, np.generic | np.ndarray) and np.ndim(value) == 0:
        value = value.item()
    glue(name, value, display=False)


def glue_numbers(**values):
    """`glue_number` for each name=value."""
    for name, value in values.items():
        glue_number(name, value)

"""Helpers for the book's pages: numbers glued into the prose."""

import numpy as np

# myst-nb reads a glued value from a display output whose MIME types carry this prefix and whose
# metadata names it ("scrapbook"), as `myst_nb.glue(name, value, display=False)` writes it. The
# output is written here directly: importing myst_nb costs a second or two in every chapter's
# kernel. tests/test_pages.py checks that both write the same output.
GLUE_PREFIX = "application/papermill.record/"


def glue_number(name, value):
    """Glue `value` for the prose (`{glue:text}`name:.2f``) without displaying it.

    A NumPy scalar (or 0-d array) is glued as the Python number it holds: myst-nb stores a
    glued value's repr, and NumPy 2's repr ("np.float64(0.5)") is text `:.2f` cannot format.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    if isinstance(value, np.generic | np.ndarray) and np.ndim(value) == 0:
        value = value.item()
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display(
        {GLUE_PREFIX + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata
    )


def glue_numbers(**values):
    """`glue_number` for each name=value."""
    for name, value in values.items():
        glue_number(name, value)

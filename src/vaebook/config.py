"""Run-size switches shared by every notebook.

`VAEBOOK_FAST=1` in the environment shrinks every training loop so the test suite stays fast;
the book build runs the full sizes. Jupyter kernels inherit the environment of the process
that starts them, so setting it for `pytest --nbval` reaches every notebook.
"""

import os


def is_fast() -> bool:
    """True when the environment asks for small runs (`VAEBOOK_FAST=1`)."""
    return os.environ.get("VAEBOOK_FAST", "0").strip().lower() in {"1", "true", "yes"}


def steps(n: int, fast: int = 10) -> int:
    """`n` normally, `fast` when `VAEBOOK_FAST=1`. Use it for every epoch or iteration count."""
    if n < 0 or fast < 0:
        raise ValueError(f"steps needs non-negative counts, got n={n}, fast={fast}")
    return fast if is_fast() else n


# The one-image experiments of chapters 05-07 (the original project's setting: a batch of one
# "5", full batch, Adam): one setting, so that their numbers can be compared across chapters.
ONE_IMAGE = {"hidden": (128,), "z_dim": 2, "lr": 1e-2, "snapshots": (5, 10)}

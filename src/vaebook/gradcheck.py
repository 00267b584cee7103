"""Finite-difference gradient checking: the test every backward pass in this book passes.

Derived in notebooks/04_building_blocks.ipynb.
"""

import numpy as np


def numerical_grad(f, p, h=1e-5):
    """Central differences (f(p + h e_i) - f(p - h e_i)) / 2h for every entry i of array p.

    `f()` reads p (which is perturbed in place and restored). Use float64. p may be a view
    (a slice of a larger array): each entry is perturbed where it lives, never in a copy.
    """
    grad = np.zeros(p.shape, dtype=np.float64)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + h
        f_plus = f()
        p[i] = old - h
        f_minus = f()
        p[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a, b, tiny=1e-30):
    """||a - b|| / (||a|| + ||b||): 0 for equal arrays, 1 for opposite ones."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), tiny))


def gradcheck(f, params, grads, *, h=1e-5):
    """Relative error between analytic `grads` and central differences of the scalar `f()`.

    params: name -> array that f reads (float64, perturbed in place and restored);
    grads: name -> analytic gradient of f. Returns name -> relative error; below ~1e-6 the
    backward pass is right, a wrong chain rule shows up as errors of 1e-2 and more.
    """
    if params.keys() != grads.keys():
        raise ValueError(f"grads keys {sorted(grads)} do not match params keys {sorted(params)}")
    for name, p in params.items():
        if p.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 parameters; {name} is {p.dtype}")
        if np.shape(grads[name]) != p.shape:
            raise ValueError(
                f"grad of {name} has shape {np.shape(grads[name])}, expected {p.shape}"
            )
    grads = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}  # f() may overwrite them
    return {name: rel_error(grads[name], numerical_grad(f, p, h)) for name, p in params.items()}

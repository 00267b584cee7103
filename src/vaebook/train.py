"""The training loop: minibatches, an optimizer step per batch, a record per epoch."""

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .checks import whole_number


@dataclass
class History:
    """Per-epoch means over the training batches, and the held-out numbers when x_val is given.

    loss: the training objective; recon, kl: its two parts (VAE); val_loss: the objective on
    x_val; val_elbo: mean held-out ELBO in nats (VAE). Lists have one entry per epoch.
    """

    loss: list = field(default_factory=list)
    recon: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_elbo: list = field(default_factory=list)
    steps: int = 0

    @property
    def epochs(self):
        return len(self.loss)


def fit(model, x, *, epochs, batch_size, optimizer, rng, x_val=None, progress=True, callback=None):
    """Train `model` on x (N, D) for `epochs` passes, reshuffled each epoch with `rng`.

    Each batch: `loss, grads = model.loss_and_grads(xb, rng=rng)`, then `optimizer.step`.
    `callback(epoch, model, history)` runs after every epoch; returning True stops early.
    Raises FloatingPointError if the loss or a gradient is not finite; the parameters and the
    optimizer's state are then those before the step that led there, so the model still works.
    """
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
    if not (whole_number(epochs) and epochs >= 0 and whole_number(batch_size) and batch_size >= 1):
        raise ValueError(
            f"need whole numbers epochs >= 0 and batch_size >= 1, got {epochs!r}, {batch_size!r}"
        )
    if x_val is not None:  # checked now, not after the first epoch of training
        x_val = np.asarray(x_val)
        if x_val.ndim != 2 or len(x_val) == 0 or x_val.shape[1] != x.shape[1]:
            raise ValueError(
                f"x_val must be a non-empty (M, {x.shape[1]}) array like x, got shape "
                f"{x_val.shape}"
            )
        x_val = model._check(x_val, model.x_dim, "x_val", targets=True)  # NaN, range, dtype
    x = model._check(x, model.x_dim, "x", targets=True)
    rng = np.random.default_rng(rng)
    val_rng = np.random.default_rng(
        rng.integers(2**63)
    )  # its own stream: x_val never shifts training
    history = History()
    last_good = _Snapshot(model, optimizer)
    bar = tqdm(range(int(epochs)), disable=not progress, desc="epochs", unit="epoch")
    for epoch in bar:
        order = rng.permutation(len(x))
        sums = {}
        for start in range(0, len(x), int(batch_size)):
            batch = x[order[start : start + int(batch_size)]]
            with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below
                loss, grads = model.loss_and_grads(batch, rng=rng)
            bad = "loss" if not np.isfinite(loss) else _non_finite(grads)
            if bad is not None:
                # The parameters that gave this loss came from the last step, whose gradient was
                # already too large: go back to before it, optimizer state included.
                last_good.restore()
                raise FloatingPointError(
                    f"the {bad} became non-finite (loss {loss}) at epoch {epoch}, step "
                    f"{history.steps}; the model and the optimizer are restored to their state "
                    f"after {max(history.steps - 1, 0)} steps. Try a smaller learning rate, or "
                    "check the data"
                )
            last_good.take()
            optimizer.step(model.params, grads)
            history.steps += 1
            for key, value in {"loss": loss, **model.stats}.items():
                sums[key] = sums.get(key, 0.0) + value * len(batch)
        for key, total in sums.items():
            getattr(history, key).append(total / len(x))
        if x_val is not None:
            _validate(model, x_val, val_rng, history)
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
        if callback is not None and callback(epoch, model, history):
            break
    return history


def _validate(model, x_val, rng, history):
    if hasattr(model, "elbo"):
        elbo = model.elbo(x_val, rng=rng)
        history.val_elbo.append(float(elbo.mean()))
        history.val_loss.append(float((elbo.recon + model.beta * elbo.kl).mean()))
    else:
        history.val_loss.append(float(model.recon_loss(x_val).mean()))


def _non_finite(grads):
    """The name of the first gradient with NaN or infinite entries, or None."""
    for name, g in grads.items():
        if not np.isfinite(g).all():
            return f"gradient of {name}"
    return None


class _Snapshot:
    """A copy of the parameters and the optimizer's state, taken before each step.

    The arrays are copied into buffers allocated once, so a step allocates nothing new.
    The optimizer's state is every dict of arrays and every number among its attributes, but
    for those it names in `scratch` (work space that no step reads before writing).
    """

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = {k: np.empty_like(p) for k, p in model.params.items()}
        self.state, self.taken = {}, False

    def take(self):
        for name, p in self.model.params.items():
            np.copyto(self.params[name], p)
        scratch = getattr(self.optimizer, "scratch", ())
        for attr, value in vars(self.optimizer).items():
            if attr in scratch:
                continue
            if isinstance(value, dict) and all(isinstance(a, np.ndarray) for a in value.values()):
                kept = self.state.get(attr)
                if not isinstance(kept, dict) or kept.keys() != value.keys():
                    kept = {k: np.empty_like(a) for k, a in value.items()}
                for k, a in value.items():
                    np.copyto(kept[k], a)
                self.state[attr] = kept
            elif isinstance(value, int | float) and not isinstance(value, bool):
                self.state[attr] = value
        self.taken = True

    def restore(self):
        if not self.taken:  # the very first step failed: nothing has changed yet
            return
        for name, p in self.model.params.items():
            np.copyto(p, self.params[name])
        for attr, kept in self.state.items():
            if isinstance(kept, dict):
                current = getattr(self.optimizer, attr)
                for k in list(current):
                    if k not in kept:
                        del current[k]
                for k, a in kept.items():
                    if k in current and current[k].shape == a.shape:
                        np.copyto(current[k], a)
                    else:
                        current[k] = a.copy()
            else:
                setattr(self.optimizer, attr, kept)

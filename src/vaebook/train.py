"""The training loop: minibatches, an optimizer step per batch, a record per epoch."""

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm


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
    Raises FloatingPointError (parameters as after the last good step) if the loss is not finite.
    """
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
    if int(epochs) < 0 or int(batch_size) < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if x_val is not None:  # checked now, not after the first epoch of training
        x_val = np.asarray(x_val)
        if x_val.ndim != 2 or len(x_val) == 0 or x_val.shape[1] != x.shape[1]:
            raise ValueError(
                f"x_val must be a non-empty (M, {x.shape[1]}) array like x, got shape "
                f"{x_val.shape}"
            )
    rng = np.random.default_rng(rng)
    val_rng = np.random.default_rng(
        rng.integers(2**63)
    )  # its own stream: x_val never shifts training
    history = History()
    bar = tqdm(range(int(epochs)), disable=not progress, desc="epochs", unit="epoch")
    for epoch in bar:
        order = rng.permutation(len(x))
        sums = {}
        for start in range(0, len(x), int(batch_size)):
            batch = x[order[start : start + int(batch_size)]]
            with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below
                loss, grads = model.loss_and_grads(batch, rng=rng)
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss} at epoch {epoch}, step {history.steps}: "
                    "try a smaller learning rate, or check the data"
                )
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

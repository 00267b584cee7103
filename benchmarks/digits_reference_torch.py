"""The digits VAE of notebooks/06_vae.ipynb trained in PyTorch: the reference for its ELBO.

Same architecture (64-H-2K encoder with ReLU, mirrored K-H-64 decoder with Bernoulli logits,
PyTorch's default `nn.Linear` initialisation, which `vaebook.Linear` copies), same data split
(`vaebook.load_digits`), same objective (Bernoulli cross-entropy summed over pixels plus the
closed-form KL, averaged over the batch, one reparameterized sample), same optimizer (Adam, same
learning rate), batch size and number of epochs.

Each trained model is evaluated as the chapter evaluates it: S draws z ~ q(z|x) per test digit
(default 100), the ELBO averaged over the draws and the test set. One line per seed gives that
value and the standard error of its evaluation (over the S draws); the last line gives the mean
over the seeds and its standard error (seed-to-seed spread, evaluation noise included), which is
what the chapter's tolerance is built from. The chapter stores the per-seed values.

    python benchmarks/digits_reference_torch.py [--seeds 0 1 2 3 4] [--epochs 100] [--draws 100]
                                                [--init-scale 1.0]

`--init-scale` multiplies every initial weight matrix (not the biases) by a factor, the flaw the
chapter plants in its NumPy model to show that the comparison catches it.

Needs `pip install torch==2.13.0` (not in requirements.txt).
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

from vaebook import load_digits

HIDDEN, Z_DIM, BATCH_SIZE, LR, EPOCHS, DRAWS = 128, 8, 64, 2e-3, 100, 100


def make_vae(x_dim, hidden, z_dim):
    encoder = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))
    decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, x_dim))
    return encoder, decoder


def elbo_parts(encoder, decoder, x):
    """Per-example (recon, kl): -log p(x|z) at one z = mu + std * eps, and KL(q || N(0, I))."""
    mu, logvar = encoder(x).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = decoder(z)
    recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    return recon, kl


def heldout_elbo(encoder, decoder, x_test, draws):
    """(mean ELBO over `draws` draws per test digit and the test set, its standard error)."""
    with torch.no_grad():
        recon, kl = elbo_parts(encoder, decoder, x_test.repeat(draws, 1))  # (S * N,)
    per_draw = (-(recon + kl)).reshape(draws, len(x_test)).mean(1).double().numpy()  # (S,)
    return float(per_draw.mean()), float(per_draw.std(ddof=1) / np.sqrt(draws))


def train_one(seed, x_train, epochs, init_scale):
    """Encoder and decoder after training with `seed`."""
    torch.manual_seed(seed)
    encoder, decoder = make_vae(x_train.shape[1], HIDDEN, Z_DIM)
    params = [*encoder.parameters(), *decoder.parameters()]
    with torch.no_grad():
        for p in params:
            if p.ndim == 2:
                p.mul_(init_scale)
    optimizer = torch.optim.Adam(params, lr=LR)
    for _ in range(epochs):
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), BATCH_SIZE):
            recon, kl = elbo_parts(encoder, decoder, x_train[order[start : start + BATCH_SIZE]])
            loss = (recon + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return encoder, decoder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--draws", type=int, default=DRAWS, help="draws of z per test digit")
    parser.add_argument("--init-scale", type=float, default=1.0)
    args = parser.parse_args()
    if len(args.seeds) < 2 or args.draws < 2:
        parser.error("standard errors need at least 2 seeds and 2 draws")
    torch.set_num_threads(1)  # the matrices are tiny: one thread is the fastest
    data = load_digits()
    x_train, x_test = torch.from_numpy(data.x_train), torch.from_numpy(data.x_test)
    print(
        f"PyTorch {torch.__version__}, NumPy {np.__version__}: 64-{HIDDEN}-{2 * Z_DIM} encoder, "
        f"{Z_DIM}-{HIDDEN}-64 decoder, Adam lr={LR}, batch {BATCH_SIZE}, {args.epochs} epochs, "
        f"initial weights x {args.init_scale:g}; held-out ELBO from {args.draws} draws per digit"
    )
    elbos = []
    for seed in args.seeds:
        start = time.perf_counter()
        encoder, decoder = train_one(seed, x_train, args.epochs, args.init_scale)
        torch.manual_seed(10_000 + seed)  # the evaluation's own noise
        elbo, eval_se = heldout_elbo(encoder, decoder, x_test, args.draws)
        elbos.append(elbo)
        seconds = time.perf_counter() - start
        print(f"seed {seed}: held-out ELBO {elbo:.4f} ± {eval_se:.4f} nats ({seconds:.1f} s)")
    elbos = np.array(elbos)
    se = elbos.std(ddof=1) / np.sqrt(len(elbos))
    print(f"mean over seeds {args.seeds}: {elbos.mean():.4f} ± {se:.4f} nats (standard error)")
    print("per seed:", ", ".join(f"{e:.4f}" for e in elbos))


if __name__ == "__main__":
    main()

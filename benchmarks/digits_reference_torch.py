"""The digits VAE of notebooks/06_vae.ipynb trained in PyTorch: the reference for its ELBO.

Same architecture (64-H-2K encoder with ReLU, mirrored K-H-64 decoder with Bernoulli logits,
PyTorch's default `nn.Linear` initialisation, which `vaebook.Linear` copies), same data split
(`vaebook.load_digits`), same objective (Bernoulli NLL summed over pixels plus the closed-form
KL, averaged over the batch, one reparameterized sample), same optimizer (Adam, same learning
rate), batch size and number of epochs. The held-out ELBO is evaluated as in the chapter: one
sample z ~ q(z|x) per test digit, the mean over the test set, then the mean over the seeds.

    python benchmarks/digits_reference_torch.py [--seeds 0 1 2 3 4] [--epochs 100]

Needs `pip install torch==2.13.0` (not in requirements.txt). Prints one line per seed and the
mean, which the chapter stores as its reference constant.
"""

import argparse
import time

import torch
from torch import nn

from vaebook import load_digits

HIDDEN, Z_DIM, BATCH_SIZE, LR, EPOCHS = 128, 8, 64, 2e-3, 100


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


def train_one(seed, x_train, x_test, epochs):
    """Held-out ELBO (mean over the test set, one sample each) after training with `seed`."""
    torch.manual_seed(seed)
    encoder, decoder = make_vae(x_train.shape[1], HIDDEN, Z_DIM)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=LR)
    for _ in range(epochs):
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), BATCH_SIZE):
            recon, kl = elbo_parts(encoder, decoder, x_train[order[start : start + BATCH_SIZE]])
            loss = (recon + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        recon, kl = elbo_parts(encoder, decoder, x_test)
    return float(-(recon + kl).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the matrices are tiny: one thread is the fastest
    data = load_digits()
    x_train, x_test = torch.from_numpy(data.x_train), torch.from_numpy(data.x_test)
    print(
        f"PyTorch {torch.__version__}: 64-{HIDDEN}-{2 * Z_DIM} encoder, {Z_DIM}-{HIDDEN}-64 "
        f"decoder, Adam lr={LR}, batch {BATCH_SIZE}, {args.epochs} epochs"
    )
    elbos = []
    for seed in args.seeds:
        start = time.perf_counter()
        elbos.append(train_one(seed, x_train, x_test, args.epochs))
        seconds = time.perf_counter() - start
        print(f"seed {seed}: held-out ELBO {elbos[-1]:.3f} nats ({seconds:.1f} s)")
    mean = sum(elbos) / len(elbos)
    std = (sum((e - mean) ** 2 for e in elbos) / max(len(elbos) - 1, 1)) ** 0.5
    print(f"mean over seeds {args.seeds}: {mean:.3f} nats (std {std:.3f})")


if __name__ == "__main__":
    main()

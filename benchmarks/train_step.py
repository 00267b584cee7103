"""Steps per second of one float32 VAE training step (784-400-20, batch 128, Adam).

Measures vaebook's `loss_and_grads` + `Adam.step` and, when PyTorch is installed, the same
step in PyTorch CPU eager in the same run, at one thread and at the default thread count.
Prints the BLAS library and kernel numpy used (threadpoolctl). Not a test: the machines are
shared, so only ratios from one run mean anything.

    python benchmarks/train_step.py [--seconds 3]
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from vaebook import VAE, Adam

D, H, K, B = 784, 400, 20, 128


def time_steps(step, seconds):
    """Steps per second of `step()`, after a warm-up, best of three windows of `seconds / 3`."""
    for _ in range(5):
        step()
    rates = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            step()
            n += 1
        rates.append(n / elapsed)
    return max(rates)


def numpy_step(rng):
    model, adam = VAE(D, (H,), K, rng=rng), Adam(1e-3)
    x = (rng.random((B, D)) < 0.3).astype(np.float32)

    def step():
        _, grads = model.loss_and_grads(x, rng=rng)
        adam.step(model.params, grads)

    return step


def torch_step(torch, seed):
    torch.manual_seed(seed)
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, 2 * K))
    dec = nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, D))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    x = (torch.rand(B, D) < 0.3).float()
    bce = nn.functional.binary_cross_entropy_with_logits

    def step():
        mu, logvar = enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bce(dec(z), x, reduction="sum") / B
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum() / B
        opt.zero_grad(set_to_none=True)
        (recon + kl).backward()
        opt.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    for info in blas:
        print(
            f"numpy BLAS: {info['internal_api']} {info.get('version')} "
            f"kernel={info.get('architecture')} threads={info['num_threads']}"
        )
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: numpy only (pip install torch==2.13.0 for the comparison)")
    default_threads = blas[0]["num_threads"] if blas else 1
    flop = 2 * 3 * B * (D * H + H * 2 * K + K * H + H * D)  # forward + two backward GEMMs each
    print(
        f"\n{'threads':>7} {'numpy steps/s':>14} {'torch steps/s':>14} {'ratio':>6} {'GFLOP/s':>8}"
    )
    for threads in sorted({1, default_threads}):
        with threadpool_limits(limits=threads, user_api="blas"):
            ours = time_steps(numpy_step(np.random.default_rng(0)), args.seconds)
        theirs = float("nan")
        if torch is not None:
            torch.set_num_threads(threads)
            theirs = time_steps(torch_step(torch, 0), args.seconds)
        print(
            f"{threads:>7} {ours:>14.1f} {theirs:>14.1f} {ours / theirs:>6.2f}"
            f" {ours * flop / 1e9:>8.1f}"
        )


if __name__ == "__main__":
    main()

"""Speed of one float32 VAE training step (784-400-20, batch 128, Adam), with PyTorch beside it.

Measures vaebook's `loss_and_grads` + `Adam.step` and, when PyTorch is installed, the same
step in PyTorch CPU eager (autograd + torch.optim.Adam) in the same run, at one thread and at
the default thread count, in alternating windows so both see the same machine load. Also
measures this machine's sgemm peak (a large float32 matrix product) to report the fraction of
it a step reaches, a 60,000-image epoch through `vaebook.fit` with its peak memory, and how the
step time grows with batch size and hidden width. Prints the BLAS library and kernel numpy
used (threadpoolctl). Not a test: machines are shared, so only ratios from one run mean much.

    python benchmarks/train_step.py [--seconds 0.4] [--rounds 8] [--quick]
"""

import argparse
import os
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from vaebook import VAE, Adam, fit

D, H, K, B = 784, 400, 20, 128


def step_flop(batch=B, hidden=H):
    """Matrix-product FLOPs of one step: forward, dW for every layer, dx for all but the first."""
    layers = [D * hidden, hidden * 2 * K, K * hidden, hidden * D]  # in*out of each Linear
    return 2 * batch * (3 * sum(layers) - layers[0])


def numpy_step(seed, batch=B, hidden=H):
    rng = np.random.default_rng(seed)
    model, adam = VAE(D, (hidden,), K, rng=rng), Adam(1e-3)
    x = (rng.random((batch, D)) < 0.3).astype(np.float32)

    def step():
        _, grads = model.loss_and_grads(x, rng=rng)
        adam.step(model.params, grads)

    return step


def matmuls_only(seed, batch=B, hidden=H):
    """The step's matrix products alone, in the layers' shapes and layouts: a floor for the step.

    Forward x @ W for the four layers, x.T @ dy for their dW, dy @ W.T for all but the first.
    """
    rng = np.random.default_rng(seed)
    widths = [(D, hidden), (hidden, 2 * K), (K, hidden), (hidden, D)]
    xs = [rng.random((batch, i), dtype=np.float32) for i, _ in widths]
    dys = [rng.random((batch, o), dtype=np.float32) for _, o in widths]
    ws = [rng.random((i, o), dtype=np.float32) for i, o in widths]

    def step():
        for i, (x, dy, w) in enumerate(zip(xs, dys, ws, strict=True)):
            x @ w
            x.T @ dy
            if i:
                dy @ w.T

    return step


def torch_step(torch, seed, batch=B, hidden=H):
    torch.manual_seed(seed)
    nn = torch.nn
    enc = nn.Sequential(nn.Linear(D, hidden), nn.ReLU(), nn.Linear(hidden, 2 * K))
    dec = nn.Sequential(nn.Linear(K, hidden), nn.ReLU(), nn.Linear(hidden, D))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    x = (torch.rand(batch, D) < 0.3).float()
    bce = nn.functional.binary_cross_entropy_with_logits

    def step():
        mu, logvar = enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bce(dec(z), x, reduction="sum") / batch
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum() / batch
        opt.zero_grad(set_to_none=True)
        (recon + kl).backward()
        opt.step()

    return step


def rates(steps, seconds, rounds):
    """Best steps/s of each function over `rounds` alternating windows of `seconds`."""
    for step in steps:
        for _ in range(5):
            step()
    best = [0.0] * len(steps)
    for _ in range(rounds):
        for i, step in enumerate(steps):
            time.sleep(0.3)  # let the other library's idle threads stop spinning on the cores
            n, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                step()
                n += 1
            best[i] = max(best[i], n / elapsed)
    return best


def sgemm_peak(seconds):
    """GFLOP/s of a 2048 x 2048 float32 product, the best of repeated runs."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        np.matmul(a, a, out=out)
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    return best


def epoch_time(n=60_000):
    """Seconds of one epoch of `fit` over n binary images, the peak memory (MB) allocated
    while it ran (traced after the data was made), and the size of the data (MB)."""
    rng = np.random.default_rng(0)
    x = (rng.random((n, D)) < 0.3).astype(np.float32)
    model = VAE(D, (H,), K, rng=rng)
    tracemalloc.start()
    start = time.perf_counter()
    fit(model, x, epochs=1, batch_size=B, optimizer=Adam(1e-3), rng=rng, progress=False)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak, x.nbytes / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="length of one window")
    parser.add_argument("--rounds", type=int, default=8, help="alternating windows per setting")
    parser.add_argument("--quick", action="store_true", help="only the main comparison")
    args = parser.parse_args()
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    for info in blas:
        print(
            f"numpy {np.__version__} BLAS: {info['internal_api']} {info.get('version')}, "
            f"kernel {info.get('architecture')}, {info['num_threads']} threads by default"
        )
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: numpy only (pip install torch==2.13.0 to compare)")
    else:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default")
    default_threads = blas[0]["num_threads"] if blas else 1
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(
                f"{name}={os.environ[name]} is set: OpenBLAS may not use this CPU's own kernel "
                "(make bench runs without it)"
            )

    print(
        f"\nOne step of the {D}-{H}-{K} VAE, batch {B}, Adam, float32 "
        f"({step_flop() / 1e9:.3f} GFLOP of matrix products)"
    )
    print(
        "(matmuls/s: the step's matrix products alone, at their shapes; bound: the ratio a step\n"
        " would reach if everything else in it took no time)"
    )
    print(
        f"{'threads':>7} {'numpy/s':>8} {'torch/s':>8} {'ratio':>6} {'GFLOP/s':>8} "
        f"{'sgemm peak':>10} {'% peak':>6} {'matmuls/s':>9} {'bound':>6}"
    )
    for threads in sorted({1, default_threads}):
        with threadpool_limits(limits=threads, user_api="blas"):
            steps = [numpy_step(0), matmuls_only(0)]
            if torch is not None:
                torch.set_num_threads(threads)
                steps.append(torch_step(torch, 0))
            measured = rates(steps, args.seconds, args.rounds)
            peak = sgemm_peak(2.0)
        ours, floor = measured[:2]
        theirs = measured[2] if torch is not None else float("nan")
        gflops = ours * step_flop() / 1e9
        print(
            f"{threads:>7} {ours:>8.1f} {theirs:>8.1f} {ours / theirs:>6.2f} {gflops:>8.1f} "
            f"{peak:>10.1f} {100 * gflops / peak:>5.0f}% {floor:>9.1f} {floor / theirs:>6.2f}"
        )
    if args.quick:
        return

    seconds, peak_mb, data_mb = epoch_time()
    print(
        f"\nOne epoch of 60,000 images through vaebook.fit: {seconds:.1f} s; "
        f"at most {peak_mb:.0f} MB allocated during it, beside the {data_mb:.0f} MB of data"
    )

    print(
        "\nStep time as the batch grows (hidden 400) and as the hidden layer widens (batch 128):"
    )
    print(f"{'batch':>6} {'hidden':>6} {'ms/step':>8} {'us/image':>9} {'GFLOP/s':>8}")
    for batch, hidden in [
        (32, H),
        (64, H),
        (128, H),
        (256, H),
        (512, H),
        (B, 100),
        (B, 200),
        (B, 800),
        (B, 1600),
    ]:
        (rate,) = rates([numpy_step(0, batch, hidden)], args.seconds, 3)
        print(
            f"{batch:>6} {hidden:>6} {1e3 / rate:>8.2f} {1e6 / rate / batch:>9.1f} "
            f"{rate * step_flop(batch, hidden) / 1e9:>8.1f}"
        )


if __name__ == "__main__":
    main()

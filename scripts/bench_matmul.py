"""GFLOP/s of the fast path's matmul shapes through MKL (torch's default fp32 path) and through
oneDNN (jest.model.cpu_matmul), one thread: the table in jest/model/cpu_matmul.py and docs/benchmarks.md.

    python scripts/bench_matmul.py [--threads 1] [--reps 40]
    ONEDNN_MAX_CPU_ISA=AVX2 python scripts/bench_matmul.py     # oneDNN held to AVX2 kernels

Rows: a linear layer's three matmuls for M = 16 x 128 rows (the tiny batch) at the tiny and
ladder-top widths: the forward y = x W^T, the input gradient dx = dy W and the weight gradient
dW = dy^T x; the oneDNN columns are what jest.model.cpu_matmul runs (its weight_grad picks the faster
of dy^T x and (x^T dy)^T by shape). Interleaved repetitions, median time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's jest, not an installed one

import torch  # noqa: E402

from jest.model import cpu_matmul  # noqa: E402

# (K, N) of y = x W^T with W (N, K): tiny's q/k/v (96 -> 288), gate/up (96 -> 512), down (256 -> 96)
# and output projection (96 -> 2048); ladder_top's q/k/v (176 -> 528), down (480 -> 176), output (176 -> 2048).
SHAPES = [(96, 288), (96, 512), (256, 96), (96, 2048), (176, 528), (480, 176), (176, 2048)]
M = 16 * 128


def median_seconds(fns: dict, reps: int) -> dict:
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_matmul.onednn_linear_available():
        print(f"note: jest.model.cpu_matmul does not use oneDNN here (torch CPU capability "
              f"{torch.backends.cpu.get_cpu_capability()}); the oneDNN columns are timed anyway")
    mm_t = cpu_matmul._mm_t
    print(f"{args.threads} thread(s), M = {M} rows, GFLOP/s (median of {args.reps})")
    print(f"{'K -> N':>12} {'fwd MKL':>8} {'oneDNN':>7} {'dx MKL':>7} {'oneDNN':>7} {'dW MKL':>7} {'oneDNN':>7}")
    g = torch.Generator().manual_seed(0)
    for K, N in SHAPES:
        x, w, dy = torch.randn(M, K, generator=g), torch.randn(N, K, generator=g), torch.randn(M, N, generator=g)
        t = median_seconds({
            "fwd_mkl": lambda: x @ w.t(), "fwd_dnn": lambda: mm_t(x, w),
            "dx_mkl": lambda: dy @ w, "dx_dnn": lambda: mm_t(dy, w.t()),
            "dw_mkl": lambda: dy.t() @ x, "dw_dnn": lambda: cpu_matmul.weight_grad(dy, x),
        }, args.reps)
        gf = {k: 2 * M * K * N / v / 1e9 for k, v in t.items()}
        print(f"{K:>5} -> {N:<5} {gf['fwd_mkl']:8.0f} {gf['fwd_dnn']:7.0f} {gf['dx_mkl']:7.0f} {gf['dx_dnn']:7.0f} "
              f"{gf['dw_mkl']:7.0f} {gf['dw_dnn']:7.0f}")


if __name__ == "__main__":
    main()

"""The measured matmul peak per precision (issue #31): what a core really does, next to the nominal peak.

The nominal CPU peak (jest.model.hardware.cpu_peak) multiplies the clock /proc/cpuinfo reports by the
FMA width of the widest ISA; a core under boost ran above it (222 GFLOP/s fp32 on one Intel core against
a nominal 166), so fractions of it overstate how close a loop is to the hardware. This measures instead:
the best of `reps` large square matmuls (2 n^3 FLOPs each) per precision, with every kernel torch has
for it on this device (fp32 on CPU: MKL's sgemm and, where torch runs AVX-512, oneDNN's, as the fast
path uses; bf16: oneDNN, on AMX or AVX512-BF16 where the CPU has them), after one untimed warm-up.
"""
from __future__ import annotations

import time

import torch


def _best_seconds(fn, reps: int) -> float:
    fn()  # warm-up: kernel selection, page faults
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak(device: torch.device, precision: str, n: int = 2048, reps: int = 5) -> dict:
    """{"flops_per_s", "kernel", "n", "reps", "threads"}: the best large-matmul FLOP/s at `precision`."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    kernels = {"torch.mm": lambda: (torch.mm(a, b), sync())}
    if device.type == "cpu" and precision == "fp32":
        from jest.model.cpu_matmul import mm_t, onednn_linear_available
        if onednn_linear_available():
            bt = b.t().contiguous()
            kernels["oneDNN (fast path)"] = lambda: mm_t(a, bt)
    timed = {name: _best_seconds(fn, reps) for name, fn in kernels.items()}
    kernel = min(timed, key=timed.get)
    return {"flops_per_s": 2 * n ** 3 / timed[kernel], "kernel": kernel, "n": n, "reps": reps,
            "threads": torch.get_num_threads(), "per_kernel": {k: 2 * n ** 3 / s for k, s in timed.items()}}


def measured_peaks(device: torch.device, precisions=("fp32", "bf16"), n: int = 2048, reps: int = 5) -> dict:
    """matmul_peak per precision the device runs natively (bf16 on a CPU only with its bf16 units)."""
    from jest.model.cpu import cpu_bf16_units
    out = {}
    for precision in precisions:
        if precision == "bf16" and device.type == "cpu" and not cpu_bf16_units()["bf16"]:
            out[precision] = {"flops_per_s": None, "kernel": None,
                              "why": "no AMX or AVX512-BF16 on this CPU: bf16 is not run here"}
            continue
        out[precision] = matmul_peak(device, precision, n, reps)
    return out

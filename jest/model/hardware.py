"""Peak dense FLOP/s of known accelerators, for model FLOPs utilisation (MFU).

MFU = (analytic model FLOPs per second, jest.model.flops) / (the chip's peak dense FLOP/s
at the precision the matmuls run in). The peaks below are the vendors' datasheet /
whitepaper numbers for *dense* math (NVIDIA quotes tensor-core numbers "with
sparsity", i.e. doubled; those are halved here and say so), at boost clock. They
are upper bounds nobody reaches; a real chip under power or thermal limits runs
below them.

Precisions:
    bf16, fp16  tensor-core matmuls with FP32 accumulation (what torch.autocast uses)
    tf32        FP32 matmuls on tensor cores (torch.backends.cuda.matmul.allow_tf32 /
                torch.set_float32_matmul_precision("high"))
    fp32        plain FP32 on the CUDA cores (torch's default for float32 matmuls)

The table is keyed by regular expressions over torch.cuda.get_device_name(); the
first match wins, so specific variants (H100 PCIe, H100 NVL) come before the
generic name (H100 = the SXM5 part, "NVIDIA H100 80GB HBM3"). An unknown chip gives
(None, reason): the benchmark then prints no MFU rather than a guess.

CPUs have no datasheet table here: `cpu_peak` derives the fp32 peak from what the kernel
reports (/proc/cpuinfo: the widest vector ISA with FMA, the clock, the cores torch uses):
    peak = cores x clock x FMA pipes (2) x fp32 lanes (AVX2: 8, AVX-512: 16) x 2 (an FMA is 2 FLOPs)
e.g. 2 cores x 2.45 GHz x 2 x 8 x 2 = 157 GFLOP/s. Two 256-bit FMA pipes per core hold for
Intel since Haswell and AMD since Zen 2 (Zen 1 has two 128-bit pipes: half this); the clock
is the one /proc/cpuinfo reports (boost clocks run higher, so a core can exceed "100%").
"""
from __future__ import annotations

import os
import re

import torch

from jest.model.cpu import _cpuinfo, cpu_bf16_units, check_cpu_precision  # noqa: F401 (re-exported)

PRECISIONS = ("bf16", "fp16", "tf32", "fp32")

_H100_WP = "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022) and H100 datasheet"
_A100_DS = "NVIDIA A100 Tensor Core GPU datasheet (2021)"
_L4_DS = "NVIDIA L4 Tensor Core GPU datasheet (2023)"
_A10_DS = "NVIDIA A10 Tensor Core GPU datasheet (2021)"
_ADA_WP = "NVIDIA Ada GPU Architecture whitepaper v2.02 (2023), appendix A, GeForce RTX 4090"

# (pattern, part name, {precision: dense FLOP/s}, source). Numbers with sparsity are halved.
PEAK_TABLE: list[tuple[str, str, dict[str, float], str]] = [
    (r"H100.*PCIe", "H100 PCIe",
     {"bf16": 756.5e12, "fp16": 756.5e12, "tf32": 378.0e12, "fp32": 51.0e12},
     ("NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe column (BF16/FP16 1,513 and TF32 756 TFLOPS with "
      "sparsity; dense = half; FP32 51 TFLOPS)")),
    (r"H100.*NVL", "H100 NVL",
     {"bf16": 835.5e12, "fp16": 835.5e12, "tf32": 417.5e12, "fp32": 60.0e12},
     "NVIDIA H100 NVL datasheet (BF16/FP16 1,671 and TF32 835 TFLOPS with sparsity; dense = half)"),
    (r"H200.*NVL", "H200 NVL",
     {"bf16": 835.5e12, "fp16": 835.5e12, "tf32": 417.5e12, "fp32": 60.0e12},
     "NVIDIA H200 datasheet, H200 NVL column (BF16/FP16 1,671 and TF32 835 TFLOPS with sparsity; dense = half)"),
    (r"H100", "H100 SXM5",
     {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
     _H100_WP + " (H100 SXM5: BF16/FP16 989.4, TF32 494.7 TFLOPS dense; FP32 66.9 TFLOPS on CUDA cores)"),
    (r"H200", "H200 SXM",
     {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
     ("NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (BF16/FP16 1,979 and TF32 989 TFLOPS with "
      "sparsity; dense = half, the same compute as H100 SXM5; FP32 67 TFLOPS)")),
    (r"A100\b", "A100",
     {"bf16": 312.0e12, "fp16": 312.0e12, "tf32": 156.0e12, "fp32": 19.5e12},
     _A100_DS + " (BF16/FP16 312, TF32 156 TFLOPS dense; FP32 19.5 TFLOPS; SXM4 and PCIe alike)"),
    (r"\bL4\b", "L4",
     {"bf16": 121.0e12, "fp16": 121.0e12, "tf32": 60.0e12, "fp32": 30.3e12},
     _L4_DS + " (BF16/FP16 242 and TF32 120 TFLOPS with sparsity; dense = half; FP32 30.3 TFLOPS)"),
    (r"\bA10\b", "A10",
     {"bf16": 125.0e12, "fp16": 125.0e12, "tf32": 62.5e12, "fp32": 31.2e12},
     _A10_DS + " (BF16/FP16 125, TF32 62.5 TFLOPS dense; FP32 31.2 TFLOPS). Not the AWS A10G, which "
     "has no NVIDIA datasheet and is left out"),
    (r"RTX 4090", "GeForce RTX 4090",
     {"bf16": 165.2e12, "fp16": 165.2e12, "tf32": 82.6e12, "fp32": 82.6e12},
     _ADA_WP + " (BF16/FP16 tensor with FP32 accumulate 165.2, TF32 82.6 TFLOPS dense; FP32 82.6 TFLOPS)"),
]


FMA_PIPES = 2  # 256-bit FMA units per core (Intel Haswell+, AMD Zen 2+); see the module docstring


def cpu_cores_used() -> int:
    """Cores torch's intra-op threads run on: its thread count, at most the CPUs we may use."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(torch.get_num_threads(), allowed)


def cpu_peak(cores: int, flags: set[str] | None = None, clock_hz: float | None = None) -> tuple[float | None, str]:
    """fp32 peak FLOP/s of `cores` CPU cores and its derivation (read from /proc/cpuinfo unless
    `flags` and `clock_hz` are given); (None, reason) when the clock or the ISA is unknown."""
    if flags is None or clock_hz is None:
        info_flags, info_clock, _ = _cpuinfo()
        flags = info_flags if flags is None else flags
        clock_hz = info_clock if clock_hz is None else clock_hz
    if not clock_hz:
        return None, "no CPU clock in /proc/cpuinfo: no peak"
    if "avx512f" in flags:
        isa, lanes = "AVX-512", 16
    elif "avx2" in flags or "avx" in flags:
        isa, lanes = ("AVX2" if "avx2" in flags else "AVX"), 8
    elif "sse2" in flags:
        isa, lanes = "SSE2", 4
    else:
        return None, f"no known vector ISA among the CPU flags ({len(flags)} flags): no peak"
    fma = "fma" in flags
    per_cycle = FMA_PIPES * lanes * (2 if fma else 1)
    peak = cores * clock_hz * per_cycle
    how = (f"{cores} cores x {clock_hz / 1e9:.2f} GHz x {per_cycle} fp32 FLOP/cycle "
           f"({FMA_PIPES} {'FMA' if fma else 'add/mul'} pipes x {lanes} lanes ({isa})"
           f"{' x 2 (FMA = multiply + add)' if fma else ''}) = {peak / 1e9:.1f} GFLOP/s "
           "(/proc/cpuinfo flags and clock; jest/model/hardware.py)")
    return peak, how


def lookup(device_name: str, precision: str) -> tuple[float | None, str]:
    """(peak dense FLOP/s, citation) for a GPU name as torch.cuda.get_device_name() reports it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    for pattern, part, peaks, source in PEAK_TABLE:
        if re.search(pattern, device_name):
            if precision not in peaks:
                return None, f"no {precision} peak for {part} in the table"
            return peaks[precision], f"{part} {precision} dense {peaks[precision] / 1e12:g} TFLOP/s: {source}"
    return None, f"no peak-FLOPs table entry for {device_name!r} (jest/model/hardware.py)"


def matmul_precision(device: torch.device, precision: str) -> str:
    """The precision the matmuls really run in: 'fp32' becomes 'tf32' where torch lets FP32
    matmuls use tensor cores (torch.set_float32_matmul_precision('high' or 'medium'))."""
    if precision == "fp32" and device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return precision


def peak_flops_per_second(device: torch.device, precision: str) -> tuple[float | None, str]:
    """Peak dense FLOP/s of `device` at `precision` (bf16, fp16, tf32, fp32) and where the number
    comes from; (None, reason) for CPUs and for chips not in the table. The trainer logs no MFU on
    CPUs (a derived peak is not a datasheet number); tools.bench prints `cpu_peak`'s fractions."""
    device = torch.device(device)
    if device.type == "cpu":
        return None, "no peak-FLOPs table entry for CPUs"
    if device.type != "cuda":
        return None, f"no peak-FLOPs table entry for device type {device.type!r}"
    return lookup(torch.cuda.get_device_name(device), precision)

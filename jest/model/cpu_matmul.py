"""Linear layers through oneDNN's fp32 matmul on AVX-512 CPUs (`train.fast_path`).

PyTorch's CPU build runs fp32 matmuls (F.linear, mm, addmm) through MKL's sgemm. MKL picks its
AVX-512 kernels only on Intel processors; on an AMD one with AVX-512 (this project's Zen 5
machine, 2026-12-02) it runs its AVX2 kernels, at about half the core's fp32 peak. oneDNN,
which PyTorch also ships, dispatches on the instruction set alone. GFLOP/s on that machine, 1 thread,
M = 2048 rows (16 x 128 tokens), median of 40 (`python scripts/bench_matmul.py`, 2026-12-02, quiet):

    K -> N (W is N x K)   y = x W^T        dx = dy W        dW = dy^T x
                          MKL   oneDNN     MKL   oneDNN     MKL   oneDNN
    96 -> 288 (q, k, v)    96    214        92    217        98    169
    256 -> 96 (down)      101    218        94    219        96    168
    96 -> 2048 (output)    92    215        90    209        82    160
    176 -> 528 (ladder)    97    210        95    216       100    179

With oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, same machine) it was 1.0-1.2x MKL: not
measured on a real AVX2 machine, where the fast path keeps MKL and therefore the numbers it
produced before; the switch happens only where torch reports AVX-512 (get_cpu_capability).

`linear(x, w)` is F.linear(x, w) without bias: forward and both backward matmuls through
torch.ops.mkldnn._linear_pointwise (the oneDNN linear that torch.compile's CPU backend uses),
which takes strided views, so no transpose is copied. The arithmetic is fp32 with oneDNN's
blocking: results differ from MKL's in the last bits (the loss by ~1e-6; measured in
docs/benchmarks.md) and are bit-identical from run to run. The tiny training step gave identical
parameters with 1 and 2 threads (5 steps); a weight-gradient product of a larger shape ((2048 x 2048)^T
by (2048 x 96)) differed in its last bits between 1 and 2 threads, so only a fixed thread count is
guaranteed to repeat bit for bit (the workflow gives every CPU job one).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.cache
def onednn_linear_available() -> bool:
    """Whether linear() routes through oneDNN here: a CPU build with oneDNN, the private op
    present (it is not a public API; without it, F.linear), and AVX-512 in use by torch."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return False
    return (op is not None and torch.backends.mkldnn.is_available()
            and torch.backends.cpu.get_cpu_capability().startswith("AVX512"))


def _use_onednn(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.device.type == "cpu" and a.dtype == torch.float32 and b.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and onednn_linear_available())


def _mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T through oneDNN: a (M, K), b (N, K), both possibly strided views -> (M, N)."""
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")


def weight_grad(dy: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dy^T x (N, K), contiguous, for dy (M, N), x (M, K): oneDNN ran it ~1.3x faster as (x^T dy)^T
    when the output's rows outnumber its columns (N > K), and as dy^T x otherwise (measured, module
    doc). Contiguous because both users need it so: autograd would copy a transposed gradient into the
    parameter's layout anyway, and adding the transposed view in place was no faster."""
    if dy.size(1) > x.size(1):
        return _mm_t(x.t(), dy.t()).t().contiguous()
    return _mm_t(dy.t(), x.t())


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, x.size(-1))                                              # (M, K)
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return _mm_t(x2, weight).view(*x.shape[:-1], weight.size(0))              # (..., N)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x2, weight = ctx.saved_tensors
        dy = grad_out.reshape(-1, grad_out.size(-1))                                # (M, N)
        dx = _mm_t(dy, weight.t()).view(ctx.x_shape) if ctx.needs_input_grad[0] else None
        dw = weight_grad(dy, x2) if ctx.needs_input_grad[1] else None
        return dx, dw


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(x, weight) (no bias), through oneDNN on fp32 AVX-512 CPUs (module doc)."""
    if _use_onednn(x, weight):
        return _OneDNNLinear.apply(x, weight)
    return F.linear(x, weight)


def mm_t(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b.T for 2-D a (M, K), b (N, K), without autograd (the fused cross-entropy forms its
    own gradients), into `out` if given: through oneDNN where linear() uses it (its op has no
    out=, so the result is copied: a fresh multi-MiB result per call cost more in page faults,
    measured), else torch.mm."""
    if _use_onednn(a, b):
        return _mm_t(a, b) if out is None else out.copy_(_mm_t(a, b))
    return torch.mm(a, b.t(), out=out) if out is not None else a @ b.t()


def add_weight_grad(grad_weight: torch.Tensor, dy: torch.Tensor, x: torch.Tensor) -> None:
    """grad_weight (N, K) += dy^T x, for dy (M, N), x (M, K)."""
    if _use_onednn(dy, x):
        grad_weight += weight_grad(dy, x)
    else:
        grad_weight.addmm_(dy.t(), x)

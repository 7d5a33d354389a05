"""The device side of the training loop: which device, deterministic kernels, host-to-device copies,
and when the loss is read (a host synchronisation on a GPU)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from jest.training.checkpoint import last_good_checkpoint_note
from jest.training.distributed import World


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint, if any, is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config 'device' is 'cuda' but no CUDA device is visible; use 'cpu' or 'auto'")
    return torch.device(name)


def check_precision(device: torch.device, precision: str, key: str = "train.precision") -> None:
    """bf16 on a CPU needs its bf16 units (jest.model.hardware.check_cpu_precision); GPUs have them."""
    if device.type == "cpu":
        from jest.model.cpu import check_cpu_precision
        check_cpu_precision(precision, key)


def set_determinism(device: torch.device) -> None:
    """Deterministic kernels. On CPU that gives the same loss curve bit for bit. On CUDA,
    cuBLAS needs a fixed workspace for it, and a kernel with no deterministic version
    warns instead of stopping the run (GPU runs are reproducible only up to such kernels)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True)


def to_device(tokens: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tokens to the training device. On CUDA the copy is asynchronous from pinned
    (page-locked) memory, so the host goes on to the next step while it runs."""
    if device.type == "cuda":
        return tokens.pin_memory().to(device, non_blocking=True)
    return tokens.to(device)


def reads_every_step(device: torch.device) -> bool:
    """On CPU reading the loss costs nothing: read (and NaN-check) it every step, as always.
    On a GPU a read waits for the queued work; read only at logged steps."""
    return device.type != "cuda"


def read_step_values(world: World, loss: torch.Tensor, grad_norm: torch.Tensor, step: int,
                     ckpt_root: Path) -> tuple[float, float]:
    """The step's global mean loss and gradient norm as numbers (a host synchronisation on a GPU);
    stop on a non-finite loss. Every rank reads the same values, so every rank stops together."""
    train_loss = world.mean(loss).item()
    if not math.isfinite(train_loss):
        raise NonFiniteLossError(
            f"training loss is {train_loss} at step {step}; {last_good_checkpoint_note(ckpt_root)}. "
            "Lower 'train.lr' or raise 'train.warmup_steps'.")
    return train_loss, grad_norm.item()  # DDP: gradients are all-reduced, so the norm is global already

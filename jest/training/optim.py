"""The optimizer and one optimizer step: AdamW (no decay on 1-D tensors), micro-batched
gradient accumulation, gradient clipping; DDP-aware (one all-reduce per step)."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from jest.policies.scoring import precision_context


def build_optimizer(model: torch.nn.Module, train_cfg: dict, device: torch.device) -> torch.optim.AdamW:
    """AdamW; no weight decay on norms and biases (1-D tensors). Fused kernels on CUDA, and on
    CPU with `train.fast_path` (jest.model.fastpath)."""
    params = [p for p in model.parameters() if p.requires_grad]
    seen, decay, no_decay = set(), [], []
    for p in params:  # tied weights appear once
        if id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": train_cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=train_cfg["lr"], betas=(train_cfg["beta1"], train_cfg["beta2"]),
                             fused=device.type == "cuda" or bool(train_cfg.get("fast_path")))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, micro: int,
               lr: float, grad_clip: float, precision: str = "fp32",
               loss_fn=None, token_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on `batch` (b, T) in micro-batches; returns (loss, grad norm) as tensors
    (reading them is the caller's choice: on a GPU that is a host synchronisation).

    `model` may be wrapped in DistributedDataParallel: the gradients are then averaged over
    the processes once, at the last micro-batch, so the loss is this process's batch mean and
    the update is the global-batch update. The forward runs in `precision` (bf16: autocast),
    the backward outside autocast, as torch recommends. `loss_fn(model, x)` replaces HF's
    model(input_ids=x, labels=x).loss (jest.model.fastpath.causal_lm_loss with `train.fast_path`).

    `token_weights` (b, T - 1), from a token-level policy (jest.policies.base.Selection): the loss is
    then sum(w * nll) / sum(w) over this process's batch (under DDP each process normalises by its own
    sum, which is the global weighted mean when every process's weights sum alike, as a per-sequence
    top-k's do). None: the plain mean, exactly as before."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    b = batch.size(0)
    loss_sum = torch.zeros((), device=batch.device)
    total_weight = None if token_weights is None else token_weights.sum()
    for i in range(0, b, micro):
        x = batch[i:i + micro]
        last_micro = i + micro >= b
        # DDP all-reduces gradients in every backward unless told not to: once per step is enough.
        sync = contextlib.nullcontext() if last_micro or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with precision_context(batch.device, precision):
                if token_weights is None:
                    mean = loss_fn(model, x) if loss_fn else model(input_ids=x, labels=x).loss
                    loss = mean * (x.size(0) / b)  # mean over the whole batch
                else:
                    w = token_weights[i:i + micro]
                    mean = weighted_loss(model, x, w, loss_fn)
                    loss = mean * (w.sum() / total_weight)  # weighted mean over the whole batch
            loss.backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
    optimizer.step()
    return loss_sum, grad_norm


def weighted_loss(model: torch.nn.Module, x: torch.Tensor, weights: torch.Tensor, loss_fn=None) -> torch.Tensor:
    """sum(w * nll) / sum(w) over the next-token targets of `x` (b, T), weights (b, T - 1): through the fast
    path's fused loss when it is on (`loss_fn`), else HF's forward and a per-token cross-entropy."""
    weights = weights.to(x.device, torch.float32)
    if loss_fn is not None:
        return loss_fn(model, x, token_weights=weights)
    logits = model(input_ids=x).logits[:, :-1]                                     # (b, T-1, V)
    nll = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="none")
    return (nll * weights.flatten()).sum() / weights.sum()

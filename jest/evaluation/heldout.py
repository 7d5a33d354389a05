"""Held-out evaluation during training: mean next-token loss and bits per byte on a fixed
set of held-out sequences (the curve every parity and multiplier is read from).

lm-eval's downstream tasks run later, on saved snapshots (jest/evaluation/).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from jest.model.fastforward import final_hidden
from jest.model.fastpath import token_nll
from jest.data.shards import TokenShard


def heldout_indices(shard: TokenShard, count: int) -> np.ndarray:
    """`count` held-out sequences spread evenly over the split: the same ones at every evaluation."""
    return np.unique(np.linspace(0, len(shard) - 1, min(count, len(shard))).astype(np.int64))


@torch.inference_mode()
def evaluate_heldout(model: torch.nn.Module, shard: TokenShard, indices: np.ndarray,
                     batch_size: int, device: torch.device, fast: bool = False) -> dict:
    """Mean next-token loss (nats) and bits per byte over fixed held-out sequences. `fast`
    (train.fast_path): the forward through jest.model.fastforward and the chunked NLL, as scoring
    does (the same loss to ~1e-6)."""
    was_training = model.training
    model.eval()
    nll, n_tokens, n_bytes = 0.0, 0, 0
    for i in range(0, len(indices), batch_size):
        batch = shard.get(indices[i:i + batch_size]).to(device)            # (B, T)
        targets = batch[:, 1:]                                              # (B, T-1)
        if fast:
            hidden = final_hidden(model, batch)[:, :-1]                     # (B, T-1, d)
            nll += token_nll(hidden.flatten(0, 1), model.lm_head.weight, targets.reshape(-1)).sum().item()
        else:
            logits = model(input_ids=batch).logits[:, :-1].float()          # (B, T-1, V)
            nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   reduction="sum").item()
        n_tokens += targets.numel()
        n_bytes += int(shard.token_bytes[targets.cpu().numpy()].sum())
    model.train(was_training)
    return {"heldout_loss": nll / n_tokens, "heldout_bpb": nll / math.log(2) / max(n_bytes, 1)}

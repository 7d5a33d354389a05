"""Held-out evaluation during training: mean next-token loss and bits per byte on a fixed
set of held-out sequences (the curve every parity and multiplier is read from), with the standard
error of that mean and the set's size.

The standard error treats the sequence as the sampling unit: tokens of one sequence share its
document and topic, so they are not independent draws, and a per-token SE would be several times too
small. Every row of a shard has the same length (seq_len, no padding), so each sequence contributes
seq_len - 1 target tokens; the token-weighted mean loss is then exactly the mean of the per-sequence
mean losses, and SE = sd(per-sequence mean loss, ddof 1) / sqrt(n) is the cluster (by sequence)
standard error of it. It measures the held-out set's sampling noise only: a different set of the same
size would move the loss by about this much; the seed-to-seed spread is a separate quantity.

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


# The keys one evaluation of one set returns (heldout_sets.evaluate_sets appends the set's suffix):
# the mean loss (nats/token), bits per byte, the standard error of the mean loss (nats/token, over
# sequences; absent for a single sequence), and the set's size in sequences and target tokens.
METRIC_KEYS = ("heldout_loss", "heldout_bpb", "heldout_se_loss", "heldout_sequences", "heldout_tokens")


def standard_error(per_sequence: np.ndarray) -> float | None:
    """sd (ddof 1) / sqrt(n) of per-sequence mean losses; None below 2 sequences (no spread to measure)."""
    x = np.asarray(per_sequence, dtype=np.float64)
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) >= 2 else None


def heldout_indices(shard: TokenShard, count: int) -> np.ndarray:
    """`count` held-out sequences spread evenly over the split: the same ones at every evaluation."""
    return np.unique(np.linspace(0, len(shard) - 1, min(count, len(shard))).astype(np.int64))


@torch.inference_mode()
def evaluate_heldout(model: torch.nn.Module, shard: TokenShard, indices: np.ndarray,
                     batch_size: int, device: torch.device, fast: bool = False) -> dict:
    """Mean next-token loss (nats) and bits per byte over fixed held-out sequences, the standard
    error of the mean loss over sequences (the module's docstring) and the set's size (METRIC_KEYS).
    `fast` (train.fast_path): the forward through jest.model.fastforward and the chunked NLL, as
    scoring does (the same loss to ~1e-6)."""
    was_training = model.training
    model.eval()
    nll, n_tokens, n_bytes, per_sequence = 0.0, 0, 0, []
    for i in range(0, len(indices), batch_size):
        batch = shard.get(indices[i:i + batch_size]).to(device)            # (B, T)
        targets = batch[:, 1:]                                              # (B, T-1)
        if fast:
            hidden = final_hidden(model, batch)[:, :-1]                     # (B, T-1, d)
            token = token_nll(hidden.flatten(0, 1), model.lm_head.weight, targets.reshape(-1))  # (B*(T-1),)
            nll += token.sum().item()
        else:
            logits = model(input_ids=batch).logits[:, :-1].float()          # (B, T-1, V)
            flat, flat_targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
            # the total as before (a summed reduction rounds differently from a sum of the per-token
            # losses, and the mean must not move); the per-token losses only feed the standard error
            nll += F.cross_entropy(flat, flat_targets, reduction="sum").item()
            token = F.cross_entropy(flat, flat_targets, reduction="none")   # (B*(T-1),)
        per_sequence.append(token.view(targets.shape).double().mean(dim=1).cpu().numpy())  # (B,)
        n_tokens += targets.numel()
        n_bytes += int(shard.token_bytes[targets.cpu().numpy()].sum())
    model.train(was_training)
    per_sequence = np.concatenate(per_sequence) if per_sequence else np.zeros(0)
    out = {"heldout_loss": nll / n_tokens, "heldout_bpb": nll / math.log(2) / max(n_bytes, 1)}
    se = standard_error(per_sequence)
    if se is not None:
        out["heldout_se_loss"] = se
    return out | {"heldout_sequences": len(per_sequence), "heldout_tokens": n_tokens}

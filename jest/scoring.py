"""Forward-only scoring: per-sequence mean next-token loss (and pooled features) under a model.

Used by the JEST policy on every super-batch (learner, and the reference when
scoring online) and once over the whole pool by the `score_reference` stage.
Runs under torch.inference_mode() in eval mode, in chunks (on CPU, chunks of 16
were ~2x faster than one batch of 160), slicing the candidate tensor in place:
no copy of the super-batch is made.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from jest.flops import forward_flops_per_token
from jest.io import atomic_write_json, sha256_file
from jest.model import shape_summary
from jest.shards import TokenShard


@torch.inference_mode()
def sequence_losses(model, tokens: torch.Tensor, batch_size: int, prefix_len: int | None = None,
                    with_features: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean token NLL of each row of `tokens` (B, T) over its first `prefix_len` tokens.

    Returns losses (B,) float32 and, if asked, features (B, d): the final hidden
    state mean-pooled over the scored tokens (what the interaction term uses).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    T = tokens.size(1) if prefix_len is None else min(prefix_len, tokens.size(1))
    losses, feats = [], []
    for i in range(0, tokens.size(0), batch_size):
        x = tokens[i:i + batch_size, :T].to(device, non_blocking=True)        # (c, T) view, no copy on CPU
        hidden = model.model(input_ids=x).last_hidden_state                    # (c, T, d)
        logits = model.lm_head(hidden[:, :-1])                                 # (c, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), x[:, 1:], reduction="none")  # (c, T-1)
        losses.append(nll.mean(dim=1))
        if with_features:
            feats.append(hidden.float().mean(dim=1))
    model.train(was_training)
    return torch.cat(losses).float(), (torch.cat(feats) if with_features else None)


def score_pool(model, shards_dir: Path, out_dir: Path, batch_size: int, reference_dir: Path,
               progress: bool = True) -> dict:
    """Reference loss of every pool sequence, once: pool_scores.npy + pool_scores.json (its provenance).

    The scores are keyed by the sha256 of the reference weights and of the pool
    shard, so a policy never uses scores from another reference or another pool.
    """
    pool = TokenShard(shards_dir, "pool")
    n, T = len(pool), pool.seq_len
    scores = np.empty(n, dtype=np.float32)
    t0 = time.time()
    chunk = batch_size * 16  # read from the mmap in large sequential blocks
    for start in tqdm(range(0, n, chunk), desc="score pool", disable=not progress, mininterval=5.0):
        idx = np.arange(start, min(start + chunk, n))
        losses, _ = sequence_losses(model, pool.get(idx), batch_size)
        scores[start:start + len(idx)] = losses.cpu().numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".pool_scores.npy.tmp"
    with open(tmp, "wb") as f:
        np.save(f, scores)
    tmp.replace(out_dir / "pool_scores.npy")
    manifest = json.loads((Path(shards_dir) / "manifest.json").read_text())
    meta = {
        "sequences": n, "seq_len": T,
        "reference_sha256": sha256_file(Path(reference_dir) / "model" / "model.safetensors"),
        "pool_sha256": manifest["splits"]["pool"]["sha256"],
        "flops": float(forward_flops_per_token(shape_summary(model.config), T) * n * T),
        "seconds": time.time() - t0, "mean_loss": float(scores.mean()),
    }
    atomic_write_json(out_dir / "pool_scores.json", meta)
    return meta

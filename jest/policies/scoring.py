"""Forward-only scoring: per-sequence mean next-token loss (and pooled features) under a model.

Used by the JEST policy on every super-batch (learner, and the reference when
scoring online) and once over the whole pool by the `score_reference` stage.
Runs under torch.inference_mode() in eval mode, in chunks (on CPU, chunks of 16
were ~2x faster than one batch of 160), slicing the candidate tensor in place:
no copy of the super-batch is made. The pool scoring writes its progress as it
goes and resumes after a kill (`score_pool`).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jest.model.flops import forward_flops_per_token
from jest.io import atomic_write_bytes, atomic_write_json, sha256_file
from jest.model.fastforward import final_hidden
from jest.model.fastpath import token_nll
from jest.model.llama import shape_summary
from jest.training.progress import Progress
from jest.data.shards import TokenShard


def precision_context(device: torch.device, precision: str):
    """The forward's numeric precision: fp32 runs as is; bf16 runs matmuls under autocast
    (weights, gradients and optimizer state stay fp32). Used by training and scoring alike."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"'train.precision' = {precision!r} is not allowed; allowed values: ['fp32', 'bf16']")


@torch.inference_mode()
def token_losses(model, tokens: torch.Tensor, batch_size: int, precision: str = "fp32",
                 fast: bool = False) -> torch.Tensor:
    """Per-token NLL (B, T-1) float32 of each row of `tokens` (B, T): the loss of every next-token target
    (what a token-level policy weighs; baselines/rho.py), computed as sequence_losses computes its means."""
    return sequence_losses(model, tokens, batch_size, precision=precision, fast=fast, per_token=True)[0]


@torch.inference_mode()
def sequence_losses(model, tokens: torch.Tensor, batch_size: int, prefix_len: int | None = None,
                    with_features: bool = False, precision: str = "fp32",
                    fast: bool = False, per_token: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean token NLL of each row of `tokens` (B, T) over its first `prefix_len` tokens.

    Returns losses (B,) float32 and, if asked, features (B, d): the final hidden
    state mean-pooled over the scored tokens (what the interaction term uses).
    The forward runs in `precision` (bf16: autocast); losses and features are float32.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    T = tokens.size(1) if prefix_len is None else min(prefix_len, tokens.size(1))
    losses, feats = [], []
    for i in range(0, tokens.size(0), batch_size):
        x = tokens[i:i + batch_size, :T].to(device, non_blocking=True)        # (c, T) view, no copy on CPU
        with precision_context(device, precision):
            # train.fast_path: the fused decoder forward (oneDNN matmuls on AVX-512 CPUs)
            hidden = final_hidden(model, x) if fast else model.model(input_ids=x).last_hidden_state  # (c, T, d)
            if fast:  # jest.model.fastpath: the output projection + NLL in cache-sized row chunks
                nll = token_nll(hidden[:, :-1].flatten(0, 1), model.lm_head.weight,
                                x[:, 1:].flatten()).view(x.size(0), -1)        # (c, T-1)
            else:
                logits = model.lm_head(hidden[:, :-1])                         # (c, T-1, V)
        # Flat (c*(T-1), V) rows, as HF's training loss does: the class-dim-1 layout of a transposed
        # (c, V, T-1) view ran 3-4x slower on CPU and held scoring to 4.5% MFU on an H200.
        if not fast:
            nll = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(),
                                  reduction="none").view(x.size(0), -1)        # (c, T-1)
        losses.append(nll.float() if per_token else nll.mean(dim=1))  # per_token: (c, T-1)
        if with_features:
            feats.append(hidden.float().mean(dim=1))
    model.train(was_training)
    return torch.cat(losses).float(), (torch.cat(feats) if with_features else None)


PARTIAL_SCORES, PARTIAL_META = "pool_scores.partial.npy", "pool_scores.partial.json"
PROGRESS_WRITES = 50  # by default a progress write every ~2% of the pool, at any pool size


def _load_partial(out_dir: Path, key: dict, rows: np.ndarray) -> tuple[np.ndarray, int, float] | None:
    """(scores so far, next position in `rows`, seconds spent) of an interrupted scoring with the same
    `key`, else None.

    A partial written for another reference, pool, batch size or device is deleted, never used.
    """
    meta_path, scores_path = out_dir / PARTIAL_META, out_dir / PARTIAL_SCORES
    if not meta_path.exists():
        scores_path.unlink(missing_ok=True)  # killed before its first progress record: nothing usable
        return None
    try:
        meta = json.loads(meta_path.read_text())
        scores = np.load(scores_path)
        usable = ({k: meta.get(k) for k in key} == key and scores.shape == (key["sequences"],)
                  and scores.dtype == np.float32 and 0 < meta["next"] <= len(rows)
                  and bool(np.isfinite(scores[rows[:meta["next"]]]).all()))
    except (OSError, ValueError, KeyError, TypeError):  # unreadable: a torn or foreign file
        usable = False
    if not usable:
        print(f"discarding partial pool scores in {out_dir}: written for another reference, pool or "
              "settings (or unreadable); scoring from the start", flush=True)
        _remove_partial(out_dir)
        return None
    return scores, int(meta["next"]), float(meta.get("seconds", 0.0))


def _remove_partial(out_dir: Path) -> None:
    (out_dir / PARTIAL_META).unlink(missing_ok=True)  # the record first: a lone .npy is never used
    (out_dir / PARTIAL_SCORES).unlink(missing_ok=True)


def _remove_torn_writes(out_dir: Path) -> None:
    """Temp files of atomic writes a killed job left behind (jest.io.atomic_write_bytes names them)."""
    for tmp in out_dir.glob(".pool_scores*.tmp"):
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def score_pool(model, shards_dir: Path, out_dir: Path, batch_size: int, reference_dir: Path,
               progress: bool = True, save_every: int | None = None, precision: str = "fp32",
               fraction: float = 1.0, fast: bool = False) -> dict:
    """Reference loss of every pool sequence, once: pool_scores.npy + pool_scores.json (its provenance).

    `fraction` < 1 scores only the fixed, nested subset jest.training.runspec.training_subset(n, fraction) of
    the pool (the scale ladder's `ladder.pool_fraction`: its learners draw from no other sequence);
    the other entries are NaN, and the FLOPs count the scored sequences only.

    The scores are keyed by the sha256 of the reference weights and of the pool
    shard, so a policy never uses scores from another reference or another pool; the
    JSON records the sha256 of the .npy itself, which readers check before use, and
    non-finite scores are never written (jest.policies.reference.Reference.pool_scores).

    Resumable: every `save_every` chunks of `batch_size * 16` sequences (default:
    about 50 progress writes over the pool) the scores so far are written atomically
    to pool_scores.partial.npy, then the next index to pool_scores.partial.json with
    the same keys. A killed job re-run with the same reference, pool, batch size,
    device and precision continues from there and ends with the same scores bit for
    bit (each chunk is computed exactly as in an uninterrupted run); a partial from
    anything else is discarded (`fast`, train.fast_path's forward, is part of the key). The final files are written atomically (scores first, then
    the JSON that vouches for them) and the partial files removed.
    """
    out_dir, shards_dir = Path(out_dir), Path(shards_dir)
    pool = TokenShard(shards_dir, "pool")
    n, T = len(pool), pool.seq_len
    manifest = json.loads((shards_dir / "manifest.json").read_text())
    chunk = batch_size * 16  # read from the mmap in large sequential blocks
    key = {"reference_sha256": sha256_file(Path(reference_dir) / "model" / "model.safetensors"),
           "pool_sha256": manifest["splits"]["pool"]["sha256"], "sequences": n, "seq_len": T,
           "batch_size": batch_size, "chunk": chunk, "device": next(model.parameters()).device.type,
           "precision": precision}
    if fast:  # only when on: the keys of partials written without it are unchanged
        key["fast_path"] = True
    if fraction < 1.0:  # the whole pool's keys, files and numbers are unchanged
        from jest.training.runspec import training_subset
        rows, key["fraction"] = training_subset(n, fraction), fraction
    else:
        rows = np.arange(n)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_torn_writes(out_dir)
    # Outputs of an earlier scoring are stale from here on: never leave them next to a partial.
    (out_dir / "pool_scores.json").unlink(missing_ok=True)
    (out_dir / "pool_scores.npy").unlink(missing_ok=True)

    starts = list(range(0, len(rows), chunk))
    save_every = save_every or max(1, math.ceil(len(starts) / PROGRESS_WRITES))
    resumed = _load_partial(out_dir, key, rows)
    if resumed is not None:
        scores, first, seconds_before = resumed
        print(f"resuming pool scoring at sequence {first} of {len(rows)}", flush=True)
    else:
        empty = np.zeros(n, dtype=np.float32) if len(rows) == n else np.full(n, np.nan, dtype=np.float32)
        scores, first, seconds_before = empty, 0, 0.0
    t0 = time.time()
    todo = [s for s in starts if s >= first]
    # one throttled line per 10% or 30 s, to the log and the terminal (jest/training/progress.py)
    live = Progress("score pool", len(starts), len(starts) - len(todo), chunk * T, enabled=progress)
    for k, start in enumerate(todo):
        idx = rows[start:start + chunk]
        losses, _ = sequence_losses(model, pool.get(idx), batch_size, precision=precision, fast=fast)
        scores[idx] = losses.cpu().numpy()
        end = start + len(idx)
        live.update(len(starts) - len(todo) + k + 1)
        if (k + 1) % save_every == 0 and end < len(rows):
            _save_npy(out_dir / PARTIAL_SCORES, scores)          # the scores first,
            atomic_write_json(out_dir / PARTIAL_META,              # then the record that vouches for them
                              {**key, "next": end, "seconds": seconds_before + time.time() - t0})
    bad = int((~np.isfinite(scores[rows])).sum())
    if bad:  # never hand a policy NaN scores: a kept set or a selection built on them is silently wrong
        raise FloatingPointError(
            f"the reference in {reference_dir} gives a non-finite loss on {bad} of {len(rows)} pool sequences; "
            f"nothing written to {out_dir / 'pool_scores.npy'}. Score in fp32 (train.precision of the reference) "
            "or retrain the reference: `snakemake --cores N --forcerun train_reference [--configfile CONFIG]`")
    _save_npy(out_dir / "pool_scores.npy", scores)
    meta = {
        "scores_sha256": sha256_file(out_dir / "pool_scores.npy"),  # checked by every reader (jest_policy)
        "sequences": n, "seq_len": T,
        "reference_sha256": key["reference_sha256"], "pool_sha256": key["pool_sha256"],
        "flops": float(forward_flops_per_token(shape_summary(model.config), T) * len(rows) * T),
        "seconds": seconds_before + time.time() - t0, "mean_loss": float(np.mean(scores[rows])),
        "resumed_from": first or None, "fast_path": fast,  # which forward computed them (jest.model.fastpath)
    }
    if len(rows) < n:
        meta.update(fraction=fraction, scored_sequences=len(rows))
    atomic_write_json(out_dir / "pool_scores.json", meta)
    _remove_partial(out_dir)
    return meta

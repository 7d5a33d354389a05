"""The positive control's planted pool (issue #27, item 6): the pool plus a declared share of pure noise.

`data.planted_noise.share` = s > 0 appends noise sequences to the built pool shard (after build_shards,
so the tokenizer and every text sequence are exactly those of the same data section without noise)
until they are the share s of the pool's sequences:

    n_noise = round(s * n_text / (1 - s))      (exact when s / (1 - s) * n_text is whole, e.g. s = 0.75)

Kind `random_tokens`: every token drawn uniformly and independently from the vocabulary's non-special
ids (seeded by data.split_seed). Such a sequence carries no information about text: a step spent on it
teaches the curated domain nothing, which is what makes the multiplier predictable (analysis/
positive_control.py derives it). Each noise sequence gets its own provenance label
{source: planted_noise, quality: noise, corruption: random_tokens}: selection never sees it, the
oracle (baselines/controls.py: qualities clean / curated only) leaves it out, and the trainer's
sel_share_quality_noise logs how much of it JEST chose.

The manifest records what was planted (`planted_noise`: declared and realised share, sequences) and
the new sha256 of every file it changed, so TokenShard's integrity check and the runs' identities see
the planted pool, not the text-only one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jest.data.seeding import derive_seed
from jest.data.shards import INDEX_DTYPE, LABEL_FIELDS, _save_npy, record_file_hashes
from jest.io import atomic_write_json, sha256_file

NOISE_LABEL = {"source": "planted_noise", "quality": "noise", "corruption": "random_tokens"}
NOISE_KINDS = ("random_tokens",)


def noise_count(n_text: int, share: float) -> int:
    """Noise sequences that make `share` of a pool of `n_text` text sequences plus them."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"data.planted_noise.share must be in [0, 1), got {share}")
    return int(round(share * n_text / (1.0 - share)))


def random_token_rows(n: int, seq_len: int, token_bytes: np.ndarray, seed: int, dtype) -> np.ndarray:
    """(n, seq_len) token ids drawn uniformly from the ids that stand for bytes (special tokens, EOS
    among them, have 0 bytes: a noise sequence never looks like a document boundary)."""
    allowed = np.flatnonzero(token_bytes > 0)
    rng = np.random.default_rng(seed)
    return allowed[rng.integers(0, len(allowed), size=(n, seq_len))].astype(dtype)


def plant_noise(shards_dir: Path, share: float, split_seed: int, kind: str = "random_tokens") -> dict:
    """Append the noise to `shards_dir`'s pool split in place (tokens, index, labels, manifest); return
    the manifest's `planted_noise` record. Call it once, on freshly built shards."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"data.planted_noise.kind must be one of {NOISE_KINDS}, got {kind!r}")
    shards_dir = Path(shards_dir)
    manifest = json.loads((shards_dir / "manifest.json").read_text())
    if "planted_noise" in manifest:
        raise ValueError(f"{shards_dir} already holds planted noise: rebuild the shards first")
    tokens = np.load(shards_dir / "pool.tokens.npy")
    index = np.load(shards_dir / "pool.index.npy")
    labels = json.loads((shards_dir / "labels.json").read_text())
    token_bytes = np.load(shards_dir / "token_bytes.npy")
    n_text, seq_len = tokens.shape
    n_noise = noise_count(n_text, share)

    label = dict(zip(LABEL_FIELDS, (NOISE_LABEL[k] for k in LABEL_FIELDS)))
    if label in labels:  # a text source with the same label would make noise and text one cell
        raise ValueError(f"the pool already has a source labelled {label}")
    labels.append(label)
    noise = random_token_rows(n_noise, seq_len, token_bytes, derive_seed(split_seed, "planted_noise", kind),
                              tokens.dtype)
    noise_index = np.zeros(n_noise, dtype=INDEX_DTYPE)
    noise_index["doc"] = -1  # no document of pool.jsonl: the noise exists only in the shards
    noise_index["label"] = len(labels) - 1
    noise_index["n_bytes"] = token_bytes[noise].sum(axis=1)

    _save_npy(shards_dir / "pool.tokens.npy", np.concatenate([tokens, noise]))
    _save_npy(shards_dir / "pool.index.npy", np.concatenate([index, noise_index]))
    atomic_write_json(shards_dir / "labels.json", labels)

    pool = manifest["splits"]["pool"]
    pool["sequences"] += n_noise
    pool["tokens"] += n_noise * seq_len
    pool["bytes"] += int(noise_index["n_bytes"].sum())
    pool["by_source"][NOISE_LABEL["source"]] = {"sequences": n_noise, "tokens": n_noise * seq_len}
    pool["sha256"] = sha256_file(shards_dir / "pool.tokens.npy")
    record = {"kind": kind, "share_declared": share, "share_realised": n_noise / (n_text + n_noise),
              "text_sequences": int(n_text), "noise_sequences": n_noise, "label": label}
    manifest["planted_noise"] = record
    manifest.pop("files", None)  # every hash again: the pool's tokens, index and the labels changed
    record_file_hashes(shards_dir, manifest)
    atomic_write_json(shards_dir / "manifest.json", manifest)
    return record

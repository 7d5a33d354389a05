"""Tokenizer and shards for the large preset, streamed: memory stays flat whatever the corpus size.

The default preset's :func:`jest.data.shards.build_shards` tokenizes a whole split
in memory, which is fine for 2.4M tokens and not for 100M. This writer gives
the same layout (``<split>.tokens.npy``, ``<split>.index.npy``,
``labels.json``, ``token_bytes.npy``, ``manifest.json``; readable by
:class:`jest.data.shards.TokenShard`): documents are read in batches, packed per
provenance label into per-label temp files of full sequences, and the labels'
files are concatenated in sorted label order into a memory-mapped ``.npy``.
The tokenizer trains on a seeded sample of curated + pool documents (never
``pool_heldout``, the evaluation-only slice of the pool). As in the default
shards, an evaluation-only split (``OPTIONAL_SPLITS``) whose file is missing or
too short for one sequence is left out: it gives no held-out set.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jest.data.cleaning import unit_interval
from jest.io import atomic_write_json, sha256_file
from jest.data.shards import INDEX_DTYPE, LABEL_FIELDS, OPTIONAL_SPLITS, ShardError, record_file_hashes
from jest.data.tokenizer import load_tokenizer, token_byte_lengths, train_tokenizer

BATCH_DOCS = 256
SPLITS = ("curated", "heldout", "pool", "pool_heldout", "external")


def train_tokenizer_on_sample(data_dir: Path, vocab_size: int, out_dir: Path, split_seed: int,
                              sample_chars: int) -> dict[str, Any]:
    """Train the byte-level BPE on a seeded sample of about ``sample_chars`` characters of curated + pool."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    total = sum(manifest["splits"][split]["characters"] for split in ("curated", "pool"))
    rate = min(1.0, sample_chars / max(total, 1))
    sampled_docs = sampled_chars = 0
    with tempfile.TemporaryDirectory(dir=out_dir.parent if out_dir.parent.exists() else None) as tmp:
        sample = Path(tmp) / "sample.jsonl"
        with open(sample, "w", encoding="utf-8") as out:
            for split in ("curated", "pool"):
                with open(data_dir / f"{split}.jsonl", encoding="utf-8") as f:
                    for line in f:
                        doc = json.loads(line)
                        if unit_interval(split_seed, "tokenizer-sample", doc["id"]) < rate:
                            out.write(json.dumps({"text": doc["text"]}, ensure_ascii=False) + "\n")
                            sampled_docs += 1
                            sampled_chars += len(doc["text"])
        train_tokenizer([sample], vocab_size, out_dir)
    info = {"sample_rate": rate, "sample_documents": sampled_docs, "sample_characters": sampled_chars}
    atomic_write_json(out_dir / "sample.json", info)
    return info


class _LabelStream:
    """Full sequences of one label, appended to a temp file; the unfinished tail kept in memory."""

    def __init__(self, path: Path, seq_len: int, dtype):
        self.path, self.seq_len, self.dtype = path, seq_len, dtype
        self.file = open(path, "wb")
        self.tail = np.zeros(0, dtype=np.int64)
        self.tail_doc = np.zeros(0, dtype=np.int32)
        self.index: list[np.ndarray] = []  # (doc, n_bytes) per full sequence
        self.sequences = 0

    def add(self, doc_row: int, ids: list[int], eos: int, tbytes: np.ndarray) -> None:
        toks = np.asarray(ids + [eos], dtype=np.int64)
        self.tail = np.concatenate([self.tail, toks])
        self.tail_doc = np.concatenate([self.tail_doc, np.full(len(toks), doc_row, dtype=np.int32)])
        n_full = len(self.tail) // self.seq_len
        if n_full:
            cut = n_full * self.seq_len
            seqs = self.tail[:cut].reshape(n_full, self.seq_len)
            self.file.write(seqs.astype(self.dtype).tobytes())
            docs = self.tail_doc[:cut:self.seq_len]
            self.index.append(np.stack([docs, tbytes[seqs].sum(axis=1).astype(np.int32)], axis=1))
            self.sequences += n_full
            self.tail, self.tail_doc = self.tail[cut:], self.tail_doc[cut:]

    def close(self) -> int:
        self.file.close()
        return len(self.tail)


def build_streaming_shards(data_dir: Path, tokenizer_dir: Path, out_dir: Path, seq_len: int,
                           splits: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Tokenize and pack each split file batch by batch; same output layout as :func:`jest.data.shards.build_shards`."""
    # The workflow turns tokenizer threads off for every job (forks after first use can deadlock);
    # this job never forks, and ~300 MB of text is its whole cost: let encode_batch use the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    tok = load_tokenizer(tokenizer_dir)
    backend, eos = tok.backend_tokenizer, tok.eos_token_id
    tbytes = token_byte_lengths(tok)
    dtype = np.uint16 if len(tok) <= np.iinfo(np.uint16).max + 1 else np.uint32
    out_dir.mkdir(parents=True, exist_ok=True)
    labels: list[tuple] = []
    label_id: dict[tuple, int] = {}
    manifest: dict[str, Any] = {"seq_len": seq_len, "vocab_size": len(tok), "dtype": np.dtype(dtype).name,
                                "splits": {}}
    for split in splits:
        path = data_dir / f"{split}.jsonl"
        if split in OPTIONAL_SPLITS and not path.is_file():  # a corpus built before the split existed
            continue
        streams: dict[tuple, _LabelStream] = {}
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp, open(path, encoding="utf-8") as f:
            progress = tqdm(total=path.stat().st_size, desc=f"tokenize {split}", unit="B", unit_scale=True)
            row = 0
            while True:
                lines = [line for _, line in zip(range(BATCH_DOCS), f)]
                if not lines:
                    break
                docs = [json.loads(line) for line in lines]
                encodings = backend.encode_batch([d["text"] for d in docs], add_special_tokens=False)
                for doc, enc in zip(docs, encodings):
                    label = tuple(doc[k] for k in LABEL_FIELDS)
                    if label not in streams:
                        streams[label] = _LabelStream(Path(tmp) / f"{len(streams)}.bin", seq_len, dtype)
                    streams[label].add(row, enc.ids, eos, tbytes)
                    row += 1
                progress.update(sum(len(line.encode("utf-8")) for line in lines))
            progress.close()
            dropped = sum(stream.close() for stream in streams.values())
            total = sum(stream.sequences for stream in streams.values())
            if total == 0 and split in OPTIONAL_SPLITS:  # e.g. registry.pool_heldout_fraction: 0
                continue
            if total == 0:
                raise ShardError(f"split '{split}' has no full sequence of {seq_len} tokens: {path} holds "
                                 "too little text; re-run the prepare_data stage or lower 'data.seq_len'")
            manifest["splits"][split] = _write_split(out_dir, split, streams, labels, label_id, total, seq_len,
                                                     dtype, dropped)
    np.save(out_dir / "token_bytes.npy", tbytes)
    atomic_write_json(out_dir / "labels.json", [dict(zip(LABEL_FIELDS, lab)) for lab in labels])
    manifest["tokenizer_sha256"] = sha256_file(tokenizer_dir / "tokenizer.json")
    record_file_hashes(out_dir, manifest)  # every file's sha256, checked by TokenShard (jest/data/shards.py)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def _write_split(out_dir: Path, split: str, streams, labels, label_id, total: int, seq_len: int, dtype,
                 dropped: int) -> dict[str, Any]:
    tokens_path = out_dir / f"{split}.tokens.npy"
    tmp_tokens = out_dir / f".{split}.tokens.npy.tmp"
    tokens = np.lib.format.open_memmap(tmp_tokens, mode="w+", dtype=dtype, shape=(total, seq_len))
    index = np.zeros(total, dtype=INDEX_DTYPE)
    per_source: dict[str, dict[str, int]] = defaultdict(lambda: {"sequences": 0, "tokens": 0})
    per_quality: dict[str, dict[str, int]] = defaultdict(lambda: {"sequences": 0, "tokens": 0})
    at = 0
    for label in sorted(streams):  # sorted: deterministic order across runs
        stream = streams[label]
        if label not in label_id:
            label_id[label] = len(labels)
            labels.append(label)
        n = stream.sequences
        if n:
            tokens[at:at + n] = np.fromfile(stream.path, dtype=dtype).reshape(n, seq_len)
            rows = np.concatenate(stream.index)
            index["doc"][at:at + n], index["n_bytes"][at:at + n] = rows[:, 0], rows[:, 1]
            index["label"][at:at + n] = label_id[label]
        for table, key in ((per_source, label[0]), (per_quality, label[1])):
            table[key]["sequences"] += n
            table[key]["tokens"] += n * seq_len
        at += n
    tokens.flush()
    del tokens
    tmp_tokens.replace(tokens_path)
    tmp_index = out_dir / f".{split}.index.npy.tmp"
    with open(tmp_index, "wb") as f:
        np.save(f, index)
    tmp_index.replace(out_dir / f"{split}.index.npy")
    return {"sequences": total, "tokens": total * seq_len, "dropped_tail_tokens": dropped,
            "bytes": int(index["n_bytes"].sum()), "by_source": dict(sorted(per_source.items())),
            "by_quality": dict(sorted(per_quality.items())), "sha256": sha256_file(tokens_path)}

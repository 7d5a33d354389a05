"""Fixed-length token sequences stored as memory-mapped arrays, with provenance.

Layout of a shards folder (one set of files per split):
    <split>.tokens.npy   (n_seq, seq_len) uint16/uint32, opened with mmap
    <split>.index.npy    structured (n_seq,): doc (first document of the sequence,
                         row in <split>.jsonl), label (row in labels.json), n_bytes
    labels.json          the provenance labels {source, quality, corruption}
    token_bytes.npy      UTF-8 bytes per token id (bits per byte)
    manifest.json        sequences, tokens, dropped tokens per split and source; the sha256 of
                         every file above ("files"), verified when a TokenShard opens them

Documents are packed only with documents of the same provenance label, each
followed by EOS, so that every sequence carries exactly one label: selection never
sees it, the analysis reports it. The tail of a label's stream shorter than
seq_len is dropped (counted in the manifest).
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from jest.io import atomic_write_json, disk_full, sha256_cached, sha256_file
from jest.data.tokenizer import load_tokenizer, token_byte_lengths

LABEL_FIELDS = ("source", "quality", "corruption")
INDEX_DTYPE = np.dtype([("doc", "<i4"), ("label", "<i4"), ("n_bytes", "<i4")])


class ShardError(RuntimeError):
    """A shard file is missing, truncated or does not match its manifest."""


def _read_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# Evaluation-only splits (jest/data/prepare.py): sharded when their file holds documents.
OPTIONAL_SPLITS = ("pool_heldout", "external")


def build_shards(data_dir: Path, tokenizer_dir: Path, out_dir: Path, seq_len: int,
                 splits: tuple[str, ...] = ("curated", "heldout", "pool")) -> dict:
    splits = tuple(splits) + tuple(s for s in OPTIONAL_SPLITS if s not in splits
                                   and (data_dir / f"{s}.jsonl").is_file() and (data_dir / f"{s}.jsonl").stat().st_size)
    tok = load_tokenizer(tokenizer_dir)
    eos = tok.eos_token_id
    tbytes = token_byte_lengths(tok)
    dtype = np.uint16 if len(tok) <= np.iinfo(np.uint16).max + 1 else np.uint32
    out_dir.mkdir(parents=True, exist_ok=True)

    labels: list[tuple] = []
    label_id: dict[tuple, int] = {}
    manifest = {"seq_len": seq_len, "vocab_size": len(tok), "dtype": np.dtype(dtype).name, "splits": {}}
    for split in splits:
        docs = _read_docs(data_dir / f"{split}.jsonl")
        if not docs:  # the tokenizer would fail on an empty batch with an IndexError
            raise ShardError(f"split '{split}' has no full sequence of {seq_len} tokens: "
                             f"{data_dir / f'{split}.jsonl'} holds no document; re-run the prepare_data stage "
                             "or add data to the split")
        ids = tok([d["text"] for d in docs], add_special_tokens=False)["input_ids"]
        streams: dict[tuple, list[tuple[int, list[int]]]] = defaultdict(list)
        for i, (doc, toks) in enumerate(zip(docs, ids)):
            streams[tuple(doc[k] for k in LABEL_FIELDS)].append((i, toks + [eos]))

        rows, index, per_source, dropped = [], [], defaultdict(lambda: {"sequences": 0, "tokens": 0}), 0
        for label in sorted(streams):  # sorted: deterministic order across runs
            if label not in label_id:
                label_id[label] = len(labels)
                labels.append(label)
            flat, doc_of = [], []
            for i, toks in streams[label]:
                flat.extend(toks)
                doc_of.extend([i] * len(toks))
            n_full = len(flat) // seq_len
            dropped += len(flat) - n_full * seq_len
            for s in range(n_full):
                seq = flat[s * seq_len:(s + 1) * seq_len]
                rows.append(seq)
                index.append((doc_of[s * seq_len], label_id[label], int(tbytes[seq].sum())))
            per_source[label[0]]["sequences"] += n_full
            per_source[label[0]]["tokens"] += n_full * seq_len
        if not rows and split in OPTIONAL_SPLITS:  # too little text for one sequence: no such held-out set
            continue
        if not rows:
            raise ShardError(f"split '{split}' has no full sequence of {seq_len} tokens: "
                             "add data or lower 'data.seq_len'")
        tokens = np.asarray(rows, dtype=dtype)
        _save_npy(out_dir / f"{split}.tokens.npy", tokens)
        _save_npy(out_dir / f"{split}.index.npy", np.asarray(index, dtype=INDEX_DTYPE))
        manifest["splits"][split] = {
            "sequences": len(rows), "tokens": len(rows) * seq_len, "dropped_tail_tokens": dropped,
            "bytes": int(sum(r[2] for r in index)), "by_source": dict(sorted(per_source.items())),
            "sha256": sha256_file(out_dir / f"{split}.tokens.npy"),
        }
    _save_npy(out_dir / "token_bytes.npy", tbytes)
    atomic_write_json(out_dir / "labels.json", [dict(zip(LABEL_FIELDS, lab)) for lab in labels])
    manifest["tokenizer_sha256"] = sha256_file(tokenizer_dir / "tokenizer.json")
    record_file_hashes(out_dir, manifest)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


SHARED_FILES = ("labels.json", "token_bytes.npy")


def shard_files(manifest: dict) -> list[str]:
    """Every file a shards folder holds besides its manifest: each split's tokens and index, the labels
    and the token byte lengths."""
    return [f"{split}.{part}.npy" for split in manifest["splits"] for part in ("tokens", "index")] + list(SHARED_FILES)


def record_file_hashes(out_dir: Path, manifest: dict) -> None:
    """manifest["files"]: the sha256 of every file written (the tokens' hash is reused, not recomputed).
    A run's identity (jest/training/identity.py) is made of these, and TokenShard checks each before use: one
    label byte changed in an index file would otherwise retrain an arm silently (issue #30)."""
    known = {f"{split}.tokens.npy": meta["sha256"] for split, meta in manifest["splits"].items()}
    manifest["files"] = {name: known.get(name) or sha256_file(out_dir / name) for name in shard_files(manifest)}


def cached_sha256(path: Path) -> str:
    """Each file is hashed once per process, however many TokenShards open it (training opens every
    held-out split; the labels are shared), and again after any write (jest.io.sha256_cached)."""
    return sha256_cached(path)


def verify_shard_file(shards_dir: Path, name: str, manifest: dict) -> None:
    """Raise ShardError naming the file and the rebuild command unless its sha256 is the manifest's."""
    path, manifest_path = Path(shards_dir) / name, Path(shards_dir) / "manifest.json"
    rebuild = (f"Rebuild the shards: `snakemake --cores N --forcerun build_shards [--configfile CONFIG]` "
               f"(or delete {shards_dir} and re-run your snakemake command)")
    want = manifest.get("files", {}).get(name)
    if want is None:
        raise ShardError(f"{manifest_path} records no sha256 for {name} (it was written by an older build_shards, "
                         f"which hashed only the tokens), so {path} cannot be verified. {rebuild}")
    try:
        got = cached_sha256(path)
    except OSError as err:
        raise ShardError(f"cannot read shard file {path} ({err}). {rebuild}") from err
    if got != want:
        raise ShardError(f"shard {path} was changed after build_shards wrote it: its sha256 is {got}, "
                         f"{manifest_path} says {want}. {rebuild}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write through a temp file; a full disk is said as such (numpy reports only a short write)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        full = disk_full(path, array.nbytes + 128, err)  # + the .npy header (at most 128 bytes here)
        if full is None:
            raise
        raise full from err
    os.replace(tmp, path)


class TokenShard:
    """Read-only view of one split: sequences by index, with their provenance labels."""

    def __init__(self, shards_dir: Path, split: str, verify_hash: bool = True):
        shards_dir = Path(shards_dir)
        manifest_path = shards_dir / "manifest.json"
        if not manifest_path.is_file():
            raise ShardError(f"no shard manifest at {manifest_path}: run the build_shards stage")
        manifest = json.loads(manifest_path.read_text())
        if split not in manifest["splits"]:
            raise ShardError(f"split '{split}' is not in {manifest_path}")
        meta = manifest["splits"][split]
        path = shards_dir / f"{split}.tokens.npy"
        try:
            self.tokens = np.load(path, mmap_mode="r")
            self.index = np.load(shards_dir / f"{split}.index.npy")
        except (OSError, ValueError) as err:  # missing or truncated file
            raise ShardError(f"cannot read shard {path} ({err}); delete {shards_dir} and "
                             "re-run the build_shards stage") from err
        if self.tokens.shape != (meta["sequences"], manifest["seq_len"]) or len(self.index) != meta["sequences"]:
            raise ShardError(f"shard {path} has shape {self.tokens.shape}, manifest says "
                             f"({meta['sequences']}, {manifest['seq_len']}); delete {shards_dir} and rebuild")
        # On by default (training, references and pool scoring read through here): hashing costs ~8 ms
        # per MB on the 2-core test machine under load (README, "Integrity checks"), once per file and
        # process, against minutes of training on it; a file changed after build_shards (a token, a
        # label byte of the index, labels.json) would otherwise train silently.
        if verify_hash:
            for name in (f"{split}.tokens.npy", f"{split}.index.npy", *SHARED_FILES):
                verify_shard_file(shards_dir, name, manifest)
        self.split = split
        self.seq_len = manifest["seq_len"]
        self.labels = json.loads((shards_dir / "labels.json").read_text())
        self.token_bytes = np.load(shards_dir / "token_bytes.npy")

    def __len__(self) -> int:
        return len(self.tokens)

    def get(self, indices: np.ndarray) -> torch.Tensor:
        """(len(indices), seq_len) int64 token ids. Sorted reads keep the mmap access sequential."""
        return torch.from_numpy(self.tokens[np.asarray(indices)].astype(np.int64))

    def label_of(self, indices: np.ndarray) -> list[dict]:
        return [self.labels[i] for i in self.index["label"][np.asarray(indices)]]


class EpochSampler:
    """Uniform sampling without replacement within an epoch, as a pure function of position.

    Candidate number p (counted from the start of training) is element p % n of the
    permutation of epoch p // n, seeded by (seed, epoch). Resuming needs only the
    position, and every policy reads the same stream.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._cache: tuple[int, np.ndarray] | None = None

    def _perm(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
        return self._cache[1]

    def take(self, position: int, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        for k in range(count):
            p = position + k
            out[k] = self._perm(p // self.n)[p % self.n]
        return out

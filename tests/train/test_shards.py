"""Tokenizer and shards: deterministic builds, one label per sequence, exact bytes, integrity errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jest.io import sha256_file
from jest.data.shards import EpochSampler, ShardError, TokenShard, build_shards
from jest.data.tokenizer import load_tokenizer, token_byte_lengths, train_tokenizer


def test_two_builds_are_byte_identical(smoke_workspace, tmp_path):
    ws = smoke_workspace
    tok2 = tmp_path / "tok"
    train_tokenizer([ws["data"] / "curated.jsonl", ws["data"] / "pool.jsonl"], ws["cfg"]["data"]["vocab_size"], tok2)
    assert sha256_file(tok2 / "tokenizer.json") == sha256_file(ws["tokenizer"] / "tokenizer.json")
    build_shards(ws["data"], tok2, tmp_path / "shards", ws["cfg"]["data"]["seq_len"])
    for f in sorted(p.name for p in ws["shards"].iterdir()):
        assert sha256_file(tmp_path / "shards" / f) == sha256_file(ws["shards"] / f), f


def test_manifest_gives_tokens_per_split_and_source(smoke_workspace):
    manifest = json.loads((smoke_workspace["shards"] / "manifest.json").read_text())
    pool = manifest["splits"]["pool"]
    assert pool["tokens"] == pool["sequences"] * manifest["seq_len"]
    assert sum(s["tokens"] for s in pool["by_source"].values()) == pool["tokens"]
    assert {"brown", "sotu", "email", "informal"} <= set(pool["by_source"])
    assert set(manifest["splits"]["heldout"]["by_source"]) == {"brown"}


def test_every_sequence_keeps_one_label_and_its_exact_bytes(smoke_workspace):
    from jest.data.tokenizer import _byte_decoder
    ws = smoke_workspace
    tok = load_tokenizer(ws["tokenizer"])
    byte_of = _byte_decoder()
    pool = TokenShard(ws["shards"], "pool", verify_hash=True)
    docs = [json.loads(line) for line in open(ws["data"] / "pool.jsonl", encoding="utf-8")]
    for i in range(0, len(pool), max(1, len(pool) // 25)):
        label = pool.label_of([i])[0]
        doc = docs[pool.index["doc"][i]]
        assert {k: doc[k] for k in ("source", "quality", "corruption")} == label
        ids = pool.get([i])[0].tolist()
        # the raw bytes behind the tokens (a sequence may cut a multi-byte character in two)
        pieces = [b"\0" if t == tok.eos_token_id else bytes(byte_of[c] for c in p)
                  for t, p in zip(ids, tok.convert_ids_to_tokens(ids))]
        raw = b"".join(pieces)
        assert pool.index["n_bytes"][i] == len(raw) - raw.count(b"\0")
        first_doc_part = raw.split(b"\0")[0]
        assert first_doc_part in doc["text"].encode("utf-8")
    lengths = token_byte_lengths(tok)
    assert lengths[tok.eos_token_id] == 0 and lengths.max() > 3


def test_truncated_shard_is_a_clear_error(smoke_workspace, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(smoke_workspace["shards"], shards)
    path = shards / "pool.tokens.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ShardError, match="rebuild|re-run"):
        TokenShard(shards, "pool")


def test_tampered_shard_fails_hash_verification(smoke_workspace, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(smoke_workspace["shards"], shards)
    arr = np.load(shards / "pool.tokens.npy")
    arr[0, 0] ^= 1
    np.save(shards / "pool.tokens.npy", arr)
    with pytest.raises(ShardError, match="sha256"):
        TokenShard(shards, "pool", verify_hash=True)


def test_sampler_is_a_permutation_per_epoch_and_stateless():
    sampler = EpochSampler(10, seed=3)
    first, second = sampler.take(0, 10), sampler.take(10, 10)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    # any position can be read directly: this is what makes resume exact
    assert np.array_equal(EpochSampler(10, seed=3).take(7, 6), np.concatenate([first[7:], second[:3]]))
    assert not np.array_equal(EpochSampler(10, seed=4).take(0, 10), first)

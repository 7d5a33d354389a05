"""The manifest: what each split contains, where it came from, and the config that made it.

Downstream stages and the analysis read composition from here instead of
re-scanning the jsonl files; the sha256 values tie the numbers to the exact bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pathlib import Path

from jest.data.documents import Document
from jest.data.sources import NpmPin
from jest.io import sha256_cached, sha256_file


def _breakdown(docs: Sequence[Document], field: str) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "characters": 0})
    for doc in docs:
        entry = counts[getattr(doc, field)]
        entry["documents"] += 1
        entry["characters"] += len(doc.text)
    return dict(sorted(counts.items()))


def split_summary(docs: Sequence[Document], file_name: str, file_sha256: str) -> dict[str, Any]:
    """Totals and per-label breakdowns of one split; ``utf8_bytes`` counts the texts only."""
    return {
        "file": file_name,
        "sha256": file_sha256,
        "documents": len(docs),
        "characters": sum(len(doc.text) for doc in docs),
        "utf8_bytes": sum(len(doc.text.encode("utf-8")) for doc in docs),
        "by_source": _breakdown(docs, "source"),
        "by_quality": _breakdown(docs, "quality"),
        "by_corruption": _breakdown(docs, "corruption"),
    }


def local_input_files(extra_sources: Sequence[Mapping[str, Any]]) -> list[tuple[str, Path]]:
    """(source name, path) of every local file the data stage reads besides the pinned packages:
    each jsonl source, and the plain local paths in an hf source's ``data_files`` (not URLs or globs).
    The Snakefile makes them inputs of prepare_data (an edited file re-runs it and what follows)
    and the manifest records their sha256."""
    files = []
    for source in extra_sources:
        if source["kind"] == "jsonl":
            files.append((source["name"], Path(source["path"])))
            continue
        data_files = source.get("data_files")
        entries = [] if data_files is None else [data_files] if isinstance(data_files, str) else list(data_files)
        files += [(source["name"], Path(e)) for e in entries if "://" not in e and not any(c in e for c in "*?[")]
    return files


def input_file_hashes(extra_sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """sha256 and size of every local input file (``local_input_files``), for the manifest."""
    return [{"source": name, "path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for name, path in local_input_files(extra_sources) if path.is_file()]


def content_sha256(path: Path, stamp: Path | None = None) -> str:
    """sha256 of `path`, kept in `stamp` while its size, mtime, ctime and inode are unchanged
    (jest.io.sha256_cached: an edit whose mtime was put back is still hashed again)."""
    return sha256_cached(path, stamp)


def input_file_contents(extra_sources: Sequence[Mapping[str, Any]], stamp: Path | None = None) -> list[list[str]]:
    """[path, sha256] of every local input file that exists: the prepare_data rule's rerun trigger
    (workflow/rules/data.smk), so that a file whose content changed re-runs it whatever its mtime."""
    return [[str(path), content_sha256(path, stamp)] for _, path in local_input_files(extra_sources)
            if path.is_file()]


def build_manifest(
    split_summaries: Mapping[str, dict[str, Any]], pins_used: Sequence[NpmPin], data_cfg: Mapping[str, Any]
) -> dict[str, Any]:
    """Assemble the manifest; ``data_cfg`` is stored after a JSON round trip so it matches the file.
    ``input_files`` ties the splits to the exact bytes of the local files they came from; the pinned
    packages are in ``sources`` (their sha256 is checked at every read, jest/data/sources.py)."""
    return {
        "input_files": input_file_hashes(data_cfg.get("extra_sources") or []),
        "splits": dict(sorted(split_summaries.items())),
        "sources": [
            {"name": pin.name, "version": pin.version, "sha256": pin.sha256}
            for pin in sorted(pins_used, key=lambda pin: pin.name)
        ],
        "data_cfg": json.loads(json.dumps(data_cfg, sort_keys=True, default=str)),
    }


def encode_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

"""Text extractors for registry packages: each turns package members into raw documents.

An extractor is ``(members) -> Iterator[RawDoc]`` where ``members`` yields
``(path, bytes)`` in archive order, so every extractor is testable on a few
in-memory fixture files without any package manager.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawDoc:
    """One extracted document before cleaning; ``group`` ties documents that must share a split."""

    name: str
    text: str
    group: str | None = None

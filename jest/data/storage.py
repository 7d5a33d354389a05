"""Atomic file writes, so a crashed or killed run never leaves a half-written split.

Snakemake treats an existing output as done; a partial jsonl with a plausible
name would silently poison every downstream stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from jest.data.documents import Document
from jest.io import atomic_write_bytes as write_atomic  # noqa: F401  (re-exported for the data stage)


def encode_jsonl(docs: Iterable[Document]) -> bytes:
    """One canonical JSON object per line, UTF-8, trailing newline."""
    return "".join(doc.to_json_line() + "\n" for doc in docs).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

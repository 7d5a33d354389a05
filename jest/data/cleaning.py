"""Cleaning of extracted registry documents: boilerplate lines, short documents, exact duplicates, groups.

Choice on boilerplate: lines repeated across many pages of one templated
source (javadoc footers, "Prev Up Home Next" navigation, copyright lines) are
*removed*, not kept as a noise class. They carry no document-specific words,
and kept they would dominate the sequences of short pages, so a learner's
preference for them would measure the template, not the text. The noisy class
stays noisy through what is left: API signatures, code, tables. How many
lines each source lost is recorded in the manifest.

Leakage groups: a document's group decides its split. Dictionary entries use
``lex:<prefix>`` (shared by GCIDE and WordNet); other documents use
``head:<hash of their first words>``, so copies of one page (the same doc tree
shipped twice, a page differing only in a version footer) share a split.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from jest.data.extractors import RawDoc

HEAD_WORDS = 64
_NON_WORD = re.compile(r"\W+")


def line_key(line: str) -> bytes:
    return hashlib.blake2b(line.strip().encode("utf-8"), digest_size=8).digest()


def count_line_documents(texts: Iterable[str]) -> tuple[Counter, int]:
    """For each distinct non-empty line, in how many documents it occurs; and the number of documents."""
    counts: Counter = Counter()
    n_docs = 0
    for text in texts:
        n_docs += 1
        counts.update({line_key(line) for line in text.splitlines() if line.strip()})
    return counts, n_docs


def boilerplate_keys(counts: Counter, n_docs: int, min_docs: int, doc_fraction: float) -> set[bytes]:
    """Lines found in at least ``max(min_docs, doc_fraction * n_docs)`` documents of one source."""
    threshold = max(min_docs, doc_fraction * n_docs)
    return {key for key, count in counts.items() if count >= threshold}


def strip_lines(text: str, drop: set[bytes]) -> tuple[str, int]:
    """``text`` without its boilerplate lines (blank-line runs collapsed); and how many went."""
    kept, removed = [], 0
    for line in text.splitlines():
        if line.strip() and line_key(line) in drop:
            removed += 1
            continue
        kept.append(line)
    cleaned = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", "\n".join(kept)).strip()
    return cleaned, removed


def content_digest(text: str) -> bytes:
    """Identity for exact-duplicate removal: the text with whitespace runs collapsed."""
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=16).digest()


def leakage_group(doc: RawDoc) -> str:
    if doc.group:
        return doc.group
    head = " ".join(_NON_WORD.sub(" ", doc.text.lower()).split()[:HEAD_WORDS])
    return "head:" + hashlib.blake2b(head.encode("utf-8"), digest_size=10).hexdigest()


def unit_interval(*parts: object) -> float:
    """A stable pseudo-uniform number in [0, 1) from ``parts`` (sha256, independent of Python's hash())."""
    joined = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(joined).digest()[:8], "big") / 2**64


def group_position(split_seed: int, group: str) -> float:
    """Where ``group`` falls in [0, 1): the one hash that places it in a registry split."""
    return unit_interval(split_seed, "registry-split", group)


def assign_split(role: str, group: str, split_seed: int, heldout_fraction: float, curated_fraction: float,
                 pool_heldout_fraction: float = 0.0) -> str:
    """The split of every document of ``group``: held-out first, then curated (curated role only), the
    top ``pool_heldout_fraction`` of the interval to ``pool_heldout``, else pool.

    One hash cuts [0, 1) into disjoint intervals, so a group lands in exactly one split, and the
    held-out slice of the pool comes out of the pool's own interval: the heldout and curated splits
    are the same with or without it.
    """
    if role == "external":
        return "external"
    u = group_position(split_seed, group)
    if u < heldout_fraction:
        return "heldout"
    if role == "curated" and u < heldout_fraction + curated_fraction:
        return "curated"
    if u >= 1.0 - pool_heldout_fraction:
        return "pool_heldout"
    return "pool"


class Deduplicator:
    """Keeps the first document of each content digest (16 bytes per document: fine for millions)."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def is_new(self, text: str) -> bool:
        digest = content_digest(text)
        if digest in self._seen:
            return False
        self._seen.add(digest)
        return True


def iter_clean(docs: Iterable[RawDoc], drop: set[bytes], min_words: int, stats: Counter) -> Iterator[RawDoc]:
    """Boilerplate lines stripped, short documents dropped; ``stats`` counts what went."""
    for doc in docs:
        text, removed = strip_lines(doc.text, drop) if drop else (doc.text, 0)
        stats["boilerplate_lines_removed"] += removed
        if len(text.split()) < min_words:
            stats["dropped_short"] += 1
            continue
        yield RawDoc(doc.name, text, doc.group)

"""The four embedded npm sources turned into labelled :class:`Document` lists.

Ids are ``<source>/<stable key from the package>`` so they survive re-runs and
never depend on reading order.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from jest.data.brown import detokenize_brown
from jest.data.documents import CLEAN, NOISY, OFFDOMAIN, Document
from jest.data.sources import iter_members

# Source labels as they appear in the split files and the manifest.
BROWN = "brown"
SOTU = "sotu"
EMAIL = "email"
INFORMAL = "informal"
EMBEDDED_SOURCE_LABELS = (BROWN, SOTU, EMAIL, INFORMAL)

# nlp-corpus ships unrelated sentences; chunks of this many make documents of
# roughly Brown paragraph-to-page length (about 2,200 characters).
INFORMAL_SENTENCES_PER_DOC = 25


def load_brown(tarball: Path) -> list[Document]:
    """All 500 Brown texts, tags stripped; group is the genre ("ca" for press reportage)."""
    docs = []
    for name, raw in iter_members(tarball, r"package/c[a-r]\d\d"):
        file_id = PurePosixPath(name).name
        docs.append(
            Document(
                id=f"{BROWN}/{file_id}",
                text=detokenize_brown(raw.decode("ascii")),
                source=BROWN,
                group=file_id[:2],
                quality=CLEAN,
            )
        )
    return sorted(docs, key=lambda doc: doc.id)


def load_sotu(tarball: Path) -> list[Document]:
    """State of the Union addresses 1790-2021: edited prose, but a different register than Brown."""
    docs = []
    for name, raw in iter_members(tarball, r"package/data/[^/]+\.json"):
        record = json.loads(raw)
        # The file stem ("1953_harry_s_truman_d") is unique; the year alone is not.
        docs.append(
            Document(
                id=f"{SOTU}/{PurePosixPath(name).stem}",
                text=record["text"],
                source=SOTU,
                group=str(record["year"]),
                quality=OFFDOMAIN,
            )
        )
    return sorted(docs, key=lambda doc: doc.id)


def load_spam_assassin(tarball: Path) -> list[Document]:
    """Raw e-mails with full headers (ham and spam); group is the corpus part (spam-1, easy-ham-1, ...)."""
    docs = []
    for _name, raw in iter_members(tarball, r"package/data/[^/]+/[^/]+\.json"):
        record = json.loads(raw)
        docs.append(
            Document(
                id=f"{EMAIL}/{record['group']}/{record['id']}",
                text=record["text"],
                source=EMAIL,
                group=record["group"],
                quality=NOISY,
            )
        )
    return sorted(docs, key=lambda doc: doc.id)


def load_nlp_corpus(tarball: Path) -> list[Document]:
    """Informal sentences (reviews, forums, tweets) chunked into pseudo-documents, one sentence per line."""
    docs = []
    for name, raw in iter_members(tarball, r"package/builds/doc-\d+\.json"):
        build = PurePosixPath(name).stem  # "doc-12"
        sentences = json.loads(raw)
        for start in range(0, len(sentences), INFORMAL_SENTENCES_PER_DOC):
            chunk = sentences[start : start + INFORMAL_SENTENCES_PER_DOC]
            docs.append(
                Document(
                    id=f"{INFORMAL}/{build}/{start // INFORMAL_SENTENCES_PER_DOC:03d}",
                    text="\n".join(chunk),
                    source=INFORMAL,
                    group=build,
                    quality=NOISY,
                )
            )
    return sorted(docs, key=lambda doc: doc.id)

"""Dictionaries and short-entry collections: dictd ``.dict.dz``, WordNet data files, fortunes, SWORD.

Entries are tiny, so documents are runs of consecutive entries (about
``DOC_CHARS`` characters). Dictionary documents carry the leakage group
``lex:<first two letters of the headword>``: GCIDE quotes WordNet's glosses
for the same words, so GCIDE's and WordNet's entries for one prefix must land
in the same split or a held-out WordNet gloss would be trained on through GCIDE.
"""

from __future__ import annotations

import re
import struct
import zlib
import gzip

from collections.abc import Iterable, Iterator

from jest.data.extractors import RawDoc
from jest.data.extractors.markup import tidy

DOC_CHARS = 20_000
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# GCIDE/FOLDOC attribution lines ("[1913 Webster]", "[PJC]", "[WordNet 1.5]"): provenance, not prose.
_ATTRIBUTION = re.compile(r"^\s*\[[^\]]{1,40}\]\s*$")


def lex_group(headword: str) -> str:
    letters = re.sub(r"[^a-z]", "", headword.lower())
    return f"lex:{letters[:2] or '_'}"


def _decode_b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def _chunk(entries: Iterable[tuple[str, str]], name: str) -> Iterator[RawDoc]:
    """Group consecutive entries of one leakage group into documents of about ``DOC_CHARS``."""
    parts: list[str] = []
    size, group, part = 0, None, 0
    for headword, text in entries:
        entry_group = lex_group(headword)
        if parts and (entry_group != group or size >= DOC_CHARS):
            yield RawDoc(f"{name}#{group}.{part}", "\n\n".join(parts), group)
            part = part + 1 if entry_group == group else 0
            parts, size = [], 0
        group = entry_group
        parts.append(text)
        size += len(text)
    if parts:
        yield RawDoc(f"{name}#{group}.{part}", "\n\n".join(parts), group)


def extract_dictd(members: Iterable[tuple[str, bytes]]) -> Iterator[RawDoc]:
    """dictd databases: ``.index`` (headword, base64 offset, length) + gzip-compatible ``.dict.dz``.

    Needs the index before the data: both members are read, then entries are
    taken in index (alphabetical) order; the ``00-database-*`` entries are metadata.
    """
    files = dict(members)
    for index_name in sorted(n for n in files if n.endswith(".index")):
        data_name = index_name[: -len(".index")] + ".dict.dz"
        data = gzip.decompress(files[data_name])
        seen: set[tuple[int, int]] = set()
        entries = []
        for line in files[index_name].decode("utf-8", errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) < 3 or fields[0].startswith("00-database") or fields[0].startswith("00database"):
                continue
            span = (_decode_b64(fields[1]), _decode_b64(fields[2]))
            if span in seen:  # several headwords can point at one entry
                continue
            seen.add(span)
            raw = data[span[0]: span[0] + span[1]].decode("utf-8", errors="replace")
            lines = [line for line in raw.splitlines() if not _ATTRIBUTION.match(line)]
            entries.append((fields[0], tidy("\n".join(lines))))
        yield from _chunk(entries, data_name.rsplit("/", 1)[-1])


def extract_wordnet(members: Iterable[tuple[str, bytes]]) -> Iterator[RawDoc]:
    """WordNet ``data.*`` files: one entry per synset, "lemma, lemma: gloss"."""
    for name, data in members:
        entries = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header lines start with two spaces
            head, gloss = line.split("|", 1)
            fields = head.split()
            n_words = int(fields[3], 16)
            words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            words = [re.sub(r"\(\w+\)$", "", w) for w in words]
            entries.append((words[0], f"{', '.join(words)}: {gloss.strip()}"))
        entries.sort(key=lambda entry: (lex_group(entry[0]), entry[0].lower()))
        yield from _chunk(entries, name.rsplit("/", 1)[-1])


def extract_fortunes(members: Iterable[tuple[str, bytes]]) -> Iterator[RawDoc]:
    """fortune files: entries separated by lines holding only '%'; one document per file."""
    for name, data in members:
        entries = [tidy(e) for e in re.split(r"\n%\n", data.decode("utf-8", errors="replace"))]
        text = "\n\n".join(e for e in entries if e)
        for part, start in enumerate(range(0, len(text), DOC_CHARS)):
            yield RawDoc(f"{name}#{part}", text[start: start + DOC_CHARS])


def extract_plain(members: Iterable[tuple[str, bytes]]) -> Iterator[RawDoc]:
    """Plain (optionally gzipped) text files, split on blank lines into documents of about ``DOC_CHARS``."""
    for name, data in members:
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        paragraphs = re.split(r"\n\s*\n", data.decode("utf-8", errors="replace"))
        yield from _paragraph_docs(paragraphs, name)


def _paragraph_docs(paragraphs: list[str], name: str) -> Iterator[RawDoc]:
    parts: list[str] = []
    size, part = 0, 0
    for paragraph in paragraphs:
        paragraph = tidy(paragraph)
        if not paragraph:
            continue
        parts.append(paragraph)
        size += len(paragraph)
        if size >= DOC_CHARS:
            yield RawDoc(f"{name}#{part}", "\n\n".join(parts))
            parts, size, part = [], 0, part + 1
    if parts:
        yield RawDoc(f"{name}#{part}", "\n\n".join(parts))


_OSIS_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_OSIS_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title>", re.S)
_TAG = re.compile(r"<[^>]+>")
# Paragraph and verse starts, poetry line starts and ends: line breaks in the text.
_OSIS_BREAK = re.compile(r"<(?:div|verse|lb|l)\b[^>]*[se]ID[^>]*/>|<lb\b[^>]*/>")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?\u2019\u201d)])")


def extract_sword_ztext(members: Iterable[tuple[str, bytes]]) -> Iterator[RawDoc]:
    """SWORD zText modules: ``*.bzs`` holds (offset, size, uncompressed size) per zlib block of ``*.bzz``.

    With ``BlockType=BOOK`` a block is one book of the Bible: one document per
    block. OSIS footnotes go (apparatus, not text); verse and title tags become
    line breaks.
    """
    files = dict(members)
    for bzs_name in sorted(n for n in files if n.endswith(".bzs")):
        bzs, bzz = files[bzs_name], files[bzs_name[:-4] + ".bzz"]
        for block in range(len(bzs) // 12):
            offset, size, _ = struct.unpack("<III", bzs[12 * block: 12 * block + 12])
            if size == 0:
                continue
            osis = zlib.decompress(bzz[offset: offset + size]).decode("utf-8", errors="replace")
            osis = _OSIS_NOTE.sub(" ", osis)  # a note can sit between two words
            osis = _OSIS_TITLE.sub(lambda m: f"\n\n{m.group(1)}\n\n", osis)
            osis = _OSIS_BREAK.sub("\n", osis)
            text = tidy(_SPACE_BEFORE_PUNCT.sub(r"\1", _TAG.sub("", osis).replace("\u00b6", "")))
            if len(text.split()) < 20:
                continue  # the importer's milestone block and empty testament headers
            name = bzs_name.rsplit("/", 1)[-1][:-4]
            yield RawDoc(f"{name}#{block}", text, group=f"bible:{name}:{block}")


EXTRACTORS = {
    "dictd": extract_dictd,
    "wordnet": extract_wordnet,
    "fortunes": extract_fortunes,
    "plain": extract_plain,
    "sword_ztext": extract_sword_ztext,
}
__all__ = ["EXTRACTORS", "lex_group", "DOC_CHARS"]

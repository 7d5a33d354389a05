"""Labelled synthetic corruptions of clean text: the needles' bad twins in the pool.

Each function is pure: the output depends only on the text, a seed and its
parameters. The caller derives the seed from ``split_seed`` and the document id,
so a document's corruption does not change when other documents come and go.
Paragraph breaks ("\\n") are preserved by all three, so corrupted documents look
structurally like the clean ones and only their content gives them away.
"""

from __future__ import annotations

import math
import re
import string

from jest.data.seeding import StableRng

CORRUPTION_KINDS = ("shuffle_words", "char_noise", "boilerplate")

# A sentence ends at . ! or ? (optionally followed by a closing quote or
# bracket) followed by whitespace, but not after a capital initial ("J. Smith").
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<![A-Z]\.)[\"')\]]?\s+")
_NOISE_ALPHABET = string.ascii_letters + string.digits + " .,;:'-"

BOILERPLATE_BLOCK = "\n".join(
    [
        "Home | News | Sports | Business | Entertainment | Lifestyle | Contact Us | Log In",
        "We use cookies to improve your experience on our site. By continuing to browse, "
        "you agree to our use of cookies. Accept all cookies | Manage preferences",
        "Click here to subscribe to our newsletter and get 10% off your first order!",
        "Share this article: Facebook | Twitter | Email | Print",
        "Copyright (c) 2024 All rights reserved. Privacy Policy | Terms of Use | Sitemap",
    ]
)


def _split_sentences(line: str) -> list[str]:
    """Approximate sentence split; good enough to keep shuffles sentence-local."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        parts.append(line[start : match.end()].strip())
        start = match.end()
    parts.append(line[start:].strip())
    return [part for part in parts if part]


def shuffle_words(text: str, seed: int) -> str:
    """Shuffle the words inside each sentence; sentence, line and paragraph order stay.

    The result has exactly the clean text's words (a bag-of-words filter cannot
    tell them apart), only their order is destroyed.
    """
    rng = StableRng(seed)
    out_lines = []
    for line in text.split("\n"):
        sentences = []
        for sentence in _split_sentences(line):
            words = sentence.split()
            rng.shuffle(words)
            sentences.append(" ".join(words))
        out_lines.append(" ".join(sentences))
    return "\n".join(out_lines)


def char_noise(text: str, seed: int, rate: float) -> str:
    """Substitute, delete or insert a random character at each position with probability ``rate``.

    Newlines are never touched so the paragraph structure survives (OCR/typing
    noise damages characters, not layout).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"char_noise rate must be in [0, 1], got {rate}")
    rng = StableRng(seed)
    out: list[str] = []
    for char in text:
        if char == "\n" or rng.random() >= rate:
            out.append(char)
            continue
        operation = rng.randbelow(3)
        if operation == 0:  # substitute
            out.append(rng.choice(_NOISE_ALPHABET))
        elif operation == 1:  # insert before the character
            out.append(rng.choice(_NOISE_ALPHABET))
            out.append(char)
        # operation == 2: delete
    return "".join(out)


def boilerplate(text: str, seed: int, share: float = 0.5) -> str:
    """Interleave copies of :data:`BOILERPLATE_BLOCK` between paragraphs.

    Enough copies are inserted that about ``share`` of the result's characters
    are boilerplate, mimicking scraped pages where navigation and cookie banners
    outweigh the article. The seed only decides where the copies go; the
    original paragraphs keep their order and content.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"boilerplate share must be in (0, 1), got {share}")
    paragraphs = text.split("\n\n")
    copies = max(1, math.ceil(share / (1.0 - share) * len(text) / len(BOILERPLATE_BLOCK)))
    rng = StableRng(seed)
    # Gap g is "before paragraph g"; gap len(paragraphs) is after the last one.
    per_gap = [0] * (len(paragraphs) + 1)
    for _ in range(copies):
        per_gap[rng.randbelow(len(per_gap))] += 1
    pieces: list[str] = []
    for gap, count in enumerate(per_gap):
        pieces.extend([BOILERPLATE_BLOCK] * count)
        if gap < len(paragraphs):
            pieces.append(paragraphs[gap])
    return "\n\n".join(pieces)


def corrupt(text: str, kind: str, seed: int, char_noise_rate: float) -> str:
    """Apply the corruption named ``kind`` (one of :data:`CORRUPTION_KINDS`)."""
    if kind == "shuffle_words":
        return shuffle_words(text, seed)
    if kind == "char_noise":
        return char_noise(text, seed, char_noise_rate)
    if kind == "boilerplate":
        return boilerplate(text, seed)
    raise ValueError(f"unknown corruption kind {kind!r}; known: {CORRUPTION_KINDS}")

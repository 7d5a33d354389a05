"""Deterministic randomness that does not depend on Python's ``hash()`` or version.

Orders come from sha256 of (split_seed, purpose, document id), so adding or
removing one document never reshuffles the others. Per-document generators use
only ``random.Random(int).random()``, the one part of the ``random`` module
whose output Python guarantees across versions; everything else (randbelow,
shuffle) is built on top of it here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, MutableSequence, Sequence
from typing import TypeVar

T = TypeVar("T")


def _digest(*parts: object) -> bytes:
    # The separator keeps ("ab", "c") and ("a", "bc") distinct.
    joined = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).digest()


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any sequence of printable parts."""
    return int.from_bytes(_digest(*parts)[:8], "big")


def seeded_order(ids: Iterable[str], split_seed: int, purpose: str) -> list[str]:
    """``ids`` in a pseudo-random order fixed by ``split_seed`` and ``purpose``."""
    return sorted(ids, key=lambda doc_id: (_digest(split_seed, purpose, doc_id), doc_id))


class StableRng:
    """A small generator whose streams are identical on every Python version."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def random(self) -> float:
        """Uniform float in [0, 1)."""
        return self._random.random()

    def randbelow(self, n: int) -> int:
        """Uniform int in [0, n); ``n`` must be positive."""
        if n <= 0:
            raise ValueError(f"randbelow needs a positive bound, got {n}")
        return min(int(self._random.random() * n), n - 1)

    def choice(self, seq: Sequence[T]) -> T:
        """One element of a non-empty sequence."""
        return seq[self.randbelow(len(seq))]

    def shuffle(self, items: MutableSequence[T]) -> None:
        """In-place Fisher-Yates shuffle."""
        for i in range(len(items) - 1, 0, -1):
            j = self.randbelow(i + 1)
            items[i], items[j] = items[j], items[i]

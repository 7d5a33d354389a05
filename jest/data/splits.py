"""Deterministic selection: stratified Brown splits and budgeted noisy sources.

All choices are prefixes of :func:`seeded_order` orders, so they depend only on
``split_seed`` and document ids, never on file order or ``hash()``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from fractions import Fraction

from jest.data.documents import Document
from jest.data.seeding import seeded_order


def round_half_up(value: float) -> int:
    """Round to nearest, ties up (Python's round() rounds ties to even)."""
    return math.floor(value + 0.5)


def largest_remainder(total: int, sizes: Mapping[str, int], caps: Mapping[str, int] | None = None) -> dict[str, int]:
    """Share ``total`` slots among groups in proportion to ``sizes`` (Hamilton's method).

    Every group gets the floor or the ceiling of its exact quota and the shares
    sum to ``total``; ties in the remainder go to the alphabetically first group.
    ``caps`` (default: ``sizes``) bounds each share; a slot a full group cannot
    take goes to the next group in remainder order. Exact fractions keep the
    result free of float rounding.
    """
    caps = dict(sizes) if caps is None else dict(caps)
    whole = sum(sizes.values())
    if not 0 <= total <= sum(caps.values()):
        raise ValueError(f"cannot allocate {total} slots with capacity {sum(caps.values())}")
    if total == 0:
        return {group: 0 for group in sizes}
    quotas = {group: Fraction(total * size, whole) for group, size in sizes.items()}
    shares = {group: min(math.floor(quota), caps[group]) for group, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda group: (-(quotas[group] - math.floor(quotas[group])), group))
    leftover = total - sum(shares.values())
    while leftover:
        # Without caps one pass suffices; with caps, later passes fill spare capacity.
        for group in by_remainder:
            if leftover and shares[group] < caps[group]:
                shares[group] += 1
                leftover -= 1
    return shares


def _by_group(docs: Sequence[Document]) -> dict[str, list[Document]]:
    groups: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        groups[doc.group].append(doc)
    return dict(sorted(groups.items()))


def _seeded(docs: Sequence[Document], split_seed: int, purpose: str) -> list[Document]:
    by_id = {doc.id: doc for doc in docs}
    return [by_id[doc_id] for doc_id in seeded_order(by_id, split_seed, purpose)]


def stratified_subset(docs: Sequence[Document], max_docs: int | None, split_seed: int) -> list[Document]:
    """At most ``max_docs`` documents with every group represented in proportion."""
    if max_docs is None or max_docs >= len(docs):
        return list(docs)
    groups = _by_group(docs)
    shares = largest_remainder(max_docs, {group: len(members) for group, members in groups.items()})
    chosen: list[Document] = []
    for group, members in groups.items():
        chosen.extend(_seeded(members, split_seed, "brown-subset")[: shares[group]])
    return sorted(chosen, key=lambda doc: doc.id)


def stratified_split(
    docs: Sequence[Document], heldout_fraction: float, curated_fraction: float, split_seed: int
) -> tuple[list[Document], list[Document], list[Document]]:
    """Split documents into (heldout, curated, rest), stratified by ``group``.

    Totals are ``round(fraction * len(docs))``, shared among groups by largest
    remainder. Held-out is allocated first; curated then only uses what each
    group has left, so a small group whose two shares both round up does not
    make curated come out short.
    """
    groups = _by_group(docs)
    sizes = {group: len(members) for group, members in groups.items()}
    heldout_shares = largest_remainder(round_half_up(heldout_fraction * len(docs)), sizes)
    spare = {group: sizes[group] - heldout_shares[group] for group in sizes}
    curated_total = min(round_half_up(curated_fraction * len(docs)), sum(spare.values()))
    curated_shares = largest_remainder(curated_total, sizes, caps=spare)
    heldout: list[Document] = []
    curated: list[Document] = []
    rest: list[Document] = []
    for group, members in groups.items():
        ordered = _seeded(members, split_seed, "brown-split")
        n_heldout = heldout_shares[group]
        n_curated = curated_shares[group]
        heldout.extend(ordered[:n_heldout])
        curated.extend(ordered[n_heldout : n_heldout + n_curated])
        rest.extend(ordered[n_heldout + n_curated :])
    return heldout, curated, rest


def take_until_budget(docs: Sequence[Document], max_chars: int, split_seed: int, purpose: str) -> list[Document]:
    """Documents in seeded order until their characters reach ``max_chars``.

    The budget is a target: the last document may overshoot it by less than its
    own length, which keeps the choice unbiased by document length.
    """
    chosen: list[Document] = []
    total = 0
    for doc in _seeded(docs, split_seed, purpose):
        if total >= max_chars:
            break
        chosen.append(doc)
        total += len(doc.text)
    return chosen


def carve_pool_heldout(
    pool: Sequence[Document], fraction: float, split_seed: int
) -> tuple[list[Document], list[Document]]:
    """Split pool documents into (pool, pool_heldout), per source, by a stable hash of the id.

    Each source gives ``round(fraction * n)`` of its documents, at least one when
    it has two or more (so every pool source gets a held-out slice even at smoke
    scale) and none when it has a single document (the pool keeps it). Taking
    the slice per source keeps the held-out sample in the pool's proportions:
    it is both the per-source sets and the pool's own mixture.
    """
    by_source: dict[str, list[Document]] = defaultdict(list)
    for doc in pool:
        by_source[doc.source].append(doc)
    kept: list[Document] = []
    heldout: list[Document] = []
    for source, docs in sorted(by_source.items()):
        n_heldout = 0 if len(docs) < 2 or fraction <= 0 else max(1, round_half_up(fraction * len(docs)))
        ordered = _seeded(docs, split_seed, f"pool-heldout:{source}")
        heldout.extend(ordered[:n_heldout])
        kept.extend(ordered[n_heldout:])
    return kept, heldout

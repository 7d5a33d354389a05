"""The held-out sets every evaluation scores (DESIGN.md, "Where a gain comes from").

A reference trained on curated text re-weights the learner toward the curated
domain, and a held-out set from that domain rewards re-weighting as much as
selection. So besides the curated-domain set (``heldout``: Brown, the metric
names ``heldout_loss`` / ``heldout_bpb`` keep their meaning) every evaluation
scores:

- ``src_<source>``: a held-out slice of each pool source (split ``pool_heldout``,
  carved out of the pool documents before the pool was built);
- ``pool_mix``: the whole ``pool_heldout`` split, a sample in the pool's own
  proportions ("what the learner would see without curation");
- ``ext_<source>``: external domains in neither the curated split nor the pool
  (split ``external``, e.g. Shakespeare).

Their metrics are ``heldout_loss_<set>`` and ``heldout_bpb_<set>``, with the standard error of
the loss over the set's sequences (``heldout_se_loss_<set>``) and the set's size
(``heldout_sequences_<set>``, ``heldout_tokens_<set>``): jest.evaluation.heldout.METRIC_KEYS. Sequences are
fixed (evenly spaced over the set's rows), so every evaluation of every arm
scores the same text. A shard's rows are grouped by provenance label, so even
spacing over ``pool_heldout`` keeps each source's share.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jest.data.shards import TokenShard

CURATED_DOMAIN_SPLIT = "heldout"


@dataclass(frozen=True)
class HeldoutSet:
    name: str              # "" for the curated-domain set, else "src_<source>", "pool_mix", "ext_<source>"
    shard: TokenShard
    indices: np.ndarray    # rows of `shard` scored at every evaluation

    @property
    def suffix(self) -> str:
        return f"_{self.name}" if self.name else ""


def evenly_spaced(rows: np.ndarray, count: int) -> np.ndarray:
    """At most `count` of `rows`, evenly spaced (the same ones every time)."""
    if len(rows) == 0:
        return rows
    picks = np.unique(np.linspace(0, len(rows) - 1, min(count, len(rows))).astype(np.int64))
    return np.asarray(rows)[picks]


def _by_source(shard: TokenShard) -> dict[str, np.ndarray]:
    sources = np.array([shard.labels[i]["source"] for i in shard.index["label"]])
    return {source: np.flatnonzero(sources == source) for source in sorted(set(sources.tolist()))}


def build_heldout_sets(shards_dir: Path, eval_sequences: int, per_set: int | None) -> list[HeldoutSet]:
    """The curated-domain set with `eval_sequences` rows (first: the trainer scores only it between the
    all-set points of StepPlan), then the others with `per_set` rows each
    (None: `eval_sequences`). A split the shards do not hold (an older shards folder, or no
    external domain configured) gives no sets; the card lists what was evaluated."""
    per_set = per_set or eval_sequences
    heldout = TokenShard(shards_dir, CURATED_DOMAIN_SPLIT)
    sets = [HeldoutSet("", heldout, evenly_spaced(np.arange(len(heldout)), eval_sequences))]
    present = json.loads((Path(shards_dir) / "manifest.json").read_text())["splits"]
    if "pool_heldout" in present:
        pool_heldout = TokenShard(shards_dir, "pool_heldout")
        for source, rows in _by_source(pool_heldout).items():
            sets.append(HeldoutSet(f"src_{source}", pool_heldout, evenly_spaced(rows, per_set)))
        sets.append(HeldoutSet("pool_mix", pool_heldout, evenly_spaced(np.arange(len(pool_heldout)), per_set)))
    if "external" in present:
        external = TokenShard(shards_dir, "external")
        for source, rows in _by_source(external).items():
            sets.append(HeldoutSet(f"ext_{source}", external, evenly_spaced(rows, per_set)))
    return sets


def evaluate_sets(sets: list[HeldoutSet], evaluate: Callable[[TokenShard, np.ndarray], dict]) -> dict:
    """`evaluate(shard, indices)` -> its keys (jest.evaluation.heldout.METRIC_KEYS) per set, renamed with the
    set's suffix."""
    out = {}
    for hs in sets:
        for key, value in evaluate(hs.shard, hs.indices).items():
            out[f"{key}{hs.suffix}"] = value
    return out


def describe(sets: list[HeldoutSet]) -> dict:
    """For the card: which sets were scored, from which split, with how many sequences and target tokens
    (seq_len - 1 per sequence: every row of a shard has seq_len tokens)."""
    return {hs.name or "curated": {"split": hs.shard.split, "sequences": int(len(hs.indices)),
                                   "tokens": int(len(hs.indices)) * (hs.shard.seq_len - 1)} for hs in sets}

"""Control arms (DESIGN.md, "Where a gain comes from"): what a JEST gain must be compared with.

Each trains uniformly, through the same loop as the uniform baseline (same
initialisation for the same seed, the same EpochSampler stream logic), on a
different *set* of sequences, which the policy's `draw_set` returns:

- `oracle_clean`: the pool's sequences labelled clean (and, on the large preset, those of
  the curated sources: ORACLE_QUALITIES). It reads the provenance labels that selection never
  sees: the ceiling of pure re-weighting.
- `offline_filter`: the reference scores the pool once (its cached pool scores);
  the best (1 - f) fraction, globally, by the lowest reference loss is kept (the
  perplexity-filter baseline of DCLM and Ankner et al. 2024, arXiv 2405.20541).
- `curated_only`: the reference's curated split (the trainer reads that split:
  jest.training.trainer.RunSpec.train_split).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from baselines.uniform import UniformPolicy
from jest.policies.reference import Reference
from jest.policies.registry import PolicySpec

if TYPE_CHECKING:  # config validation imports this module for its specs: no torch here
    from jest.data.shards import TokenShard

CLEAN = "clean"  # the quality label of clean pool text (jest.data.documents.CLEAN)
# The qualities the oracle draws from: clean text, and on the large preset (data.preset: large) the pool's
# documents of the curated sources (quality "curated": the reference's own domain, held in the pool, about
# 27k sequences next to Brown's ~3.7k, so that the scale ladder's oracle arms never repeat data). The
# default preset's pool has no "curated" quality: its oracle is unchanged.
ORACLE_QUALITIES = (CLEAN, "curated")


class EmptyDrawSetError(ValueError):
    """A control arm's set of sequences is empty."""


def clean_rows(shard: TokenShard, subset: np.ndarray) -> np.ndarray:
    """The rows of `subset` whose provenance quality is one of ORACLE_QUALITIES."""
    quality = np.array([shard.labels[i]["quality"] for i in shard.index["label"][subset]])
    return np.asarray(subset)[np.isin(quality, ORACLE_QUALITIES)]


def keep_best(scores: np.ndarray, subset: np.ndarray, filter_ratio: float) -> np.ndarray:
    """The round((1 - f) * n) rows of `subset` with the lowest `scores` (ties: the lower row), sorted."""
    subset = np.asarray(subset)
    n_keep = max(1, int(round((1.0 - filter_ratio) * len(subset))))
    order = np.lexsort((subset, scores[subset]))  # by score, then by row: deterministic under ties
    return np.sort(subset[order[:n_keep]])


class OracleCleanPolicy(UniformPolicy):
    name = "oracle_clean"

    def draw_set(self, shard: TokenShard, subset: np.ndarray) -> np.ndarray:
        rows = clean_rows(shard, subset)
        if len(rows) == 0:
            raise EmptyDrawSetError(f"oracle_clean: the '{shard.split}' split has no sequence labelled "
                                    f"{' or '.join(ORACLE_QUALITIES)}; it needs clean text in the pool (data.brown, data.extra_sources)")
        return rows


class OfflineFilterPolicy(UniformPolicy):
    name = "offline_filter"

    def __init__(self, arm: dict, scores: np.ndarray, fixed_flops: float):
        self.arm, self.scores, self.fixed_flops = arm, scores, fixed_flops

    @classmethod
    def load(cls, arm: dict, ctx) -> "OfflineFilterPolicy":
        """The reference's cached pool scores, checked like JEST's (jest.policies.reference); its training
        and the one-time scoring are this arm's fixed FLOPs (the `total` accounting)."""
        ref = Reference.open(arm, ctx)
        scores, scoring_flops = ref.pool_scores(ctx)
        return cls(arm, np.asarray(scores), ref.train_flops + scoring_flops)

    def draw_set(self, shard: TokenShard, subset: np.ndarray) -> np.ndarray:
        return keep_best(self.scores, subset, self.arm["filter_ratio"])


class CuratedOnlyPolicy(UniformPolicy):
    name = "curated_only"


ORACLE_CLEAN = PolicySpec(
    name="oracle_clean", build="baselines.controls:OracleCleanPolicy", group="control", role="oracle",
    draws_from="clean",
    summary="uniform over the pool's sequences labelled clean (it reads the provenance labels selection never "
            "sees: re-weighting by labels)")
OFFLINE_FILTER = PolicySpec(
    name="offline_filter", build="baselines.controls:OfflineFilterPolicy.load", group="control", role="filter",
    draws_from="kept", reads_reference=lambda arm: "scores",
    keys={"filter_ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.8,
                           "description": "Share of the pool filtered out once, globally (round((1 - f) n) "
                                          "sequences kept)."},
          "reference": {"type": "string", "default": "ref",
                        "description": "Name of the reference whose cached pool scores rank the pool (a key of "
                                       "'references')."}},
    # the lowest reference loss is kept: there is no learner before training
    fixed={"criterion": "easy_reference"},
    summary="the reference scores the pool once, before training; uniform over the best (1 - filter_ratio) of it")
CURATED_ONLY = PolicySpec(
    name="curated_only", build="baselines.controls:CuratedOnlyPolicy", group="control", train_split="curated",
    summary="uniform over the reference's curated split")

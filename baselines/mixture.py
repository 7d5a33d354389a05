"""The mixture-matched control (issue #27): JEST's mixture, without JEST's choice inside it.

A reference trained on curated text, scoring a mixed pool, moves the learner's mixture toward the
curated domain; a curated held-out set then rewards that re-weighting as much as selection. This arm
separates the two. It draws the very super-batch its JEST arm draws at each step (the same seed, the
same stream positions, the same B = b / (1 - f)), and from it takes, in every (source, quality) cell,
exactly as many sequences as JEST's selection took there at that step (read from the JEST run's
metrics: `sel_share_cell_*`, logged every step), chosen uniformly at random within the cell. Its
mixture therefore follows JEST's step by step, drift included; JEST minus this arm is what choosing
*within* each part of the mixture adds beyond re-weighting between the parts.

It reads the provenance labels (as the oracle does) and scores nothing: its FLOPs are a uniform run's.
Its train job waits for the JEST run of the same seed, whose metrics (checked against the sha256 its
card recorded) are part of this run's identity (jest/training/identity.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jest.config import ConfigError
from jest.policies.base import PolicyContext, Selection, step_generator
from jest.policies.jest_spec import candidates_per_sequence, super_batch_size
from jest.policies.registry import PolicySpec

if TYPE_CHECKING:
    from jest.data.shards import TokenShard

CELL = "sel_share_cell_"  # the metrics keys of JEST's per-step selection, one per (source, quality) cell


class MissingMatchedRunError(RuntimeError):
    """The JEST run whose mixture this arm follows is missing, unfinished or does not log its cells."""


def matched_counts(rows: list[dict], batch_size: int, steps: int, source: Path) -> list[dict[str, int]]:
    """Per step 1..steps: {cell: sequences JEST chose there}, from its metrics rows (every step logged)."""
    by_step = {int(r["step"]): r for r in rows}
    missing = [s for s in range(1, steps + 1) if s not in by_step or not any(k.startswith(CELL) for k in by_step[s])]
    if missing:
        raise MissingMatchedRunError(
            f"{source} has no per-step selection cells at {len(missing)} of {steps} steps (first: {missing[0]}): the "
            "matched arm must log every step (train.log_every: 1) with a harness that logs cells; re-train it: "
            "`snakemake --cores N --forcerun train [--configfile CONFIG]` for that arm")
    out = []
    for s in range(1, steps + 1):
        counts = {k[len(CELL):]: round(v * batch_size) for k, v in by_step[s].items() if k.startswith(CELL)}
        counts = {c: n for c, n in counts.items() if n}
        if sum(counts.values()) != batch_size:
            raise MissingMatchedRunError(f"{source}, step {s}: the cells add up to {sum(counts.values())} sequences, "
                                         f"not the batch of {batch_size}: another batch size than this arm's")
        out.append(counts)
    return out


class MixtureMatchedPolicy:
    """Uniform within each (source, quality) cell, at the counts JEST chose from the same super-batch."""

    name = "mixture_matched"
    fixed_flops = 0.0  # it scores nothing and trains no reference

    def __init__(self, arm: dict, ctx: PolicyContext, counts: list[dict[str, int]] | None = None):
        self.arm, self.ctx, self.cells = arm, ctx, None
        self.counts = counts if counts is not None else self._read_counts(arm, ctx)

    @staticmethod
    def _read_counts(arm: dict, ctx: PolicyContext) -> list[dict[str, int]]:
        from jest.tracking.metrics import verified_rows
        run = Path(ctx.runs_root) / f"{arm['match_arm']}_s{ctx.seed}"
        card_path = run / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        if card.get("status") != "finished":
            raise MissingMatchedRunError(f"the run this arm follows, {run}, is not finished ({card_path} missing or "
                                         f"unfinished): train arm '{arm['match_arm']}' first")
        batch, steps = int(card["config"]["train"]["batch_size"]), int(card["steps"])
        return matched_counts(verified_rows(run, card), batch, steps, run / "metrics.jsonl")

    def super_batch_size(self, batch_size: int) -> int:
        return super_batch_size(batch_size, self.arm["filter_ratio"])  # its JEST arm's super-batch

    def draw_set(self, shard: "TokenShard", subset: np.ndarray) -> np.ndarray:
        """All of the split (the same stream as JEST's); records each row's cell for `select`."""
        from jest.training.runspec import cell_of
        self.cells = np.array([cell_of(lab) for lab in shard.labels])[shard.index["label"]]
        return subset

    def select(self, step: int, candidates, candidate_ids: np.ndarray, learner, batch_size: int) -> Selection:
        import torch
        if step >= len(self.counts):
            raise MissingMatchedRunError(f"step {step + 1}: the matched run has {len(self.counts)} steps only")
        cells = self.cells[candidate_ids]
        gen = step_generator(self.ctx.seed, step)
        chosen = []
        for cell, n in sorted(self.counts[step].items()):
            where = np.flatnonzero(cells == cell)
            if len(where) < n:
                raise MissingMatchedRunError(
                    f"step {step + 1}: JEST chose {n} sequences of cell {cell}, this super-batch has {len(where)}: it "
                    "is not the super-batch JEST drew (another seed, batch size or filter ratio)")
            pick = torch.randperm(len(where), generator=gen)[:n].numpy()
            chosen.extend(where[pick].tolist())
        chosen = np.sort(np.array(chosen, dtype=np.int64))
        return Selection(chosen=chosen, diagnostics={"matched_cells": float(len(self.counts[step]))})


def check(cfg: dict, name: str, arm: dict) -> None:
    """match_arm names a selection arm that draws a super-batch; this arm takes its filter ratio (so the same
    super-batch), its seeds and its batch size."""
    from jest.policies.registry import get_spec
    match = arm["match_arm"]
    selection = sorted(a for a, s in cfg["arms"].items() if get_spec(s["policy"]).role == "claim")
    if match not in cfg["arms"] or get_spec(cfg["arms"][match]["policy"]).role != "claim":
        raise ConfigError(f"'arms.{name}.match_arm' = {match!r} is not a JEST arm of this config; allowed values: "
                          f"{selection}")
    m = cfg["arms"][match]
    if m.get("budget", 1.0) != arm["budget"] or "rung" in m or "rung" in arm:
        raise ConfigError(f"'arms.{name}': the mixture-matched arm trains the steps of its JEST arm '{match}': give it "
                          f"the same budget ({m.get('budget', 1.0)}), and no ladder rung")
    if cfg["train"]["log_every"] != 1:
        raise ConfigError(f"'arms.{name}' follows '{match}' step by step, which needs 'train.log_every' = 1 (it is "
                          f"{cfg['train']['log_every']}): the matched run logs its selection's cells at logged steps")
    arm["filter_ratio"] = m["filter_ratio"]  # the same super-batch as its JEST arm's (part of its training hash)


SPEC = PolicySpec(
    name="mixture_matched", build="baselines.mixture:MixtureMatchedPolicy", group="control", role="matched",
    summary="JEST's mixture without JEST's choice: from JEST's super-batch, at each step as many sequences per "
            "(source, quality) cell as JEST chose there, uniformly within the cell",
    keys={"match_arm": {"type": "string", "default": "jest_f0.8",
                        "description": "The JEST arm whose per-step mixture this arm follows (its run of the same "
                                       "seed is read; this arm's train job waits for it)."},
          "filter_ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                           "description": "Set from the matched arm's, so that both draw the same super-batch; "
                                          "not given by hand (a value given is replaced)."}},
    reads_arm=lambda arm: arm["match_arm"],
    candidates_per_sequence=candidates_per_sequence, check=check)

"""What happens at which step of a run: its length, the learning rate, and the steps that
are logged, evaluated on the held-out set, snapshotted for lm-eval and checkpointed.

A run's length is `train.steps` times its arm's `budget` (the uniform compute family:
the baseline trained to several budgets, DESIGN.md "Measuring a speedup"). Every point
follows the run's own length, so each run anneals to the floor at its own end and is
evaluated along its own curve. Warmup stays `train.warmup_steps` at every budget: it exists
for the optimizer's first updates (AdamW's moment estimates, the large early gradients),
which do not depend on how long the run goes on; and the runs of one seed then share
their first updates exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def run_steps(train_cfg: dict, budget: float) -> int:
    """Optimizer steps of a run at `budget` times the configured `train.steps`."""
    return max(1, round(budget * train_cfg["steps"]))


def arm_train_config(cfg: dict, arm: str) -> dict:
    """The `train` section as the arm's run uses it: the arm's own overrides (a scale-ladder rung's
    steps, batch, warmup, lr: jest/ladder/rungs.py), then `steps` scaled by the arm's budget."""
    train = {**cfg["train"], **cfg["arms"][arm].get("train", {})}
    return {**train, "steps": run_steps(train, cfg["arms"][arm]["budget"])}


def decay_steps(train_cfg: dict) -> int:
    """The steps in which the learning rate falls from the peak to the floor: everything after
    the warmup (cosine), or the last `decay_fraction` of the run (wsd)."""
    if train_cfg["schedule"] == "cosine":
        return train_cfg["steps"] - train_cfg["warmup_steps"]
    return max(1, round(train_cfg["decay_fraction"] * train_cfg["steps"]))


def stable_steps(train_cfg: dict) -> int:
    """wsd: the steps before the decay's first one (warmup and stable phase). Their learning rates do
    not depend on the run's length, so a shorter run of the family is, up to here, the longer one
    (jest/training/branching.py)."""
    return train_cfg["steps"] - decay_steps(train_cfg)


def lr_at(step: int, train_cfg: dict) -> float:
    """The learning rate of 0-based `step`: linear warmup to the peak over `warmup_steps`, then

    cosine: cosine decay to min_lr_ratio * peak over the rest of the run;
    wsd (warmup-stable-decay, MiniCPM / OLMo-core): the peak until the last `decay_fraction`
    of the run, then a linear decay that reaches min_lr_ratio * peak at the final step."""
    peak, warmup, total = train_cfg["lr"], train_cfg["warmup_steps"], train_cfg["steps"]
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = train_cfg["min_lr_ratio"] * peak
    if train_cfg["schedule"] == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))
    decay = decay_steps(train_cfg)
    into_decay = step - (total - decay) + 1  # 1 at the first decay step, `decay` at the final step
    if into_decay <= 0:
        return peak
    return peak - (peak - floor) * min(1.0, into_decay / decay)


def log_spaced_steps(total: int, count: int, first_fraction: float = 1 / 16) -> list[int]:
    """`count` log-spaced steps from total * first_fraction to total (the final step always included).

    Parity is read off these points: the earliest one bounds the largest speedup that
    can be measured (a run that reaches the target at its first point shows only
    "at least T / first point"), so evaluations are dense early, sparse late."""
    if count <= 1:
        return [total]
    steps = np.unique(np.round(np.geomspace(max(1.0, total * first_fraction), total, count)).astype(int))
    return sorted(set(steps.tolist()) | {total})


@dataclass(frozen=True)
class StepPlan:
    """Which (1-based, completed) steps are logged, evaluated, snapshotted and checkpointed."""

    steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    eval_steps: frozenset[int]
    all_sets_steps: frozenset[int]
    snapshot_steps: frozenset[int]
    # The trunk of a wsd family (jest/training/branching.py): the steps whose state a branch starts from, and
    # the lm-eval snapshots only a branch needs (saved apart, so the trunk's own lm-eval skips them).
    branch_points: frozenset[int] = frozenset()
    branch_snapshot_steps: frozenset[int] = frozenset()

    @classmethod
    def for_run(cls, cfg: dict, train_cfg: dict, snapshots: bool) -> "StepPlan":
        """`snapshots`: keep lm-eval snapshots (learners; references are only a means)."""
        steps = train_cfg["steps"]
        return cls(steps=steps, log_every=train_cfg["log_every"], eval_every=train_cfg["eval_every"],
                   checkpoint_every=train_cfg["checkpoint_every"],
                   eval_steps=frozenset(log_spaced_steps(steps, train_cfg["eval_log_points"], first_fraction=1 / 64)),
                   all_sets_steps=frozenset(log_spaced_steps(steps, train_cfg["eval_sets_points"])),
                   snapshot_steps=frozenset(log_spaced_steps(steps, cfg["evaluation"]["checkpoints"]))
                   if snapshots else frozenset())

    def evaluates(self, step: int) -> bool:
        """Score the curated-domain held-out set (the curve first-crossing parity reads)."""
        return (step % self.eval_every == 0 or step in self.eval_steps or step in self.all_sets_steps
                or step == self.steps)

    def evaluates_all_sets(self, step: int) -> bool:
        """Score every held-out set (pool sources, pool mixture, external domains) too. Their
        multipliers read only final values, so a few log-spaced points (the final one always)
        are enough; scoring all of them at every evaluation cost a tiny run as much as its
        training steps (22 evaluations x 7 sets: 42 of 121 s, profiled 2026-12-02)."""
        return step in self.all_sets_steps

    def logs(self, step: int) -> bool:
        return step % self.log_every == 0 or self.evaluates(step)

    def snapshots(self, step: int) -> bool:
        return step in self.snapshot_steps

    def snapshots_for_a_branch(self, step: int) -> bool:
        return step in self.branch_snapshot_steps

    def branches(self, step: int) -> bool:
        return step in self.branch_points

    def checkpoints(self, step: int) -> bool:
        return step % self.checkpoint_every == 0 or step == self.steps

"""What happens at which step of a run: the learning rate, and the steps that are logged,
evaluated on the held-out set, snapshotted for lm-eval and checkpointed.

Every point follows the run's own length (`train.steps`), so a run trained to another
budget anneals to its own end and is evaluated along its own curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def lr_at(step: int, train_cfg: dict) -> float:
    """Linear warmup to the peak, then cosine decay to min_lr_ratio * peak (step is 0-based)."""
    peak, warmup, total = train_cfg["lr"], train_cfg["warmup_steps"], train_cfg["steps"]
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = train_cfg["min_lr_ratio"] * peak
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


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
    snapshot_steps: frozenset[int]

    @classmethod
    def for_run(cls, cfg: dict, train_cfg: dict, snapshots: bool) -> "StepPlan":
        """`snapshots`: keep lm-eval snapshots (learners; references are only a means)."""
        steps = train_cfg["steps"]
        return cls(steps=steps, log_every=train_cfg["log_every"], eval_every=train_cfg["eval_every"],
                   checkpoint_every=train_cfg["checkpoint_every"],
                   eval_steps=frozenset(log_spaced_steps(steps, train_cfg["eval_log_points"], first_fraction=1 / 64)),
                   snapshot_steps=frozenset(log_spaced_steps(steps, cfg["evaluation"]["checkpoints"]))
                   if snapshots else frozenset())

    def evaluates(self, step: int) -> bool:
        return step % self.eval_every == 0 or step in self.eval_steps or step == self.steps

    def logs(self, step: int) -> bool:
        return step % self.log_every == 0 or self.evaluates(step)

    def snapshots(self, step: int) -> bool:
        return step in self.snapshot_steps

    def checkpoints(self, step: int) -> bool:
        return step % self.checkpoint_every == 0 or step == self.steps

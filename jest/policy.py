"""The batch-policy interface: the only thing that differs between training arms.

At each step the trainer draws a super-batch of candidates from the pool's
uniform stream and asks the policy which of them to train on. The uniform
baseline's super-batch *is* the batch; a JEST policy draws B = b / (1 - f) and
scores them. Keeping this the single point of difference is what makes the
comparison fair (DESIGN.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch


@dataclass
class Selection:
    """What a policy returns for one step."""

    chosen: np.ndarray           # positions into the candidate super-batch, length = batch size
    score_flops: float = 0.0     # FLOPs spent choosing (enter the train+score accounting)
    diagnostics: dict = field(default_factory=dict)  # scalar metrics logged with the step


class BatchPolicy(Protocol):
    name: str
    fixed_flops: float  # one-time costs (reference training, pool scoring): the `total` accounting

    def super_batch_size(self, batch_size: int) -> int: ...

    def select(self, step: int, candidates: torch.Tensor, candidate_ids: np.ndarray,
               learner: torch.nn.Module, batch_size: int) -> Selection: ...


def build_policy(arm_cfg: dict, ctx) -> BatchPolicy:
    """Policy from an arm's config (the schema lists the allowed `policy` values).

    `ctx` is a jest.jest_policy.PolicyContext: seed, pool size and hash, where the
    references live, the device. Selection policies never see provenance labels; the
    oracle_clean control arm reads them, by design, in its draw_set (baselines/controls.py).
    """
    name = arm_cfg["policy"]
    if name == "uniform":
        from baselines.uniform import UniformPolicy
        return UniformPolicy()
    if name == "jest":
        from jest.jest_policy import JestPolicy
        return JestPolicy.load(arm_cfg, ctx)
    # Control arms: uniform over another set of sequences (their `draw_set`), baselines/controls.py.
    if name == "oracle_clean":
        from baselines.controls import OracleCleanPolicy
        return OracleCleanPolicy()
    if name == "offline_filter":
        from baselines.controls import OfflineFilterPolicy
        return OfflineFilterPolicy.load(arm_cfg, ctx)
    if name == "curated_only":
        from baselines.controls import CuratedOnlyPolicy
        return CuratedOnlyPolicy()
    raise ValueError(f"unknown batch policy '{name}'; allowed values: "
                     "['uniform', 'jest', 'oracle_clean', 'offline_filter', 'curated_only']")


def draw_set(policy: BatchPolicy, shard, subset: np.ndarray) -> np.ndarray:
    """The rows of the training split the arm draws its uniform stream from: `subset` itself,
    unless the policy is a control arm that restricts it (baselines/controls.py)."""
    restrict = getattr(policy, "draw_set", None)
    return subset if restrict is None else restrict(shard, subset)

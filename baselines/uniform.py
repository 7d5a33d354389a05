"""The uniform baseline: train on the pool's uniform stream as it comes. Registered like any
plugin (jest.policies.registry.BUILTIN names this module's SPEC)."""
from __future__ import annotations

import numpy as np

from jest.policies.base import Selection
from jest.policies.registry import PolicySpec


class UniformPolicy:
    """Super-batch = batch; every candidate is trained on, nothing is scored."""

    name = "uniform"
    fixed_flops = 0.0

    def __init__(self, arm: dict | None = None, ctx=None):
        self.arm = arm

    def super_batch_size(self, batch_size: int) -> int:
        return batch_size

    def select(self, step: int, candidates, candidate_ids: np.ndarray, learner, batch_size: int) -> Selection:
        return Selection(chosen=np.arange(batch_size))


SPEC = PolicySpec(
    name="uniform", build="baselines.uniform:UniformPolicy", group="baseline", role="family", branchable=True,
    summary="the baseline: the pool's uniform stream, every candidate trained on (super-batch = batch)")

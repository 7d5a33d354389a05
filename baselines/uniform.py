"""The uniform baseline: train on the pool's uniform stream as it comes."""
from __future__ import annotations

import numpy as np
import torch

from jest.policy import Selection


class UniformPolicy:
    """Super-batch = batch; every candidate is trained on, nothing is scored."""

    name = "uniform"
    fixed_flops = 0.0

    def super_batch_size(self, batch_size: int) -> int:
        return batch_size

    def select(self, step: int, candidates: torch.Tensor, candidate_ids: np.ndarray,
               learner: torch.nn.Module, batch_size: int) -> Selection:
        return Selection(chosen=np.arange(batch_size))

"""The batch-policy interface: the only thing that differs between training arms.

At each step the trainer draws a super-batch of candidates from the pool's uniform stream
and asks the policy which of them to train on, and (optionally) how much each of their
tokens counts. The uniform baseline's super-batch *is* the batch; a JEST policy draws
B = b / (1 - f) and scores them; a token-level policy (RHO-1, baselines/rho.py) keeps the
batch and weights its tokens. Keeping this the single point of difference is what makes the
comparison fair (DESIGN.md). What a policy *is* for the rest of the harness (its config keys,
reference, FLOPs, report group) is its spec in jest.policies.registry.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # the interface itself needs no torch: specs and config checks import this module
    import torch

    from jest.training.distributed import World


@dataclass
class Selection:
    """What a policy returns for one step."""

    chosen: np.ndarray           # positions into the candidate super-batch, length = batch size
    score_flops: float = 0.0     # FLOPs spent choosing (enter the train+score accounting)
    diagnostics: dict = field(default_factory=dict)  # scalar metrics logged with the step
    # Per-token weights of the chosen sequences' next-token targets, (b, T - 1), >= 0, in the order of
    # `chosen`; None trains on every token alike (the exact unweighted loss). The step's loss is
    # sum(w * nll) / sum(w) over the batch (jest.training.optim.train_step).
    token_weights: "torch.Tensor | None" = None


class BatchPolicy(Protocol):
    name: str
    fixed_flops: float  # one-time costs (reference training, pool scoring): the `total` accounting

    def super_batch_size(self, batch_size: int) -> int: ...

    def select(self, step: int, candidates: "torch.Tensor", candidate_ids: np.ndarray,
               learner: "torch.nn.Module", batch_size: int) -> Selection: ...

    # Optional: `draw_set(shard, subset) -> rows`, the rows of the training split the arm's uniform
    # stream draws from (the control arms of baselines/controls.py); without it, all of `subset`.


@dataclass
class PolicyContext:
    """What a policy may know besides its arm config: never the provenance labels."""

    seed: int
    seq_len: int
    pool_size: int
    pool_sha256: str
    references_root: Path
    device: "torch.device"
    precision: str = "fp32"                      # train.precision: scoring forwards run in it too
    fast: bool = False                           # train.fast_path: scoring through jest.model.fastforward too
    world: "World | None" = None                 # the training processes (jest.training.distributed); None: one
    runs_root: Path | None = None                # results/<name>/runs: another arm's run a policy reads (its spec's
                                                 # reads_arm; the mixture-matched control reads JEST's selection)


def step_generator(seed: int, step: int) -> "torch.Generator":
    """A generator that depends only on (seed, step): a resumed run draws the same samples."""
    import torch
    digest = hashlib.sha256(f"jest-select:{seed}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def draw_set(policy: BatchPolicy, shard, subset: np.ndarray) -> np.ndarray:
    """The rows of the training split the arm draws its uniform stream from: `subset` itself,
    unless the policy restricts it (its `draw_set`, as the control arms of baselines/controls.py do)."""
    restrict = getattr(policy, "draw_set", None)
    return subset if restrict is None else restrict(shard, subset)

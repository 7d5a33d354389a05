"""RHO-1-style selective language modelling (Lin et al. 2024, arXiv 2404.07965), as a plugin.

JEST chooses which *sequences* to train on; RHO-1 trains on every sequence of the batch but
back-propagates only the tokens worth learning: each token's excess loss, the learner's loss
minus the reference's, ranks the tokens of its sequence, and the top `token_keep` share of them
carries the loss (the others get weight 0). It is the language-model-native cousin of JEST: the
same reference, the same learnability score, applied per token instead of per example.

Written only against the harness's public interface (jest.policies: the spec and the registry,
Selection and PolicyContext, Reference; jest.policies.scoring.token_losses; jest.model.flops), and
registered the way a user's plugin is: config/tiny.yaml names this module under `plugins`, so its
file's sha256 is part of its arms' training hash (docs/extending.md).

Costs, as the FLOP ledger counts them: per step, the learner's forward over the batch (its
per-token losses, in eval mode without gradients) and the reference's, both in the train+score
accounting, and the reference's training in `total`. The paper reuses the training forward's
losses and precomputes the reference's; a separate learner forward is simpler and costs about a
third of a training step more, so the FLOP multiplier of this arm is conservative; its iterations
multiplier is not affected.
"""
from __future__ import annotations

import math

import numpy as np

from jest.policies.base import PolicyContext, Selection
from jest.policies.reference import Reference
from jest.policies.registry import PolicySpec, ScoringShapes, register_policy


def keep_count(token_keep: float, targets: int) -> int:
    """Tokens kept per sequence of `targets` next-token targets: ceil(k x targets), at least 1."""
    return max(1, min(targets, math.ceil(token_keep * targets)))


def top_token_weights(excess, token_keep: float):
    """Weights (b, T-1): 1 on the top ceil(k (T-1)) excess losses of each row, 0 elsewhere (ties: lower position)."""
    import torch
    k = keep_count(token_keep, excess.size(1))
    # a stable sort of -excess keeps the earlier position first among equal scores: deterministic
    order = torch.sort(-excess, dim=1, stable=True).indices[:, :k]
    return torch.zeros_like(excess).scatter_(1, order, 1.0)


class RhoPolicy:
    """Every candidate trained on; its tokens weighted by their excess loss's rank in the sequence."""

    name = "rho1"

    def __init__(self, arm: dict, ctx: PolicyContext):
        from jest.model.flops import forward_flops_per_token
        from jest.model.llama import shape_summary
        ref = Reference.open(arm, ctx)
        self.arm, self.ctx = arm, ctx
        self.ref_model = ref.model(ctx.device)
        self.fixed_flops = ref.train_flops  # the reference's training: the `total` accounting
        self.ref_fpt = forward_flops_per_token(shape_summary(self.ref_model.config), ctx.seq_len)
        self._learner_fpt = None

    def super_batch_size(self, batch_size: int) -> int:
        return batch_size

    def select(self, step: int, candidates, candidate_ids: np.ndarray, learner, batch_size: int) -> Selection:
        from jest.model.flops import forward_flops_per_token
        from jest.model.llama import shape_summary
        from jest.policies.scoring import token_losses
        arm, ctx = self.arm, self.ctx
        learner_nll = token_losses(learner, candidates, arm["score_batch_size"], ctx.precision, ctx.fast)   # (b, T-1)
        ref_nll = token_losses(self.ref_model, candidates, arm["score_batch_size"], ctx.precision, ctx.fast)
        excess = (learner_nll - ref_nll).cpu()
        weights = top_token_weights(excess, arm["token_keep"])
        if self._learner_fpt is None:
            self._learner_fpt = forward_flops_per_token(shape_summary(learner.config), ctx.seq_len)
        tokens = candidates.size(0) * candidates.size(1)
        kept = weights.bool()
        diag = {"excess_mean_all": excess.mean().item(), "excess_mean_kept": excess[kept].mean().item(),
                "learner_token_loss_mean_kept": learner_nll.cpu()[kept].mean().item(),
                "ref_token_loss_mean_kept": ref_nll.cpu()[kept].mean().item(),
                "token_keep_share": kept.float().mean().item()}
        return Selection(chosen=np.arange(batch_size), score_flops=tokens * (self._learner_fpt + self.ref_fpt),
                         diagnostics=diag, token_weights=weights)


def score_flops(arm: dict, s: ScoringShapes) -> float:
    """Per step: the learner's and the reference's forward over the whole batch."""
    tokens = s.batch_size * s.seq_len
    return tokens * (s.learner_forward(s.seq_len) + s.reference_forward(s.seq_len))


SPEC = register_policy(PolicySpec(
    name="rho1", build="baselines.rho:RhoPolicy", group="selection",
    summary="RHO-1 selective language modelling: every sequence trained on, only the top token_keep share of "
            "each sequence's tokens by excess loss (learner - reference) back-propagated",
    keys={"token_keep": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.6,
                         "description": "Share of each sequence's next-token targets that carry the loss (the "
                                        "paper keeps 60-70%); 1 trains on every token (uniform, plus scoring)."},
          "reference": {"type": "string", "default": "ref",
                        "description": "The reference whose per-token losses define the excess loss (a key of "
                                       "'references'); it scores each batch online."},
          "score_batch_size": {"type": "integer", "minimum": 1, "default": 16,
                               "description": "Sequences per scoring forward pass."}},
    reads_reference=lambda arm: "model", score_flops=score_flops))

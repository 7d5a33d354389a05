"""The JEST batch policy for causal LMs (DESIGN.md, "The JEST algorithm").

Per step: score the super-batch (learner loss l_i in eval mode without grad,
optionally on a prefix; reference loss r_i from the cached pool scores or
online), turn the losses into scores s_i by the criterion, and choose b of the
B candidates with the selector. The next-token loss decomposes per example, so
the paper's pairwise (contrastive) coupling is absent; joint selection uses
M = diag(s) + lambda * C with C the cosine similarity of the candidates' pooled
final hidden states, and lambda = 0 reproduces independent sampling.

Under torchrun (jest.training.distributed) every rank holds the same super-batch, scores
only its shard of it and gathers the others' losses (and features), so every
rank selects from identical scores with the same generator: the same choice.
"""
from __future__ import annotations

import numpy as np
import torch

from jest.model.flops import forward_flops_per_token
from jest.model.llama import shape_summary
from jest.policies.base import PolicyContext, Selection, step_generator
from jest.policies.jest_spec import prefix_len, super_batch_size
from jest.policies.reference import MissingReferenceError, Reference  # noqa: F401 (MissingReferenceError: tests)
from jest.policies.scoring import sequence_losses
from jest.training.distributed import World
from jest.policies.selection import interaction_matrix, select_independent, select_joint, select_topk


class JestPolicy:
    """Score, then choose. Build it from files with `JestPolicy.load`; the constructor takes
    the reference's scores (or model) directly, which is what benchmarks and tests use."""

    name = "jest"

    def __init__(self, arm: dict, ctx: PolicyContext, ref_scores: np.ndarray | None = None,
                 ref_model: torch.nn.Module | None = None, fixed_flops: float = 0.0):
        if (ref_scores is None) == (ref_model is None):
            raise ValueError("give exactly one of ref_scores (cached scoring) or ref_model (online scoring)")
        self.arm, self.ctx = arm, ctx
        self.ref_scores, self.ref_model = ref_scores, ref_model
        self.fixed_flops = fixed_flops
        if ref_model is not None:
            self.ref_fpt = forward_flops_per_token(shape_summary(ref_model.config), ctx.seq_len)
        self.prefix_len = prefix_len(arm["score_prefix"], ctx.seq_len)
        self.needs_learner = arm["criterion"] != "easy_reference"
        self.needs_features = arm["selector"] == "joint" and arm["interaction"] > 0

    @classmethod
    def load(cls, arm: dict, ctx: PolicyContext) -> "JestPolicy":
        """The arm's reference (jest.policies.reference): its cached pool scores, verified, or the model
        itself; its training and the one-time pool scoring are the `total` accounting's fixed FLOPs."""
        ref = Reference.open(arm, ctx)
        if arm["reference_scoring"] == "cached":
            scores, scoring_flops = ref.pool_scores(ctx)
            return cls(arm, ctx, ref_scores=scores, fixed_flops=ref.train_flops + scoring_flops)
        return cls(arm, ctx, ref_model=ref.model(ctx.device), fixed_flops=ref.train_flops)

    def super_batch_size(self, batch_size: int) -> int:
        return super_batch_size(batch_size, self.arm["filter_ratio"])

    def select(self, step: int, candidates: torch.Tensor, candidate_ids: np.ndarray,
               learner: torch.nn.Module, batch_size: int) -> Selection:
        arm, B = self.arm, candidates.size(0)
        world, precision = self.ctx.world or World(), self.ctx.precision
        my_candidates = candidates[world.shard(B)]  # this rank's rows (all of them in one process)
        flops = 0.0  # global FLOPs, whatever the number of processes sharing them
        learner_loss = features = None
        if self.needs_learner:
            learner_loss, features = sequence_losses(learner, my_candidates, arm["score_batch_size"], self.prefix_len,
                                                     with_features=self.needs_features, precision=precision,
                                                     fast=self.ctx.fast)
            learner_loss = world.gather_rows(learner_loss, B).cpu()
            if features is not None:
                features = world.gather_rows(features, B)
            flops += B * self.prefix_len * forward_flops_per_token(shape_summary(learner.config), self.prefix_len)
        if self.ref_scores is not None:  # cached per pool index: the same on every rank
            ref_loss = torch.from_numpy(self.ref_scores[candidate_ids])
        else:
            ref_loss, _ = sequence_losses(self.ref_model, my_candidates, arm["score_batch_size"], precision=precision,
                                          fast=self.ctx.fast)
            ref_loss = world.gather_rows(ref_loss, B).cpu()
            flops += B * self.ctx.seq_len * self.ref_fpt

        if arm["criterion"] == "learnability":
            scores = learner_loss - ref_loss
        elif arm["criterion"] == "hard_learner":
            scores = learner_loss
        else:  # easy_reference
            scores = -ref_loss

        gen = step_generator(self.ctx.seed, step)
        if arm["selector"] == "topk":
            chosen = select_topk(scores, batch_size)
        elif arm["selector"] == "independent":
            chosen = select_independent(scores, batch_size, arm["tau"], gen)
        else:
            M = interaction_matrix(scores, features.cpu() if features is not None else None, arm["interaction"])
            chosen = select_joint(M, batch_size, arm["n_chunks"], arm["tau"], gen)

        sel = scores[chosen]
        diag = {"score_mean_all": scores.mean().item(), "score_std_all": scores.std().item(),
                "score_mean_selected": sel.mean().item(), "score_std_selected": sel.std().item(),
                "ref_loss_mean_all": ref_loss.mean().item(), "ref_loss_mean_selected": ref_loss[chosen].mean().item()}
        if learner_loss is not None:
            diag.update(learner_loss_mean_all=learner_loss.mean().item(),
                        learner_loss_mean_selected=learner_loss[chosen].mean().item())
        return Selection(chosen=chosen.numpy(), score_flops=flops, diagnostics=diag)

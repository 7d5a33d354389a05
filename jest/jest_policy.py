"""The JEST batch policy for causal LMs (DESIGN.md, "The JEST algorithm").

Per step: score the super-batch (learner loss l_i in eval mode without grad,
optionally on a prefix; reference loss r_i from the cached pool scores or
online), turn the losses into scores s_i by the criterion, and choose b of the
B candidates with the selector. The next-token loss decomposes per example, so
the paper's pairwise (contrastive) coupling is absent; joint selection uses
M = diag(s) + lambda * C with C the cosine similarity of the candidates' pooled
final hidden states, and lambda = 0 reproduces independent sampling.

Under torchrun (jest.distributed) every rank holds the same super-batch, scores
only its shard of it and gathers the others' losses (and features), so every
rank selects from identical scores with the same generator: the same choice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jest.config import super_batch_size
from jest.distributed import World
from jest.flops import forward_flops_per_token
from jest.io import sha256_file
from jest.model import shape_summary
from jest.policy import Selection
from jest.runspec import training_subset
from jest.scoring import sequence_losses
from jest.selection import interaction_matrix, select_independent, select_joint, select_topk


class MissingReferenceError(RuntimeError):
    """The reference a JEST arm needs is missing or does not match the pool."""


@dataclass
class PolicyContext:
    """What a policy may know besides its arm config: never the provenance labels."""

    seed: int
    seq_len: int
    pool_size: int
    pool_sha256: str
    references_root: Path
    device: torch.device
    precision: str = "fp32"                      # train.precision: scoring forwards run in it too
    fast: bool = False                           # train.fast_path: scoring through jest.fastforward too
    world: World = field(default_factory=World)  # the training processes; one by default


def _step_generator(seed: int, step: int) -> torch.Generator:
    """A generator that depends only on (seed, step): a resumed run draws the same samples."""
    digest = hashlib.sha256(f"jest-select:{seed}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


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
        self.prefix_len = max(2, round(arm["score_prefix"] * ctx.seq_len))
        self.needs_learner = arm["criterion"] != "easy_reference"
        self.needs_features = arm["selector"] == "joint" and arm["interaction"] > 0

    @classmethod
    def load(cls, arm: dict, ctx: PolicyContext) -> "JestPolicy":
        """The arm's reference from references/<name>/: its card (training FLOPs), then its cached
        pool scores (checked against the reference's and the pool's hashes) or the model itself."""
        ref_dir = Path(ctx.references_root) / arm["reference"]
        card_path = ref_dir / "card.json"
        if not card_path.is_file() or json.loads(card_path.read_text()).get("status") != "finished":
            raise MissingReferenceError(f"reference '{arm['reference']}' is not trained ({card_path} missing or "
                                        "unfinished): run the train_reference stage")
        fixed = float(json.loads(card_path.read_text())["flops"]["flops_train"])  # the `total` accounting
        if arm["reference_scoring"] == "cached":
            scores, scoring_flops = cls._load_cached_scores(ref_dir, ctx)
            return cls(arm, ctx, ref_scores=scores, fixed_flops=fixed + scoring_flops)
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(ref_dir / "model").to(ctx.device).eval()
        return cls(arm, ctx, ref_model=model, fixed_flops=fixed)

    @staticmethod
    def _load_cached_scores(ref_dir: Path, ctx: PolicyContext) -> tuple[np.ndarray, float]:
        """The cached pool scores, verified before use: the reference and pool they were computed for,
        the sha256 of the .npy the scorer recorded, one score per pool sequence, finite wherever scored
        (a `fraction` < 1 scoring leaves the other rows NaN by design)."""
        meta_path, scores_path = ref_dir / "pool_scores.json", ref_dir / "pool_scores.npy"
        rescore = (f"delete {scores_path} and re-run the score_reference stage: `snakemake --cores N --forcerun "
                   f"score_reference [--configfile CONFIG]`")
        if not meta_path.is_file() or not scores_path.is_file():
            raise MissingReferenceError(f"no cached pool scores in {ref_dir}: run the score_reference stage")
        meta = json.loads(meta_path.read_text())
        ref_sha = sha256_file(ref_dir / "model" / "model.safetensors")
        if meta["reference_sha256"] != ref_sha or meta["pool_sha256"] != ctx.pool_sha256:
            raise MissingReferenceError(f"cached scores in {ref_dir} belong to another reference or pool; {rescore}")
        if (got := sha256_file(scores_path)) != meta.get("scores_sha256"):
            raise MissingReferenceError(
                f"{scores_path} is not the file the scorer wrote: its sha256 is {got}, {meta_path} says "
                f"{meta.get('scores_sha256') or 'nothing (written before scores were hashed)'}; {rescore}")
        scores = np.load(scores_path)
        if len(scores) != ctx.pool_size:
            raise MissingReferenceError(f"{scores_path} has {len(scores)} scores for a pool of {ctx.pool_size}; "
                                        f"{rescore}")
        scored = scores[training_subset(len(scores), float(meta.get("fraction", 1.0)))]
        if bad := int((~np.isfinite(scored)).sum()):
            raise MissingReferenceError(f"{scores_path} holds {bad} NaN or infinite scores of {len(scored)} "
                                        f"scored sequences; {rescore}")
        return scores, float(meta["flops"])  # the one-time pool scoring: `total` accounting too

    def super_batch_size(self, batch_size: int) -> int:
        return super_batch_size(batch_size, self.arm["filter_ratio"])

    def select(self, step: int, candidates: torch.Tensor, candidate_ids: np.ndarray,
               learner: torch.nn.Module, batch_size: int) -> Selection:
        arm, B = self.arm, candidates.size(0)
        world, precision = self.ctx.world, self.ctx.precision
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

        gen = _step_generator(self.ctx.seed, step)
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

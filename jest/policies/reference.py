"""Reference access, in one place: what a policy may read of the reference its arm names.

A reference lives in results/<name>/references/<reference>/ (the train_reference and
score_reference stages): card.json (finished, with its training FLOPs), model/ (the weights) and
pool_scores.npy + pool_scores.json (its loss on every pool sequence, keyed by the sha256 of the
weights and of the pool). Every read is checked before use: the card is finished, the scores
belong to this reference and this pool, their file is the one the scorer wrote, one score per
pool sequence, finite wherever scored. A failed check names the file and the command that fixes it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jest.io import sha256_file


class MissingReferenceError(RuntimeError):
    """The reference an arm needs is missing or does not match the pool."""


@dataclass
class Reference:
    """A trained reference: its folder and its training FLOPs (the `total` accounting)."""

    name: str
    dir: Path
    train_flops: float

    @classmethod
    def open(cls, arm: dict, ctx) -> "Reference":
        """The arm's reference (`arm["reference"]`) under ctx.references_root, checked to be trained."""
        ref_dir = Path(ctx.references_root) / arm["reference"]
        card_path = ref_dir / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        if card.get("status") != "finished":
            raise MissingReferenceError(f"reference '{arm['reference']}' is not trained ({card_path} missing or "
                                        "unfinished): run the train_reference stage")
        return cls(arm["reference"], ref_dir, float(card["flops"]["flops_train"]))

    def pool_scores(self, ctx) -> tuple[np.ndarray, float]:
        """The cached pool scores and the FLOPs of computing them (the `total` accounting too), verified:
        the reference and pool they were computed for, the sha256 of the .npy the scorer recorded, one
        score per pool sequence, finite wherever scored (a `fraction` < 1 scoring leaves the other rows
        NaN by design)."""
        from jest.training.runspec import training_subset
        meta_path, scores_path = self.dir / "pool_scores.json", self.dir / "pool_scores.npy"
        rescore = (f"delete {scores_path} and re-run the score_reference stage: `snakemake --cores N --forcerun "
                   f"score_reference [--configfile CONFIG]`")
        if not meta_path.is_file() or not scores_path.is_file():
            raise MissingReferenceError(f"no cached pool scores in {self.dir}: run the score_reference stage")
        meta = json.loads(meta_path.read_text())
        ref_sha = sha256_file(self.dir / "model" / "model.safetensors")
        if meta["reference_sha256"] != ref_sha or meta["pool_sha256"] != ctx.pool_sha256:
            raise MissingReferenceError(f"cached scores in {self.dir} belong to another reference or pool; {rescore}")
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
        return scores, float(meta["flops"])

    def model(self, device):
        """The reference's weights as a frozen model in eval mode on `device` (online scoring)."""
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(self.dir / "model").to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def identity(self, reads: str) -> str:
        """What an arm reads of this reference, as one hash (jest.training.identity): its card's identity and
        steps say how it was trained; the scores' (or the weights') sha256 what the arm reads."""
        from jest.config import config_hash
        card = json.loads((self.dir / "card.json").read_text())
        if reads == "scores":
            read = json.loads((self.dir / "pool_scores.json").read_text()).get("scores_sha256")
        else:
            read = sha256_file(self.dir / "model" / "model.safetensors")
        return config_hash({"identity": card.get("identity"), "steps": card.get("steps"), "reads": read})


__all__ = ["MissingReferenceError", "Reference"]

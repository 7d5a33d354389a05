"""The article's two claims, as data: what is claimed, in which quantity, in the paper's setting.

The claims come from Evans et al. 2024 (arXiv 2406.17711): JEST++ / Flexi-JEST++
against SigLIP on WebLI, image-text contrastive pretraining; "up to 13x fewer
iterations and 10x less computation". Here they are tested on causal language
models, so a verdict is about *this* setting and scale, never about the paper's.

They are judged on the iso-loss compute multiplier (analysis.multiplier) with the
tests of analysis.stats (analysis.verdicts.claims): "reproduced" / "not reproduced
at this scale" / "undecided", and "single seed: no verdict" with one seed.
"""
from __future__ import annotations

from dataclasses import dataclass

PAPER = "Evans et al. 2024, arXiv 2406.17711"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    factor: float
    quantity: str              # "iterations" or "flops"
    paper_setting: str
    accounting: str | None = None  # for "flops": the accounting the verdict uses


CLAIMS = (
    Claim("iterations_13x", "13x fewer iterations", 13.0, "iterations",
          f"JEST++ vs SigLIP on WebLI, image-text contrastive pretraining ({PAPER})"),
    # The paper's FLOPs count the learner's and the reference's forward passes on the super-batch
    # per iteration: the closest accounting here is train+score; `total` (one-time reference
    # training and pool scoring) is shown next to it.
    Claim("compute_10x", "10x less compute", 10.0, "flops",
          f"Flexi-JEST++ vs SigLIP on WebLI, image-text contrastive pretraining ({PAPER})",
          accounting="train+score"),
)

__all__ = ["CLAIMS", "PAPER", "Claim"]

"""The article's two claims and an honest verdict from measured speedups with CIs.

The claims come from Evans et al. 2024 (arXiv 2406.17711): JEST++ / Flexi-JEST++
against SigLIP on WebLI, image-text contrastive pretraining; "up to 13x fewer
iterations and 10x less computation". Here they are tested on causal language
models, so a verdict is about *this* setting and scale, never about the paper's.

Verdict for one arm, from its speedup interval [lo, hi] (the bootstrap CI; the
point when there is no CI), widened where the data only give a bound:
- an unreached parity (or a CI end on unreached replicates) opens the low end (lo = 0);
- parity at the first eval point (or a CI end there) opens the high end (hi = inf).
Then: lo >= factor -> "holds"; hi < factor -> "does not hold"; else "inconclusive".
Across arms: "holds" if some arm holds (the best arm is named; with several arms
that is a selection over arms, noted), "does not hold" if every arm does not
hold, otherwise "inconclusive". A single-seed verdict is marked as such.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.parity import Speedup

PAPER = "Evans et al. 2024, arXiv 2406.17711"
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


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


def interval(sp: Speedup) -> tuple[float, float]:
    """The range the true speedup may lie in, given the CI and any bounds."""
    lo = sp.ci_low if sp.ci_low is not None else sp.value
    hi = sp.ci_high if sp.ci_high is not None else sp.value
    if sp.bound == "upper" or sp.ci_low_censored:
        lo = 0.0
    if sp.bound == "lower" or sp.ci_high_censored:
        hi = math.inf
    return lo, hi


def verdict(sp: Speedup | None, factor: float) -> tuple[str, str]:
    """(verdict, reason) for one arm's speedup against a claimed factor."""
    if sp is None or sp.value is None:
        return INCONCLUSIVE, "not measured"
    lo, hi = interval(sp)
    if lo >= factor:
        return HOLDS, f"the interval's low end {lo:.2f}x is at least {factor:g}x"
    if hi < factor:
        why = "never reached parity, so the speedup is below " if sp.bound == "upper" else "the interval's high end "
        return FAILS, f"{why}{hi if math.isfinite(hi) else sp.value:.2f}x < {factor:g}x"
    if sp.bound == "lower" or sp.ci_high_censored:
        return INCONCLUSIVE, ("parity reached at the first eval point: the eval grid cannot tell whether the "
                              f"speedup exceeds {factor:g}x (evaluate earlier / more often)")
    return INCONCLUSIVE, f"the interval [{lo:.2f}, {hi:.2f}]x contains {factor:g}x"


def judge(claim: Claim, arms: list[dict]) -> dict:
    """A claim against every arm: arms are headline rows with "arm", "iterations", "flops", "ci_available"."""
    per_arm = []
    for a in arms:
        sp = a["iterations"] if claim.quantity == "iterations" else a["flops"].get(claim.accounting)
        v, why = verdict(sp, claim.factor)
        per_arm.append({"arm": a["arm"], "speedup": sp, "verdict": v, "reason": why,
                        "single_seed": not a["ci_available"]})
    measured = [p for p in per_arm if p["speedup"] is not None and p["speedup"].value is not None]
    if not measured:
        best, overall, reason = None, INCONCLUSIVE, "no arm measured"
    elif any(p["verdict"] == HOLDS for p in measured):
        best = max((p for p in measured if p["verdict"] == HOLDS), key=lambda p: p["speedup"].value)
        overall, reason = HOLDS, f"{best['arm']}: {best['reason']}"
        if len(measured) > 1:
            reason += f" (best of {len(measured)} arms)"
    elif all(p["verdict"] == FAILS for p in measured):
        best = max(measured, key=lambda p: p["speedup"].value)
        overall, reason = FAILS, f"every arm is below {claim.factor:g}x; best {best['arm']}: {best['reason']}"
    else:
        best = max((p for p in measured if p["verdict"] == INCONCLUSIVE), key=lambda p: p["speedup"].value)
        overall, reason = INCONCLUSIVE, f"{best['arm']}: {best['reason']}"
    if best is not None and best["single_seed"]:
        reason += "; single seed: no CI, verdict on the point estimate"
    return {"id": claim.id, "claim": claim.text, "factor": claim.factor, "quantity": claim.quantity,
            "accounting": claim.accounting, "paper_setting": claim.paper_setting,
            "best_arm": best["arm"] if best else None, "measured": best["speedup"] if best else None,
            "verdict": overall, "reason": reason,
            "per_arm": [{k: p[k] for k in ("arm", "verdict", "reason", "single_seed")} for p in per_arm]}

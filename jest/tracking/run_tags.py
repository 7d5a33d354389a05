"""A training run's MLflow tags and chart colour, from its arm's config (issue #29 item 4).

- `filter_ratio`: the arm's configured filter ratio, for every policy that has one (JEST, the
  offline filter, ...). It used to be derived from the batch shape, 1 - b / B, which is the
  filter ratio only for a policy that scores a super-batch per step: the offline filter draws b
  from a pre-filtered pool (B = b) and was tagged 0.0 beside its param `arm.filter_ratio` = 0.8.
  A policy without one (uniform, oracle_clean) gets no tag rather than a 0 that reads "filters
  nothing".
- `budget`: the uniform family's compute budget ("2x"), so that the runs table and a grouping
  by arm show which budget a line is.
- `mlflow.runColor`: the family's budgets in shades of one blue, light to dark with the budget
  (they were all one colour, so the UI's charts could not tell 0.5x from 3x); every other arm a
  fixed colour of its own (MLflow otherwise picks by run id, and two arms can come out the same).
"""
from __future__ import annotations

import hashlib
import math

from jest.policies.registry import role_of

BASELINE_COLOR = "#1f77b4"
ARM_COLORS = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f")
# the family's shades: budget 1/4 (lightest) .. 8 (darkest), log-spaced; 1x is BASELINE_COLOR's hue
_LIGHT, _DARK = (0x9e, 0xca, 0xe1), (0x08, 0x30, 0x6b)
_LOG_RANGE = (math.log2(0.25), math.log2(8.0))


def arm_filter_ratio(arm_cfg: dict | None) -> float | None:
    """The arm's configured filter ratio, None when its policy has none."""
    f = (arm_cfg or {}).get("filter_ratio")
    return None if f is None else float(f)


def budget_label(budget) -> str:
    return f"{float(budget):g}x"


def run_color(arm: str | None, method: str | None, budget: float | str | None = None) -> str:
    """The run's colour in the UI's charts: see the module docstring."""
    if role_of(method) == "family":  # the uniform compute family (jest.policies.registry)
        b = None if budget is None else float(str(budget).removesuffix("x"))   # the tag reads "2x"
        if b is None or b == 1.0 or b <= 0:
            return BASELINE_COLOR
        lo, hi = _LOG_RANGE
        t = min(1.0, max(0.0, (math.log2(b) - lo) / (hi - lo)))
        return "#" + "".join(f"{round(a + t * (b - a)):02x}" for a, b in zip(_LIGHT, _DARK))
    return ARM_COLORS[int(hashlib.sha256(str(arm).encode()).hexdigest(), 16) % len(ARM_COLORS)]


def arm_tags(method: str | None, arm_cfg: dict | None) -> dict:
    """The tags that come from the arm's config: filter_ratio (when the policy has one), budget
    (the uniform family)."""
    tags: dict = {}
    f = arm_filter_ratio(arm_cfg)
    if f is not None:
        tags["filter_ratio"] = f
    if role_of((arm_cfg or {}).get("policy") or method) == "family":
        tags["budget"] = budget_label((arm_cfg or {}).get("budget", 1.0))
    return tags


def card_tags(card: dict) -> dict:
    """The MLflow tags of a run folder's card, with the arm's tags recomputed from its config: a
    card written before this module carries filter_ratio = 0.0 for the offline filter."""
    tags = dict(card.get("mlflow_tags") or {})
    arm_cfg = ((card.get("config") or {}).get("arms") or {}).get(card.get("arm"))
    if arm_cfg is None:
        return tags
    tags.pop("filter_ratio", None)
    return {**tags, **arm_tags(tags.get("method"), arm_cfg)}


__all__ = ["ARM_COLORS", "BASELINE_COLOR", "arm_filter_ratio", "arm_tags", "budget_label", "card_tags", "run_color"]

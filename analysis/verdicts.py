"""From run tables to decisions: multipliers of every arm on every held-out set, the claims'
verdicts, the equivalence tests of the ablations, the oracle's reference line and the controls' decomposition.

Pure functions over the tables of analysis.runs / analysis.evals; the statistics live in
analysis.stats, the placement on the family curve in analysis.multiplier.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from analysis.claims import CLAIMS
from analysis.multiplier import (
    FLOP_QUANTITIES,
    QUANTITIES,
    arm_seed_multipliers,
    family_curves,
    multiplier_range,
    run_finals,
)
from jest.policies.registry import group_of, role_of
from analysis.stats import (
    DEFAULT_MARGIN,
    Estimate,
    aggregate,
    best_arm,
    claim_over_arms,
    compare,
    fieller_share,
    holm_family,
)

HELDOUT = re.compile(r"^heldout_(loss|bpb)(?:_(.+))?$")


def heldout_metrics(curves: pd.DataFrame) -> list[str]:
    """Every held-out column with values: heldout_loss / _bpb and heldout_loss_<set> / _bpb_<set>
    (sets src_<source>, pool_mix, ext_<name>, or any other), the default set first."""
    cols = [c for c in curves.columns if HELDOUT.match(c) and curves[c].notna().any()]
    return sorted(cols, key=lambda c: (HELDOUT.match(c).group(2) is not None, HELDOUT.match(c).group(2) or "",
                                       HELDOUT.match(c).group(1) != "loss"))


GENERAL = "general"  # the general-domain metric's set name: heldout_loss_general, heldout_bpb_general


def add_general_metric(curves: pd.DataFrame, patterns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """`curves` with heldout_loss_general (and _bpb_general): the equal-weight mean of the declared sets'
    held-out losses (config `analysis.general_sets`; 'x*' matches a prefix), on the rows where every one of
    them was evaluated; and the sets it averages ([] and `curves` unchanged when none was logged)."""
    sets = sorted({s for c in curves.columns if (s := heldout_set(c)) not in (None, "default", GENERAL)})
    used = [s for s in sets if any(s == p or (p.endswith("*") and s.startswith(p[:-1])) for p in patterns)]
    if not used:
        return curves, []
    curves = curves.copy()
    for kind in ("loss", "bpb"):
        cols = [f"heldout_{kind}_{s}" for s in used]
        if all(c in curves for c in cols):
            curves[f"heldout_{kind}_{GENERAL}"] = curves[cols].mean(axis=1, skipna=False)
    return curves, used


def heldout_set(metric: str) -> str | None:
    """'heldout_loss_src_email' -> 'src_email'; the default held-out set -> 'default'; else None."""
    m = HELDOUT.match(metric)
    return None if m is None else (m.group(2) or "default")


def metric_multipliers(table: pd.DataFrame, metric: str, family: dict[str, float], arms: list[str],
                       higher_is_better: bool = False, flops_table: pd.DataFrame | None = None,
                       ci_level: float = 0.95) -> dict:
    """arm -> {pairing, quantities: {q: Estimate}, range: {q: [lo, hi]}, per_seed_final} on one metric.

    Arms that the family cannot place (no runs of the metric) are left out; {} without a family."""
    finals = run_finals(table, metric, flops_table)
    curves = family_curves(finals, family)
    if not curves:
        return {}
    out = {}
    for arm in arms:
        rows = finals[finals["arm"] == arm]
        if rows.empty:
            continue
        per_q, pairing = arm_seed_multipliers(finals, arm, curves, higher_is_better)
        own = rows[list(QUANTITIES)].mean()
        out[arm] = {"pairing": pairing,
                    "quantities": {q: aggregate(ps, ci_level) for q, ps in per_q.items()},
                    "range": {q: list(multiplier_range(curves, float(own[q]), q)) for q in QUANTITIES
                              if math.isfinite(own[q]) and own[q] > 0},
                    "own": {q: float(own[q]) for q in QUANTITIES if math.isfinite(own[q])},
                    "final": {str(s): float(v) for s, v in zip(rows["seed"], rows["value"])}}
    return out


def family_table(table: pd.DataFrame, metric: str, family: dict[str, float]) -> list[dict]:
    """The family's points: per budget, the mean final metric and compute, and the seeds."""
    finals = run_finals(table, metric)
    d = finals[finals["arm"].isin(family)]
    rows = []
    for arm, g in d.groupby("arm", sort=False):
        rows.append({"arm": arm, "budget": family[arm], "seeds": [int(s) for s in g["seed"]],
                     "final_mean": float(g["value"].mean()),
                     "final_per_seed": {str(s): float(v) for s, v in zip(g["seed"], g["value"])},
                     **{q: float(g[q].mean()) for q in QUANTITIES}})
    return sorted(rows, key=lambda r: r["budget"])


def nest(quantities: dict[str, Estimate]) -> dict:
    """{q: Estimate} -> {"iterations", "examples", "flops": {accounting: Estimate}} (summary layout)."""
    return {"iterations": quantities.get("iterations"), "examples": quantities.get("examples"),
            "flops": {q: quantities[q] for q in FLOP_QUANTITIES if q in quantities}}


def claims(mults: dict, jest_arms: list[str], ci_level: float = 0.95) -> list[dict]:
    """Each claim of analysis.claims.CLAIMS against the JEST arms' multipliers (primary metric)."""
    out = []
    for c in CLAIMS:
        q = "iterations" if c.quantity == "iterations" else c.accounting
        ests = {a: mults[a]["quantities"][q] for a in jest_arms if a in mults}
        judged = claim_over_arms(ests, c.factor, ci_level)
        if not mults:
            judged["reason"] = "no multiplier: the config has no uniform compute family (>= 2 budgets)"
        out.append({"id": c.id, "claim": c.text, "factor": c.factor, "quantity": c.quantity,
                    "accounting": c.accounting, "paper_setting": c.paper_setting, **judged})
    return out


def ablation_tests(mults: dict, ablations: list[dict], margin: float = DEFAULT_MARGIN) -> list[dict]:
    """TOST and t-test of each ablation against the headline arm it is set against (iterations multiplier),
    corrected over the ablations with Holm's method (analysis.stats.holm_family): every "no difference"
    or "different" statement of the ablation table is one of these."""
    out = []
    for row in ablations:
        base = row.get("compared_to")
        if row["arm"] not in mults or base not in mults:
            continue
        test = compare(mults[row["arm"]]["quantities"]["iterations"], mults[base]["quantities"]["iterations"], margin)
        out.append({"arm": row["arm"], "against": base, "differs": row.get("differs", {}), "quantity": "iterations",
                    **test})
    return holm_family(out)  # the ablations are one family of comparisons: Holm, for difference and equivalence


def best_of(mults: dict, arms: list[str], quantity: str = "iterations") -> dict:
    return best_arm({a: mults[a]["quantities"][quantity] for a in arms if a in mults})


def share_of_log_gain(jest: Estimate, control: Estimate) -> float | None:
    """log(control's multiplier) / log(JEST's): the part of JEST's gain in log compute a control reaches;
    None unless both are measured (no bound) and JEST's is above 1."""
    if jest.value and control.value and jest.value > 1 and not jest.bound and not control.bound:
        return math.log(control.value) / math.log(jest.value)
    return None


def _share(jest: Estimate, control: Estimate) -> dict:
    """The control's share of JEST's log gain with its Fieller interval (None where the share is)."""
    share = share_of_log_gain(jest, control)
    return {"share_of_log_gain": share, "share_ci": fieller_share(control, jest) if share is not None else None}


def controls(mults: dict, settings: dict[str, dict], jest_arms: list[str], margin: float = DEFAULT_MARGIN) -> dict:
    """The control arms (DESIGN.md, "Where a gain comes from"): the oracle (a reference line, not a
    ceiling) and, per JEST arm, how much of its multiplier the offline filter (same filter ratio if there
    is one) and its mixture-matched control (re-weighting alone) reach, each with the paired comparison."""
    controls_ = [a for a in mults if group_of(settings.get(a, {}).get("policy")) == "control"]
    by_policy = {}
    for a in controls_:
        by_policy.setdefault(settings[a]["policy"], []).append(a)
    out = {"arms": by_policy, "oracle_ceiling": None, "offline_share": [], "mixture_matched": []}
    oracles = [a for a in controls_ if role_of(settings[a]["policy"]) == "oracle"]
    filters = [a for a in controls_ if role_of(settings[a]["policy"]) == "filter"]
    if oracles:
        out["oracle_ceiling"] = {"arm": oracles[0], **nest(mults[oracles[0]]["quantities"])}
    for arm in jest_arms:
        if arm not in mults or not filters:
            continue
        f = settings.get(arm, {}).get("filter_ratio")
        same = [a for a in filters if settings[a].get("filter_ratio") == f]
        off = (same or filters)[0]
        j, o = mults[arm]["quantities"]["iterations"], mults[off]["quantities"]["iterations"]
        out["offline_share"].append({"arm": arm, "offline_filter": off, "jest": j, "offline": o,
                                     **_share(j, o),
                                     "jest_over_offline": compare(j, o, margin)})
    # JEST against its mixture-matched control (baselines/mixture.py): the same mixture step by step, uniform
    # within each (source, quality) cell; the ratio is what selection adds beyond re-weighting
    matched = [a for a in controls_ if role_of(settings[a]["policy"]) == "matched"]
    for arm in jest_arms:
        mine = [a for a in matched if settings[a].get("match_arm") == arm]
        if arm not in mults or not mine:
            continue
        j, m = mults[arm]["quantities"]["iterations"], mults[mine[0]]["quantities"]["iterations"]
        out["mixture_matched"].append({"arm": arm, "matched": mine[0], "jest": j, "mixture": m,
                                       **_share(j, m),
                                       "jest_over_matched": compare(j, m, margin)})
    return out


def repetition(curves: pd.DataFrame, cards: list[dict]) -> list[dict]:
    """Per arm: the most passes over the pool any of its runs made (metrics rows, else the cards'
    final rows) and the most unique sequences; `repeats` when passes > 1."""
    def most(values) -> float | None:
        vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        return max(vals) if vals else None

    rows = []
    arms = list(dict.fromkeys(list(curves["arm"]) if not curves.empty else [])) or \
        list(dict.fromkeys(c.get("arm") for c in cards))
    for arm in arms:
        g = curves[curves["arm"] == arm] if not curves.empty else curves
        finals = [(c.get("final") or {}) for c in cards if c.get("arm") == arm]
        passes = most(g["pool_passes"]) if "pool_passes" in g else None
        passes = passes if passes is not None else most(f.get("pool_passes") for f in finals)
        unique = most(g["unique_sequences"]) if "unique_sequences" in g else None
        unique = unique if unique is not None else most(f.get("unique_sequences") for f in finals)
        if passes is not None:
            rows.append({"arm": arm, "pool_passes": passes, "unique_sequences": unique, "repeats": passes > 1.0})
    return rows


__all__ = ["GENERAL", "ablation_tests", "add_general_metric", "best_of", "claims", "controls", "family_table",
           "heldout_metrics", "heldout_set", "metric_multipliers", "nest", "repetition", "share_of_log_gain"]

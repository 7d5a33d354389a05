"""The iso-loss compute multiplier: an arm's final metric placed on the uniform compute family.

DESIGN.md, "Measuring a speedup", view 1 (DsDm arXiv 2401.12926, BETR arXiv 2507.12466, OLMo's
ladders). The uniform family is every uniform-policy arm of the config, each trained to its own
budget (card: config.arms[<arm>].budget, 1.0 = the headline steps) and annealed to its own end.
Its *final* metric against its compute is the family curve. For one run of an arm:

    needed_q   = the compute (quantity q) at which the family curve reaches the arm's final metric
    multiplier = needed_q / the arm's own compute in q

for q in QUANTITIES: iterations (steps), examples (sequences trained on) and FLOPs under each
accounting of jest.model.flops. A run's final metric is the last metrics row that has the metric; its
compute is read at that row's step.

Placing a value on the curve ("monotone interpolation in log compute"):
1. the family's points (C_b, L_b), sorted by compute, are made monotone by an isotonic fit
   (scipy.optimize.isotonic_regression): more compute never gives a worse final value, so a
   seed's noise cannot make the inverse ambiguous;
2. the inverse is piecewise linear in log C between neighbouring budgets: the smallest C at
   which the fitted curve reaches the value. Exact where the curve is linear in log C (a
   power law's log-log slope changes slowly over the 8x a family spans), and the known-answer
   test's values fall on budgets, where any interpolation is exact.
Outside the family's range there is no extrapolation: a value better than the largest budget's
gives the bound "> C_max / C_arm" (bound "lower": at least), one worse than the smallest
budget's gives "< C_min / C_arm" (bound "upper": at most).

Pairing. The same seed gives the same initialisation and data stream in every arm, so each arm
seed is placed on the family curve of its own seed when the family has that seed at >= 2
budgets ("paired"): the seed's shared luck cancels, as in a paired test. Otherwise every seed is
placed on the pooled curve (per budget, the mean over the family's seeds: "pooled"); then a
seed's own luck stays in its multiplier and the interval is wider, as it should be, but the
family's own uncertainty is not in it (noted in the report).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression

from jest.policies.registry import role_of

# quantity -> metrics.jsonl column ("step" is the row's step itself)
QUANTITIES = {"iterations": "step", "examples": "examples_seen", "train": "flops_train",
              "train+score": "flops_train_score", "total": "flops_total"}
FLOP_QUANTITIES = ("train", "train+score", "total")
PAIRED, POOLED = "paired", "pooled"


def budget_of(settings: dict) -> float:
    """An arm's budget (a multiple of the headline steps); 1.0 when the config does not say."""
    return float(settings.get("budget", 1.0) or 1.0)


def family_arms(settings: dict[str, dict]) -> dict[str, float]:
    """The uniform compute family: every arm whose policy's role is the family (uniform) -> its budget."""
    return {a: budget_of(s) for a, s in settings.items() if role_of(s.get("policy")) == "family"}


# ---------------------------------------------------------------- final values
def run_finals(curves: pd.DataFrame, metric: str, flops_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: run, arm, seed, step (of the run's last value of `metric`), value, and the
    run's compute at that step in every quantity (NaN where the run does not log it).

    `flops_table` holds the compute columns when `metric` lives in another table (lm-eval)."""
    cols = ["run", "arm", "seed", "step", "value", *QUANTITIES]
    if curves.empty or metric not in curves:
        return pd.DataFrame(columns=cols)
    d = curves[curves[metric].notna()]
    if d.empty:
        return pd.DataFrame(columns=cols)
    last = d.loc[d.sort_values("step", kind="stable").groupby("run", sort=True).tail(1).index]
    compute_rows = curves if flops_table is None else flops_table
    out = []
    for row in last.to_dict("records"):
        step = float(row["step"])
        item = {"run": row["run"], "arm": row["arm"], "seed": _plain(row["seed"]), "step": step,
                "value": float(row[metric]), "iterations": step}
        for q, col in QUANTITIES.items():
            if col == "step":
                continue
            v = row.get(col) if flops_table is None else None
            if v is None or not np.isfinite(v):      # not on the metric's row: interpolate the run's series
                s = compute_rows.loc[compute_rows["run"] == row["run"], ["step", col]].dropna() \
                    if col in compute_rows else None
                v = float(np.interp(step, s["step"], s[col])) if s is not None and len(s) else float("nan")
            item[q] = float(v)
        out.append(item)
    return pd.DataFrame(out, columns=cols)


def _plain(x):
    return x.item() if hasattr(x, "item") else x


# ---------------------------------------------------------------- the family curve
@dataclass
class FamilyCurve:
    """The family's final values and compute per budget, for one seed (or pooled: seed None)."""

    seed: object
    budgets: np.ndarray                                 # (k,) sorted by compute
    values: np.ndarray                                  # (k,) final metric
    compute: dict = field(default_factory=dict)         # quantity -> (k,) compute

    def range(self, q: str) -> tuple[float, float]:
        c = self.compute[q]
        return float(np.nanmin(c)), float(np.nanmax(c))


def family_curves(finals: pd.DataFrame, family: dict[str, float]) -> dict[object, FamilyCurve]:
    """seed -> FamilyCurve for each seed with >= 2 budgets, plus POOLED -> the per-budget mean."""
    d = finals[finals["arm"].isin(family)].assign(budget=lambda x: x["arm"].map(family))
    out: dict[object, FamilyCurve] = {}

    def curve(seed, rows: pd.DataFrame) -> FamilyCurve | None:
        rows = rows.sort_values(["iterations", "budget"])
        if rows["budget"].nunique() < 2:
            return None
        return FamilyCurve(seed, rows["budget"].to_numpy(float), rows["value"].to_numpy(float),
                           {q: rows[q].to_numpy(float) for q in QUANTITIES})

    for seed, rows in d.groupby("seed", sort=True):
        c = curve(_plain(seed), rows)
        if c is not None:
            out[_plain(seed)] = c
    if not d.empty:
        pooled = d.groupby("budget", as_index=False)[["value", *QUANTITIES]].mean()
        c = curve(None, pooled)
        if c is not None:
            out[POOLED] = c
    return out


def needed_compute(compute: np.ndarray, values: np.ndarray, target: float,
                   higher_is_better: bool = False) -> tuple[float, str | None]:
    """The compute at which the monotone family curve reaches `target` (see the module docstring).

    Returns (C, bound): bound None (inside the range), "lower" (needs more than C = the largest
    budget's compute), "upper" (needs less than C = the smallest budget's)."""
    c, logc, fit, sign = _monotone(compute, values, higher_is_better)
    t = sign * float(target)
    if t < fit[-1]:
        return float(c[-1]), "lower"
    if t > fit[0]:
        return float(c[0]), "upper"
    i = int(np.argmax(fit <= t))
    if i == 0:
        return float(c[0]), None
    v0, v1 = fit[i - 1], fit[i]
    frac = 1.0 if v0 == v1 else (v0 - t) / (v0 - v1)
    return float(np.exp(logc[i - 1] + frac * (logc[i] - logc[i - 1]))), None


def _monotone(compute: np.ndarray, values: np.ndarray, higher_is_better: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The family curve as both directions read it: (compute sorted, its log, the isotonic fit of
    sign * value in that order, sign), sign -1 for a metric where higher is better."""
    ok = np.isfinite(compute) & np.isfinite(values) & (compute > 0)
    c, v = compute[ok], values[ok]
    if len(c) < 2:
        raise ValueError("the uniform family needs >= 2 budgets with finite values and compute")
    order = np.argsort(c, kind="stable")
    sign = -1.0 if higher_is_better else 1.0            # work in "lower is better"
    fit = sign * v[order]
    if np.any(np.diff(fit) > 0):            # the isotonic fit only where noise broke monotonicity
        fit = isotonic_regression(fit, increasing=False).x
    return c[order], np.log(c[order]), fit, sign


def family_value(compute: np.ndarray, values: np.ndarray, at: float, higher_is_better: bool = False) -> float | None:
    """The monotone family curve's value at compute `at` (needed_compute's inverse: the same fit,
    linear in log C between budgets); None outside the family's range (no extrapolation)."""
    c, logc, fit, sign = _monotone(compute, values, higher_is_better)
    if not c[0] <= at <= c[-1]:
        return None
    return float(sign * np.interp(np.log(at), logc, fit))


# ---------------------------------------------------------------- per run of an arm
@dataclass
class SeedMultiplier:
    """One arm seed's multiplier in one quantity; with a bound, `value` is the bound."""

    seed: object
    value: float | None
    bound: str | None               # None | "lower" (at least value) | "upper" (at most value)
    needed: float | None            # the family compute that matches (or the range end)
    own: float | None               # the arm's compute
    final: float                    # the arm seed's final metric
    curve: str                      # "seed <s>" or "pooled"


def arm_seed_multipliers(finals: pd.DataFrame, arm: str, curves: dict[object, FamilyCurve],
                         higher_is_better: bool = False, pairing: str = "auto"
                         ) -> tuple[dict[str, list[SeedMultiplier]], str]:
    """quantity -> per-seed multipliers of `arm`, and the pairing used (PAIRED or POOLED).

    pairing "auto": PAIRED when every seed of the arm has its own family curve, else POOLED."""
    rows = finals[finals["arm"] == arm].sort_values("seed")
    seeds = [_plain(s) for s in rows["seed"]]
    if pairing == "auto":
        pairing = PAIRED if seeds and all(s in curves for s in seeds) else POOLED
    if pairing == POOLED and POOLED not in curves:
        raise ValueError(f"no uniform family to place '{arm}' on (need >= 2 budgets of a uniform-policy arm)")
    out: dict[str, list[SeedMultiplier]] = {q: [] for q in QUANTITIES}
    for row in rows.to_dict("records"):
        seed = _plain(row["seed"])
        fam = curves[seed] if pairing == PAIRED else curves[POOLED]
        for q in QUANTITIES:
            own, final = float(row[q]), float(row["value"])
            if not np.isfinite(own) or own <= 0 or not np.isfinite(fam.compute[q]).all():
                out[q].append(SeedMultiplier(seed, None, None, None, None, final, _name(fam)))
                continue
            needed, bound = needed_compute(fam.compute[q], fam.values, final, higher_is_better)
            out[q].append(SeedMultiplier(seed, needed / own, bound, needed, own, final, _name(fam)))
    return out, pairing


def _name(fam: FamilyCurve) -> str:
    return "pooled" if fam.seed is None else f"seed {fam.seed}"


def multiplier_range(curves: dict[object, FamilyCurve], own: float, q: str) -> tuple[float, float]:
    """What the family can measure for an arm of compute `own` in q: [C_min / own, C_max / own]."""
    lo, hi = curves[POOLED].range(q) if POOLED in curves else next(iter(curves.values())).range(q)
    return lo / own, hi / own


__all__ = ["FLOP_QUANTITIES", "FamilyCurve", "PAIRED", "POOLED", "QUANTITIES", "SeedMultiplier",
           "arm_seed_multipliers", "budget_of", "family_arms", "family_curves", "family_value", "multiplier_range",
           "needed_compute", "run_finals"]

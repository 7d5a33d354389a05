"""Statistics of the scale ladder and the length axis (issues #15, #28): the trend of the multiplier
along the rungs, and whether the rungs rank the arms the same way.

Slope. For one arm and one quantity, every seed at every rung gives a point (log x_r, log M_rs):
x_r the rung's position on the axis (its 1x uniform run's training FLOPs on the size ladder, its
tokens per parameter on the length axis), M_rs the seed's multiplier (analysis.multiplier). The
slope s of log M = a + s log x is fitted by least squares on the rung means m_r (each rung weighs
the same, whatever its seed count), and its interval is the t-interval of that fit: the residuals
of the R rung means, R - 2 degrees of freedom.

Why the rung is the unit of replication: what the slope varies across is the rung, and a rung's
mean departs from the line by its seed noise plus anything the line does not capture (lack of fit:
a curved trend, a rung whose lr or reference ratio differs). The t-interval on every seed point
(R x S points, R x S - 2 degrees of freedom) counts seeds as if each were a new rung and ignores
that lack of fit: on the committed CPU ladder it was about 8x too narrow (issue #28). A mixed model
with a random rung effect gives the same point estimate with balanced seeds and, with as few as 5
rungs, an interval no better founded than this one; the rung-means fit says plainly what it
assumes (the rung means scatter normally about a line with a common spread) and needs >= 3 rungs
(2 rungs give a slope and no interval). The test's simulation checks its coverage.

The slope says how the multiplier moves over the covered range only; it is never used to
extrapolate a crossing with 13x / 10x (analysis.ladder never computes one).

Decision agreement (DataDecide, arXiv 2504.11393, "decision accuracy"): for two rungs, the share of
arm pairs that the two rungs order the same way (by the mean final held-out value of the arms at
the same, 1x, budget); ties at either rung count as disagreement. Against the top rung it is
DataDecide's decision accuracy of the smaller rung. It is a count, with no interval: 5 arms give
10 pairs, so one flipped pair moves it by 0.1.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats as st

CI_LEVEL = 0.95
# the quantities the multiplier is measured in: the two claims' (analysis.claims), and `total`, where
# the fixed reference's one-time cost (training, pool scoring) weighs less at every larger rung
SLOPE_QUANTITIES = ("iterations", "train+score", "total")
PLOT_QUANTITIES = ("iterations", "train+score")
CLAIM_QUANTITY = {13.0: "iterations", 10.0: "train+score"}  # each claim's factor -> its quantity


def slope_of_means(log_c: np.ndarray, samples: list[np.ndarray]) -> float:
    """Least-squares slope through (log_c[r], mean(samples[r]))."""
    means = np.array([np.mean(s) for s in samples])
    x = log_c - log_c.mean()
    return float((x * (means - means.mean())).sum() / (x * x).sum())


def fit_slope(log_x: list[float], log_m: list[list[float]], ci_level: float = CI_LEVEL) -> dict:
    """Slope of log M vs log x on the rung means, with the t-interval of that fit (module docstring).
    `log_m[r]`: the per-seed log multipliers at rung r. Needs >= 2 rungs for a slope, >= 3 for an interval."""
    log_x = np.asarray(log_x, float)
    samples = [np.asarray(s, float) for s in log_m]
    keep = [i for i, s in enumerate(samples) if len(s)]
    log_x, samples = log_x[keep], [samples[i] for i in keep]
    out = {"slope": None, "ci_t": None, "n_rungs": len(samples), "n_points": int(sum(len(s) for s in samples)),
           "df": max(0, len(samples) - 2), "ci_level": ci_level, "unit": "rung",
           "method": "least squares on the rung means of log multiplier; t-interval with rungs - 2 degrees of freedom"}
    if len(samples) < 2:
        return out
    out["slope"] = slope_of_means(log_x, samples)
    if len(samples) >= 3:
        means = np.array([s.mean() for s in samples])
        x = log_x - log_x.mean()
        resid = means - means.mean() - out["slope"] * x
        se = math.sqrt(float(resid @ resid) / (len(means) - 2) / float(x @ x))
        half = float(st.t.ppf(0.5 + ci_level / 2, len(means) - 2)) * se
        out["ci_t"] = [out["slope"] - half, out["slope"] + half]
        out["rung_residual_sd"] = math.sqrt(float(resid @ resid) / (len(means) - 2))
    return out


def trend_word(fit: dict) -> str:
    """'rises' / 'falls' when the t-interval excludes 0, 'flat (undecided)' otherwise."""
    ci = fit.get("ci_t")
    if fit.get("slope") is None or ci is None:
        return "not measured"
    if ci[0] > 0:
        return "rises"
    if ci[1] < 0:
        return "falls"
    return "undecided (the interval contains 0)"


def pair_order(values: dict[str, float]) -> dict[tuple[str, str], int]:
    """(a, b) -> sign(values[a] - values[b]) for every unordered pair (names sorted)."""
    return {(a, b): int(np.sign(values[a] - values[b])) for a, b in itertools.combinations(sorted(values), 2)}


def decision_agreement(rung_values: dict[str, dict[str, float]]) -> dict:
    """Share of arm pairs ordered the same way, for every pair of rungs (arms present at both).

    `rung_values`: rung -> {arm (without the rung prefix) -> value}; rungs in order of size."""
    rungs = list(rung_values)
    pairs = {}
    for r0, r1 in itertools.combinations(rungs, 2):
        common = sorted(set(rung_values[r0]) & set(rung_values[r1]))
        o0 = pair_order({a: rung_values[r0][a] for a in common})
        o1 = pair_order({a: rung_values[r1][a] for a in common})
        same = [k for k in o0 if o0[k] == o1[k] and o0[k] != 0]
        pairs[f"{r0}|{r1}"] = {"rungs": [r0, r1], "arms": common, "pairs": len(o0),
                               "agree": len(same), "agreement": len(same) / len(o0) if o0 else None,
                               "disagreeing": [list(k) for k in o0 if k not in same]}
    top = rungs[-1] if rungs else None
    vs_top = {r: pairs[f"{r}|{top}"]["agreement"] for r in rungs[:-1]} if top else {}
    return {"pairs": pairs, "top_rung": top, "decision_accuracy_vs_top": vs_top}


def excludes(ci_high: float | None, factor: float) -> bool:
    """A claimed factor is excluded when the interval's upper end lies below it (an open end never excludes)."""
    return ci_high is not None and math.isfinite(ci_high) and ci_high < factor


__all__ = ["decision_agreement", "excludes", "fit_slope", "pair_order", "slope_of_means", "trend_word"]

"""Statistics that decide: intervals over seeds, verdicts against a claimed factor, paired
equivalence tests between arms, Holm when naming a best arm (docs/statistics.md says why).

Interval. An arm's multiplier over its n seeds is the geometric mean of the per-seed
multipliers; its interval is the Student t-interval on the per-seed log multipliers
(scipy.stats.ttest_1samp(...).confidence_interval), exponentiated. At n = 5 a t-interval keeps
its nominal coverage when the per-seed log multipliers are close to normal (the simulation in
tests/analysis/test_stats_coverage.py runs the whole estimator, family curve included), while a
percentile bootstrap over 5 values has at most 126 distinct resamples and covers far less
(docs/statistics.md measures both). One seed: no interval and no verdict.

Bounds. A seed outside the family's range enters with its bound (analysis.multiplier): the
estimate is then itself a bound ("lower" when some seed is "at least", "upper" when some seed
is "at most", "mixed" when both: no interval); the open end of the interval is None.

Verdict against a factor (13x, 10x), per arm, from the interval [lo, hi] (open ends: 0 / inf):
lo >= factor -> "reproduced"; hi < factor -> "not reproduced at this scale"; else "undecided".
Over several arms (claim_over_arms): "reproduced" needs an arm whose one-sided t-test of
log M > log factor survives Holm's correction over the arms tested (the level the interval uses:
(1 - ci_level) / 2); "not reproduced" needs every tested arm's interval below the factor (an
intersection-union test: no correction needed); otherwise "undecided".

Equivalence ("no difference" statements): paired by seed, on the log of the two arms' multipliers;
statsmodels' ttost_paired against the declared margin (a ratio: 1.10 = the arms' multipliers
within 10% of each other). "equivalent" when TOST rejects at alpha (the 1 - 2 alpha interval lies
inside the margin); "different" when the paired t-test rejects no difference at alpha and the
difference is not inside the margin; otherwise "undecided". Each comparison states the
minimum detectable effect: the ratio a paired t-test at alpha with 80% power would detect from
the observed spread (statsmodels TTestPower), and the seeds that would settle it (equivalent or
different at 80% power) if the observed mean and spread were the truth (a simulation). A family of such comparisons (the ablations, each
against the headline arm) is corrected with Holm's method, separately for the difference and the
equivalence tests (holm_family): the verdict is the corrected one, the uncorrected one is kept beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

REPRODUCED, NOT_REPRODUCED, UNDECIDED = "reproduced", "not reproduced at this scale", "undecided"
SINGLE_SEED = "single seed: no verdict"
EQUIVALENT, DIFFERENT = "equivalent", "different"
CI_LEVEL, ALPHA, POWER = 0.95, 0.05, 0.80
DEFAULT_MARGIN = 1.10   # "no difference": the two arms' multipliers within 10% of each other


@dataclass
class Estimate:
    """An arm's multiplier in one quantity over its seeds (see the module docstring)."""

    value: float | None             # geometric mean over seeds (with a bound: the bound's)
    ci_low: float | None            # None: open (0) or no interval
    ci_high: float | None           # None: open (inf) or no interval
    bound: str | None = None        # None | "lower" | "upper" | "mixed"
    n: int = 0
    log_mean: float | None = None
    log_sd: float | None = None
    method: str = "t"               # "t" | "single seed" | "not measured"
    ci_level: float = CI_LEVEL
    per_seed: list = field(default_factory=list)   # [{seed, value, bound}]


def aggregate(per_seed: list, ci_level: float = CI_LEVEL) -> Estimate:
    """Estimate from per-seed multipliers (objects with .seed, .value, .bound)."""
    seeds = [{"seed": p.seed, "value": p.value, "bound": p.bound} for p in per_seed]
    vals = [p for p in per_seed if p.value is not None and p.value > 0]
    if not vals:
        return Estimate(None, None, None, n=0, method="not measured", ci_level=ci_level, per_seed=seeds)
    logs = np.log([p.value for p in vals])
    kinds = {p.bound for p in vals} - {None}
    bound = None if not kinds else (kinds.pop() if len(kinds) == 1 else "mixed")
    mean = float(logs.mean())
    if len(vals) == 1:
        return Estimate(float(np.exp(mean)), None, None, bound, 1, mean, None, "single seed", ci_level, seeds)
    sd = float(logs.std(ddof=1))
    # the t-interval mean +- t_{n-1} sd / sqrt(n) (what ttest_1samp(...).confidence_interval returns,
    # written out: ttest_1samp costs ~5 ms a call, and the coverage simulation makes thousands)
    half = float(st.t.ppf(0.5 + ci_level / 2, len(vals) - 1)) * sd / math.sqrt(len(vals))
    lo, hi = mean - half, mean + half
    lo_v = None if bound in ("upper", "mixed") else float(np.exp(lo))
    hi_v = None if bound in ("lower", "mixed") else float(np.exp(hi))
    return Estimate(float(np.exp(mean)), lo_v, hi_v, bound, len(vals), mean, sd, "t", ci_level, seeds)


def interval(e: Estimate) -> tuple[float, float]:
    """[lo, hi] the true multiplier may lie in; open ends as 0 / inf; a single seed: the point."""
    if e.value is None:
        return 0.0, math.inf
    if e.n == 1:
        return (0.0 if e.bound == "upper" else e.value), (math.inf if e.bound == "lower" else e.value)
    return (0.0 if e.ci_low is None else e.ci_low), (math.inf if e.ci_high is None else e.ci_high)


def _span(lo: float, hi: float) -> str:
    """An interval as words: a bound's is one-sided ('[0.00, 0.68]x' read as if 0 were measured)."""
    if math.isinf(hi):
        return f"(one-sided: at least {lo:.2f}x)"
    if lo <= 0.0:
        return f"(one-sided: at most {hi:.2f}x)"
    return f"[{lo:.2f}, {hi:.2f}]x"


def verdict(e: Estimate | None, factor: float) -> tuple[str, str]:
    """(verdict word, reason) for one arm against a claimed factor."""
    if e is None or e.value is None:
        return UNDECIDED, "not measured"
    if e.n < 2:
        return SINGLE_SEED, f"one seed ({e.value:.2f}x): no interval, no verdict"
    lo, hi = interval(e)
    span = _span(lo, hi)
    if lo >= factor:
        return REPRODUCED, f"the {100 * e.ci_level:.0f}% interval {span} lies at or above {factor:g}x"
    if hi < factor:
        return NOT_REPRODUCED, f"the {100 * e.ci_level:.0f}% interval {span} lies below {factor:g}x"
    if e.bound in ("lower", "mixed"):
        return UNDECIDED, (f"{span}: the arm beats the uniform family's largest budget, so the family cannot "
                           f"say whether it reaches {factor:g}x (train a larger budget)")
    return UNDECIDED, f"the interval {span} contains {factor:g}x"


def p_greater(e: Estimate, factor: float) -> float | None:
    """One-sided p-value of H0: multiplier <= factor (t-test on the per-seed logs); None below 2 seeds.

    An estimate that is an upper bound (or mixed) cannot show more than its bound: p = 1."""
    if e.value is None or e.n < 2:
        return None
    if e.bound in ("upper", "mixed"):
        return 1.0
    logs = np.log([p["value"] for p in e.per_seed if p["value"]])
    if np.ptp(logs) <= 1e-12:
        return 0.0 if logs[0] > math.log(factor) else 1.0
    t = (logs.mean() - math.log(factor)) / (logs.std(ddof=1) / math.sqrt(len(logs)))
    return float(st.t.sf(t, len(logs) - 1))


def claim_over_arms(estimates: dict[str, Estimate], factor: float, ci_level: float = CI_LEVEL) -> dict:
    """A claimed factor against several arms: verdict, the best arm, Holm-adjusted p-values."""
    alpha = (1 - ci_level) / 2
    per_arm = {a: {"arm": a, "verdict": verdict(e, factor)[0], "reason": verdict(e, factor)[1],
                   "p_greater": p_greater(e, factor), "p_holm": None, "n_seeds": e.n}
               for a, e in estimates.items()}
    tested = [a for a, r in per_arm.items() if r["p_greater"] is not None]
    if tested:
        adj = multipletests([per_arm[a]["p_greater"] for a in tested], alpha=alpha, method="holm")[1]
        for a, p in zip(tested, adj):
            per_arm[a]["p_holm"] = float(p)
    measured = [a for a, e in estimates.items() if e.value is not None]
    best = max(measured, key=lambda a: estimates[a].value) if measured else None
    if not tested:
        word = SINGLE_SEED if measured else UNDECIDED
        reason = "every arm has a single seed: no interval, no verdict" if measured else "no arm measured"
    elif any(per_arm[a]["p_holm"] <= alpha for a in tested):
        best = min(tested, key=lambda a: per_arm[a]["p_holm"])
        word = REPRODUCED
        reason = (f"{best}: one-sided p = {per_arm[best]['p_holm']:.3g} after Holm over {len(tested)} arm(s) "
                  f"(level {alpha:g})")
    elif all(per_arm[a]["verdict"] == NOT_REPRODUCED for a in tested):
        word = NOT_REPRODUCED
        reason = f"every arm's interval lies below {factor:g}x; best point estimate {best}: {per_arm[best]['reason']}"
    else:
        undecided = [a for a in tested if per_arm[a]["verdict"] != NOT_REPRODUCED]
        best = max(undecided, key=lambda a: estimates[a].value)
        word, reason = UNDECIDED, f"{best}: {per_arm[best]['reason']}"
    untested = [a for a in measured if a not in tested]
    if untested and tested:
        reason += f"; single-seed arms left out of the test: {', '.join(untested)}"
    return {"verdict": word, "reason": reason, "best_arm": best, "measured": estimates.get(best),
            "per_arm": list(per_arm.values())}


# ---------------------------------------------------------------- paired comparisons
def _paired_logs(a: Estimate, b: Estimate) -> tuple[list, np.ndarray, np.ndarray, list]:
    """Seeds both arms measured inside the family's range; the seeds left out (bounds)."""
    pa = {p["seed"]: p for p in a.per_seed if p["value"]}
    pb = {p["seed"]: p for p in b.per_seed if p["value"]}
    common = [s for s in pa if s in pb]
    censored = [s for s in common if pa[s]["bound"] or pb[s]["bound"]]
    keep = [s for s in common if s not in censored]
    return keep, np.log([pa[s]["value"] for s in keep]), np.log([pb[s]["value"] for s in keep]), censored


def fieller_share(control: Estimate, jest: Estimate, ci_level: float = CI_LEVEL) -> dict | None:
    """Fieller's interval for a ratio of two paired means: mean(log M_control) / mean(log M_JEST) over the
    seeds both measured (the share of JEST's gain in log compute, analysis.verdicts.share_of_log_gain).
    A ratio of two noisy means has no t-interval of its own; Fieller's is the set of ratios r for which
    mean(x) - r mean(y) = 0 is not rejected by a t-test with the paired covariance (Fieller 1954). When
    JEST's own mean log gain is not significantly above 0 at that level, the set is unbounded: ci_low and
    ci_high are then None. None below 2 paired seeds."""
    keep, x, y, _ = _paired_logs(control, jest)
    n = len(keep)
    if n < 2:
        return None
    cov = np.cov(x, y, ddof=1) / n                                         # (2, 2) of the two means
    a, b, t2 = float(x.mean()), float(y.mean()), float(st.t.ppf(0.5 + ci_level / 2, n - 1)) ** 2
    qa, qb, qc = b * b - t2 * cov[1, 1], -2 * (a * b - t2 * cov[0, 1]), a * a - t2 * cov[0, 0]
    disc = qb * qb - 4 * qa * qc
    out = {"ratio": a / b if b else None, "ci_low": None, "ci_high": None, "n": n, "ci_level": ci_level,
           "method": "Fieller, paired by seed"}
    if qa > 0 and disc >= 0:
        root = math.sqrt(disc)
        out.update(ci_low=(-qb - root) / (2 * qa), ci_high=(-qb + root) / (2 * qa))
    return out


def mde_ratio(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest ratio of multipliers a paired t-test at alpha detects with `power` at n seeds."""
    if n < 2 or not np.isfinite(sd):
        return None
    if sd == 0:
        return 1.0
    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    return float(np.exp(float(d) * sd))


def settle_probability(mean: float, sd: float, n: int, margin: float, alpha: float = ALPHA,
                       sims: int = 4000, seed: int = 0) -> float:
    """The share of simulated experiments of n paired seeds, with log-ratio differences ~ N(mean, sd), whose
    verdict is decided: TOST within the margin rejects at alpha ("equivalent"), or the paired t-test rejects
    no difference at alpha with the estimate outside the margin ("different"). Uncorrected, as `compare`."""
    rng = np.random.default_rng(seed)
    d = rng.normal(mean, sd, size=(sims, n))
    m_hat, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(n)
    t_dist = st.t(n - 1)
    p_diff = 2 * t_dist.sf(np.abs(m_hat) / se)
    m = math.log(margin)
    p_tost = np.maximum(t_dist.sf((m_hat + m) / se), t_dist.cdf((m_hat - m) / se))
    decided = (p_tost < alpha) | ((p_diff < alpha) & (np.abs(m_hat) > m))
    return float(decided.mean())


def seeds_to_settle(mean: float, sd: float, margin: float = DEFAULT_MARGIN, alpha: float = ALPHA,
                    power: float = POWER, n_max: int = 400) -> int | None:
    """How many paired seeds would decide a comparison (equivalent or different, at `margin`) with
    `power`, if the true mean and sd of the per-seed log ratio were the observed ones: a simulation
    (settle_probability), searched by doubling then bisection. None: not within n_max seeds (a true
    ratio at the margin's edge is never settled)."""
    if not (np.isfinite(mean) and np.isfinite(sd)) or sd <= 0:
        return None
    lo, hi = 2, 3
    while settle_probability(mean, sd, hi, margin, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > n_max:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if settle_probability(mean, sd, mid, margin, alpha) >= power else (mid, hi)
    return hi


def compare(a: Estimate, b: Estimate, margin: float = DEFAULT_MARGIN, alpha: float = ALPHA) -> dict:
    """Paired comparison of two arms' multipliers (a / b): ratio, interval, TOST, verdict, MDE."""
    seeds, la, lb, censored = _paired_logs(a, b)
    out = {"seeds": seeds, "n": len(seeds), "seeds_left_out": censored, "margin": margin, "alpha": alpha,
           "ratio": None, "ci_low": None, "ci_high": None, "p_difference": None, "p_equivalence": None,
           "mde_ratio": None, "seeds_to_settle": None, "verdict": UNDECIDED, "reason": ""}
    if len(seeds) < 2:
        out["verdict"] = SINGLE_SEED if len(seeds) == 1 else UNDECIDED
        out["reason"] = ("one paired seed: no test" if len(seeds) == 1 else
                         "no seed measured inside the family's range by both arms")
        if censored:
            out["reason"] += f" ({len(censored)} seed(s) outside the family's range left out)"
        return out
    diff = la - lb
    mean, sd, n = float(diff.mean()), float(diff.std(ddof=1)), len(diff)
    m = math.log(margin)
    out.update(ratio=float(np.exp(mean)), mde_ratio=mde_ratio(sd, n, alpha),
               seeds_to_settle=seeds_to_settle(mean, sd, margin, alpha))  # if the observed effect were true
    if sd <= 1e-12 * max(1.0, abs(mean)):          # identical differences (to rounding): no t-test
        diff_nonzero = abs(mean) > 1e-12
        out.update(ci_low=out["ratio"], ci_high=out["ratio"], p_difference=0.0 if diff_nonzero else 1.0,
                   p_equivalence=0.0 if abs(mean) < m else 1.0, mde_ratio=1.0)
    else:
        ci = st.ttest_1samp(diff, 0.0).confidence_interval(confidence_level=1 - alpha)
        out.update(ci_low=float(np.exp(ci.low)), ci_high=float(np.exp(ci.high)),
                   p_difference=float(st.ttest_1samp(diff, 0.0).pvalue),
                   p_equivalence=float(ttost_paired(la, lb, -m, m)[0]))
    inside = f"within 1/{margin:g}..{margin:g}x"
    if out["p_equivalence"] < alpha:
        out["verdict"] = EQUIVALENT
        out["reason"] = f"TOST p = {out['p_equivalence']:.3g} < {alpha:g}: the ratio is {inside}"
    elif out["p_difference"] < alpha:
        out["verdict"] = DIFFERENT
        # "different" from 1x, not shown equivalent; the point ratio itself can lie inside the margin (a
        # difference smaller than the margin), and the sentence must not say it lies outside
        where = "inside" if 1 / margin <= out["ratio"] <= margin else "outside"
        out["reason"] = (f"paired t-test p = {out['p_difference']:.3g} < {alpha:g}; the ratio {out['ratio']:.2f}x lies "
                         f"{where} 1/{margin:g}..{margin:g}x" + (f" (a difference smaller than the margin; not shown "
                         f"{inside}: TOST p = {out['p_equivalence']:.3g})" if where == "inside" else ""))
    else:
        out["reason"] = (f"neither equivalent (TOST p = {out['p_equivalence']:.3g}) nor different "
                         f"(p = {out['p_difference']:.3g}); detectable at {n} seeds: a ratio of "
                         f"{out['mde_ratio']:.2f}x; "
                         + (f"about {out['seeds_to_settle']} seeds would settle it if the observed ratio were true"
                            if out["seeds_to_settle"] else "the observed ratio sits where no affordable number of "
                            "seeds settles it"))
    if censored:
        out["reason"] += f"; {len(censored)} seed(s) outside the family's range left out"
    return out


def holm_family(tests: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Correct a family of `compare` results for multiplicity (Holm, separately for the difference tests
    and for the equivalence tests): each test gains p_difference_holm, p_equivalence_holm and
    `verdict_uncorrected` (its own verdict), and its `verdict` becomes the corrected one: "equivalent"
    when the Holm-adjusted TOST p < alpha, "different" when the Holm-adjusted t-test p < alpha and the
    ratio is not inside the margin, else "undecided". Tests without p-values keep their verdict."""
    tested = [t for t in tests if t.get("p_difference") is not None and t.get("p_equivalence") is not None]
    if not tested:
        return tests
    p_diff = multipletests([t["p_difference"] for t in tested], alpha=alpha, method="holm")[1]
    p_eq = multipletests([t["p_equivalence"] for t in tested], alpha=alpha, method="holm")[1]
    for t, pd_, pe in zip(tested, p_diff, p_eq):
        t.update(p_difference_holm=float(pd_), p_equivalence_holm=float(pe), verdict_uncorrected=t["verdict"],
                 correction=f"Holm over {len(tested)} comparisons")
        if pe < alpha:
            t["verdict"] = EQUIVALENT
        elif pd_ < alpha and t["verdict_uncorrected"] != EQUIVALENT and not (
                t["ratio"] and 1 / t["margin"] <= t["ratio"] <= t["margin"]):
            t["verdict"] = DIFFERENT
        else:
            t["verdict"] = UNDECIDED
        if t["verdict"] != t["verdict_uncorrected"]:
            t["reason"] = (f"{t['verdict_uncorrected']} before correction; after Holm over {len(tested)} "
                           f"comparisons: t-test p = {pd_:.3g}, TOST p = {pe:.3g}. " + t["reason"])
    return tests


def best_arm(estimates: dict[str, Estimate], alpha: float = ALPHA) -> dict:
    """The arm with the highest multiplier, and whether it beats every other arm (paired one-sided
    t-tests, Holm over the k - 1 comparisons)."""
    measured = {a: e for a, e in estimates.items() if e.value is not None}
    if not measured:
        return {"arm": None, "significant": False, "comparisons": []}
    top = max(measured, key=lambda a: measured[a].value)
    comps = []
    for other, e in measured.items():
        if other == top:
            continue
        seeds, la, lb, _ = _paired_logs(measured[top], e)
        diff = la - lb
        if len(seeds) < 2:
            p = None
        elif np.ptp(diff) <= 1e-12:
            p = 0.0 if diff[0] > 1e-12 else 1.0
        else:
            p = float(st.ttest_1samp(diff, 0.0, alternative="greater").pvalue)
        comps.append({"against": other, "n": len(seeds), "p": p, "p_holm": None})
    tested = [c for c in comps if c["p"] is not None]
    if tested:
        for c, p in zip(tested, multipletests([c["p"] for c in tested], alpha=alpha, method="holm")[1]):
            c["p_holm"] = float(p)
    significant = bool(comps) and all(c["p_holm"] is not None and c["p_holm"] < alpha for c in comps)
    return {"arm": top, "significant": significant, "alpha": alpha, "comparisons": comps}


def format_estimate(e: dict | None) -> str:
    """A summary's estimate as the reports print it: '1.21x [1.05, 1.39]', '<0.49x [open, 0.49]' for a
    bound, '1.02x (1 seed)', '-' when not measured (one format for every report's tables)."""
    if not e or e.get("value") is None:
        return "-"
    sign = {"lower": ">", "upper": "<"}.get(e["bound"], "")
    lo = "open" if e["ci_low"] is None else f"{e['ci_low']:.2f}"
    hi = "open" if e["ci_high"] is None else f"{e['ci_high']:.2f}"
    value = f"{e['value']:.2f}" if e["value"] >= 0.1 else f"{e['value']:.2g}"
    return f"{sign}{value}x" + (f" [{lo}, {hi}]" if e["n"] > 1 else " (1 seed)")


__all__ = ["ALPHA", "CI_LEVEL", "DEFAULT_MARGIN", "DIFFERENT", "EQUIVALENT", "Estimate", "format_estimate", "NOT_REPRODUCED",
           "REPRODUCED", "SINGLE_SEED", "UNDECIDED", "aggregate", "best_arm", "claim_over_arms", "compare",
           "fieller_share", "holm_family",
           "interval", "mde_ratio", "p_greater", "seeds_to_settle", "settle_probability", "verdict"]

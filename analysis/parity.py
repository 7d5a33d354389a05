"""Iterations- and FLOPs-to-parity against the uniform baseline, with bootstrap CIs over seeds.

Definitions (DESIGN.md, "Parity"):

- target: the baseline's metric at its final step T_u, averaged over its seeds.
- T_j: the first step at which an arm's seed-averaged curve, linearly
  interpolated between eval points, reaches the target ("reaches": <= for a
  lower-is-better metric such as held-out loss, >= for an accuracy).
- iteration speedup T_u / T_j; FLOP speedup F_u(T_u) / F_j(T_j) under each
  accounting of jest.model.flops.ACCOUNTINGS, F_j interpolated linearly at T_j.

Censoring, i.e. what a number means when parity is not observed exactly:

- not reached by the arm's last step T_end: T_j > T_end, so the speedup is
  *below* T_u / T_end (and the FLOP speedup below F_u(T_u) / F_j(T_end)): the
  value reported is an **upper** bound (`bound: "upper"`). With T_end = T_u the
  bound is 1: the arm is slower than uniform.
- reached at the arm's first eval point s_1 (nothing is known between step 0
  and s_1): T_j <= s_1, so the speedup is at least T_u / s_1: a **lower** bound
  (`bound: "lower"`). T_u / s_1 is the largest speedup the eval grid can
  measure (`max_measurable_speedup`).

Noise. By default no smoothing: the first crossing of the raw mean curve, as
the design states, so one lucky eval dip counts. Two options make it stricter
or smoother: `smooth="running_best"` (running min / max, which only moves the
crossing inside the same eval interval) and `rule="sustained"` (the first step
after which the curve never leaves the target again: robust to a single dip).
`baseline_self_step` is the same rule applied to the baseline's own curve: if
uniform already reaches its final value at step T_s < T_u (a plateau), speedups
up to T_u / T_s are within the noise floor of the definition.

Uncertainty: a percentile bootstrap over seeds. Each replicate resamples the
baseline's seeds and the arm's seeds with replacement (independently), then
recomputes target, mean curve, T_j and the speedups. Unreached replicates enter
at their upper bound (they sort below every reached replicate, so the
percentiles stay ordered) and the interval end they set is flagged as censored.
With 3 seeds a side there are only 10 distinct resamples per side: the interval
is coarse and tends to be too narrow. With a single seed on either side there
is no interval: CI = the point and `ci_available` is false.

Everything here works on any per-step metric table (held-out loss from
metrics.jsonl, lm-eval accuracies from eval/step_<N>.json): build `SeedCurves`
with `seed_curves(table, arm, metric, flops_table)` and pass `higher_is_better`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

# accounting name (DESIGN.md) -> metrics.jsonl key; same mapping as jest.model.flops.ACCOUNTINGS,
# repeated so that analysis/ imports without torch.
ACCOUNTINGS = {"train": "flops_train", "train+score": "flops_train_score", "total": "flops_total"}
RULES = ("first", "sustained")
SMOOTHING = ("none", "running_best")


@dataclass(frozen=True)
class Metric:
    """A per-step metric: its key in the table, its direction, and an axis label with the unit."""

    name: str
    higher_is_better: bool = False
    label: str = ""

    @property
    def axis_label(self) -> str:
        return self.label or self.name


METRICS = {
    "heldout_loss": Metric("heldout_loss", False, "held-out loss (nats/token)"),
    "heldout_bpb": Metric("heldout_bpb", False, "held-out bits per byte"),
    "train_loss": Metric("train_loss", False, "training loss (nats/token)"),
}


def metric_info(name: str, higher_is_better: bool | None = None, label: str = "") -> Metric:
    """The known metric, or a new one (then `higher_is_better` must be given)."""
    if name in METRICS and higher_is_better is None:
        return METRICS[name]
    if higher_is_better is None:
        raise ValueError(f"unknown metric '{name}': say whether higher is better")
    return Metric(name, higher_is_better, label or (METRICS[name].label if name in METRICS else name))


# ---------------------------------------------------------------- aligned curves
@dataclass
class SeedCurves:
    """One arm's curves of one metric, aligned on a common step grid across seeds."""

    arm: str
    seeds: list
    steps: np.ndarray                       # (S,) eval steps
    values: np.ndarray                      # (n_seeds, S)
    flop_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) logged steps
    flops: dict = field(default_factory=dict)   # accounting -> (n_seeds, K) cumulative FLOPs

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)


def _align(per_seed: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Put (steps, values) of several seeds on one grid: the union of their steps inside the
    range every seed covers; a seed without a value at a grid step is interpolated linearly."""
    lo = max(s[0] for s, _ in per_seed)
    hi = min(s[-1] for s, _ in per_seed)
    grid = np.unique(np.concatenate([s for s, _ in per_seed]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    return grid, np.stack([np.interp(grid, s, v) for s, v in per_seed])


def _series(df: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one seed's rows, NaNs dropped, sorted by step, the last row of a step kept."""
    d = df[["step", column]].dropna()
    steps, values = d["step"].to_numpy(float), d[column].to_numpy(float)
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    keep = np.append(steps[1:] != steps[:-1], True)        # last row of each step
    return steps[keep], values[keep]


def seed_curves(table: pd.DataFrame, arm: str, metric: str,
                flops_table: pd.DataFrame | None = None) -> SeedCurves:
    """Aligned curves of `metric` for `arm` from a long table (arm, seed, step, <metric>).

    FLOPs come from `flops_table` (default: `table` itself; columns flops_train,
    flops_train_score, flops_total); for lm-eval tables pass the metrics.jsonl curves.
    Seeds without any value of the metric are left out.
    """
    per_seed, seeds = [], []
    if metric in table:
        for seed, df in table[table["arm"] == arm].groupby("seed", sort=True):
            steps, values = _series(df, metric)
            if len(steps):
                per_seed.append((steps, values))
                seeds.append(seed.item() if hasattr(seed, "item") else seed)
    if not per_seed:
        raise ValueError(f"arm '{arm}' has no values of '{metric}'")
    steps, values = _align(per_seed)
    flops_rows = table if flops_table is None else flops_table
    flops_rows = flops_rows[flops_rows["arm"] == arm]
    by_seed = dict(tuple(flops_rows.groupby("seed", sort=True)))
    flop_steps, flops = np.zeros(0), {}
    for acc, col in ACCOUNTINGS.items():
        if col not in flops_rows or any(s not in by_seed for s in seeds):
            continue
        series = [_series(by_seed[s], col) for s in seeds]
        if all(len(st) for st, _ in series):
            flop_steps, flops[acc] = _align(series)
    return SeedCurves(arm, seeds, steps, values, flop_steps, flops)


# ---------------------------------------------------------------- crossing (vectorised)
def crossing_steps(steps: np.ndarray, curves: np.ndarray, targets: np.ndarray, higher_is_better: bool = False,
                   rule: str = "first", smooth: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """Step at which each row of `curves` (n, S) reaches its target (n,), linearly interpolated.

    Returns (t, left): t is NaN where the target is never reached; `left` marks rows
    that already reach it at steps[0], where t = steps[0] is only an upper bound on T_j.
    """
    if rule not in RULES or smooth not in SMOOTHING:
        raise ValueError(f"rule must be one of {RULES}, smooth one of {SMOOTHING}")
    sign = -1.0 if higher_is_better else 1.0          # work in "lower is better"
    v = sign * np.atleast_2d(np.asarray(curves, float))
    tgt = sign * np.asarray(targets, float).reshape(-1)
    if smooth == "running_best":
        v = np.minimum.accumulate(v, axis=1)
    ok = v <= tgt[:, None]                             # (n, S)
    n, S = ok.shape
    if rule == "first":
        reached = ok.any(axis=1)
        idx = np.argmax(ok, axis=1)
    else:  # first index of the trailing run of reached points
        trailing = np.cumprod(ok[:, ::-1], axis=1).sum(axis=1)
        reached = trailing > 0
        idx = S - trailing
    idx = np.where(reached, idx, 0)
    left = reached & (idx == 0)
    prev = np.maximum(idx - 1, 0)
    rows = np.arange(n)
    v0, v1 = v[rows, prev], v[rows, idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(v0 > v1, (v0 - tgt) / (v0 - v1), 1.0)
    t = steps[prev] + np.clip(frac, 0.0, 1.0) * (steps[idx] - steps[prev])
    t = np.where(left, steps[0], t)
    return np.where(reached, t, np.nan), left


def first_crossing(steps, values, target: float, higher_is_better: bool = False, rule: str = "first",
                   smooth: str = "none") -> tuple[float | None, bool]:
    """Scalar form of `crossing_steps`: (T_j or None when not reached, reached-at-first-point)."""
    t, left = crossing_steps(np.asarray(steps, float), np.asarray(values, float)[None, :], np.array([target]),
                             higher_is_better, rule, smooth)
    return (None if np.isnan(t[0]) else float(t[0])), bool(left[0])


# ---------------------------------------------------------------- results
@dataclass
class Speedup:
    """A speedup with its percentile CI.

    bound: None (measured), "upper" (not reached: the true speedup is below `value`),
    "lower" (reached at the first eval point: the true speedup is at least `value`).
    ci_low_censored / ci_high_censored: that end of the CI falls on bootstrap replicates
    that are themselves bounds (unreached / reached at the first point).
    """

    value: float | None
    ci_low: float | None
    ci_high: float | None
    bound: str | None = None
    ci_low_censored: bool = False
    ci_high_censored: bool = False


@dataclass
class ParityResult:
    """Parity of one arm against the baseline on one metric (see the module docstring)."""

    arm: str
    baseline_arm: str
    metric: str
    higher_is_better: bool
    rule: str
    smooth: str
    baseline_seeds: list
    arm_seeds: list
    T_u: float                      # baseline's final step
    target: float                   # baseline's mean value at T_u
    baseline_finals: dict           # seed -> value at T_u
    baseline_self_step: float | None  # where the baseline's own mean curve first reaches the target
    reached: bool
    T_j: float | None               # None when not reached
    T_end: float                    # arm's last eval step
    arm_final: float                # arm's mean value at T_end
    max_measurable_speedup: float   # T_u / (arm's first eval step)
    iterations: Speedup
    flops: dict                     # accounting -> Speedup
    flops_at_parity: dict           # accounting -> {"baseline": F_u(T_u), "arm": F_j(T_j or T_end)}
    ci_level: float
    ci_available: bool
    n_boot: int
    boot_seed: int
    p_reached: float | None         # share of bootstrap replicates that reach the target
    per_seed: list                  # [{seed, reached, T_j, iteration_speedup, final}] vs the mean target

    def to_dict(self) -> dict:
        return to_json(self)


def to_json(x):
    """Dataclasses, numpy scalars and non-finite floats -> plain JSON values (inf, NaN -> null)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_json(asdict(x))
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.inf)


def _speedup(point: float, boot: np.ndarray | None, bound: str | None, unreached: np.ndarray | None,
             left: np.ndarray | None, level: float) -> Speedup:
    if boot is None:
        return Speedup(point, point, point, bound)
    alpha = (1 - level) / 2
    lo, hi = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
    return Speedup(point, float(lo), float(hi), bound,
                   ci_low_censored=bool(unreached.mean() > alpha), ci_high_censored=bool(left.mean() > alpha))


def _resample_weights(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n): how often each of n seeds is drawn in a resample with replacement, / n."""
    idx = rng.integers(0, n, size=(n_boot, n))
    return (idx[:, :, None] == np.arange(n)).sum(axis=1) / n


def parity(baseline: SeedCurves, arm: SeedCurves, higher_is_better: bool, metric: str = "", *,
           rule: str = "first", smooth: str = "none", n_boot: int = 2000, seed: int = 0,
           ci_level: float = 0.95) -> ParityResult:
    """Iterations- and FLOPs-to-parity of `arm` against `baseline`, with a bootstrap over seeds."""
    T_u = float(baseline.steps[-1])
    finals = baseline.values[:, -1]                                    # (nb,)
    target = float(finals.mean())
    accs = [a for a in ACCOUNTINGS if a in baseline.flops and a in arm.flops]
    # F_u(T_u) per baseline seed and accounting: (nb,)
    F_u_seed = {a: np.array([np.interp(T_u, baseline.flop_steps, row) for row in baseline.flops[a]]) for a in accs}
    T_end, s_first = float(arm.steps[-1]), float(arm.steps[0])

    def evaluate(Wb: np.ndarray, Wj: np.ndarray):
        """Speedups for seed weights Wb (n, nb) and Wj (n, nj): a resample's seed counts / seeds.

        Weights instead of gathered copies keep memory at n x seeds even for FLOP curves logged
        at every one of 10^5 steps (linear interpolation commutes with the seed average)."""
        tgt = Wb @ finals
        t, left = crossing_steps(arm.steps, Wj @ arm.values, tgt, higher_is_better, rule, smooth)
        reached = ~np.isnan(t)
        t_eff = np.where(reached, t, T_end)                            # unreached: the bound at T_end
        iters = _ratio(T_u, t_eff)
        fl = {}
        for a in accs:
            F_seed = np.stack([np.interp(t_eff, arm.flop_steps, row) for row in arm.flops[a]], axis=1)  # (n, nj)
            F_j = (Wj * F_seed).sum(axis=1)
            fl[a] = (_ratio(Wb @ F_u_seed[a], F_j), F_j)
        return t, left, reached, iters, fl

    t, left, reached, iters, fl = evaluate(np.full((1, baseline.n_seeds), 1 / baseline.n_seeds),
                                           np.full((1, arm.n_seeds), 1 / arm.n_seeds))
    is_reached = bool(reached[0])
    bound = None if is_reached and not left[0] else ("lower" if is_reached else "upper")

    ci_available = baseline.n_seeds >= 2 and arm.n_seeds >= 2 and n_boot > 0
    boot = None
    if ci_available:
        rng = np.random.default_rng(seed)
        boot = evaluate(_resample_weights(rng, n_boot, baseline.n_seeds), _resample_weights(rng, n_boot, arm.n_seeds))

    def speedup(point, sample):
        if boot is None:
            return _speedup(float(point), None, bound, None, None, ci_level)
        return _speedup(float(point), sample, bound, ~boot[2], boot[1], ci_level)

    iterations = speedup(iters[0], None if boot is None else boot[3])
    flops = {a: speedup(fl[a][0][0], None if boot is None else boot[4][a][0]) for a in accs}
    flops_at = {a: {"baseline": float(F_u_seed[a].mean()), "arm": float(fl[a][1][0])} for a in accs}

    # per JEST seed against the mean target: how consistent is the arm?
    t_s, left_s = crossing_steps(arm.steps, arm.values, np.full(arm.n_seeds, target), higher_is_better, rule, smooth)
    per_seed = [{"seed": s, "reached": bool(not np.isnan(ts)), "T_j": None if np.isnan(ts) else float(ts),
                 "reached_at_first_point": bool(ls),
                 "iteration_speedup": float(T_u / (T_end if np.isnan(ts) else ts)),
                 "final": float(arm.values[i, -1])}
                for i, (s, ts, ls) in enumerate(zip(arm.seeds, t_s, left_s))]
    self_t, _ = first_crossing(baseline.steps, baseline.values.mean(axis=0), target, higher_is_better, rule, smooth)

    return ParityResult(
        arm=arm.arm, baseline_arm=baseline.arm, metric=metric, higher_is_better=higher_is_better,
        rule=rule, smooth=smooth, baseline_seeds=list(baseline.seeds), arm_seeds=list(arm.seeds),
        T_u=T_u, target=target, baseline_finals={s: float(v) for s, v in zip(baseline.seeds, finals)},
        baseline_self_step=self_t, reached=is_reached, T_j=None if not is_reached else float(t[0]),
        T_end=T_end, arm_final=float(arm.values[:, -1].mean()), max_measurable_speedup=T_u / s_first,
        iterations=iterations, flops=flops, flops_at_parity=flops_at, ci_level=ci_level,
        ci_available=ci_available, n_boot=n_boot if ci_available else 0, boot_seed=seed,
        p_reached=float(boot[2].mean()) if boot is not None else float(is_reached), per_seed=per_seed)


def parity_table(table: pd.DataFrame, metric: str, baseline_arm: str, arms: list[str],
                 higher_is_better: bool | None = None, flops_table: pd.DataFrame | None = None,
                 **kwargs) -> list[ParityResult]:
    """`parity` of each arm in `arms` against `baseline_arm` on one metric of a long table."""
    info = metric_info(metric, higher_is_better)
    base = seed_curves(table, baseline_arm, metric, flops_table)
    out = []
    for arm in arms:
        if metric not in table or table.loc[table["arm"] == arm, metric].notna().sum() == 0:
            continue  # an arm without this metric (not evaluated yet) is skipped, not an error
        out.append(parity(base, seed_curves(table, arm, metric, flops_table), info.higher_is_better, metric, **kwargs))
    return out


def parity_frame(results: list[ParityResult]) -> pd.DataFrame:
    """One flat row per result: arm, metric, reached, T_j, speedups with CIs (for tables)."""
    rows = []
    for r in results:
        row = {"arm": r.arm, "metric": r.metric, "reached": r.reached, "T_u": r.T_u, "T_j": r.T_j,
               "target": r.target, "iter_speedup": r.iterations.value, "iter_ci_low": r.iterations.ci_low,
               "iter_ci_high": r.iterations.ci_high, "bound": r.iterations.bound, "p_reached": r.p_reached}
        for acc, sp in r.flops.items():
            row.update({f"flop_speedup[{acc}]": sp.value, f"flop_ci_low[{acc}]": sp.ci_low,
                        f"flop_ci_high[{acc}]": sp.ci_high})
        rows.append(row)
    return pd.DataFrame(rows)

"""Coverage of interval methods for the multiplier at few seeds, by simulation with a known truth.

    python -m analysis.coverage [--sims 2000] [--seeds 3 5 10]

The numbers docs/statistics.md quotes. Per simulated experiment and seed: a uniform family at
budgets 0.5, 1, 2, 4 whose final metric is linear in log compute (slope 0.3 nats per e-fold),
a seed effect shared by the family and the arm (sd 0.05: the same initialisation and data
stream), independent noise on every final value (sd 0.02); the arm truly needs 2x uniform's
compute. Each seed's multiplier comes from analysis.multiplier.needed_compute (the report's
placement); then, over the seeds' log multipliers:
- t: the Student t-interval (analysis.stats.aggregate, what the report uses);
- percentile / BCa: scipy.stats.bootstrap (9,999 resamples) of the mean log multiplier.
Reports the share of experiments whose 95% interval contains the truth.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as st

from analysis.multiplier import SeedMultiplier, needed_compute
from analysis.stats import aggregate, interval

BUDGETS = np.array([0.5, 1.0, 2.0, 4.0])


def simulate_logs(rng: np.random.Generator, n_sims: int, n_seeds: int, truth: float = 2.0) -> np.ndarray:
    """(n_sims, n_seeds) log multipliers from the report's placement on noisy per-seed families."""
    out = np.empty((n_sims, n_seeds))
    for i in range(n_sims):
        u = rng.normal(0, 0.05, n_seeds)
        family = 3.0 - 0.3 * np.log(BUDGETS)[None, :] + u[:, None] + rng.normal(0, 0.02, (n_seeds, len(BUDGETS)))
        arm = 3.0 - 0.3 * math.log(truth) + u + rng.normal(0, 0.02, n_seeds)
        out[i] = [math.log(needed_compute(BUDGETS, family[s], arm[s])[0]) for s in range(n_seeds)]
    return out


def coverage(logs: np.ndarray, truth: float = 2.0, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    t_hits = 0
    for row in logs:
        lo, hi = interval(aggregate([SeedMultiplier(s, math.exp(v), None, None, None, 0.0, "") for s, v in
                                     enumerate(row)], level))
        t_hits += lo <= truth <= hi
    out = {"t": t_hits / len(logs)}
    for method in ("percentile", "BCa"):
        res = st.bootstrap((logs,), np.mean, axis=-1, confidence_level=level, method=method, n_resamples=9999,
                           random_state=np.random.default_rng(seed), vectorized=True)
        lo, hi = res.confidence_interval
        out[method] = float(np.mean((lo <= math.log(truth)) & (math.log(truth) <= hi)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.coverage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    ap.add_argument("--rng", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.rng)
    print(f"coverage of nominal 95% intervals, {args.sims} simulated experiments each (truth 2x)")
    for n in args.seeds:
        cov = coverage(simulate_logs(rng, args.sims, n), seed=args.rng)
        print(f"  {n:2d} seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in cov.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

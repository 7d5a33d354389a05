"""The scale ladder's and the length axis' report (issues #15, #28): per rung the multiplier of every arm
with its interval (the rung's own uniform compute family, analysis.multiplier / analysis.stats) on each
held-out metric of `ladder.metrics`, the slope of log multiplier vs log axis position (learner compute on
the size ladder, tokens per parameter on the length axis; rungs as the unit of replication,
analysis.ladder_stats), the decision agreement of the rungs' arm rankings, whether 13x / 10x are excluded
at the last rung, and the figures.

    python -m analysis.ladder --config SNAPSHOT --runs results/<name>/runs --lr-choice FILE --out DIR

Writes DIR/summary.json (schema SCHEMA, fields in docs/ladder.md), DIR/report.md (analysis.ladder_render),
DIR/multiplier_vs_compute.png (or multiplier_vs_length.png) and DIR/regime_map.png. It states the range
the rungs cover and never an extrapolated crossing point.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ladder_stats import (CLAIM_QUANTITY, SLOPE_QUANTITIES, decision_agreement, excludes, fit_slope,
                                   trend_word)
from analysis.ladder_render import render
from analysis.multiplier import run_finals
from analysis.runs import config_runs, left_out, load_curves
from analysis.stats import verdict
from analysis.verdicts import metric_multipliers
from jest.experiment import load_config
from jest.io import atomic_write_json, atomic_write_text
from jest.ladder.rungs import ladder_seeds, rung_plan, sweep_seed
from jest.tracking.metrics import MetricsError

SCHEMA = "jest-ladder-summary-v2"  # v2: rung-level slope intervals, an axis, several held-out metrics
AXIS_LABEL = {"compute": "learner compute (FLOPs of the rung's 1x uniform run)",
              "tokens_per_param": "training tokens per matmul parameter (the rung's 1x run)"}


def ladder_runs(cfg: dict, lr_choice: dict) -> list[str]:
    """The run folders of the ladder (workflow/rules/common.smk): each rung's sweep runs that ran (lr_choice.json
    lists them: the grid may have grown), its other arms at every ladder seed."""
    runs = []
    for rung, plan in rung_plan(cfg).items():
        swept = (lr_choice.get("rungs", {}).get(rung) or {}).get("runs") or {}
        runs += list(swept.values()) or config_runs(cfg, plan["sweep"], [sweep_seed(cfg)])
        runs += config_runs(cfg, plan["arms"], ladder_seeds(cfg))
    return runs


def expand_metrics(patterns: list[str], columns) -> list[str]:
    """`ladder.metrics` against the metrics the runs logged: a trailing * matches every set of that prefix."""
    out = []
    for p in patterns:
        hits = sorted(c for c in columns if c.startswith(p[:-1])) if p.endswith("*") else [p] if p in columns else []
        out += [h for h in hits if h not in out]
    return out


def axis_value(res: dict, axis: str) -> float | None:
    return res["learner_flops_1x"] if axis == "compute" else res["tokens_per_param"]


def base_name(arm: str, rung: str) -> str:
    """'r2_jest_f0.8' -> 'jest_f0.8' (the arm across rungs)."""
    return arm[len(rung) + 1:]


def _estimate(e) -> dict:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "bound": e.bound, "n": e.n,
            "per_seed": e.per_seed}


def arm_estimates(table: pd.DataFrame, metric: str, plan: dict, rung: str) -> dict:
    """arm (without the rung prefix) -> its pairing, multipliers (every quantity), range and finals on `metric`."""
    mults = metric_multipliers(table, metric, plan["family"], plan["jest"] + plan["controls"])
    return {base_name(a, rung): {"pairing": m["pairing"],
                                 "multiplier": {q: _estimate(e) for q, e in m["quantities"].items()},
                                 "range": m["range"], "final": m["final"]} for a, m in mults.items()}


def rung_result(curves: pd.DataFrame, rung: str, plan: dict, metrics: list[str]) -> dict:
    """One rung: its family, its arms' multipliers on the primary metric (`arms`) and on every metric
    (`by_metric`), its learner compute, tokens per parameter and mean finals."""
    table = curves[curves["arm"].isin(plan["arms"])]
    metric = metrics[0]
    compared = plan["jest"] + plan["controls"]
    finals = run_finals(table, metric)
    one_x = [a for a, b in plan["family"].items() if b == 1.0]
    base = finals[finals["arm"].isin(one_x)]
    flops_1x = float(base["train"].mean()) if len(base) else None
    at_1x = finals[finals["arm"].isin(one_x + compared)].groupby("arm")["value"].mean()
    by_metric = {m: arm_estimates(table, m, plan, rung) for m in metrics}
    return {"matmul_params": plan["matmul_params"], "tokens_per_param": plan["tokens_per_param"],
            "steps": plan["steps"], "tokens": plan["tokens"],
            "batch_size": plan["batch_size"], "model": plan["model"], "learner_flops_1x": flops_1x,
            "family": {a: b for a, b in plan["family"].items()},
            "arms": by_metric[metric], "by_metric": by_metric,
            "final_mean_1x": {base_name(a, rung): float(v) for a, v in at_1x.items()},
            "seeds": sorted({int(s) for s in table["seed"].unique()}) if len(table) else []}


def slopes(rungs: dict, axis: str, metric: str) -> dict:
    """arm -> quantity -> fit_slope over the rungs where the arm has per-seed multipliers on `metric`."""
    arms_of = lambda r: r["by_metric"].get(metric, {})  # noqa: E731
    arms = sorted({a for r in rungs.values() for a in arms_of(r)})
    out = {}
    for arm in arms:
        out[arm] = {}
        for q in SLOPE_QUANTITIES:
            log_x, log_m, bounded = [], [], 0
            for r in rungs.values():
                est = arms_of(r).get(arm, {}).get("multiplier", {}).get(q)
                if not est or not axis_value(r, axis):
                    continue
                vals = [p["value"] for p in est["per_seed"] if p["value"]]
                bounded += sum(1 for p in est["per_seed"] if p["bound"])
                if vals:
                    log_x.append(math.log(axis_value(r, axis)))
                    log_m.append(list(np.log(vals)))
            fit = fit_slope(log_x, log_m)
            # a bound is not a measurement: a slope through bounds names no trend, whatever its interval
            trend = trend_word(fit) if not bounded or fit["slope"] is None else "undecided (some points are bounds)"
            out[arm][q] = {**fit, "trend": trend, "bounded_points": bounded,
                           "note": ("some per-seed multipliers are bounds (outside their rung's family): the slope "
                                    "uses the bound values, so it says little") if bounded else None}
    return out


def top_rung_claims(rungs: dict, factors: list[float], metric: str) -> dict:
    """At the last rung (the largest, or the longest): per arm and claimed factor, whether the interval excludes it."""
    if not rungs:
        return {}
    top = list(rungs)[-1]
    out = {"rung": top, "arms": {}}
    arms = rungs[top]["by_metric"].get(metric, {})
    for arm, res in arms.items():
        out["arms"][arm] = {}
        for factor in factors:
            q = CLAIM_QUANTITY.get(float(factor), "iterations")
            e = res["multiplier"].get(q)
            word, reason = verdict(_as_estimate(e), factor) if e else ("undecided", "not measured")
            out["arms"][arm][f"{factor:g}x"] = {"quantity": q, "excluded": bool(e) and excludes(e["ci_high"], factor),
                                                "verdict": word, "reason": reason,
                                                "measurable_range": res["range"].get(q)}
    return out


def _as_estimate(d: dict):
    from analysis.stats import Estimate
    return Estimate(d["value"], d["ci_low"], d["ci_high"], d["bound"], d["n"], per_seed=d["per_seed"],
                    method="t" if d["n"] > 1 else "single seed")


def assemble(cfg: dict, curves: pd.DataFrame, lr_choice: dict) -> dict:
    ladder = cfg["ladder"]
    axis = ladder["axis"]
    metrics = expand_metrics(ladder["metrics"], curves.columns) or ["heldout_loss"]
    plans = rung_plan(cfg)
    rungs = {r: rung_result(curves, r, p, metrics) for r, p in plans.items()}
    for r in rungs:
        rungs[r]["lr"] = lr_choice.get("rungs", {}).get(r)
    agreement = decision_agreement({r: res["final_mean_1x"] for r, res in rungs.items() if res["final_mean_1x"]})
    flops = [res["learner_flops_1x"] for res in rungs.values() if res["learner_flops_1x"]]
    tpp = [p["tokens_per_param"] for p in plans.values()]
    edges = sorted(r for r, res in rungs.items() if (res["lr"] or {}).get("at_grid_edge"))
    by_metric_slopes = {m: slopes(rungs, axis, m) for m in metrics}
    by_metric_top = {m: top_rung_claims(rungs, ladder["factors"], m) for m in metrics}
    return {
        "schema": SCHEMA, "config": cfg["name"], "axis": axis, "axis_label": AXIS_LABEL[axis],
        "metric": metrics[0], "metrics": metrics, "seeds": ladder_seeds(cfg),
        "tokens_per_param": ladder["tokens_per_param"] if axis == "compute" else None,
        "reference": ladder["reference"],
        "reference_choice": "fixed: one reference for every rung (trained once, pool scored once)",
        "family_branches": bool(ladder["family_branches"]),
        "rungs": rungs, "slopes": by_metric_slopes[metrics[0]],  # the primary metric's, also under slopes_by_metric
        "slopes_by_metric": by_metric_slopes,
        "decision_agreement": agreement,
        "top_rung": by_metric_top[metrics[0]],
        "top_rung_by_metric": by_metric_top,
        "covered": {"learner_flops_1x": [min(flops), max(flops)] if flops else None,
                    "matmul_params": [min(p["matmul_params"] for p in plans.values()),
                                      max(p["matmul_params"] for p in plans.values())] if plans else None,
                    "tokens_per_param": [min(tpp), max(tpp)] if tpp else None},
        "lr_choice": lr_choice, "lr_at_grid_edge": edges,
        "notes": ["No crossing point with 13x / 10x is extrapolated: the slope describes the covered range only.",
                  "Slope intervals treat the rung as the unit of replication (analysis/ladder_stats.py): least "
                  "squares on the rung means, t with rungs - 2 degrees of freedom."],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--lr-choice", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    lr_choice = json.loads(Path(args.lr_choice).read_text())
    runs = ladder_runs(cfg, lr_choice)
    try:
        curves = load_curves(Path(args.runs), runs=runs)  # only the ladder's runs, each metrics.jsonl checked
    except MetricsError as err:  # names the file and the job that writes it again
        raise SystemExit(f"error: {err}") from None
    other = left_out(Path(args.runs), runs)
    if other:
        print(f"ladder report: {len(other)} run folder(s) not among the ladder's arms x seeds were not read: "
              f"{', '.join(other)}")
    summary = assemble(cfg, curves, lr_choice)
    out = Path(args.out)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render(summary))
    from analysis.plots_ladder import figure_name, plot_ladder, plot_regime_map
    plot_ladder(summary).savefig(out / figure_name(summary), dpi=120)
    plot_regime_map([summary]).savefig(out / "regime_map.png", dpi=120)
    print(f"ladder report: {out / 'report.md'}")


if __name__ == "__main__":
    main()

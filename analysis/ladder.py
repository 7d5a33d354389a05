"""The scale ladder's report (issue #15): per rung the multiplier of every arm with its interval
(the rung's own uniform compute family, analysis.multiplier / analysis.stats), the slope of log
multiplier vs log learner compute (analysis.ladder_stats), the decision agreement of the rungs'
arm rankings, whether 13x / 10x are excluded at the top rung, and the log-log figure.

    python -m analysis.ladder --config SNAPSHOT --runs results/<name>/runs --lr-choice FILE --out DIR

Writes DIR/summary.json (schema SCHEMA, fields in docs/ladder.md), DIR/report.md and
DIR/multiplier_vs_compute.png. It states the compute range the rungs cover and never an
extrapolated crossing point.
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
from analysis.multiplier import run_finals
from analysis.runs import config_runs, left_out, load_curves
from analysis.stats import verdict
from analysis.verdicts import metric_multipliers
from jest.experiment import load_config
from jest.io import atomic_write_json, atomic_write_text
from jest.ladder.rungs import ladder_seeds, rung_plan, sweep_seed
from jest.tracking.metrics import MetricsError

SCHEMA = "jest-ladder-summary-v1"
METRIC = "heldout_loss"


def ladder_runs(cfg: dict) -> list[str]:
    """The run folders of the ladder (workflow/rules/common.smk): each rung's sweep at the sweep seed,
    its other arms at every ladder seed."""
    runs = []
    for plan in rung_plan(cfg).values():
        runs += config_runs(cfg, plan["sweep"], [sweep_seed(cfg)]) + config_runs(cfg, plan["arms"], ladder_seeds(cfg))
    return runs


def base_name(arm: str, rung: str) -> str:
    """'r2_jest_f0.8' -> 'jest_f0.8' (the arm across rungs)."""
    return arm[len(rung) + 1:]


def _estimate(e) -> dict:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "bound": e.bound, "n": e.n,
            "per_seed": e.per_seed}


def rung_result(curves: pd.DataFrame, rung: str, plan: dict, metric: str) -> dict:
    """One rung: its family, its arms' multipliers (every quantity), its learner compute and mean finals."""
    table = curves[curves["arm"].isin(plan["arms"])]
    compared = plan["jest"] + plan["controls"]
    mults = metric_multipliers(table, metric, plan["family"], compared)
    finals = run_finals(table, metric)
    one_x = [a for a, b in plan["family"].items() if b == 1.0]
    base = finals[finals["arm"].isin(one_x)]
    flops_1x = float(base["train"].mean()) if len(base) else None
    at_1x = finals[finals["arm"].isin(one_x + compared)].groupby("arm")["value"].mean()
    return {"matmul_params": plan["matmul_params"], "steps": plan["steps"], "tokens": plan["tokens"],
            "batch_size": plan["batch_size"], "model": plan["model"], "learner_flops_1x": flops_1x,
            "family": {a: b for a, b in plan["family"].items()},
            "arms": {base_name(a, rung): {"pairing": m["pairing"],
                                          "multiplier": {q: _estimate(e) for q, e in m["quantities"].items()},
                                          "range": m["range"], "final": m["final"]} for a, m in mults.items()},
            "final_mean_1x": {base_name(a, rung): float(v) for a, v in at_1x.items()},
            "seeds": sorted({int(s) for s in table["seed"].unique()}) if len(table) else []}


def slopes(rungs: dict) -> dict:
    """arm -> quantity -> fit_slope over the rungs where the arm has per-seed multipliers."""
    arms = sorted({a for r in rungs.values() for a in r["arms"]})
    out = {}
    for arm in arms:
        out[arm] = {}
        for q in SLOPE_QUANTITIES:
            log_c, log_m, bounded = [], [], 0
            for r in rungs.values():
                est = r["arms"].get(arm, {}).get("multiplier", {}).get(q)
                if not est or not r["learner_flops_1x"]:
                    continue
                vals = [p["value"] for p in est["per_seed"] if p["value"]]
                bounded += sum(1 for p in est["per_seed"] if p["bound"])
                if vals:
                    log_c.append(math.log(r["learner_flops_1x"]))
                    log_m.append(list(np.log(vals)))
            fit = fit_slope(log_c, log_m)
            out[arm][q] = {**fit, "trend": trend_word(fit), "bounded_points": bounded,
                           "note": ("some per-seed multipliers are bounds (outside their rung's family): the "
                                    "slope uses the bound values") if bounded else None}
    return out


def top_rung_claims(rungs: dict, factors: list[float]) -> dict:
    """At the largest rung: per arm and claimed factor, whether the interval excludes it."""
    if not rungs:
        return {}
    top = list(rungs)[-1]
    out = {"rung": top, "arms": {}}
    for arm, res in rungs[top]["arms"].items():
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
    metric = METRIC
    plans = rung_plan(cfg)
    rungs = {r: rung_result(curves, r, p, metric) for r, p in plans.items()}
    for r in rungs:
        rungs[r]["lr"] = lr_choice.get("rungs", {}).get(r)
    agreement = decision_agreement({r: res["final_mean_1x"] for r, res in rungs.items() if res["final_mean_1x"]})
    flops = [res["learner_flops_1x"] for res in rungs.values() if res["learner_flops_1x"]]
    ladder = cfg["ladder"]
    return {
        "schema": SCHEMA, "config": cfg["name"], "metric": metric, "seeds": ladder_seeds(cfg),
        "tokens_per_param": ladder["tokens_per_param"], "reference": ladder["reference"],
        "reference_choice": "fixed: one reference for every rung (trained once, pool scored once)",
        "rungs": rungs, "slopes": slopes(rungs), "decision_agreement": agreement,
        "top_rung": top_rung_claims(rungs, ladder["factors"]),
        "covered": {"learner_flops_1x": [min(flops), max(flops)] if flops else None,
                    "matmul_params": [min(p["matmul_params"] for p in plans.values()),
                                      max(p["matmul_params"] for p in plans.values())] if plans else None},
        "lr_choice": lr_choice,
        "notes": ["No crossing point with 13x / 10x is extrapolated: the slope describes the covered range only."],
    }


def render(summary: dict) -> str:
    """The report's markdown (what the summary says, in words and tables)."""
    lines = [f"# Scale ladder: {summary['config']}", "",
             f"Metric: final `{summary['metric']}`; multipliers against each rung's own uniform compute family; "
             f"seeds {summary['seeds']}; tokens per matmul parameter {summary['tokens_per_param']:g}; reference: "
             f"{summary['reference_choice']} (`{summary['reference']}`).", ""]
    cov = summary["covered"]
    if cov and cov["learner_flops_1x"]:
        lines += [f"Covered range: learner {cov['matmul_params'][0]:,}-{cov['matmul_params'][1]:,} matmul parameters, "
                  f"{cov['learner_flops_1x'][0]:.3g}-{cov['learner_flops_1x'][1]:.3g} training FLOPs at 1x. "
                  "Nothing here says anything about compute outside this range, and no crossing with 13x / 10x "
                  "is extrapolated.", ""]
    lines += ["## Rungs", "", "| rung | matmul params | 1x steps | tokens | batch | lr (sweep: loss) |",
              "|---|---|---|---|---|---|"]
    for r, res in summary["rungs"].items():
        lr = res.get("lr") or {}
        sweep = ", ".join(f"{k}: {v:.4f}" if v is not None else f"{k}: -" for k, v in (lr.get("losses") or {}).items())
        edge = " (grid edge)" if lr.get("at_grid_edge") else ""
        lines.append(f"| {r} | {res['matmul_params']:,} | {res['steps']} | {res['tokens']:,} | {res['batch_size']} | "
                     f"{lr.get('lr', '-')}{edge} ({sweep}) |")
    lines += ["", "## Multiplier per rung (iterations; train+score FLOPs), 95% t-interval over seeds", "",
              "| rung | arm | iterations | train+score FLOPs |", "|---|---|---|---|"]
    for r, res in summary["rungs"].items():
        for arm, m in res["arms"].items():
            lines.append(f"| {r} | {arm} | {_fmt(m['multiplier'].get('iterations'))} | "
                         f"{_fmt(m['multiplier'].get('train+score'))} |")
    lines += ["", "## Slope of log multiplier vs log learner compute", "",
              "| arm | quantity | slope | 95% t-interval | 95% bootstrap (coarse) | trend |", "|---|---|---|---|---|---|"]
    for arm, per_q in summary["slopes"].items():
        for q, f in per_q.items():
            lines.append(f"| {arm} | {q} | {_num(f['slope'])} | {_ci(f['ci_t'])} | {_ci(f['ci_bootstrap'])} | "
                         f"{f['trend']} |")
    da = summary["decision_agreement"]
    lines += ["", "## Decision agreement (DataDecide): arm pairs ordered the same way by the 1x final value", ""]
    for key, p in da["pairs"].items():
        share = "-" if p["agreement"] is None else f"{p['agreement']:.2f}"
        lines.append(f"- {p['rungs'][0]} vs {p['rungs'][1]}: {p['agree']}/{p['pairs']} = {share}")
    top = summary["top_rung"]
    if top:
        lines += ["", f"## 13x and 10x at the top rung ({top['rung']})", ""]
        for arm, per_f in top["arms"].items():
            for factor, v in per_f.items():
                lines.append(f"- {arm}, {factor} ({v['quantity']}): {'excluded' if v['excluded'] else 'not excluded'}"
                             f" - {v['verdict']}: {v['reason']}")
    return "\n".join(lines) + "\n"


def _num(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


def _ci(ci) -> str:
    return "-" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _fmt(e: dict | None) -> str:
    if not e or e["value"] is None:
        return "-"
    sign = {"lower": ">", "upper": "<"}.get(e["bound"], "")
    lo = "open" if e["ci_low"] is None else f"{e['ci_low']:.2f}"
    hi = "open" if e["ci_high"] is None else f"{e['ci_high']:.2f}"
    return f"{sign}{e['value']:.2f}x" + (f" [{lo}, {hi}]" if e["n"] > 1 else " (1 seed)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--lr-choice", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    runs = ladder_runs(cfg)
    try:
        curves = load_curves(Path(args.runs), runs=runs)  # only the ladder's runs, each metrics.jsonl checked
    except MetricsError as err:  # names the file and the job that writes it again
        raise SystemExit(f"error: {err}") from None
    other = left_out(Path(args.runs), runs)
    if other:
        print(f"ladder report: {len(other)} run folder(s) not among the ladder's arms x seeds were not read: "
              f"{', '.join(other)}")
    summary = assemble(cfg, curves, json.loads(Path(args.lr_choice).read_text()))
    out = Path(args.out)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render(summary))
    from analysis.plots_ladder import plot_ladder
    plot_ladder(summary).savefig(out / "multiplier_vs_compute.png", dpi=120)
    print(f"ladder report: {out / 'report.md'}")


if __name__ == "__main__":
    main()

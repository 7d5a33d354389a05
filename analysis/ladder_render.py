"""The ladder's and the length axis' report.md: what analysis.ladder's summary says, in words and tables.
Every sentence here is a reading of a number beside it (a trend only where its interval excludes 0,
"excluded" only where an interval's closed upper end lies below the claim)."""
from __future__ import annotations

from analysis.stats import format_estimate

AXIS_WORDS = {"compute": ("Scale ladder", "log learner compute"),
              "tokens_per_param": ("Length axis", "log tokens per parameter")}


def render(summary: dict) -> str:
    axis = summary.get("axis", "compute")
    title, x_words = AXIS_WORDS[axis]
    tpp = summary.get("tokens_per_param")
    length = f"tokens per matmul parameter {tpp:g}; " if tpp else ""
    lines = [f"# {title}: {summary['config']}", "",
             f"Primary metric: final `{summary['metric']}`; also "
             f"{', '.join(f'`{m}`' for m in summary['metrics'][1:]) or 'none'}. "
             f"Multipliers against each rung's own uniform compute family; seeds {summary['seeds']}; {length}"
             f"reference: {summary['reference_choice']} (`{summary['reference']}`).", ""]
    cov = summary["covered"]
    if cov and cov["learner_flops_1x"]:
        lines += [f"Covered range: learner {cov['matmul_params'][0]:,}-{cov['matmul_params'][1]:,} matmul parameters, "
                  f"{cov['tokens_per_param'][0]:.3g}-{cov['tokens_per_param'][1]:.3g} training tokens per parameter, "
                  f"{cov['learner_flops_1x'][0]:.3g}-{cov['learner_flops_1x'][1]:.3g} training FLOPs at 1x. "
                  "Nothing here says anything outside this range, and no crossing with 13x / 10x is extrapolated.", ""]
    lines += ["## Rungs", "",
              "| rung | matmul params | tokens / param | 1x steps | tokens | batch | lr (sweep: final loss) |",
              "|---|---|---|---|---|---|---|"]
    for r, res in summary["rungs"].items():
        lr = res.get("lr") or {}
        sweep = ", ".join(f"{k}: {v:.4f}" if v is not None else f"{k}: -" for k, v in (lr.get("losses") or {}).items())
        edge = " (grid edge)" if lr.get("at_grid_edge") else ""
        rounds = f", {lr['rounds']} rounds" if lr.get("rounds", 1) > 1 else ""
        lines.append(f"| {r} | {res['matmul_params']:,} | {res.get('tokens_per_param', 0):.3g} | {res['steps']} | "
                     f"{res['tokens']:,} | {res['batch_size']} | {lr.get('lr', '-')}{edge} ({sweep}{rounds}) |")
    if summary.get("lr_at_grid_edge"):
        lines += ["", f"The lr sweep of {', '.join(summary['lr_at_grid_edge'])} chose a value on its grid's edge: "
                  "the best lr may lie outside the grid, and that rung's multipliers may be biased (an under-tuned "
                  "family)."]
    for metric in summary["metrics"]:
        lines += ["", f"## Multiplier per rung on `{metric}` (95% t-interval over seeds)", "",
                  "| rung | arm | iterations | train+score FLOPs | total FLOPs |", "|---|---|---|---|---|"]
        for r, res in summary["rungs"].items():
            for arm, m in (res.get("by_metric") or {summary["metric"]: res["arms"]}).get(metric, {}).items():
                q = m["multiplier"]
                cells = [format_estimate(q.get(k)) for k in ("iterations", "train+score", "total")]
                lines.append(f"| {r} | {arm} | " + " | ".join(cells) + " |")
    for metric in summary["metrics"]:
        fits = (summary.get("slopes_by_metric") or {}).get(metric) or \
            (summary["slopes"] if metric == summary["metric"] else {})
        lines += ["", f"## Slope of log multiplier vs {x_words} on `{metric}`", "",
                  "The rung is the unit of replication: least squares on the rung means, t-interval with rungs - 2 "
                  "degrees of freedom (analysis/ladder_stats.py). A trend is named only where the interval excludes 0.",
                  "", "| arm | quantity | slope | 95% interval | rungs | trend |", "|---|---|---|---|---|---|"]
        for arm, per_q in fits.items():
            for q, f in per_q.items():
                note = " (some points are bounds)" if f.get("bounded_points") and "bounds" not in f["trend"] else ""
                lines.append(f"| {arm} | {q} | {_num(f['slope'])} | {_ci(f.get('ci_t'))} | {f.get('n_rungs', '-')} | "
                             f"{f['trend']}{note} |")
    da = summary["decision_agreement"]
    lines += ["", "## Decision agreement (DataDecide): arm pairs ordered the same way by the 1x final value", "",
              "A count without an interval: with 5 arms one flipped pair moves it by 0.1.", ""]
    for p in da["pairs"].values():
        share = "-" if p["agreement"] is None else f"{p['agreement']:.2f}"
        lines.append(f"- {p['rungs'][0]} vs {p['rungs'][1]}: {p['agree']}/{p['pairs']} = {share}")
    for metric, top in (summary.get("top_rung_by_metric") or {summary["metric"]: summary["top_rung"]}).items():
        if not top:
            continue
        lines += ["", f"## 13x and 10x at the last rung ({top['rung']}) on `{metric}`", ""]
        for arm, per_f in top["arms"].items():
            for factor, v in per_f.items():
                lines.append(f"- {arm}, {factor} ({v['quantity']}): {'excluded' if v['excluded'] else 'not excluded'}"
                             f" - {v['verdict']}: {v['reason']}")
    return "\n".join(lines) + "\n"


def _num(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


def _ci(ci) -> str:
    return "- (needs 3 rungs)" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


__all__ = ["render"]

"""Build the report of one config: summary.json, report.md, report.html and the figures.

    python -m analysis.report --results results --config tiny --out results/tiny/report

Reads results/<config>/runs/*/{card.json, metrics.jsonl, eval/step_<N>.json}
(analysis.runs, analysis.evals); compares every arm with the uniform baseline
on each available metric (analysis.parity); judges the article's claims
(analysis.claims); draws the figures (analysis.plots) and writes

    <out>/summary.json     the numbers (schema: analysis.summary, SUMMARY_SCHEMA_VERSION)
    <out>/report.md        tables + links to figures/*.png
    <out>/report.html      self-contained: every figure inlined as a base64 PNG
    <out>/figures/*.png, *.svg

Only finished runs enter the numbers; every run with a card is listed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from analysis import composition as comp
from analysis import plots
from analysis.evals import AGGREGATE_METRIC, load_evals, wide
from analysis.parity import (
    METRICS,
    Metric,
    ParityResult,
    SeedCurves,
    parity,
    seed_curves,
)
from analysis.render import render_html, render_markdown
from analysis.runs import load_cards, load_curves
from analysis.summary import (
    SUMMARY_SCHEMA_VERSION,
    arm_settings,
    assemble,
    choose_baseline,
    headline_rows,
    run_rows,
    to_json,
)

LM_EVAL_METRIC = Metric(AGGREGATE_METRIC, True, "lm-eval aggregate centered accuracy (0 = chance, 1 = perfect)")
DEFAULT_METRICS = ("heldout_loss", "heldout_bpb")

__all__ = ["SUMMARY_SCHEMA_VERSION", "build_report", "main"]


def _metric_tables(curves: pd.DataFrame, evals: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None,
                                                                                  Metric]]:
    """metric -> (table with the metric, table with the FLOP columns, Metric), for metrics present."""
    out = {}
    for name in DEFAULT_METRICS:
        if name in curves and curves[name].notna().any():
            out[name] = (curves, None, METRICS[name])
    if AGGREGATE_METRIC in evals and evals[AGGREGATE_METRIC].notna().any():
        out[AGGREGATE_METRIC] = (evals, curves, LM_EVAL_METRIC)
    return out


def _curves_by_arm(table, flops_table, metric: str, arms: list[str]) -> dict[str, SeedCurves]:
    out = {}
    for arm in arms:
        if metric in table and table.loc[table["arm"] == arm, metric].notna().any():
            out[arm] = seed_curves(table, arm, metric, flops_table)
    return out


def load_references(results_dir: Path, config_name: str) -> list[dict]:
    """The reference models' ID cards (results/<config>/references/<name>/card.json), in brief."""
    out = []
    for path in sorted((Path(results_dir) / config_name / "references").glob("*/card.json")):
        card = json.loads(path.read_text())
        final = card.get("final") or {}
        out.append({"name": path.parent.name, "status": card.get("status"), "steps": card.get("steps"),
                    "n_params": card.get("n_params"), "train_split": card.get("train_split"),
                    **{k: final.get(k) for k in ("heldout_loss", "heldout_bpb", "flops_train")}})
    return out


def _figure(figures: dict, fig, out_dir: Path, name: str, caption: str) -> None:
    plots.save(fig, out_dir / "figures", name)
    figures[name] = {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg", "caption": caption}


def build_report(results_dir: Path, config_name: str, out_dir: Path, *, metric: str | None = None,
                 rule: str = "first", smooth: str = "none", n_boot: int = 2000, boot_seed: int = 0,
                 ci_level: float = 0.95, n_bins: int = 10) -> dict:
    """Write summary.json, report.md, report.html and figures/ under out_dir; return the summary."""
    runs_dir = Path(results_dir) / config_name / "runs"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cards_df = load_cards(runs_dir)
    cards = [json.loads((Path(d) / "card.json").read_text()) for d in cards_df["run_dir"]]
    all_curves = load_curves(runs_dir, finished_only=False)
    finished = set(cards_df.loc[cards_df["status"] == "finished", "run"])
    curves = all_curves[all_curves["run"].isin(finished)] if not all_curves.empty else all_curves
    last_rows = {run: df.iloc[-1].dropna().to_dict() for run, df in all_curves.groupby("run")} \
        if not all_curves.empty else {}
    eval_long, eval_notes = load_evals(runs_dir)
    evals = wide(eval_long)

    # The cards hold the config the runs actually used; the DAG's resolved config is the fallback.
    resolved = Path(results_dir) / config_name / "config.resolved.json"
    config = cards[0].get("config", {}) if cards else (json.loads(resolved.read_text()) if resolved.exists() else {})
    settings = arm_settings(cards) or {a: s for a, s in config.get("arms", {}).items()}
    arms_with_runs = [a for a in settings if a in set(curves.get("arm", []))]
    baseline = choose_baseline({a: settings[a] for a in arms_with_runs})
    compared = [a for a in arms_with_runs if a != baseline]

    tables = _metric_tables(curves, evals) if baseline else {}
    notes: list[str] = []
    if metric is not None and metric not in tables:
        notes.append(f"Requested metric '{metric}' is not available; using the first available one.")
    primary_name = metric if metric in tables else next(iter(tables), metric or "heldout_loss")
    primary = tables[primary_name][2] if primary_name in tables else METRICS.get(primary_name, Metric(primary_name))
    pkw = {"rule": rule, "smooth": smooth, "n_boot": n_boot, "boot_seed": boot_seed, "ci_level": ci_level}

    results: dict[str, list[ParityResult]] = {}
    curves_of: dict[str, dict[str, SeedCurves]] = {}
    for name, (table, flops_table, info) in tables.items():
        curves_of[name] = _curves_by_arm(table, flops_table, name, [baseline, *compared])
        if baseline not in curves_of[name]:
            notes.append(f"No parity on {name}: the baseline '{baseline}' has no values of it.")
            del curves_of[name]
            continue
        results[name] = [parity(curves_of[name][baseline], c, info.higher_is_better, name, rule=rule, smooth=smooth,
                                n_boot=n_boot, seed=boot_seed, ci_level=ci_level)
                         for arm, c in curves_of[name].items() if arm != baseline]
    if eval_notes["incomplete"]:
        notes.append(f"lm-eval suite incomplete at {len(eval_notes['incomplete'])} checkpoint(s) "
                     f"(aggregate left out there, not averaged over the tasks present): {eval_notes['incomplete']}.")
    if eval_notes["unreadable"]:
        notes.append(f"Unreadable lm-eval files skipped: {eval_notes['unreadable']}.")

    # ---- composition
    composition = {"pool_shares_agree": comp.pool_shares_agree(cards)}
    over = {}
    for kind in comp.KINDS:
        pool = comp.pool_shares(cards, kind)
        over[kind] = (comp.selection_over_training(curves, kind, n_bins), pool)
        composition[kind] = {"pool_share": pool.to_dict(),
                             "selected": comp.composition_summary(curves, pool, kind).to_dict("records")}
    if not composition["pool_shares_agree"]:
        notes.append("The runs' cards disagree on the pool shares: the pool changed between runs.")

    # ---- figures
    figures: dict = {}
    references = load_references(results_dir, config_name)
    for name, rs in results.items():
        info = tables[name][2]
        ref_lines = {r["name"]: r[name] for r in references if r.get(name) is not None and r["status"] == "finished"}
        _figure(figures, plots.plot_metric_vs_steps(curves_of[name], rs, info, baseline, ref_lines), out_dir,
                f"curves_{name}", f"{info.axis_label} vs training steps: mean over seeds (band: min-max); "
                f"dashed: the baseline's final value; stars: parity points.")
    if primary_name in results:
        _figure(figures, plots.plot_metric_vs_flops(curves_of[primary_name], results[primary_name], primary, baseline),
                out_dir, f"flops_{primary_name}",
                f"{primary.axis_label} vs cumulative FLOPs under each accounting (log x).")
        head = headline_rows(results[primary_name], settings)
        jest_rows = [h for h in head if h["policy"] == "jest"]
        if jest_rows:
            _figure(figures, plots.plot_speedup_vs_filter_ratio(jest_rows), out_dir, "speedup_vs_filter_ratio",
                    "Speedup to parity vs filter ratio (95% bootstrap CI), against the claimed 13x iterations "
                    "and 10x FLOPs (train+score); log y.")
        if head:
            _figure(figures, plots.plot_ablation(head), out_dir, "speedup_per_arm",
                    "Speedup to parity per arm: iterations and FLOPs (train+score), 95% CI.")
    for kind, (over_training, pool) in over.items():
        if not over_training.empty:
            _figure(figures, plots.plot_composition(over_training, pool, kind, [baseline, *compared]), out_dir, f"composition_{kind}",
                    f"Share of trained sequences by {kind} over training (solid) vs the pool (dashed).")

    # ---- the baseline's final values (mean and per seed) on every metric
    base_finals, base_seeds, final_step = {}, [], None
    for name, rs in results.items():
        c = curves_of[name].get(baseline)
        if c is not None:
            base_finals[name] = {"mean": float(c.values[:, -1].mean()),
                                 "per_seed": {str(s): float(v) for s, v in zip(c.seeds, c.values[:, -1])}}
            if name == primary_name:
                base_seeds, final_step = list(c.seeds), float(c.steps[-1])

    summary = assemble(config_name=config_name, config=config, cards=cards, baseline=baseline,
                       baseline_finals=base_finals, baseline_seeds=base_seeds, final_step=final_step,
                       primary=primary, results_by_metric=results, settings=settings, parity_kwargs=pkw,
                       composition=composition, runs=run_rows(cards, last_rows), references=references,
                       figures=figures, extra_notes=notes)
    summary = to_json(summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(summary))
    (out_dir / "report.html").write_text(render_html(summary, out_dir))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results"), help="the results root (default: results)")
    ap.add_argument("--config", required=True, help="config name, e.g. tiny (reads <results>/<config>/runs)")
    ap.add_argument("--out", type=Path, help="output folder (default: <results>/<config>/report)")
    ap.add_argument("--metric", help="primary metric (default: heldout_loss, else the first available)")
    ap.add_argument("--rule", choices=("first", "sustained"), default="first",
                    help="parity crossing rule (default: first crossing, as in DESIGN.md)")
    ap.add_argument("--smooth", choices=("none", "running_best"), default="none")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = ap.parse_args(argv)
    out = args.out or args.results / args.config / "report"
    summary = build_report(args.results, args.config, out, metric=args.metric, rule=args.rule, smooth=args.smooth,
                           n_boot=args.n_boot, boot_seed=args.seed)
    for c in summary["claims"]:
        print(f"{c['claim']}: {c['verdict']} ({c['reason']})")
    for n in summary["notes"]:
        print(f"note: {n}")
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

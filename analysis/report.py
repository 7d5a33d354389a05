"""Build the report of one config: summary.json, report.md, report.html and the figures.

    python -m analysis.report --results results --config tiny --out results/tiny/report

Reads results/<config>/runs/*/{card.json, metrics.jsonl, eval/step_<N>.json}
(analysis.runs, analysis.evals); compares every arm with the uniform baseline
on each available metric (analysis.parity); judges the article's claims
(analysis.claims) on the headline arms; draws the figures (analysis.plots) and writes

    <out>/summary.json     the numbers (schema: analysis.summary, SUMMARY_SCHEMA_VERSION)
    <out>/report.md        tables + links to figures/*.png
    <out>/report.html      self-contained: every figure inlined as a base64 PNG
    <out>/figures/*.png, *.svg

Only finished runs enter the numbers; every run with a card is listed.

--arms headline (the default target's report) leaves out the arms the config lists
under `ablation_arms`; --arms all (`snakemake ablations`) reports them too, in an
ablation table and the per-arm speedup plot, never in the claim verdicts. Then,
unless --no-mlflow, the report is logged as one MLflow run (analysis.mlflow_summary).
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
    ablation_rows,
    arm_settings,
    assemble,
    choose_baseline,
    headline_rows,
    run_rows,
    to_json,
)

LM_EVAL_METRIC = Metric(AGGREGATE_METRIC, True, "lm-eval aggregate centered accuracy (0 = chance, 1 = perfect)")
DEFAULT_METRICS = ("heldout_loss", "heldout_bpb")

ARM_SCOPES = ("headline", "all")

__all__ = ["ARM_SCOPES", "SUMMARY_SCHEMA_VERSION", "build_report", "main"]


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


def load_references(results_dir: Path, config_name: str, names: set[str] | None = None) -> list[dict]:
    """The reference models' ID cards (results/<config>/references/<name>/card.json), in brief;
    only those in `names` when given."""
    out = []
    for path in sorted((Path(results_dir) / config_name / "references").glob("*/card.json")):
        if names is not None and path.parent.name not in names:
            continue
        card = json.loads(path.read_text())
        final = card.get("final") or {}
        out.append({"name": path.parent.name, "status": card.get("status"), "steps": card.get("steps"),
                    "n_params": card.get("n_params"), "train_split": card.get("train_split"),
                    **{k: final.get(k) for k in ("heldout_loss", "heldout_bpb", "flops_train")}})
    return out


def _figure(figures: dict, fig, out_dir: Path, name: str, caption: str) -> None:
    plots.save(fig, out_dir / "figures", name)
    figures[name] = {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg", "caption": caption}


def ablation_arms(config: dict) -> list[str]:
    """The config's `ablation_arms` (absent in configs older than the key: none)."""
    return list(config.get("ablation_arms") or [])


def build_report(results_dir: Path, config_name: str, out_dir: Path, *, metric: str | None = None,
                 rule: str = "first", smooth: str = "none", n_boot: int = 2000, boot_seed: int = 0,
                 ci_level: float = 0.95, n_bins: int = 10, arms: str = "headline") -> dict:
    """Write summary.json, report.md, report.html and figures/ under out_dir; return the summary.

    arms: "headline" leaves out the config's `ablation_arms`; "all" reports every arm."""
    if arms not in ARM_SCOPES:
        raise ValueError(f"arms must be one of {ARM_SCOPES}, got {arms!r}")
    runs_dir = Path(results_dir) / config_name / "runs"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cards_df = load_cards(runs_dir)
    cards = [json.loads((Path(d) / "card.json").read_text()) for d in cards_df["run_dir"]]
    # Which arms are ablations: the DAG's resolved config (the current one) when present, else the runs'.
    resolved = Path(results_dir) / config_name / "config.resolved.json"
    current = json.loads(resolved.read_text()) if resolved.exists() else (cards[0].get("config", {}) if cards else {})
    ablations = ablation_arms(current)
    if arms == "headline" and ablations:
        keep = ~cards_df["arm"].isin(ablations)
        cards = [c for c, k in zip(cards, keep) if k]
        cards_df = cards_df[keep].reset_index(drop=True)
    in_scope = set(cards_df["arm"])
    all_curves = load_curves(runs_dir, finished_only=False)
    if not all_curves.empty:
        all_curves = all_curves[all_curves["arm"].isin(in_scope)]
    finished = set(cards_df.loc[cards_df["status"] == "finished", "run"])
    curves = all_curves[all_curves["run"].isin(finished)] if not all_curves.empty else all_curves
    last_rows = {run: df.iloc[-1].dropna().to_dict() for run, df in all_curves.groupby("run")} \
        if not all_curves.empty else {}
    eval_long, eval_notes = load_evals(runs_dir)
    evals = wide(eval_long[eval_long["arm"].isin(in_scope)])

    # The cards hold the config the runs actually used; the DAG's resolved config is the fallback.
    config = cards[0].get("config", {}) if cards else current
    settings = {a: s for a, s in (arm_settings(cards) or config.get("arms", {})).items()
                if arms == "all" or a not in ablations}
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
    used_refs = {s.get("reference", "ref") for a, s in settings.items() if s.get("policy") == "jest"}
    references = load_references(results_dir, config_name, used_refs or None)
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
        head = headline_rows([r for r in results[primary_name] if r.arm not in ablations], settings)
        abl = ablation_rows([r for r in results[primary_name] if r.arm in ablations], settings, head)
        jest_rows = [h for h in head if h["policy"] == "jest"]
        if jest_rows:
            _figure(figures, plots.plot_speedup_vs_filter_ratio(jest_rows), out_dir, "speedup_vs_filter_ratio",
                    "Speedup to parity vs filter ratio (95% bootstrap CI), against the claimed 13x iterations "
                    "and 10x FLOPs (train+score); log y" + ("; headline arms only." if abl else "."))
        if head or abl:
            _figure(figures, plots.plot_ablation(head + abl), out_dir, "speedup_per_arm",
                    "Speedup to parity per arm: iterations and FLOPs (train+score), 95% CI"
                    + (f"; the last {len(abl)} are the ablations." if abl else "."))
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
                       figures=figures, extra_notes=notes, arm_scope=arms, ablation_arms=ablations)
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
    ap.add_argument("--arms", choices=ARM_SCOPES, default="headline",
                    help="headline: leave out the config's ablation_arms (default); all: report every arm")
    ap.add_argument("--no-mlflow", action="store_true",
                    help="do not log the report as an MLflow summary run (default: log it; failures only warn)")
    args = ap.parse_args(argv)
    out = args.out or args.results / args.config / "report"
    summary = build_report(args.results, args.config, out, metric=args.metric, rule=args.rule, smooth=args.smooth,
                           n_boot=args.n_boot, boot_seed=args.seed, arms=args.arms)
    if not args.no_mlflow:
        from analysis.mlflow_summary import log_summary
        run_id = log_summary(summary, out, args.results, args.results / args.config / "runs")
        if run_id:
            print(f"MLflow summary run: {run_id}")
    for c in summary["claims"]:
        print(f"{c['claim']}: {c['verdict']} ({c['reason']})")
    for n in summary["notes"]:
        print(f"note: {n}")
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

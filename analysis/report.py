"""Build the report of one config: summary.json, report.md, report.html and the figures.

    python -m analysis.report --results results --config tiny --out results/tiny/report

Reads results/<config>/runs/*/{card.json, metrics.jsonl, eval/step_<N>.json}
(analysis.runs, analysis.evals, analysis.lmeval_table). The headline is the iso-loss compute
multiplier of every arm against the uniform compute family (analysis.multiplier), on every
held-out set, with the statistics of analysis.stats (analysis.verdicts: claims, equivalence
tests of the ablations, the oracle's reference line and the controls' decomposition); first-crossing parity against
the headline-budget uniform arm stays as a second view (analysis.parity, rule "sustained" by
default). Figures: analysis.figures. Writes

    <out>/summary.json     the numbers (schema: docs/summary.md, SUMMARY_SCHEMA_VERSION)
    <out>/report.md        tables + links to figures/*.png
    <out>/report.html      self-contained: every figure inlined as a base64 PNG
    <out>/figures/*.png, *.svg

Only finished runs enter the numbers; every run with a card is listed.

--arms headline (the default target's report) leaves out the arms the config lists
under `ablation_arms`; --arms all (`snakemake ablations`) reports them too, with an
equivalence test against the headline arm each, never in the claim verdicts. Then,
unless --no-mlflow, the report is logged as one MLflow run (analysis.mlflow_summary).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jest.policies.registry import group_of, load_plugins, role_of
from analysis import composition as comp
from analysis import verdicts as vd
from analysis.evals import AGGREGATE_METRIC, MARGIN_METRIC, load_evals, wide
from analysis.figures import make_figures
from analysis.heldout_table import heldout_set_table
from analysis.lmeval_table import FIELDS as LM_FIELDS
from analysis.lmeval_table import load_task_table, per_task_table
from analysis.multiplier import family_arms
from analysis.parity import METRICS, Metric, ParityResult, SeedCurves, metric_info, parity, seed_curves
from analysis.render import render_html, render_markdown
from analysis.runs import config_runs, left_out, load_cards, load_curves, run_name
from analysis.stats import ALPHA, DEFAULT_MARGIN, NOT_REPRODUCED, POWER, REPRODUCED, SINGLE_SEED, UNDECIDED
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
from jest.tracking.metrics import MetricsError

LM_EVAL_METRICS = {
    AGGREGATE_METRIC: Metric(AGGREGATE_METRIC, True, "lm-eval aggregate centered accuracy (0 = chance, 1 = perfect)"),
    MARGIN_METRIC: Metric(MARGIN_METRIC, True, "lm-eval aggregate log-likelihood margin of the correct choice (nats)"),
}
DEFAULT_METRICS = ("heldout_loss", "heldout_bpb")   # first-crossing parity (the second view) on these
ARM_SCOPES = ("headline", "all")

__all__ = ["ARM_SCOPES", "SUMMARY_SCHEMA_VERSION", "build_report", "main"]


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


def ablation_arms(config: dict) -> list[str]:
    """The config's `ablation_arms` (absent in configs older than the key: none)."""
    return list(config.get("ablation_arms") or [])


def _input_notes(runs_dir: Path, config: dict, wanted: list[str] | None, ablations: list[str]) -> list[str]:
    """What the report did not read: folders outside the config's runs, and the config's runs with no card."""
    if wanted is None:
        return ["No resolved config next to the runs: every run folder with a card was read."]
    notes = []
    ignored = left_out(runs_dir, wanted)
    if ignored:
        notes.append(f"Run folders not among the config's arms x seeds were not read: {', '.join(ignored)} "
                     f"(runs of an earlier config; delete them, or put their arm or seed back in the config).")
    missing = [run_name(a, s) for a, spec in config["arms"].items() if a not in ablations and "rung" not in spec
               for s in config["seeds"] if not (Path(runs_dir) / run_name(a, s) / "card.json").exists()]
    if missing:
        notes.append(f"Runs of the config with no card yet (not trained): {', '.join(missing)}.")
    return notes


def build_report(results_dir: Path, config_name: str, out_dir: Path, *, metric: str | None = None,
                 rule: str = "sustained", smooth: str = "none", n_boot: int = 2000, boot_seed: int = 0,
                 ci_level: float = 0.95, n_bins: int = 10, arms: str = "headline",
                 margin: float = DEFAULT_MARGIN, figures: bool = True, resolved_config: Path | None = None) -> dict:
    """Write summary.json, report.md, report.html and figures/ under out_dir; return the summary.

    resolved_config: the config whose arms x seeds are read (default <results>/<config>/config.resolved.json;
    the folders of other arms or seeds are left out, and named in the notes).
    arms: "headline" leaves out the config's `ablation_arms`; "all" reports every arm.
    margin: the equivalence margin of every "no difference" test (a ratio of multipliers).
    figures: False skips drawing (the numbers only: fast; report.md / .html then have no figures)."""
    if arms not in ARM_SCOPES:
        raise ValueError(f"arms must be one of {ARM_SCOPES}, got {arms!r}")
    runs_dir = Path(results_dir) / config_name / "runs"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The current config (the DAG's snapshot, else its resolved config) says which runs are read and
    # which arms are ablations; without one (a results folder alone), every run folder is read.
    if resolved_config is not None and not Path(resolved_config).is_file():
        raise FileNotFoundError(f"--resolved-config {resolved_config}: no such file (the DAG's config snapshot, "
                                f"results/<name>/config.<hash>.json, or results/<name>/config.resolved.json)")
    resolved = Path(resolved_config) if resolved_config else Path(results_dir) / config_name / "config.resolved.json"
    current = json.loads(resolved.read_text()) if resolved.exists() else None
    wanted = config_runs(current) if current and current.get("arms") and current.get("seeds") else None
    cards_df = load_cards(runs_dir, wanted)
    cards = [json.loads((Path(d) / "card.json").read_text()) for d in cards_df["run_dir"]]
    if current is None:
        current = cards[0].get("config", {}) if cards else {}
    load_plugins(current.get("plugins") or [])  # a plugin's policies: their specs say each arm's group and role
    ablations = ablation_arms(current)
    input_notes = _input_notes(runs_dir, current, wanted, ablations if arms == "headline" else [])
    if arms == "headline" and ablations:
        keep = ~cards_df["arm"].isin(ablations)
        cards = [c for c, k in zip(cards, keep) if k]
        cards_df = cards_df[keep].reset_index(drop=True)
    in_scope = set(cards_df["arm"])
    all_curves = load_curves(runs_dir, finished_only=False, runs=wanted)
    if not all_curves.empty:
        all_curves = all_curves[all_curves["arm"].isin(in_scope)]
    # the general-domain metric (config analysis.general_sets): the declared held-out sets' mean loss
    general_sets = ((current or {}).get("analysis") or {}).get("general_sets", ["pool_mix", "ext_*"])
    if not all_curves.empty:
        all_curves, general_used = vd.add_general_metric(all_curves, general_sets)
    else:
        general_used = []
    finished = set(cards_df.loc[cards_df["status"] == "finished", "run"])
    curves = all_curves[all_curves["run"].isin(finished)] if not all_curves.empty else all_curves
    last_rows = {run: df.iloc[-1].dropna().to_dict() for run, df in all_curves.groupby("run")} \
        if not all_curves.empty else {}
    eval_long, eval_notes = load_evals(runs_dir, runs=wanted)
    evals = wide(eval_long[eval_long["arm"].isin(in_scope)])

    # The cards hold the config the runs actually used; the DAG's resolved config is the fallback.
    config = cards[0].get("config", {}) if cards else current
    settings = {a: s for a, s in (arm_settings(cards) or config.get("arms", {})).items()
                if arms == "all" or a not in ablations}
    arms_with_runs = [a for a in settings if a in set(curves.get("arm", []))]
    family = family_arms({a: settings[a] for a in arms_with_runs})
    baseline = choose_baseline({a: settings[a] for a in arms_with_runs})
    compared = [a for a in arms_with_runs if a not in family]
    is_control = {a: group_of(settings[a].get("policy")) == "control" for a in compared}
    head_arms = [a for a in compared if a not in ablations and not is_control[a]]
    control_arms = [a for a in compared if a not in ablations and is_control[a]]
    abl_arms = [a for a in compared if a in ablations]

    # ---- the multiplier on every held-out set (and lm-eval aggregates): the headline view
    tables = {name: (curves, None, metric_info(name, False, METRICS[name].label if name in METRICS else name))
              for name in (vd.heldout_metrics(curves) if baseline else [])}
    for name, info in LM_EVAL_METRICS.items():
        if baseline and name in evals and evals[name].notna().any():
            tables[name] = (evals, curves, info)
    notes: list[str] = list(input_notes)
    if metric is not None and metric not in tables:
        notes.append(f"Requested metric '{metric}' is not available; using the first available one.")
    primary_name = metric if metric in tables else next(iter(tables), metric or "heldout_loss")
    primary = tables[primary_name][2] if primary_name in tables else METRICS.get(primary_name, Metric(primary_name))
    mults = {name: vd.metric_multipliers(t, name, family, compared, info.higher_is_better, ft, ci_level)
             for name, (t, ft, info) in tables.items()}
    mults = {k: v for k, v in mults.items() if v}

    # ---- first-crossing parity (the second view), held-out metrics only: lm-eval has a few
    # snapshots, and a crossing interpolated between two of them is not a measurement
    pkw = {"rule": rule, "smooth": smooth, "n_boot": n_boot, "boot_seed": boot_seed, "ci_level": ci_level}
    results: dict[str, list[ParityResult]] = {}
    curves_of: dict[str, dict[str, SeedCurves]] = {}
    for name in [m for m in DEFAULT_METRICS if m in tables]:
        curves_of[name] = _curves_by_arm(curves, None, name, [baseline, *compared])
        if baseline not in curves_of[name]:
            del curves_of[name]
            continue
        results[name] = [parity(curves_of[name][baseline], c, tables[name][2].higher_is_better, name, **{
            k: v for k, v in pkw.items() if k != "boot_seed"}, seed=boot_seed)
                         for arm, c in curves_of[name].items() if arm != baseline]
    if eval_notes["incomplete"]:
        notes.append(f"lm-eval suite incomplete at {len(eval_notes['incomplete'])} checkpoint(s) "
                     f"(aggregate left out there, not averaged over the tasks present): {eval_notes['incomplete']}.")
    if eval_notes["unreadable"]:
        notes.append(f"Unreadable lm-eval files skipped: {eval_notes['unreadable']}.")

    # ---- rows, verdicts, tests
    prim = mults.get(primary_name, {})
    by_arm = {r.arm: r for r in results.get(primary_name, [])}
    headline = headline_rows(head_arms, settings, prim, primary, by_arm)
    abl = ablation_rows(headline_rows(abl_arms, settings, prim, primary, by_arm), headline)
    control_rows = headline_rows(control_arms, settings, prim, primary, by_arm)
    jest_arms = [h["arm"] for h in headline if role_of(h["policy"]) == "claim"]
    equivalence = vd.ablation_tests(prim, abl, margin)
    for row in abl:
        row["equivalence"] = next((e for e in equivalence if e["arm"] == row["arm"]), None)
    controls = vd.controls(prim, settings, jest_arms, margin)
    per_set = [{"set": vd.heldout_set(name), "metric": name, "arm": arm, **vd.nest(m["quantities"]),
                "pairing": m["pairing"]}
               for name, ms in mults.items() if vd.heldout_set(name) and "_bpb" not in name
               for arm, m in ms.items() if arm in head_arms + control_arms]
    family_rows = vd.family_table(curves, primary_name, family) if primary_name in mults else []

    # ---- composition (what each compared arm and the baseline trained on)
    comp_curves = curves[curves["arm"].isin([baseline, *compared])] if not curves.empty else curves
    composition = {"pool_shares_agree": comp.pool_shares_agree(cards)}
    over = {}
    for kind in comp.KINDS:
        pool = comp.pool_shares(cards, kind)
        over[kind] = (comp.selection_over_training(comp_curves, kind, n_bins), pool)
        composition[kind] = {"pool_share": pool.to_dict(),
                             "selected": comp.composition_summary(comp_curves, pool, kind).to_dict("records")}
    if not composition["pool_shares_agree"]:
        notes.append("The runs' cards disagree on the pool shares: the pool changed between runs.")

    lm_rows = per_task_table(load_task_table(runs_dir, sorted(in_scope), runs=wanted), [baseline, *compared])
    used_refs = {s.get("reference", "ref") for a, s in settings.items() if role_of(s.get("policy")) == "claim"}
    references = load_references(results_dir, config_name, used_refs or None)
    figures, figures_absent = ({}, {}) if not figures else make_figures(out_dir, curves_of=curves_of, results=results, tables=tables, baseline=baseline,
                           references=references, primary_name=primary_name, primary=primary,
                           headline=headline, ablations=abl, controls=controls, control_rows=control_rows,
                           family=family_rows, mults=prim, per_set=per_set, lm_rows=lm_rows, over=over,
                           arm_order=[baseline, *compared], settings=settings)

    base_c = curves_of.get(primary_name, {}).get(baseline)
    sections = {
        "statistics": statistics_settings(ci_level, margin),
        "family": {"metric": primary_name, "arms": family_rows, "budgets": sorted(set(family.values()))},
        "baseline": {"arm": baseline, "seeds": list(base_c.seeds) if base_c else [],
                     "final_step": float(base_c.steps[-1]) if base_c else None},
        "headline": headline, "ablations": abl, "control_rows": control_rows,
        "claims": vd.claims(prim, jest_arms, ci_level), "best_arm": vd.best_of(prim, jest_arms),
        "general_domain": {"metric": f"heldout_loss_{vd.GENERAL}", "sets": general_used, "declared": general_sets,
                           "claims": vd.claims(mults.get(f"heldout_loss_{vd.GENERAL}", {}), jest_arms, ci_level)
                           if general_used else []},
        "equivalence": equivalence, "controls": controls, "per_set": per_set,
        "heldout_sets": heldout_set_table(curves, cards, baseline, family, margin),
        "multipliers": {name: {a: {**m, "quantities": vd.nest(m["quantities"])} for a, m in ms.items()}
                        for name, ms in mults.items()},
        "parity": results, "parity_settings": pkw,
        "lmeval": {"tasks": lm_rows, "fields": {k: list(v[0]) for k, v in LM_FIELDS.items()}},
        "repetition": vd.repetition(curves, cards), "composition": composition,
        "runs": run_rows(cards, last_rows), "references": references, "figures": figures}
    summary = assemble(config_name=config_name, config=config, cards=cards, baseline=baseline, primary=primary,
                       sections=sections, arm_scope=arms, ablation_arms=ablations, extra_notes=notes)
    summary["figures_absent"] = figures_absent   # figure name -> {section, reason}: why it is not drawn
    summary = to_json(summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(summary))
    (out_dir / "report.html").write_text(render_html(summary, out_dir))
    return summary


def statistics_settings(ci_level: float, margin: float) -> dict:
    return {"multiplier": "iso-loss compute multiplier against the uniform family (analysis.multiplier)",
            "interval": "Student t-interval on the per-seed log multiplier (analysis.stats)",
            "ci_level": ci_level, "alpha": ALPHA, "power": POWER, "equivalence_margin": margin,
            "equivalence_test": "paired TOST on the log multipliers (statsmodels ttost_paired)",
            "claim_test": "one-sided t-test of log M > log factor per arm, Holm over arms",
            "verdicts": [REPRODUCED, NOT_REPRODUCED, UNDECIDED, SINGLE_SEED]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results"), help="the results root (default: results)")
    ap.add_argument("--config", required=True, help="config name, e.g. tiny (reads <results>/<config>/runs)")
    ap.add_argument("--out", type=Path, help="output folder (default: <results>/<config>/report)")
    ap.add_argument("--metric", help="primary metric (default: heldout_loss, else the first available)")
    ap.add_argument("--rule", choices=("first", "sustained"), default="sustained",
                    help="first-crossing view: 'sustained' (default: stays reached for the rest of the run) or "
                         "'first' (the first crossing, one lucky dip counts)")
    ap.add_argument("--smooth", choices=("none", "running_best"), default="none")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates of the parity view (default 2000)")
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                    help=f"equivalence margin of the 'no difference' tests, a ratio of multipliers "
                         f"(default {DEFAULT_MARGIN}: within 10%%)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    ap.add_argument("--arms", choices=ARM_SCOPES, default="headline",
                    help="headline: leave out the config's ablation_arms (default); all: report every arm")
    ap.add_argument("--no-figures", action="store_true", help="numbers and tables only (no plots: fast)")
    ap.add_argument("--resolved-config", type=Path,
                    help="the config (JSON) whose arms x seeds are reported (the DAG passes its snapshot); default "
                         "<results>/<config>/config.resolved.json")
    ap.add_argument("--no-mlflow", action="store_true",
                    help="do not log the report as an MLflow summary run (default: log it; failures only warn)")
    args = ap.parse_args(argv)
    out = args.out or args.results / args.config / "report"
    try:
        summary = build_report(args.results, args.config, out, metric=args.metric, rule=args.rule, smooth=args.smooth,
                               n_boot=args.n_boot, boot_seed=args.seed, arms=args.arms, margin=args.margin,
                               figures=not args.no_figures, resolved_config=args.resolved_config)
    except MetricsError as err:  # names the file and the job that writes it again
        raise SystemExit(f"error: {err}") from None
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

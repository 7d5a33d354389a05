"""Which figures the report draws, with their captions (analysis.plots, analysis.plots_multiplier).

Order: what a reader looks at first (the multiplier per arm against the claims, the family with
the arms placed on it, per held-out set), then the curves behind them and what the arms trained on.
"""
from __future__ import annotations

from pathlib import Path

from jest.policies.registry import role_of
from analysis import plots
from analysis import plots_multiplier as pm


def _add(figures: dict, fig, out_dir: Path, name: str, caption: str) -> None:
    plots.save(fig, Path(out_dir) / "figures", name)
    figures[name] = {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg", "caption": caption}


def make_figures(out_dir: Path, *, curves_of, results, tables, baseline, references, primary_name, primary,
                 headline, ablations, controls, control_rows, family, mults, per_set, lm_rows, over,
                 arm_order) -> dict:
    figures: dict = {}
    ceiling = controls.get("oracle_ceiling")
    rows = [r for r in headline + control_rows + ablations if r.get("iterations") is not None]
    if rows:
        _add(figures, pm.plot_multipliers(rows, ceiling), out_dir, "multiplier_per_arm",
             "Iso-loss compute multiplier per arm (uniform compute needed for the arm's final "
             f"{primary.axis_label} / the arm's compute), 95% t-interval over seeds, against the claimed 13x "
             "(iterations) and 10x (FLOPs, train+score)"
             + ("; green: the oracle_clean arm's multiplier (re-weighting by the labels toward clean text; a reference "
                "line, not an upper bound)." if ceiling else "."))
    if family and mults:
        placed = {r["arm"]: mults[r["arm"]] for r in headline + control_rows if r["arm"] in mults}
        _add(figures, pm.plot_family(family, placed, primary.axis_label), out_dir, "family",
             "The uniform compute family (each budget trained and annealed to its own end) and each arm "
             "placed on it: the arrow is the arm's multiplier.")
    jest_rows = [h for h in headline if role_of(h["policy"]) == "claim" and h.get("iterations") is not None]
    if jest_rows:
        _add(figures, plots.plot_speedup_vs_filter_ratio(jest_rows, ceiling=ceiling), out_dir,
             "multiplier_vs_filter_ratio", "Iso-loss multiplier vs filter ratio (95% t-interval), against the "
             "claimed 13x iterations and 10x FLOPs (train+score); log y.")
    if per_set:
        arms = list(dict.fromkeys(r["arm"] for r in per_set))
        _add(figures, pm.plot_per_set(per_set, arms), out_dir, "multiplier_per_set",
             "Iterations multiplier per held-out set: what each arm gains on the curated domain and gives up "
             "on the other sources, the pool's mixture and the external domain.")
    for name, rs in results.items():
        info = tables[name][2]
        ref_lines = {r["name"]: r[name] for r in references if r.get(name) is not None and r["status"] == "finished"}
        _add(figures, plots.plot_metric_vs_steps(curves_of[name], rs, info, baseline, ref_lines), out_dir,
             f"curves_{name}", f"{info.axis_label} vs training steps: mean over seeds (band: min-max); "
             f"dashed: the baseline's final value; stars: first-crossing parity ({rs[0].rule if rs else ''} rule).")
    if primary_name in results:
        _add(figures, plots.plot_metric_vs_flops(curves_of[primary_name], results[primary_name], primary, baseline),
             out_dir, f"flops_{primary_name}",
             f"{primary.axis_label} vs cumulative FLOPs under each accounting (log x; the 'total' panel starts a "
             "decade below the cheapest run's end).")
        parity_rows = [{**r, "iterations": r["parity"]["iterations"], "flops": r["parity"]["flops"]}
                       for r in headline + ablations if r.get("parity")]
        if parity_rows:
            _add(figures, plots.plot_ablation(parity_rows), out_dir, "parity_per_arm",
                 "Second view: first-crossing speedup to parity per arm (iterations and FLOPs train+score), "
                 "percentile bootstrap over seeds (coarse at few seeds).")
    for value, label in (("margin", "log-likelihood margin"), ("acc", "accuracy")):
        if any(r.get(value) is not None for r in lm_rows):
            _add(figures, pm.plot_lmeval(lm_rows, value, [a for a in arm_order if a]), out_dir, f"lmeval_{value}",
                 f"lm-eval {label} per task at each evaluated snapshot, +-1 standard error (item sampling); "
                 "no value is read between snapshots.")
    for kind, (over_training, pool) in over.items():
        if not over_training.empty:
            _add(figures, plots.plot_composition(over_training, pool, kind, arm_order), out_dir, f"composition_{kind}",
                 f"Share of trained sequences by {kind} over training (solid) vs the pool (dashed).")
    return figures


__all__ = ["make_figures"]

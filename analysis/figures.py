"""Which figures the report draws, with their captions (analysis.plots, analysis.plots_multiplier),
and which it leaves out, with the reason (a figure is drawn only when it has something to show).

Every figure names the section of the report it belongs to ("claims", "headline", "per_set",
"parity", "lmeval", "composition_<kind>"): analysis.report_sections puts it next to its table. Every
arm has one colour in every figure (analysis.colors.arm_colors, built once here).
"""
from __future__ import annotations

from pathlib import Path

from jest.policies.registry import role_of
from analysis import plots
from analysis import plots_multiplier as pm
from analysis.colors import arm_colors


def _add(figures: dict, fig, out_dir: Path, name: str, section: str, caption: str) -> None:
    plots.save(fig, Path(out_dir) / "figures", name)
    figures[name] = {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg", "caption": caption,
                     "section": section}


def _ratio_series(rows: list[dict], settings: dict[str, dict]) -> list[dict]:
    """The rows with "series": the arms' settings other than filter_ratio and allow_repeats, so that
    jest_f0.5 / jest_f0.8 / jest_f0.9 are one series even when they come from different tables (the
    headline's and the ablations' series names are computed per table and never match)."""
    def key(arm):
        return repr(sorted((k, repr(v)) for k, v in settings.get(arm, {}).items()
                           if k not in ("filter_ratio", "allow_repeats")))
    names: dict[str, str] = {}
    for r in rows:
        names.setdefault(key(r["arm"]), r["arm"])       # a series is named after its first arm
    return [{**r, "series": f"as {names[key(r['arm'])]}"} for r in rows]


def make_figures(out_dir: Path, *, curves_of, results, tables, baseline, references, primary_name, primary,
                 headline, ablations, controls, control_rows, family, mults, per_set, lm_rows, over,
                 arm_order, settings) -> tuple[dict, dict]:
    """(figures, absent): name -> {png, svg, caption, section}; name -> {section, reason} of each
    figure the report could draw but left out. settings: arm -> its config (the filter-ratio series)."""
    figures: dict = {}
    absent: dict = {}
    # colours in the order of the report's tables (headline, controls, ablations): the headline arms get
    # the same colours in the headline report and in the all-arms one
    shown = [baseline] + [r["arm"] for r in headline + control_rows + ablations] + [a for a in arm_order if a]
    colors = arm_colors([a for a in shown if a], [f["arm"] for f in family] + [baseline])
    ceiling = controls.get("oracle_ceiling")
    rows = [r for r in headline + control_rows + ablations if r.get("iterations") is not None]
    oracle = ceiling["arm"] if ceiling else None
    if family and mults:
        placed = {r["arm"]: mults[r["arm"]] for r in headline + control_rows if r["arm"] in mults}
        _add(figures, pm.plot_family(family, placed, primary.axis_label, arm_colors=colors), out_dir, "family",
             "claims", "The uniform compute family (each budget trained and annealed to its own end) and each arm "
             "placed on it: the arrow is the arm's multiplier.")
    if rows:
        _add(figures, pm.plot_multipliers(rows, ceiling, arm_colors=colors), out_dir, "multiplier_per_arm", "headline",
             "Iso-loss compute multiplier per arm (uniform compute needed for the arm's final "
             f"{primary.axis_label} / the arm's compute), 95% t-interval over seeds, against the claimed 13x "
             "(iterations) and 10x (FLOPs, train+score)"
             + (f"; the line in {oracle}'s colour: its multiplier (re-weighting by the labels toward clean text; a "
                "reference line, not an upper bound)." if ceiling else "."))
    jest_rows = _ratio_series([h for h in headline + ablations if role_of(h["policy"]) == "claim"
                               and h.get("iterations") is not None and h.get("filter_ratio") is not None], settings)
    if jest_rows and plots.filter_ratios_to_show(jest_rows):
        # only the series with two ratios or more: the f = 0.8 ablations alone would pile up on one x
        multi = [r for r in jest_rows if plots.filter_ratios_to_show([q for q in jest_rows if q["series"] == r["series"]])]
        _add(figures, plots.plot_speedup_vs_filter_ratio(multi, ceiling=ceiling, arm_colors=colors), out_dir,
             "multiplier_vs_filter_ratio", "headline", "Iso-loss multiplier vs filter ratio (95% t-interval), "
             "against the claimed 13x iterations and 10x FLOPs (train+score); log y. A grey line joins the JEST "
             "arms that differ only in the ratio (and in allow_repeats, which a high ratio needs on a small pool); "
             "arms that differ in more (the other ablations) are in the per-arm figure.")
    elif jest_rows:
        ratios = sorted({h["filter_ratio"] for h in jest_rows})
        absent["multiplier_vs_filter_ratio"] = {"section": "headline", "reason": (
            f"No multiplier-vs-filter-ratio figure: each JEST series here has a single filter ratio "
            f"(f = {', '.join(f'{f:g}' for f in ratios)}), one point on an axis of its own; the per-arm figure "
            "shows its multiplier. The all-arms report (`snakemake ablations`) compares several ratios.")}
    if per_set:
        arms = list(dict.fromkeys(r["arm"] for r in per_set))
        _add(figures, pm.plot_per_set(per_set, arms, arm_colors=colors), out_dir, "multiplier_per_set", "per_set",
             "Iterations multiplier per held-out set: what each arm gains on the curated domain and gives up "
             "on the other sources, the pool's mixture and the external domain.")
    if primary_name in results:
        parity_rows = [{**r, "iterations": r["parity"]["iterations"], "flops": r["parity"]["flops"]}
                       for r in headline + control_rows + ablations if r.get("parity")]
        if parity_rows:
            _add(figures, plots.plot_parity(parity_rows, arm_colors=colors), out_dir, "parity_per_arm", "parity",
                 "Second view: the first-crossing multiplier to parity per arm (iterations and FLOPs train+score), "
                 "percentile bootstrap over seeds (coarse at few seeds).")
    for name, rs in results.items():
        info = tables[name][2]
        ref_lines = {r["name"]: r[name] for r in references if r.get(name) is not None and r["status"] == "finished"}
        _add(figures, plots.plot_metric_vs_steps(curves_of[name], rs, info, baseline, ref_lines, arm_colors=colors),
             out_dir, f"curves_{name}", "parity",
             f"{info.axis_label} vs training steps: mean over seeds (band: min-max); dashed: the baseline's final "
             f"value; stars: first-crossing parity ({rs[0].rule if rs else ''} rule).")
    if primary_name in results:
        _add(figures, plots.plot_metric_vs_flops(curves_of[primary_name], results[primary_name], primary, baseline,
                                                 arm_colors=colors),
             out_dir, f"flops_{primary_name}", "parity",
             f"{primary.axis_label} vs cumulative FLOPs under each accounting (log x; the 'total' panel starts a "
             "decade below the cheapest run's end).")
    for value, label in (("margin", "log-likelihood margin"), ("acc", "accuracy")):
        if any(r.get(value) is not None for r in lm_rows):
            _add(figures, pm.plot_lmeval(lm_rows, value, [a for a in arm_order if a], arm_colors=colors), out_dir,
                 f"lmeval_{value}", "lmeval",
                 f"lm-eval {label} per task at each evaluated snapshot, +-1 standard error (item sampling); "
                 "no value is read between snapshots; dotted red: "
                 + ("0, where the correct choice ties the best wrong one." if value == "margin"
                    else "the task's chance accuracy (its metadata.chance)."))
    for kind, (over_training, pool) in over.items():
        if not over_training.empty:
            _add(figures, plots.plot_composition(over_training, pool, kind, arm_order), out_dir, f"composition_{kind}",
                 f"composition_{kind}", f"Share of trained sequences by {kind} over training (solid) vs the pool (dashed); "
                 "labels neither in the pool nor selected are left out.")
    return figures, absent


__all__ = ["make_figures"]

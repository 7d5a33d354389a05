"""summary.json: the report's numbers, one versioned JSON document (schema below).

SUMMARY_SCHEMA_VERSION = "jest-summary-v2". Bump it on any change of meaning
or layout. v2 (from v1): "headline" holds the headline arms only; the config's
`ablation_arms` go to "ablations" (when the report covers them: "arm_scope": "all");
new keys "arm_scope", "ablation_arms", "ablations". Speedups are objects {value, ci_low, ci_high, bound, ci_low_censored,
ci_high_censored} (analysis.parity.Speedup; bound: null | "upper" (parity not
reached: the true speedup is below value) | "lower" (reached at the first eval
point: at least value)). Non-finite numbers are written as null.

{
  "schema_version": "jest-summary-v2",
  "config": {"name": str, "config_hash": [str], "resolved": {the full config of the runs}},
  "arm_scope": "headline" | "all",     # which arms the report covers (analysis.report --arms)
  "ablation_arms": [str],              # the config's ablation arms (run by `snakemake ablations`)
  "baseline": {"arm": str | null, "seeds": [int], "final_step": float,
               "final": {metric: {"mean": float, "per_seed": {seed: float}}}},
  "primary_metric": {"name": str, "higher_is_better": bool, "label": str},
  "metrics": [names of the metrics with parity results],
  "parity_settings": {"rule": "first" | "sustained", "smooth": "none" | "running_best",
                      "n_boot": int, "boot_seed": int, "ci_level": float,
                      "flop_accountings": {"train": "flops_train", ...}},
  "headline": [            # one row per compared headline arm (not the baseline, not an ablation), primary metric
    {"arm": str, "policy": str, "filter_ratio": float, "series": str, "settings": {arm config},
     "metric": str, "higher_is_better": bool, "baseline_final": float (= target), "arm_final": float,
     "seeds": [int], "baseline_seeds": [int], "reached": bool, "T_u": float, "T_j": float | null,
     "T_end": float, "p_reached": float, "ci_available": bool, "max_measurable_speedup": float,
     "baseline_self_step": float | null,
     "iterations": Speedup, "flops": {"train": Speedup, "train+score": Speedup, "total": Speedup}}
  ],
  "ablations": [           # one row per ablation arm in the report: a headline row plus
    {..., "compared_to": str | null,   # the headline JEST arm it is set against (same filter ratio)
     "differs": {key: {"ablation": value, "headline": value}}}   # its settings that differ
  ],
  "parity": {metric: [analysis.parity.ParityResult.to_dict(), ...]},   # every metric, every compared arm
  "claims": [{"id", "claim", "factor", "quantity", "accounting", "paper_setting", "setting_here",
              "best_arm", "measured": Speedup | null, "verdict": "holds" | "does not hold" |
              "inconclusive", "reason", "per_arm": [{"arm", "verdict", "reason", "single_seed"}]}],
  "composition": {kind ("source", "quality"): {"pool_share": {label: float},
                  "selected": [{"arm", "label", "pool_share", "selected_share", "enrichment"}]},
                  "pool_shares_agree": bool},
  "runs": [{"run", "arm", "seed", "status", "policy", "filter_ratio", "steps", "heldout_loss",
            "heldout_bpb", "flops_train", "flops_train_score", "flops_total", "wall_time_s", "error"}],
  "references": [{"name", "status", "steps", "n_params", "train_split", "heldout_loss", "heldout_bpb",
                  "flops_train"}],   # the reference models' own final values (results/<config>/references)
  "provenance": {"git_commits": [str], "packages": {name: [versions]}, "machines": [dict],
                 "devices": [str], "started": str | null, "finished": str | null, "n_runs": int},
  "figures": {name: {"png": path relative to the report folder, "svg": ..., "caption": str}},
  "notes": [str]           # anything the reader must know: missing runs, single seeds, coarse evals
}
"""
from __future__ import annotations

from analysis.claims import CLAIMS, judge
from analysis.parity import ACCOUNTINGS, ParityResult, Speedup, to_json

SUMMARY_SCHEMA_VERSION = "jest-summary-v2"


# ---------------------------------------------------------------- arms
def arm_settings(cards: list[dict]) -> dict[str, dict]:
    """arm -> its config block, in the config's order (from the runs' cards)."""
    out: dict[str, dict] = {}
    for card in cards:
        for arm, cfg in card.get("config", {}).get("arms", {}).items():
            out.setdefault(arm, cfg)
    return out


def filter_ratio(settings: dict) -> float:
    return float(settings.get("filter_ratio", 0.0)) if settings.get("policy") != "uniform" else 0.0


def series_names(settings: dict[str, dict], arms: list[str]) -> dict[str, str]:
    """Name each arm by the settings other than the filter ratio that differ between `arms`,
    so that arms differing only in f fall on one line of the speedup-vs-ratio plot."""
    keys = sorted({k for a in arms for k in settings.get(a, {}) if k not in ("filter_ratio",)})
    varying = [k for k in keys if len({repr(settings.get(a, {}).get(k)) for a in arms}) > 1]
    names = {}
    for a in arms:
        s = settings.get(a, {})
        parts = [f"{k}={s.get(k)}" for k in varying]
        names[a] = ", ".join(parts) if parts else (
            f"{s.get('policy', '?')} ({', '.join(str(s[k]) for k in ('criterion', 'selector') if k in s)})")
    return names


def choose_baseline(settings: dict[str, dict]) -> str | None:
    """The arm named 'uniform' if it is a uniform policy, else the first uniform arm."""
    uniform = [a for a, s in settings.items() if s.get("policy") == "uniform"]
    return "uniform" if "uniform" in uniform else (uniform[0] if uniform else None)


# ---------------------------------------------------------------- rows
def headline_rows(results: list[ParityResult], settings: dict[str, dict]) -> list[dict]:
    names = series_names(settings, [r.arm for r in results])
    rows = []
    for r in results:
        s = settings.get(r.arm, {})
        rows.append({"arm": r.arm, "policy": s.get("policy"), "filter_ratio": filter_ratio(s),
                     "series": names[r.arm], "settings": s, "metric": r.metric,
                     "higher_is_better": r.higher_is_better, "baseline_final": r.target, "arm_final": r.arm_final,
                     "seeds": r.arm_seeds, "baseline_seeds": r.baseline_seeds, "reached": r.reached,
                     "T_u": r.T_u, "T_j": r.T_j, "T_end": r.T_end, "p_reached": r.p_reached,
                     "ci_available": r.ci_available, "max_measurable_speedup": r.max_measurable_speedup,
                     "baseline_self_step": r.baseline_self_step, "iterations": r.iterations, "flops": r.flops})
    return rows


def ablation_rows(results: list[ParityResult], settings: dict[str, dict], headline: list[dict]) -> list[dict]:
    """Headline-style rows for ablation arms, each set against the headline JEST arm with the same
    filter ratio (else the first headline JEST arm), naming the settings that differ."""
    rows = headline_rows(results, settings)
    jest_head = [h for h in headline if h["policy"] == "jest"]
    for row in rows:
        same_f = [h for h in jest_head if h["filter_ratio"] == row["filter_ratio"]]
        base = (same_f or jest_head or [None])[0]
        row["compared_to"] = base["arm"] if base else None
        mine, theirs = row["settings"], base["settings"] if base else {}
        row["differs"] = {k: {"ablation": mine.get(k), "headline": theirs.get(k)}
                          for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)}
    return rows


def run_rows(cards: list[dict], last_rows: dict[str, dict]) -> list[dict]:
    """The run table: every run with a card, finished or not; `last_rows`: run -> last metrics row."""
    rows = []
    for c in cards:
        final = c.get("final") or last_rows.get(c["run"], {})
        s = c.get("config", {}).get("arms", {}).get(c["arm"], {})
        rows.append({"run": c["run"], "arm": c["arm"], "seed": c["seed"], "status": c.get("status"),
                     "policy": s.get("policy"), "filter_ratio": filter_ratio(s),
                     "steps": c.get("steps", final.get("step")),
                     **{k: final.get(k) for k in ("heldout_loss", "heldout_bpb", *ACCOUNTINGS.values())},
                     "wall_time_s": final.get("wall_time"), "error": c.get("error")})
    return rows


def provenance(cards: list[dict]) -> dict:
    packages: dict[str, set] = {}
    for c in cards:
        for name, version in (c.get("packages") or {}).items():
            packages.setdefault(name, set()).add(str(version))
    machines = []
    for c in cards:
        m = c.get("machine")
        if m and m not in machines:
            machines.append(m)
    started = [c["started"] for c in cards if c.get("started")]
    finished = [c["finished"] for c in cards if c.get("finished")]
    return {"git_commits": sorted({str(c.get("git_commit", "unknown")) for c in cards}),
            "packages": {k: sorted(v) for k, v in sorted(packages.items())}, "machines": machines,
            "devices": sorted({str(c["device"]) for c in cards if c.get("device")}),
            "started": min(started) if started else None, "finished": max(finished) if finished else None,
            "n_runs": len(cards)}


def setting_here(config: dict, cards: list[dict], metric: str, T_u: float | None) -> str:
    n_params = next((c.get("n_params") for c in cards if c.get("n_params")), None)
    model = config.get("model", {})
    shape = ", ".join(f"{k}={model[k]}" for k in ("n_layer", "n_embd") if k in model)
    return (f"causal LM, config '{config.get('name', '?')}'"
            + (f", {n_params:,} parameters" if n_params else "") + (f" ({shape})" if shape else "")
            + (f", {T_u:.0f} steps" if T_u else "") + f", metric {metric}")


def claims(headline: list[dict], config: dict, cards: list[dict], metric: str) -> list[dict]:
    jest_rows = [h for h in headline if h["policy"] == "jest"]
    T_u = headline[0]["T_u"] if headline else None
    return [{**judge(c, jest_rows), "setting_here": setting_here(config, cards, metric, T_u)} for c in CLAIMS]


def notes_for(headline: list[dict], results_by_metric: dict, cards: list[dict], baseline: str | None) -> list[str]:
    notes = []
    if baseline is None:
        notes.append("No finished run of a uniform-policy arm: nothing to compare against.")
    unfinished = [c["run"] for c in cards if c.get("status") != "finished"]
    if unfinished:
        notes.append(f"Runs not finished (left out of every number): {', '.join(unfinished)}.")
    for h in headline:
        if not h["ci_available"]:
            notes.append(f"{h['arm']}: fewer than 2 seeds on one side: no confidence interval (CI = the point).")
        elif min(len(h["seeds"]), len(h["baseline_seeds"])) < 3:
            notes.append(f"{h['arm']}: fewer than 3 seeds on one side (the design asks for 3): a coarse CI.")
        if h["baseline_self_step"] is not None and h["baseline_self_step"] < h["T_u"]:
            notes.append(f"{h['arm']}: the baseline's own curve first reaches its final value at step "
                         f"{h['baseline_self_step']:.0f}: speedups up to {h['T_u'] / h['baseline_self_step']:.2f}x "
                         "are within the noise floor of the first-crossing rule.")
    coarse: dict[tuple, list[str]] = {}
    for h in headline:
        if h["max_measurable_speedup"] < 13:
            coarse.setdefault((h["max_measurable_speedup"], h["T_u"]), []).append(h["arm"])
    for (cap, T_u), arms in coarse.items():
        notes.append(f"The eval grid resolves iteration speedups up to {cap:.1f}x only (first eval at step "
                     f"{T_u / cap:.0f} of {T_u:.0f}; {', '.join(arms)}): a 13x speedup cannot be shown; "
                     "evaluate earlier and more often (log-spaced eval steps).")
    if baseline is not None and not headline and cards:
        notes.append("No compared arm has finished runs with the primary metric yet.")
    return list(dict.fromkeys(notes))


def assemble(*, config_name: str, config: dict, cards: list[dict], baseline: str | None,
             baseline_finals: dict, baseline_seeds: list, final_step: float | None, primary,
             results_by_metric: dict[str, list[ParityResult]], settings: dict, parity_kwargs: dict,
             composition: dict, runs: list[dict], references: list[dict], figures: dict,
             extra_notes: list[str], arm_scope: str = "headline", ablation_arms: list[str] = ()) -> dict:
    """The summary document (see the module docstring); Speedup objects are kept until `to_json`."""
    primary_results = results_by_metric.get(primary.name, [])
    headline = headline_rows([r for r in primary_results if r.arm not in ablation_arms], settings)
    ablations = ablation_rows([r for r in primary_results if r.arm in ablation_arms], settings, headline)
    extra = []
    if ablation_arms and arm_scope == "headline":
        extra.append(f"Ablation arms are not in this report: {', '.join(ablation_arms)} "
                     "(`snakemake ablations` runs them and writes report/ablations/).")
    elif ablation_arms:
        missing = [a for a in ablation_arms if a not in {r["arm"] for r in ablations}]
        if missing:
            extra.append(f"Ablation arms without finished runs (not in the ablation table): {', '.join(missing)}.")
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "config": {"name": config_name, "config_hash": sorted({c["config_hash"] for c in cards
                                                               if c.get("config_hash")}), "resolved": config},
        "arm_scope": arm_scope,
        "ablation_arms": list(ablation_arms),
        "baseline": {"arm": baseline, "seeds": baseline_seeds, "final_step": final_step, "final": baseline_finals},
        "primary_metric": {"name": primary.name, "higher_is_better": primary.higher_is_better,
                           "label": primary.axis_label},
        "metrics": list(results_by_metric),
        "parity_settings": {**parity_kwargs, "flop_accountings": dict(ACCOUNTINGS)},
        "headline": headline,
        "ablations": ablations,
        "parity": {m: [r.to_dict() for r in rs] for m, rs in results_by_metric.items()},
        "claims": claims(headline, config, cards, primary.name),
        "composition": composition,
        "runs": runs,
        "references": references,
        "provenance": provenance(cards),
        "figures": figures,
        "notes": notes_for(headline + ablations, results_by_metric, cards, baseline) + extra + extra_notes,
    }


__all__ = ["SUMMARY_SCHEMA_VERSION", "Speedup", "ablation_rows", "assemble", "to_json"]

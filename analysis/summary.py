"""summary.json: the report's numbers, one versioned JSON document.

SUMMARY_SCHEMA_VERSION = "jest-summary-v3"; every field is listed in docs/summary.md. Bump the
version on any change of meaning or layout. v3 (from v2): the headline is the iso-loss compute
multiplier against the uniform family (analysis.multiplier, analysis.stats): "iterations",
"examples" and "flops" of a headline row are multiplier estimates {value, ci_low, ci_high, bound,
n, log_mean, log_sd, method, ci_level, per_seed}; first-crossing parity moved to the row's
"parity" (and "parity" per metric); new "statistics", "family", "multipliers", "per_set",
"equivalence", "best_arm", "controls", "repetition", "lmeval"; claim verdicts are
"reproduced" / "not reproduced at this scale" / "undecided" / "single seed: no verdict".
"""
from __future__ import annotations

from jest.policies.registry import role_of
from analysis.multiplier import budget_of
from analysis.parity import ACCOUNTINGS, ParityResult, Speedup, to_json

SUMMARY_SCHEMA_VERSION = "jest-summary-v3"


# ---------------------------------------------------------------- arms
def arm_settings(cards: list[dict]) -> dict[str, dict]:
    """arm -> its config block, in the config's order (from the runs' cards)."""
    out: dict[str, dict] = {}
    for card in cards:
        for arm, cfg in card.get("config", {}).get("arms", {}).items():
            out.setdefault(arm, cfg)
    return out


def filter_ratio(settings: dict) -> float | None:
    """The arm's filter ratio; None for a policy that has none (uniform, oracle_clean: a 0 there
    read as "filters nothing", which is not what such an arm does)."""
    f = settings.get("filter_ratio")
    return float(f) if f is not None and settings.get("policy") != "uniform" else None


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
    """The first-crossing baseline: the uniform arm at the headline budget (1.0), 'uniform' first."""
    uniform = [a for a, s in settings.items() if role_of(s.get("policy")) == "family"]
    headline = [a for a in uniform if budget_of(settings[a]) == 1.0] or uniform
    return "uniform" if "uniform" in headline else (headline[0] if headline else None)


# ---------------------------------------------------------------- rows
def _parity_brief(r: ParityResult | None) -> dict | None:
    if r is None:
        return None
    return {"rule": r.rule, "reached": r.reached, "T_u": r.T_u, "T_j": r.T_j, "T_end": r.T_end,
            "target": r.target, "p_reached": r.p_reached, "ci_available": r.ci_available,
            "max_measurable_speedup": r.max_measurable_speedup, "baseline_self_step": r.baseline_self_step,
            "iterations": r.iterations, "flops": r.flops}


def headline_rows(arms: list[str], settings: dict[str, dict], mults: dict, metric, parity_by_arm: dict) -> list[dict]:
    """One row per arm with a multiplier (or a parity result) on the primary metric."""
    names = series_names(settings, arms)
    rows = []
    for arm in arms:
        m, p = mults.get(arm), parity_by_arm.get(arm)
        if m is None and p is None:
            continue
        s = settings.get(arm, {})
        q = (m or {}).get("quantities", {})
        it = q.get("iterations")
        rows.append({"arm": arm, "policy": s.get("policy"), "filter_ratio": filter_ratio(s), "budget": budget_of(s),
                     "series": names[arm], "settings": s, "metric": metric.name,
                     "higher_is_better": metric.higher_is_better,
                     "seeds": [x["seed"] for x in it.per_seed] if it else (p.arm_seeds if p else []),
                     "pairing": (m or {}).get("pairing"), "arm_final": (m or {}).get("final"),
                     "iterations": it, "examples": q.get("examples"),
                     "flops": {a: q[a] for a in ACCOUNTINGS if a in q}, "range": (m or {}).get("range", {}),
                     "ci_available": bool(it and it.n >= 2),
                     "reached": p.reached if p else None, "T_j": p.T_j if p else None, "T_u": p.T_u if p else None,
                     "parity": _parity_brief(p)})
    return rows


def ablation_rows(rows: list[dict], headline: list[dict]) -> list[dict]:
    """Ablation rows, each set against the headline JEST arm with the same filter ratio (else the
    first headline JEST arm), naming the settings that differ."""
    jest_head = [h for h in headline if role_of(h["policy"]) == "claim"]
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
        final = {**last_rows.get(c["run"], {}), **(c.get("final") or {})}
        s = c.get("config", {}).get("arms", {}).get(c["arm"], {})
        rows.append({"run": c["run"], "arm": c["arm"], "seed": c["seed"], "status": c.get("status"),
                     "policy": s.get("policy"), "filter_ratio": filter_ratio(s), "budget": budget_of(s),
                     "steps": c.get("steps", final.get("step")),
                     **{k: final.get(k) for k in ("heldout_loss", "heldout_bpb", *ACCOUNTINGS.values(),
                                                  "pool_passes", "unique_sequences")},
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


def setting_here(config: dict, cards: list[dict], metric: str, T_u: float | None,
                 references: list[dict] = ()) -> str:
    """The scale a verdict is about, in words: the learner's size, its steps and tokens per parameter
    (the claim's setting trains on 20+), and the reference's size relative to the learner's (the paper's
    reference is smaller than its learner)."""
    n_params = next((c.get("n_params") for c in cards if c.get("n_params")), None)
    model = config.get("model", {})
    shape = ", ".join(f"{k}={model[k]}" for k in ("n_layer", "n_embd") if k in model)
    batch, seq_len = config.get("train", {}).get("batch_size"), config.get("data", {}).get("seq_len")
    per_param = T_u * batch * seq_len / n_params if T_u and batch and seq_len and n_params else None
    ref_sizes = sorted({r["n_params"] for r in references if r.get("n_params")})
    return (f"causal LM, config '{config.get('name', '?')}'"
            + (f", {n_params:,} parameters" if n_params else "") + (f" ({shape})" if shape else "")
            + (f", {T_u:.0f} steps" if T_u else "")
            + (f", {per_param:.2g} training tokens per parameter" if per_param else "")
            + (f", reference / learner parameters {'/'.join(f'{r / n_params:.2g}' for r in ref_sizes)}x"
               if ref_sizes and n_params else "")
            + f", metric {metric}")


def notes_for(*, headline: list[dict], ablations: list[dict], cards: list[dict], baseline: str | None,
              family: list[dict], repetition: list[dict], controls: dict) -> list[str]:
    """Everything the reader must know before trusting a number."""
    notes = []
    if baseline is None:
        notes.append("No finished run of a uniform-policy arm: nothing to compare against.")
    if baseline is not None and len(family) < 2:
        notes.append("No uniform compute family (uniform arms at >= 2 budgets, e.g. 0.5x, 1x, 2x, 4x the "
                     "headline steps): no iso-loss multiplier, only first-crossing parity (the second view).")
    unfinished = [c["run"] for c in cards if c.get("status") != "finished"]
    if unfinished:
        notes.append(f"Runs not finished (left out of every number): {', '.join(unfinished)}.")
    few = [f"{h['arm']} ({h['iterations'].n})" for h in headline + ablations
           if h.get("iterations") is not None and 1 < h["iterations"].n < 5]
    if few:
        notes.append(f"Fewer than the 5 seeds the design asks for (wide t-intervals): {', '.join(few)}.")
    single = [h["arm"] for h in headline + ablations if h.get("iterations") is not None and h["iterations"].n == 1]
    if single:
        notes.append(f"Single seed: no interval, no verdict: {', '.join(single)}.")
    for h in headline + ablations:
        it = h.get("iterations")
        if it is None:
            continue
        if h.get("pairing") == "pooled":
            notes.append(f"{h['arm']}: placed on the family's pooled (seed-mean) curve, not paired by seed (the "
                         "family lacks some of its seeds): the family's own noise is not in the interval.")
        if it.bound in ("lower", "mixed"):
            notes.append(f"{h['arm']}: at least one seed ends better than the family's largest budget: its "
                         "multiplier is a lower bound; train a larger uniform budget to measure it.")
        if it.bound in ("upper", "mixed"):
            notes.append(f"{h['arm']}: at least one seed ends worse than the family's smallest budget: its "
                         "multiplier is an upper bound; train a smaller uniform budget to measure it.")
        p = h.get("parity")
        if p and p["baseline_self_step"] is not None and p["T_u"] and p["baseline_self_step"] < p["T_u"]:
            notes.append(f"{h['arm']} (first-crossing view): the baseline's own curve reaches its final value at "
                         f"step {p['baseline_self_step']:.0f}; parity speedups up to "
                         f"{p['T_u'] / p['baseline_self_step']:.2f}x are within that view's noise floor.")
    for r in repetition:
        if r["repeats"]:
            notes.append(f"{r['arm']} repeats data: {r['pool_passes']:.2f} passes over the pool.")
    if controls.get("arms") and not controls.get("oracle_ceiling"):
        notes.append("No oracle_clean arm: the speedup plots draw no oracle reference line.")
    return list(dict.fromkeys(notes))


def assemble(*, config_name: str, config: dict, cards: list[dict], baseline: str | None, primary,
             sections: dict, arm_scope: str = "headline", ablation_arms: list[str] = (),
             extra_notes: list[str] = ()) -> dict:
    """The summary document (docs/summary.md); estimates stay objects until `to_json`.

    sections: statistics, family, headline, ablations, control_rows, claims, best_arm, equivalence,
    controls, per_set, heldout_sets, multipliers, parity, parity_settings, lmeval, repetition, composition, runs,
    references, figures."""
    s = sections
    extra = []
    if ablation_arms and arm_scope == "headline":
        extra.append(f"Ablation arms are not in this report: {', '.join(ablation_arms)} "
                     "(`snakemake ablations` runs them and writes report/ablations/).")
    elif ablation_arms:
        missing = [a for a in ablation_arms if a not in {r["arm"] for r in s["ablations"]}]
        if missing:
            extra.append(f"Ablation arms without finished runs (not in the ablation table): {', '.join(missing)}.")
    T_u = next((h["T_u"] for h in s["headline"] if h.get("T_u")), None)
    here = setting_here(config, cards, primary.name, T_u, s["references"])
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "config": {"name": config_name, "config_hash": sorted({c["config_hash"] for c in cards
                                                               if c.get("config_hash")}), "resolved": config},
        "arm_scope": arm_scope,
        "ablation_arms": list(ablation_arms),
        "statistics": s["statistics"],
        "family": s["family"],
        "baseline": s["baseline"],
        "primary_metric": {"name": primary.name, "higher_is_better": primary.higher_is_better,
                           "label": primary.axis_label},
        "metrics": list(s["multipliers"]),
        "headline": s["headline"],
        "ablations": s["ablations"],
        "control_arms": s["control_rows"],
        "claims": [{**c, "setting_here": here} for c in s["claims"]],
        "general_domain": {**s.get("general_domain", {}),
                           "claims": [{**c, "setting_here": here} for c in s.get("general_domain", {}).get("claims", [])]},
        "best_arm": s["best_arm"],
        "equivalence": s["equivalence"],
        "controls": s["controls"],
        "per_set": s["per_set"],
        "heldout_sets": s.get("heldout_sets", []),
        "multipliers": s["multipliers"],
        "parity_settings": {**s["parity_settings"], "flop_accountings": dict(ACCOUNTINGS)},
        "parity": {m: [r.to_dict() for r in rs] for m, rs in s["parity"].items()},
        "lmeval": s["lmeval"],
        "repetition": s["repetition"],
        "composition": s["composition"],
        "runs": s["runs"],
        "references": s["references"],
        "provenance": provenance(cards),
        "figures": s["figures"],
        "notes": notes_for(headline=s["headline"], ablations=s["ablations"] + s["control_rows"], cards=cards,
                           baseline=baseline, family=s["family"]["arms"], repetition=s["repetition"],
                           controls=s["controls"]) + extra + list(extra_notes),
    }


__all__ = ["SUMMARY_SCHEMA_VERSION", "Speedup", "ablation_rows", "assemble", "headline_rows", "to_json"]

"""The report's sections from summary.json: titles, paragraphs and tables of plain strings, in
the order a reader needs them (analysis.render turns them into Markdown and HTML).

Every sentence here follows from a number of the summary; a verdict word comes from
analysis.stats, never from this file.
"""
from __future__ import annotations


def fmt(x, spec: str = ".4g") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return format(x, spec)
    return str(x)


def est(e: dict | None) -> str:
    """A multiplier estimate: '1.46x [1.19, 1.69]', '> 4.00x (beyond the family)', '1.46x (1 seed)'."""
    if not e or e.get("value") is None:
        return "n/a"
    v, b = e["value"], e.get("bound")
    head = {"lower": f"> {v:.2f}x", "upper": f"< {v:.2f}x", "mixed": f"{v:.2f}x (seeds beyond both ends)"}.get(
        b, f"{v:.2f}x")
    if e.get("n", 0) < 2:
        return f"{head} (1 seed)"
    lo, hi = e.get("ci_low"), e.get("ci_high")
    # A bound's interval is one-sided (analysis.stats: the open end is None): say so, never '[0, x]'.
    if lo is None and hi is None:
        return head
    level = f"{100 * (e.get('ci_level') or 0.95):.0f}%"
    if lo is None:
        return f"{head} (one-sided {level}: at most {hi:.2f}x)"
    if hi is None:
        return f"{head} (one-sided {level}: at least {lo:.2f}x)"
    return f"{head} [{lo:.2f}, {hi:.2f}]"


def speedup(sp: dict | None) -> str:
    """A first-crossing speedup: '1.85x [1.60, 2.10]', '< 1.00x (not reached)', '>= 8.00x (at first eval)'."""
    if not sp or sp.get("value") is None:
        return "n/a"
    v = sp["value"]
    head = {"upper": f"< {v:.2f}x (not reached)", "lower": f">= {v:.2f}x (at first eval)"}.get(sp.get("bound"),
                                                                                                 f"{v:.2f}x")
    lo, hi = sp.get("ci_low"), sp.get("ci_high")
    if lo is None or hi is None or abs(lo - v) + abs(hi - v) < 1e-12:
        return head
    return f"{head} [{'<' if sp.get('ci_low_censored') else ''}{lo:.2f}, {'>' if sp.get('ci_high_censored') else ''}{hi:.2f}]"


def differs(d: dict | None) -> str:
    if not d:
        return "nothing (same settings)"
    return "; ".join(f"{k} = {v['ablation']} (headline: {v['headline']})" for k, v in d.items())


def ratio(c: dict | None) -> str:
    if not c or c.get("ratio") is None:
        return "n/a"
    if c.get("ci_low") is None:
        return f"{c['ratio']:.2f}x"
    return f"{c['ratio']:.2f}x [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"


def share(r: dict) -> str:
    """A control's share of JEST's log gain with its Fieller interval: '0.72 [-0.73, 1.90]', '0.72 [unbounded]'."""
    if r.get("share_of_log_gain") is None:
        return "n/a"
    ci = r.get("share_ci")
    if not ci:
        return f"{r['share_of_log_gain']:.2f} (no interval)"
    if ci["ci_low"] is None:
        return f"{r['share_of_log_gain']:.2f} [unbounded]"
    return f"{r['share_of_log_gain']:.2f} [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"


def _claims(s: dict) -> dict:
    rows = [[c["claim"] + (f" (FLOPs: {c['accounting']})" if c.get("accounting") else ""), c["paper_setting"],
             c["setting_here"], est(c.get("measured")) + (f" ({c['best_arm']})" if c.get("best_arm") else ""),
             f"**{c['verdict']}**", c["reason"]] for c in s["claims"]]
    st = s["statistics"]
    return {"title": "Claims", "key": "claims", "paragraphs": [
        "A verdict is about the setting here (causal language models at this scale), not about the paper's "
        "image-text result. Measured: the iso-loss compute multiplier against the uniform compute family "
        f"(uniform runs at budgets {', '.join(f'{b:g}x' for b in s['family']['budgets']) or 'none'} of the headline "
        f"steps, each annealed to its own end), {100 * st['ci_level']:.0f}% t-interval over seeds on the log "
        "multiplier; 'reproduced' needs an arm above the factor after Holm's correction over the arms.",
        *_set_size_sentence(s)],
        "header": ["claim", "paper's setting", "setting here", "measured here (best arm)", "verdict", "why"],
        "rows": rows}


NOT_LOGGED = "not logged"


def logged(x, spec: str = ".4g") -> str:
    """A number of the held-out sets' table, or 'not logged' (runs from before it was logged)."""
    return NOT_LOGGED if x is None else format(x, spec)


def _set_size_sentence(s: dict) -> list[str]:
    """The caveat beside the verdicts: how large the curated-domain held-out set is, and its noise."""
    row = next((r for r in s.get("heldout_sets", []) if r["set"] == "default"), None)
    if row is None:
        return []
    size = f"{logged(row['sequences'], ',d')} sequences" if row["sequences"] is not None else \
        f"a number of sequences {NOT_LOGGED}"
    size += f" ({row['tokens']:,d} tokens)" if row["tokens"] is not None else ""
    se = (f"has a standard error over those sequences of {row['se']:.3g} nats" if row["se"] is not None else
          f"has a standard error over its sequences that these runs did not log (they predate it)")
    return [f"The curated-domain held-out set is {size}; the uniform 1x arm's final loss on it {se}, a "
            f"seed-to-seed sd of {fmt(row['seed_sd'], '.3g')} nats, and a {row['margin']:g}x multiplier at that "
            f"budget is a loss difference of {fmt(row['margin_gap'], '.3g')} nats (table 'Held-out sets: size "
            "and noise')."]


def _general_claims(s: dict) -> list[dict]:
    g = s.get("general_domain") or {}
    if not g.get("sets"):
        return [] if not g else [{"title": "Claims on the general domain", "paragraphs": [
            f"No held-out set matches the declared general-domain sets {g.get('declared')} (config "
            "`analysis.general_sets`): no general-domain metric."]}]
    rows = [[c["claim"] + (f" (FLOPs: {c['accounting']})" if c.get("accounting") else ""),
             est(c.get("measured")) + (f" ({c['best_arm']})" if c.get("best_arm") else ""),
             f"**{c['verdict']}**", c["reason"]] for c in g["claims"]]
    return [{"title": "Claims on the general domain", "paragraphs": [
        f"The second primary metric, declared in the config before the runs (`analysis.general_sets`): the mean "
        f"held-out loss of {', '.join(g['sets'])}, with equal weight. The curated domain above rewards re-weighting "
        "toward the reference's domain as much as selection; this asks whether a gain holds on the pool's own "
        "mixture and outside both. Same multiplier, interval and verdict rules."],
        "header": ["claim", "measured here (best arm)", "verdict", "why"], "rows": rows}]


def _headline(s: dict) -> list[dict]:
    rows = [[h["arm"], "-" if h.get("filter_ratio") is None else fmt(h["filter_ratio"], "g"), str(len(h["seeds"])),
             fmt(h.get("pairing")),
             est(h["iterations"]), est(h.get("examples")), est(h["flops"].get("train")),
             est(h["flops"].get("train+score")), est(h["flops"].get("total")),
             "-".join(fmt(x, ".2f") for x in (h.get("range") or {}).get("iterations", [])) or "n/a"]
            for h in s["headline"] + s.get("control_arms", [])]
    out = [{"title": f"Headline: compute multiplier on {s['primary_metric']['name']}", "key": "headline", "paragraphs": [
        "Multiplier = the compute uniform needs to reach the arm's final value / the arm's compute. "
        "'> x': the arm beats the family's largest budget (at least x); '< x': worse than its smallest "
        "(at most x); the last column is the range the family can measure for the arm."],
        "header": ["arm", "filter ratio", "seeds", "pairing", "iterations", "examples", "FLOPs train",
                   "FLOPs train+score", "FLOPs total", "measurable (iterations)"], "rows": rows}]
    b = s.get("best_arm") or {}
    if b.get("arm") and not b.get("comparisons"):
        # one JEST arm: there is no other to be better than, and no test was run
        out[0]["paragraphs"].append(f"One JEST arm in this report ({b['arm']}): no comparison between JEST arms.")
    elif b.get("arm"):
        comps = "; ".join(f"vs {c['against']}: Holm p = {fmt(c['p_holm'], '.3g')}" for c in b["comparisons"])
        out[0]["paragraphs"].append(
            f"Highest iterations multiplier: {b['arm']}; " + ("better than every other JEST arm (paired one-sided "
            "t-tests, Holm)" if b["significant"] else "not shown better than every other JEST arm") +
            f" ({comps}).")
    fam = s["family"]["arms"]
    if fam:
        out.append({"title": "The uniform compute family", "level": 3, "header": [
            "arm", "budget", "seeds", f"final {s['family']['metric']} (mean)", "steps", "FLOPs train"],
            "rows": [[f["arm"], f"{f['budget']:g}x", str(len(f["seeds"])), fmt(f["final_mean"]),
                      fmt(f["iterations"], ".0f"), fmt(f["train"], ".3e")] for f in fam]})
    return out


def _per_set(s: dict) -> list[dict]:
    if not s["per_set"]:
        return []
    return [{"title": "Per held-out set: where the gain comes from", "key": "per_set", "paragraphs": [
        "The same multiplier on each held-out set: the curated domain (default), each pool source (src_*), "
        "the pool's own mixture (pool_mix) and external domains (ext_*). Below 1x the arm is worse than "
        "uniform there."], "header": ["set", "arm", "iterations", "FLOPs train+score", "pairing"],
        "rows": [[r["set"], r["arm"], est(r["iterations"]), est(r["flops"].get("train+score")), fmt(r["pairing"])]
                 for r in s["per_set"]]}]


def _heldout_sets(s: dict) -> list[dict]:
    rows = s.get("heldout_sets") or []
    if not rows:
        return []
    m = rows[0]["margin"]
    return [{"title": "Held-out sets: size and noise", "paragraphs": [
        "Each set's loss is a mean over a fixed sample of sequences. SE: how far another sample of the same "
        "size would move the uniform 1x arm's final loss (sd of the per-sequence losses / sqrt(sequences), "
        f"mean over its seeds; '{NOT_LOGGED}': runs from before the trainer logged it). Every arm is scored on "
        "the same sequences, so this error is shared by the arms and cancels in large part from their paired "
        "comparisons; the seed-to-seed sd is the noise the intervals carry. Last column: the loss difference "
        f"that a {m:g}x multiplier (the equivalence margin) stands for at the 1x budget on the uniform "
        "family's curve, the smallest difference the verdicts call a difference ('n/a': beyond the family)."],
        "header": ["set", "sequences", "tokens", "SE of the final loss (nats)", "seed-to-seed sd (nats)",
                   f"loss gap of {m:g}x (nats)"],
        "rows": [[r["set"], logged(r["sequences"], ",d"), logged(r["tokens"], ",d"),
                  logged(r["se"], ".3g") + (f" ({r['se_seeds']} seeds)" if r["se"] is not None else ""),
                  fmt(r["seed_sd"], ".3g") + f" ({r['seeds']} seeds)", fmt(r["margin_gap"], ".3g")]
                 for r in rows]}]


def _controls(s: dict) -> list[dict]:
    c = s["controls"]
    if not c.get("arms"):
        return []
    paras = []
    oracle = c.get("oracle_ceiling")   # the summary's key; the arm is a reference line, not a ceiling
    if oracle:
        paras.append(f"Oracle ({oracle['arm']}: uniform over the pool's clean-labelled sequences, re-weighting by "
                     f"labels selection never sees): {est(oracle['iterations'])} in iterations. It is not an upper "
                     "bound on re-weighting or selection" + _above_oracle(s, oracle) + ".")
    rows = [[r["arm"], r["offline_filter"], est(r["jest"]), est(r["offline"]), share(r),
             ratio(r["jest_over_offline"]), f"**{r['jest_over_offline']['verdict']}**", r["jest_over_offline"]["reason"]]
            for r in c["offline_share"]]
    rows += [[r["arm"], r["matched"], est(r["jest"]), est(r["mixture"]), share(r),
              ratio(r["jest_over_matched"]), f"**{r['jest_over_matched']['verdict']}**", r["jest_over_matched"]["reason"]]
             for r in c.get("mixture_matched", [])]
    title = "Controls: the oracle, the offline filter and the mixture-matched control"
    return [{"title": title, "paragraphs": paras + [
        "Share = log(control's multiplier) / log(JEST's): the part of JEST's gain in log compute that the control "
        "already gives, with Fieller's 95% interval for a ratio of paired means ('unbounded': JEST's own log gain is "
        "not clearly above 0); at a few seeds it is wide, and a point share alone says little. "
        "Against the offline filter (the reference scores the pool once): what online learnability "
        "adds. Against the mixture-matched control (JEST's mixture of (source, quality) cells step by step, uniform "
        "within each cell): what selection adds beyond re-weighting. Paired by seed, each with its equivalence "
        "test (uncorrected: one planned comparison per control)."],
        "header": ["JEST arm", "control arm", "JEST", "control", "share of JEST's gain [95%]",
                   "JEST / control", "verdict", "why"], "rows": rows}]


def _above_oracle(s: dict, oracle: dict) -> str:
    """': here <arm> 1.27x ... have higher point estimates (no test)', from the rows of this report."""
    value = (oracle.get("iterations") or {}).get("value")
    if value is None:
        return ""
    above = [f"{r['arm']} {r['iterations']['value']:.2f}x"
             for r in s["headline"] + s.get("control_arms", []) + s.get("ablations", [])
             if r["arm"] != oracle["arm"] and (r.get("iterations") or {}).get("value") is not None
             and r["iterations"].get("bound") in (None, "lower") and r["iterations"]["value"] > value]
    if not above:
        return ""
    verb = "has a higher point estimate" if len(above) == 1 else "have higher point estimates"
    return f": here {', '.join(above)} {verb} (no test)"


def _inside_margin(s: dict, m: float) -> str:
    """The uncorrected 'different' verdicts whose ratio lies inside the margin, by name."""
    arms = [f"{a['arm']} {a['equivalence']['ratio']:.2f}x" for a in s["ablations"] if (a.get("equivalence") or {})
            .get("verdict_uncorrected", (a.get("equivalence") or {}).get("verdict")) == "different"
            and a["equivalence"].get("ratio") and 1 / m <= a["equivalence"]["ratio"] <= m]
    return f"here {', '.join(arms)}" if arms else "none here"


def _ablations(s: dict) -> list[dict]:
    if not s["ablation_arms"]:
        return []
    if s["arm_scope"] != "all":
        return [{"title": "Ablations", "paragraphs": [
            "Configured ablation arms, not in this report (`snakemake ablations` runs them and writes "
            f"`report/ablations/`): {', '.join(s['ablation_arms'])}."]}]
    m = s["statistics"]["equivalence_margin"]
    rows = []
    for a in s["ablations"]:
        e = a.get("equivalence") or {}
        rows.append([a["arm"], fmt(a.get("compared_to")), differs(a.get("differs")), est(a["iterations"]),
                     ratio(e), fmt(e.get("p_difference"), ".3g") + " / " + fmt(e.get("p_difference_holm"), ".3g"),
                     fmt(e.get("p_equivalence"), ".3g") + " / " + fmt(e.get("p_equivalence_holm"), ".3g"),
                     fmt(e.get("mde_ratio"), ".2f"), fmt(e.get("seeds_to_settle"), "d"), f"**{e.get('verdict', 'n/a')}**",
                     e.get("verdict_uncorrected", "n/a")])
    n = next((e.get("correction") for e in s.get("equivalence", []) if e.get("correction")), None)
    return [{"title": "Ablations: equivalence tests", "paragraphs": [
        "Each ablation against the headline JEST arm with the same filter ratio, paired by seed on the log "
        f"iterations multiplier. 'equivalent': TOST within 1/{m:g}..{m:g}x; 'different': the paired t-test "
        "rejects no difference and the ratio lies outside that margin; 'undecided': neither. The ablations "
        f"are one family of comparisons: the verdict uses p-values corrected with Holm's method ({n or 'no test'}), "
        "separately for the difference and the equivalence tests; each p column gives raw / Holm-adjusted, and "
        "the last column the verdict before correction, where 'different' needs only the raw t-test and no "
        "shown equivalence: its ratio can lie inside the margin (a difference smaller than the margin, "
        f"{_inside_margin(s, m)}). MDE: the ratio a paired test at 5% would detect with 80% "
        "power at these seeds, uncorrected. Seeds to settle: how many paired seeds would give a verdict either way "
        "(equivalent or different) with 80% power if the observed ratio and spread were the truth (a simulation; "
        "'n/a': not within 400 seeds, a ratio at the margin's edge). Not part of the claim verdicts."],
        "header": ["arm", "set against", "what differs", "iterations", "ratio to headline arm [95%]",
                   "t-test p (raw / Holm)", "TOST p (raw / Holm)", "MDE", "seeds to settle", "verdict (Holm)",
                   "uncorrected"],
        "rows": rows}]


def _parity(s: dict) -> list[dict]:
    rows = [[m, r["arm"], r["rule"], fmt(r["target"]), fmt(r["reached"]), fmt(r["T_j"], ".1f"),
             speedup(r["iterations"]), speedup(r["flops"].get("train+score"))]
            for m, rs in s["parity"].items() for r in rs]
    if not rows:
        return []
    return [{"title": "Second view: first-crossing parity", "key": "parity", "paragraphs": [
        "The step where the arm's mean curve reaches the headline-budget uniform arm's final value "
        f"('{s['parity_settings']['rule']}' rule; 'sustained': stays reached for the rest of the run). Under a "
        "shared schedule this compares an annealed baseline with an arm in mid-schedule; percentile bootstrap "
        "over seeds, coarse at few seeds."],
        "header": ["metric", "arm", "rule", "target", "reached", "T_j", "iterations", "FLOPs train+score"],
        "rows": rows}]


def _lmeval(s: dict) -> list[dict]:
    rows = s["lmeval"]["tasks"]
    if not rows:
        return []

    def pm(r, k):
        if r.get(k) is None:
            return "n/a"
        sd = r.get(f"{k}_seed_sd")
        return (f"{r[k]:.3f} ± {fmt(r.get(f'{k}_se'), '.3f')}" + (f" (seeds sd {sd:.3f})" if sd is not None else ""))

    return [{"title": "lm-eval per task", "key": "lmeval", "paragraphs": [
        "Per arm at each evaluated snapshot (no value between snapshots): accuracy and the log-likelihood "
        "margin of the correct choice (nats), mean over seeds ± the item-sampling standard error."],
        "header": ["task", "arm", "step", "seeds", "items", "chance", "accuracy", "margin"],
        "rows": [[r["task"], r["arm"], str(r["step"]), str(r["n_seeds"]), fmt(r["n_items"], ".0f"),
                  fmt(r["chance"], ".3g"), pm(r, "acc"), pm(r, "margin")] for r in rows]}]


def _tables_tail(s: dict) -> list[dict]:
    out = []
    if s["repetition"]:
        out.append({"title": "Repetition", "header": ["arm", "passes over the pool", "unique sequences", "repeats"],
                    "rows": [[r["arm"], fmt(r["pool_passes"], ".2f"), fmt(r["unique_sequences"], ",.0f"),
                              "**yes**" if r["repeats"] else "no"] for r in s["repetition"]]})
    for kind, comp in s["composition"].items():
        if kind == "pool_shares_agree" or not comp["selected"]:
            continue
        # a label no arm drew and the pool lacks (a held-out-only domain) would fill a row per arm with zeros
        drawn = {r["label"] for r in comp["selected"] if (r.get("pool_share") or 0) > 0 or (r.get("selected_share") or 0) > 0}
        empty = sorted({r["label"] for r in comp["selected"]} - drawn)
        out.append({"title": f"What the arms trained on, by {kind}", "key": f"composition_{kind}", "paragraphs": [
            f"Not in the pool and never selected, left out: {', '.join(empty)}."] if empty else [], "header": [
            "arm", "label", "pool share", "selected share", "enrichment"], "rows": [
            [r["arm"], r["label"], fmt(r["pool_share"], ".3f"), fmt(r["selected_share"], ".3f"),
             fmt(r["enrichment"], ".2f")] for r in comp["selected"] if r["label"] in drawn]})
    out.append({"title": "Runs", "header": ["run", "arm", "seed", "status", "steps", "held-out loss", "bits/byte",
                                            "FLOPs total", "pool passes", "wall (s)", "error"],
                "rows": [[r["run"], r["arm"], str(r["seed"]), fmt(r["status"]), fmt(r["steps"]),
                          fmt(r["heldout_loss"]), fmt(r["heldout_bpb"]), fmt(r["flops_total"], ".3e"),
                          fmt(r.get("pool_passes"), ".2f"), fmt(r["wall_time_s"], ".0f"), fmt(r["error"])]
                         for r in s["runs"]]})
    if s["references"]:
        out.append({"title": "Reference models", "header": ["reference", "status", "steps", "parameters",
                                                            "trained on", "held-out loss", "bits/byte"],
                    "rows": [[r["name"], fmt(r["status"]), fmt(r["steps"]), fmt(r["n_params"], ","),
                              fmt(r["train_split"]), fmt(r["heldout_loss"]), fmt(r["heldout_bpb"])]
                             for r in s["references"]]})
    p = s["provenance"]
    out.append({"title": "Provenance", "bullets": [
        f"git commits: {', '.join(p['git_commits'])}",
        f"runs: {p['n_runs']}, started {fmt(p['started'])}, finished {fmt(p['finished'])}",
        f"devices: {', '.join(p['devices'])}", f"config hash: {', '.join(s['config']['config_hash'])}",
        "packages: " + ", ".join(f"{k} {'/'.join(v)}" for k, v in p["packages"].items())]})
    return out


def _place_figures(out: list[dict], s: dict) -> list[dict]:
    """Each figure after the table it illustrates (its `section`, analysis.figures), and each absent
    figure's reason there; figures whose section has no table here go in a last "Figures" section."""
    by_key = {}
    for sec in out:
        by_key.setdefault(sec.get("key"), sec)
    rest = {}
    for name, f in s["figures"].items():
        sec = by_key.get(f.get("section"))
        if sec is None:
            rest[name] = f
        else:
            sec.setdefault("figures", {})[name] = f
    for a in (s.get("figures_absent") or {}).values():
        sec = by_key.get(a.get("section"))
        if sec is not None:
            sec.setdefault("paragraphs", []).append(a["reason"])
    if rest:
        out.append({"title": "Figures", "figures": rest})
    return out


def sections(s: dict) -> list[dict]:
    out = [{"title": f"JEST report: config `{s['config']['name']}`", "level": 1}, _claims(s), *_general_claims(s)]
    if s["notes"]:
        out.append({"title": "Notes", "bullets": s["notes"]})
    out += _headline(s) + _per_set(s) + _heldout_sets(s) + _controls(s) + _ablations(s)
    return _place_figures(out + _parity(s) + _lmeval(s) + _tables_tail(s), s)


__all__ = ["differs", "est", "fmt", "sections", "speedup"]

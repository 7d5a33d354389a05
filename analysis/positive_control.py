"""The positive control's report (issue #27, item 6): on a pool with planted noise, the iterations multiplier
the harness measures for each compared arm (JEST, the oracle), with its 95% interval, beside the multiplier
the construction predicts.

    python -m analysis.positive_control --config SNAPSHOT --runs results/<name>/runs \
        --shards-manifest results/<name>/shards/manifest.json --out DIR

Writes DIR/summary.json (schema SCHEMA), DIR/report.md and DIR/multiplier_vs_prediction.png.

The prediction. The pool is n_text sequences of curated-domain text plus n_noise of random tokens, a share
s = n_noise / (n_text + n_noise). A uniform step of b sequences holds (1 - s) b text sequences on average.
If only text teaches the curated domain, an arm whose steps hold a text share p matches uniform at
p / (1 - s) times uniform's steps:

    predicted multiplier (iterations) = p / (1 - s)
    oracle (uniform over the text, p = 1):                       1 / (1 - s)
    JEST (at most b text per step, from a super-batch of B = b / (1 - f) candidates of which X are text,
          X ~ Hypergeometric(n_text + n_noise, n_text, B), about Binomial(B, 1 - s)):
          p <= E[min(X, b)] / b, so its ceiling is E[min(X, b)] / (b (1 - s)).
The JEST arm's own logged text share (sel_share_quality_clean, mean over its steps and seeds) gives a
second, diagnostic prediction: the multiplier its selection would earn if what it kept were worth uniform
text (ASSUMPTIONS says what each prediction takes for granted).

The measurement is the harness's own: analysis.verdicts.metric_multipliers (the uniform compute family,
paired by seed, the t-interval over seeds of analysis.stats) on the curated-domain held-out loss. The
verdict per arm: whether its 95% interval contains the predicted value, lies below it or above it.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from analysis.multiplier import family_arms
from analysis.runs import config_runs, left_out, load_curves
from analysis.stats import Estimate, aggregate, compare, format_estimate, interval
from analysis.verdicts import family_table, metric_multipliers
from jest.experiment import load_config
from jest.io import atomic_write_json, atomic_write_text
from jest.policies.registry import role_of
from jest.tracking.metrics import MetricsError

SCHEMA = "jest-positive-control-summary-v1"
QUANTITY = "iterations"
TEXT_SHARE = "sel_share_quality_clean"  # the trainer's share of chosen sequences labelled clean (the text)
CONTAINS, BELOW, ABOVE, BOUND, UNMEASURED = ("contains the prediction", "below the prediction",
                                             "above the prediction", "bound", "not measured")
ASSUMPTIONS = [
    "A noise step teaches the curated domain nothing and costs it nothing: the held-out loss depends on the "
    "text sequences trained on, not on the noise beside them (no interference through shared weights or "
    "the optimizer's state).",
    "Learning is limited by examples, not steps: (1 - s) b text sequences per uniform step do as much per "
    "sequence as b per oracle step (the batch is below the critical batch size), and the schedule's shape "
    "scales with the run (every arm anneals over its own last 20% of steps).",
    "No text is repeated: every arm draws fresh text (each run's pool_passes <= 1, checked by the trainer).",
    "JEST: the text it keeps is worth uniform text (selection inside the text adds nothing), so only its "
    "text share counts; a selector cannot keep more text than its super-batch holds (the ceiling).",
]


def text_candidates(n_total: int, n_text: int, super_batch: int, batch: int) -> dict:
    """The super-batch's text count X ~ Hypergeometric(n_total, n_text, super_batch) against b slots:
    E[X], P(X < b) and E[min(X, b)] / b (the largest text share a selector can train on)."""
    dist = st.hypergeom(n_total, n_text, super_batch)
    k = np.arange(0, super_batch + 1)
    pmf = dist.pmf(k)
    return {"super_batch": super_batch, "batch": batch, "expected_text": float(dist.mean()),
            "p_fewer_than_batch": float(dist.cdf(batch - 1)),
            "max_text_share": float((np.minimum(k, batch) * pmf).sum() / batch)}


def predictions(planted: dict, arms: dict[str, dict], batch: int) -> dict:
    """arm -> {predicted, text_share, basis, ...} from the construction (`planted`: the shards manifest's
    record) for the oracle (role 'oracle') and JEST-like arms (a filter_ratio); other arms: None."""
    n_text, n_noise = planted["text_sequences"], planted["noise_sequences"]
    s = n_noise / (n_text + n_noise)
    out = {}
    for arm, settings in arms.items():
        role = role_of(settings.get("policy"))
        if role == "oracle":
            out[arm] = {"predicted": 1.0 / (1.0 - s), "text_share": 1.0,
                        "basis": "uniform over the text alone: p = 1, predicted 1 / (1 - s)"}
        elif settings.get("filter_ratio") is not None and role == "claim":
            f = float(settings["filter_ratio"])
            super_batch = int(round(batch / (1.0 - f)))
            cand = text_candidates(n_text + n_noise, n_text, super_batch, batch)
            out[arm] = {"predicted": cand["max_text_share"] / (1.0 - s), "text_share": cand["max_text_share"],
                        "basis": f"ceiling: at most min(X, b) text per step from a super-batch of B = b / (1 - f) = "
                                 f"{super_batch}; E[min(X, b)] / (b (1 - s))", "super_batch": cand}
        else:
            out[arm] = None
    return out


def verdict(est: Estimate | None, predicted: float) -> tuple[str, str]:
    """(word, reason): does the arm's interval contain the predicted multiplier?"""
    if est is None or est.value is None:
        return UNMEASURED, "no multiplier: the arm has no runs on the metric"
    if est.n < 2:
        return UNMEASURED, f"one seed ({est.value:.2f}x): no interval"
    lo, hi = interval(est)
    span = f"[{lo:.2f}, {'open' if math.isinf(hi) else f'{hi:.2f}'}]x"
    if est.bound is not None and lo <= predicted <= hi:
        return BOUND, (f"{span}: a seed lies outside the uniform family's range ({est.bound} bound), so the "
                       f"interval is open and cannot confirm {predicted:.2f}x")
    return judge(lo, hi, predicted)


def judge(lo: float, hi: float, predicted: float) -> tuple[str, str]:
    """(word, reason) for a 95% interval [lo, hi] against a predicted value."""
    span = f"[{lo:.2f}, {'open' if math.isinf(hi) else f'{hi:.2f}'}]x"
    if hi < predicted:
        return BELOW, f"the 95% interval {span} lies below the predicted {predicted:.2f}x"
    if lo > predicted:
        return ABOVE, f"the 95% interval {span} lies above the predicted {predicted:.2f}x"
    return CONTAINS, f"the 95% interval {span} contains the predicted {predicted:.2f}x"


def _estimate(e: Estimate | None) -> dict | None:
    if e is None:
        return None
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "bound": e.bound, "n": e.n,
            "ci_level": e.ci_level, "per_seed": e.per_seed}


def selected_text_share(curves: pd.DataFrame, arm: str) -> dict | None:
    """The arm's logged share of chosen text per seed (mean over its steps) and over seeds; None if unlogged."""
    d = curves[curves["arm"] == arm]
    if TEXT_SHARE not in d or d[TEXT_SHARE].isna().all():
        return None
    per_seed = d.dropna(subset=[TEXT_SHARE]).groupby("seed")[TEXT_SHARE].mean()
    return {"mean": float(per_seed.mean()), "per_seed": {str(k): float(v) for k, v in per_seed.items()}}


def jest_over_oracle(cfg: dict, compared: list[str], mults: dict, preds: dict, arms: dict) -> list[dict]:
    """Each JEST arm's multiplier over the oracle's, paired by seed (analysis.stats.compare), beside the
    predicted ratio: its text share (the ceiling, and the share it logged). Both arms train on b sequences
    per step, nearly all text, so this ratio does not rest on assumption 2 (examples, not steps): only on
    1 and 4. The iterations multipliers share the family curve, which cancels in the ratio."""
    oracles = [a for a in compared if role_of(cfg["arms"][a]["policy"]) == "oracle" and a in mults]
    out = []
    for arm in compared:
        pred = preds.get(arm)
        if not oracles or arm not in mults or pred is None or arm in oracles:
            continue
        test = compare(mults[arm]["quantities"][QUANTITY], mults[oracles[0]]["quantities"][QUANTITY])
        row = {"arm": arm, "oracle": oracles[0], "predicted": pred["text_share"],
               "predicted_from_selected_share": (arms[arm].get("selected_text_share") or {}).get("mean"),
               "ratio": test["ratio"], "ci_low": test["ci_low"], "ci_high": test["ci_high"], "n": test["n"],
               "p_difference": test["p_difference"]}
        if test["ci_low"] is not None:
            row["verdict"], row["reason"] = judge(test["ci_low"], test["ci_high"], pred["text_share"])
        out.append(row)
    return out


@dataclass
class _Seed:
    seed: object
    value: float | None
    bound: str | None


def assumptions_check(cfg: dict, curves: pd.DataFrame, family: dict, predicted: float) -> dict | None:
    """Where the oracle's prediction fails, from the assumption arm A (uniform over the text, (1 - s) b per step,
    1 / (1 - s) times the steps) and the oracle O, per seed on the family curve of that seed:

        M_O = (steps_A / steps_O) x M_A x (needed_O / needed_A)
            = the prediction     x noise x batch

    noise = M_A: 1 when uniform's noise costs its text nothing (assumption 1; above 1: the noise slows it);
    batch = needed_O / needed_A: 1 when b text sequences in one step teach what b / (1 - s) steps of (1 - s) b
    do (assumption 2; below 1: the small batches learn more per sequence). Each a geometric mean over seeds
    with its 95% t-interval (analysis.stats.aggregate)."""
    pc = cfg["positive_control"]
    arm = pc.get("assumption_arm")
    oracles = [a for a in pc["arms"] if role_of(cfg["arms"][a]["policy"]) == "oracle"]
    if not arm or not oracles:
        return None
    mults = metric_multipliers(curves, pc["metric"], family, [arm, oracles[0]])
    if arm not in mults or oracles[0] not in mults:
        return None
    a, o = (mults[x]["quantities"][QUANTITY] for x in (arm, oracles[0]))
    steps_ratio = mults[arm]["own"][QUANTITY] / mults[oracles[0]]["own"][QUANTITY]
    pa = {p["seed"]: p for p in a.per_seed}
    batch = [_Seed(p["seed"], p["value"] / (steps_ratio * pa[p["seed"]]["value"])
                   if p["value"] and pa.get(p["seed"], {}).get("value") else None,
                   p["bound"] or pa.get(p["seed"], {}).get("bound")) for p in o.per_seed]
    return {"arm": arm, "oracle": oracles[0], "steps_ratio": steps_ratio, "predicted": predicted,
            "noise": _estimate(a), "batch": _estimate(aggregate(batch)),
            "identity": "M_oracle = (steps_A / steps_oracle) x noise x batch; the prediction assumes noise = batch = 1"}


def assemble(cfg: dict, curves: pd.DataFrame, planted: dict) -> dict:
    pc = cfg["positive_control"]
    metric, compared = pc["metric"], list(pc["arms"])
    family = family_arms(cfg["arms"])
    batch = int(cfg["train"]["batch_size"])
    preds = predictions(planted, {a: cfg["arms"][a] for a in compared}, batch)
    mults = metric_multipliers(curves, metric, family, compared)
    s = planted["noise_sequences"] / (planted["text_sequences"] + planted["noise_sequences"])
    arms = {}
    for arm in compared:
        est = mults.get(arm, {}).get("quantities", {}).get(QUANTITY)
        pred = preds.get(arm)
        row = {"policy": cfg["arms"][arm]["policy"], "measured": _estimate(est),
               "range": mults.get(arm, {}).get("range", {}).get(QUANTITY), "prediction": pred,
               "final": mults.get(arm, {}).get("final")}
        if pred is not None:
            row["verdict"], row["reason"] = verdict(est, pred["predicted"])
        share = selected_text_share(curves, arm)
        if share is not None:
            row["selected_text_share"] = share
            row["predicted_from_selected_share"] = share["mean"] / (1.0 - s)
        arms[arm] = row
    judged = [r for r in arms.values() if r.get("verdict")]
    relative = jest_over_oracle(cfg, compared, mults, preds, arms)
    seen = [r for r in judged if r["measured"] and r["measured"]["ci_low"] and r["measured"]["ci_low"] > 1.0]
    return {
        "schema": SCHEMA, "config": cfg["name"], "metric": metric, "quantity": QUANTITY, "seeds": cfg["seeds"],
        "construction": {**planted, "share": s, "batch_size": batch, "steps_1x": cfg["train"]["steps"]},
        "derivation": ("With a noise share s, a uniform step holds (1 - s) b text sequences on average. If only text "
                       "teaches the curated domain, an arm whose steps hold a text share p matches uniform at "
                       "p / (1 - s) times uniform's steps: the oracle (p = 1) at 1 / (1 - s); JEST at most "
                       "E[min(X, b)] / (b (1 - s)), X the text candidates of its super-batch of b / (1 - f)."),
        "assumptions": ASSUMPTIONS,
        "family": family_table(curves, metric, family),
        "arms": arms,
        "jest_over_oracle": relative,
        "assumptions_check": assumptions_check(cfg, curves, family, 1.0 / (1.0 - s)),
        "instrument": {"arms_judged": len(judged), "contain_prediction": sum(r["verdict"] == CONTAINS for r in judged),
                       "large_effect_seen": len(seen) == len(judged) and bool(judged)},
    }


def render(summary: dict) -> str:
    c = summary["construction"]
    lines = [f"# Positive control: {summary['config']}", "",
             f"Pool: {c['text_sequences']:,} sequences of curated-domain text + {c['noise_sequences']:,} of planted "
             f"noise ({c['kind']}), a noise share s = {c['share']:.4f} (declared {c['share_declared']:g}). "
             f"Metric: final `{summary['metric']}`; multiplier in {summary['quantity']} against the uniform compute "
             f"family (paired by seed), 95% t-interval over seeds {summary['seeds']}.", "",
             "## Measured beside predicted", "",
             "| arm | measured (95% CI) | predicted | verdict | text share trained | predicted from that share |",
             "|---|---|---|---|---|---|"]
    for arm, r in summary["arms"].items():
        pred, share = r["prediction"], r.get("selected_text_share")
        predicted = "-" if pred is None else f"{pred['predicted']:.2f}x"
        trained = ("1 (by construction)" if pred and pred["text_share"] == 1.0 else
                   "-" if share is None else f"{share['mean']:.3f}")
        from_share = r.get("predicted_from_selected_share")
        lines.append(f"| {arm} | {format_estimate(r['measured'])} | {predicted} | {r.get('verdict', '-')} | {trained} | "
                     f"{'-' if from_share is None else f'{from_share:.2f}x'} |")
    lines += [""] + [f"- {arm}: {r['reason']}." for arm, r in summary["arms"].items() if r.get("reason")]
    if summary["jest_over_oracle"]:
        lines += ["", "## JEST over the oracle (paired by seed; the family cancels)", "",
                  "| arm / oracle | measured ratio (95% CI) | predicted (its ceiling text share) | from its logged share | verdict |",
                  "|---|---|---|---|---|"]
        for r in summary["jest_over_oracle"]:
            ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
            logged = r["predicted_from_selected_share"]
            lines.append(f"| {r['arm']} / {r['oracle']} | {r['ratio']:.2f}x{ci} | {r['predicted']:.3f} | "
                         f"{'-' if logged is None else f'{logged:.3f}'} | {r.get('verdict', '-')} |")
    chk = summary.get("assumptions_check")
    if chk:
        lines += ["", "## Where the prediction fails: the assumptions measured", "",
                  f"`{chk['arm']}` trains on the text alone at uniform's text per step for {chk['steps_ratio']:g}x the "
                  f"oracle's steps. Per seed, {chk['identity']}.", "",
                  "| factor | measured (95% CI) | 1 means |", "|---|---|---|",
                  f"| noise = M_{chk['arm']} | {format_estimate(chk['noise'])} | uniform's noise costs its text nothing (assumption 1) |",
                  f"| batch = needed_oracle / needed_{chk['arm']} | {format_estimate(chk['batch'])} | b text sequences in one "
                  "step teach what the same text in smaller steps does (assumption 2) |"]
    ins = summary["instrument"]
    lines += ["", f"Instrument: {ins['contain_prediction']} of {ins['arms_judged']} intervals contain their "
              f"prediction; a large effect (interval above 1x) was {'seen' if ins['large_effect_seen'] else 'NOT seen'} "
              "for every compared arm.", "", "## Derivation", "", summary["derivation"], ""]
    for arm, r in summary["arms"].items():
        sb = (r["prediction"] or {}).get("super_batch")
        if sb:
            lines.append(f"- {arm}: super-batch B = {sb['super_batch']} for b = {sb['batch']}: E[X] = "
                         f"{sb['expected_text']:.1f} text candidates, P(X < b) = {sb['p_fewer_than_batch']:.3f}, "
                         f"E[min(X, b)] / b = {sb['max_text_share']:.4f}.")
    lines += ["", "What the prediction assumes:", ""] + [f"{i}. {a}" for i, a in enumerate(summary["assumptions"], 1)]
    lines += ["", "## The uniform compute family", "", "| arm | budget | steps | final (mean over seeds) |",
              "|---|---|---|---|"]
    for f in summary["family"]:
        lines.append(f"| {f['arm']} | {f['budget']:g}x | {f['iterations']:.0f} | {f['final_mean']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--shards-manifest", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if not cfg.get("positive_control"):
        raise SystemExit(f"error: {args.config} has no positive_control section")
    pc = cfg["positive_control"]
    unknown = [a for a in [*pc["arms"], pc["assumption_arm"]] if a and a not in cfg["arms"]]
    if unknown:
        raise SystemExit(f"error: positive_control names {unknown}, which are not arms of {args.config}")
    planted = json.loads(Path(args.shards_manifest).read_text()).get("planted_noise")
    if not planted:
        raise SystemExit(f"error: {args.shards_manifest} records no planted noise: set data.planted_noise.share > 0")
    arms = list(family_arms(cfg["arms"])) + list(pc["arms"]) + ([pc["assumption_arm"]] if pc["assumption_arm"] else [])
    runs = config_runs(cfg, arms)
    try:
        curves = load_curves(Path(args.runs), runs=runs)  # each metrics.jsonl checked against its run's sha256
    except MetricsError as err:
        raise SystemExit(f"error: {err}") from None
    other = left_out(Path(args.runs), runs)
    if other:
        print(f"positive control: {len(other)} run folder(s) not among its arms x seeds were not read: {', '.join(other)}")
    summary = assemble(cfg, curves, planted)
    out = Path(args.out)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render(summary))
    from analysis.plots_positive_control import plot_positive_control
    plot_positive_control(summary).savefig(out / "multiplier_vs_prediction.png", dpi=120)
    print(f"positive control: {out / 'report.md'}")


if __name__ == "__main__":
    main()

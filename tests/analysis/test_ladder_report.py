"""analysis.ladder on synthetic runs with a known answer: at every rung the family's final loss is
linear in log compute, JEST f=0.5 ends where the family is at m_r x its compute (m = 2.0, 2.5, 3.2
over config/ladder.yaml's rungs, ~20x apart in compute), the oracle at 2x everywhere. The report must
give those multipliers, a slope of log m vs log compute equal to the one built in, a flat oracle,
decision accuracy against the top rung for every smaller rung, 13x excluded at the top rung, and a
figure and a markdown that state the covered range."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.ladder import assemble, render
from analysis.plots_ladder import plot_ladder
from jest.config import PROJECT_ROOT
from jest.experiment import validate_config
from jest.ladder.rungs import rung_plan

SEEDS = [0, 1, 2]


def _cfg() -> dict:
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "ladder.yaml").read_text())
    return validate_config(raw)


def _curves(cfg: dict, mult: dict[str, float]) -> pd.DataFrame:
    rows, T = [], cfg["data"]["seq_len"]
    rng = np.random.default_rng(0)
    for rung, plan in rung_plan(cfg).items():
        c1 = plan["tokens"] * 6.0 * plan["matmul_params"]          # a rung's 1x training FLOPs (any scale works)
        loss = lambda c: 6.0 - 0.25 * math.log(c / c1)              # noqa: E731 the family, linear in log compute
        settings = {a: cfg["arms"][a] for a in plan["arms"]}
        for seed in SEEDS:
            shift = rng.normal(0, 0.01)                             # a seed effect shared by all arms (paired)
            for arm, s in settings.items():
                steps = max(1, round(s.get("budget", 1.0) * plan["steps"]))
                c = c1 * steps / plan["steps"]
                base = arm[len(rung) + 1:]
                if s["policy"] == "uniform":
                    final = loss(c)
                elif base == "jest_f0.5":
                    final = loss(mult[rung] * c) + rng.normal(0, 0.002)
                elif base == "oracle_clean":
                    final = loss(2.0 * c) + rng.normal(0, 0.002)
                else:                                               # jest_f0.8, offline filter: no gain
                    final = loss(c) + rng.normal(0, 0.002)
                score = 1.0 + (2 / 3 if base == "jest_f0.5" else 5 / 3 if base == "jest_f0.8" else 0.0)
                rows.append({"run": f"{arm}_s{seed}", "arm": arm, "seed": seed, "policy": s["policy"], "step": steps,
                             "heldout_loss": final + shift, "examples_seen": steps * plan["batch_size"],
                             "flops_train": c, "flops_train_score": c * score, "flops_total": c * score + 1e9})
    return pd.DataFrame(rows)


def test_the_ladder_report_recovers_known_multipliers_and_their_trend(tmp_path):
    cfg = _cfg()
    plans = rung_plan(cfg)
    c1 = {r: p["tokens"] * 6.0 * p["matmul_params"] for r, p in plans.items()}
    slope = 0.08                                                    # log m = a + slope log C: m 2.0 -> 3.2
    r0 = next(iter(plans))
    mult = {r: 2.0 * (c1[r] / c1[r0]) ** slope for r in plans}
    lr = {"rungs": {r: {"lr": 0.003, "losses": {"0.0015": 6.1, "0.003": 6.0, "0.006": 6.05},
                        "at_grid_edge": False, "metric": "heldout_loss"} for r in plans}}
    summary = assemble(cfg, _curves(cfg, mult), lr)
    for r, res in summary["rungs"].items():
        it = res["arms"]["jest_f0.5"]["multiplier"]["iterations"]
        assert it["value"] == pytest.approx(mult[r], rel=0.02) and it["n"] == 3 and it["bound"] is None
        assert it["ci_low"] < mult[r] < it["ci_high"]
        assert res["arms"]["oracle_clean"]["multiplier"]["iterations"]["value"] == pytest.approx(2.0, rel=0.02)
        assert res["learner_flops_1x"] == pytest.approx(c1[r]) and res["lr"]["lr"] == 0.003
    fit = summary["slopes"]["jest_f0.5"]["iterations"]
    assert fit["slope"] == pytest.approx(slope, abs=0.01) and fit["ci_t"][0] < slope < fit["ci_t"][1]
    assert fit["trend"] == "rises" and fit["n_rungs"] == len(plans) >= 5 and fit["n_points"] == 3 * len(plans)
    assert fit["unit"] == "rung" and fit["df"] == len(plans) - 2
    # train+score differs from iterations by JEST f=0.5's constant scoring share: the same slope
    assert summary["slopes"]["jest_f0.5"]["train+score"]["slope"] == pytest.approx(slope, abs=0.01)
    assert abs(summary["slopes"]["oracle_clean"]["iterations"]["slope"]) < 0.01
    da = summary["decision_agreement"]
    assert set(da["decision_accuracy_vs_top"]) == set(list(plans)[:-1])
    top = summary["top_rung"]
    assert top["rung"] == list(plans)[-1]
    assert top["arms"]["jest_f0.5"]["13x"]["excluded"] and top["arms"]["jest_f0.5"]["13x"]["quantity"] == "iterations"
    assert top["arms"]["jest_f0.5"]["10x"]["quantity"] == "train+score"
    assert summary["covered"]["learner_flops_1x"] == [pytest.approx(min(c1.values())), pytest.approx(max(c1.values()))]
    json.dumps(summary, allow_nan=False)                            # strict JSON: no NaN anywhere
    md = render(summary)
    assert "Covered range" in md and "no crossing with 13x / 10x is extrapolated" in md
    plot_ladder(summary).savefig(tmp_path / "f.png", dpi=50)
    assert (tmp_path / "f.png").stat().st_size > 5_000


def test_the_length_axis_fits_its_slope_against_tokens_per_parameter(tmp_path):
    """config/length.yaml (one learner at 0.25-16 tokens per parameter) with JEST f=0.5's multiplier falling
    as a power of the length, m = 1.6 (t / 0.25)^-0.1 (inside the 0.5x-2x family: no bounds): the slope is read against log tokens per parameter
    (not compute, which the learner's fixed size makes the same up to a constant here), with the length as
    the unit; the report and both figures say which axis they show."""
    from analysis.plots_ladder import figure_name, plot_regime_map
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "length.yaml").read_text())
    raw["ladder"]["jest_filter_ratios"] = [0.5, 0.8]   # the synthetic runs know f = 0.5's answer
    raw["ladder"]["controls"] = ["oracle_clean", "offline_filter"]
    cfg = validate_config(raw)
    plans = rung_plan(cfg)
    tpp = {r: p["tokens_per_param"] for r, p in plans.items()}
    assert min(tpp.values()) == pytest.approx(0.25) and max(tpp.values()) >= 16 and len(plans) >= 4
    mult = {r: 1.6 * (tpp[r] / 0.25) ** -0.1 for r in plans}
    lr = {"rungs": {r: {"lr": 0.003, "losses": {"0.0015": 6.1, "0.003": 6.0, "0.006": 6.05}, "rounds": 1,
                        "at_grid_edge": False, "metric": "heldout_loss"} for r in plans}}
    summary = assemble(cfg, _curves(cfg, mult), lr)
    assert summary["axis"] == "tokens_per_param" and summary["covered"]["tokens_per_param"][1] >= 16
    fit = summary["slopes"]["jest_f0.5"]["iterations"]
    assert fit["slope"] == pytest.approx(-0.1, abs=0.01) and fit["trend"] == "falls" and fit["df"] == len(plans) - 2
    md = render(summary)
    assert md.startswith("# Length axis") and "log tokens per parameter" in md
    assert figure_name(summary) == "multiplier_vs_length.png"
    plot_ladder(summary).savefig(tmp_path / "f.png", dpi=50)
    plot_regime_map([summary]).savefig(tmp_path / "m.png", dpi=50)
    assert (tmp_path / "m.png").stat().st_size > 5_000
    # a multiplier at the family's edge is a bound, not a measurement: its slope names no trend
    edge = assemble(cfg, _curves(cfg, {r: 2.5 * (tpp[r] / 0.25) ** -0.1 for r in plans}), lr)
    assert edge["slopes"]["jest_f0.5"]["iterations"]["bounded_points"] > 0
    assert edge["slopes"]["jest_f0.5"]["iterations"]["trend"] == "undecided (some points are bounds)"

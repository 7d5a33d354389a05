"""An independent check of summary.json's multipliers: recomputed from the runs' metrics.jsonl with a
deliberately separate, minimal implementation (plain json, a 10-line pool-adjacent-violators fit and
numpy interpolation, written here, sharing no code with analysis/), agreeing within 2%.

Definition (DESIGN.md, "Measuring a speedup"): per run, the final value of the metric is its last
logged value and the run's compute is read on that row; the uniform family is every uniform-policy
arm; each arm seed is placed on its own seed's family points (all seeds present) by monotone
piecewise-linear interpolation in log compute; multiplier = needed compute / own compute; the
arm's multiplier is the geometric mean over seeds. Outside the family's range: a bound.

Runs on noisy synthetic run folders (5 seeds, independent noise on every run) and on the committed
reference results when their run folders are present.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from analysis.report import build_report
from reference_cases import metrics_text, reference_cases

COLUMNS = {"iterations": "step", "examples": "examples_seen", "train": "flops_train",
           "train+score": "flops_train_score", "total": "flops_total"}


# ---------------------------------------------------------------- the independent implementation
def final_row(run_dir: Path, metric: str) -> dict | None:
    last = None
    for line in metrics_text(run_dir).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if row.get(metric) is not None:
            last = row
    return last


def pav_decreasing(y: list[float]) -> list[float]:
    """Least-squares non-increasing fit (pool adjacent violators)."""
    blocks = []                                         # [mean, size]
    for v in y:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(n)]


def place(points: list[tuple[float, float]], value: float, sign: float) -> tuple[float, str | None]:
    points = sorted(points)
    logc = [math.log(c) for c, _ in points]
    fit = pav_decreasing([sign * v for _, v in points])
    t = sign * value
    if t < fit[-1]:
        return points[-1][0], "lower"
    if t > fit[0]:
        return points[0][0], "upper"
    for i in range(len(fit)):
        if fit[i] <= t:
            if i == 0:
                return points[0][0], None
            frac = 1.0 if fit[i - 1] == fit[i] else (fit[i - 1] - t) / (fit[i - 1] - fit[i])
            return math.exp(logc[i - 1] + frac * (logc[i] - logc[i - 1])), None
    raise AssertionError("unreachable")


def independent_multipliers(runs_dir: Path, metric: str, higher_is_better: bool) -> dict:
    runs = {}
    for card_path in sorted(runs_dir.glob("*/card.json")):
        card = json.loads(card_path.read_text())
        if card["status"] == "finished":
            row = final_row(card_path.parent, metric)
            if row is not None:
                runs[card["run"]] = (card["arm"], card["seed"], card["config"]["arms"][card["arm"]]["policy"], row)
    family = {}                                          # seed -> [row]
    for arm, seed, policy, row in runs.values():
        if policy == "uniform":
            family.setdefault(seed, []).append(row)
    out = {}
    sign = -1.0 if higher_is_better else 1.0
    for arm in sorted({a for a, _, p, _ in runs.values() if p != "uniform"}):
        seeds = [(s, r) for a, s, _, r in runs.values() if a == arm]
        for q, col in COLUMNS.items():
            logs, bounds = [], set()
            for seed, row in seeds:
                pts = [(f[col], f[metric]) for f in family[seed]]
                needed, bound = place(pts, row[metric], sign)
                logs.append(math.log(needed / row[col]))
                bounds.add(bound)
            out.setdefault(arm, {})[q] = (math.exp(sum(logs) / len(logs)), bounds - {None})
    return out


def check(summary: dict, runs_dir: Path) -> int:
    metric = summary["primary_metric"]
    mine = independent_multipliers(runs_dir, metric["name"], metric["higher_is_better"])
    checked = 0
    for row in summary["headline"] + summary.get("ablations", []) + summary.get("control_arms", []):
        if row.get("pairing") != "paired":
            continue                                     # this check pairs by seed only
        for q in COLUMNS:
            theirs = row[q] if q in ("iterations", "examples") else row["flops"][q]
            value, bounds = mine[row["arm"]][q]
            assert theirs["value"] == pytest.approx(value, rel=0.02), (row["arm"], q)
            assert (theirs["bound"] is not None) == bool(bounds), (row["arm"], q)
        checked += 1
    return checked


# ---------------------------------------------------------------- the checks
def test_noisy_synthetic_multipliers_agree_with_an_independent_recomputation(tmp_path, make_synth, write_synth_run):
    write_run = write_synth_run
    res = make_synth(tmp_path, controls=True)
    rng = np.random.default_rng(5)
    for seed in (4, 5, 6, 7):                            # 7 seeds in all (3 failed), each run with its own noise
        for arm in res["cfg"]["arms"]:
            speed = {"jest_f0.5": 2.0, "jest_f0.8": 4.0, "jest_topk_f0.8": 0.8, "oracle_clean": 3.0,
                     "offline_filter_f0.8": 2.0}.get(arm, 1.0)
            write_run(res["runs"], arm, seed, res["cfg"], speed=speed, offset=float(rng.normal(0, 0.02)))
    summary = build_report(res["results"], "synth", tmp_path / "report", n_boot=20, figures=False)
    assert check(summary, res["runs"]) == 5
    head = {h["arm"]: h["iterations"] for h in summary["headline"]}
    topk = head["jest_topk_f0.8"]       # between budgets 0.5 and 1, where the family is steep
    assert topk["n"] == 7 and topk["bound"] is None and topk["ci_low"] < topk["value"] < topk["ci_high"]
    # 4x sits on the family's largest budget, where the synthetic family is flat: noisy seeds
    # beyond it make the estimate a lower bound, never an extrapolation
    assert head["jest_f0.8"]["bound"] == "lower" and head["jest_f0.8"]["ci_high"] is None




@pytest.mark.parametrize("summary_path,runs_dir", reference_cases())
def test_reference_multipliers_agree_with_an_independent_recomputation(summary_path, runs_dir):
    if summary_path is None:
        pytest.skip("no committed reference results with their run folders in this checkout")
    summary = json.loads(Path(summary_path).read_text())
    if summary.get("schema_version", "") < "jest-summary-v3" or not summary.get("family", {}).get("arms"):
        pytest.skip(f"{summary_path} has no multipliers (schema {summary.get('schema_version')})")
    assert check(summary, runs_dir) >= 1

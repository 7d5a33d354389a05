"""An independent check of summary.json: iterations- and FLOPs-to-parity recomputed from the runs'
metrics.jsonl with a deliberately separate, simple implementation (plain json + numpy
interpolation, written here, sharing no code with analysis.parity).

Definition (DESIGN.md, "Parity"): the target is the mean over baseline seeds of the metric at the
baseline's final step T_u; the arm's curve is the mean over its seeds (each seed linearly
interpolated onto the union of their eval steps); T_j is the first step where that curve reaches
the target, linearly interpolated between the two eval points around the crossing. Iteration
speedup = T_u / T_j; FLOP speedup = mean F_u(T_u) / mean F_j(T_j), cumulative FLOPs interpolated.

Runs on the committed reference results when their run folders are present (results/reference/
<config>/runs, or the results/<config>/runs the committed or local report was built from), and
always on synthetic run folders with a known answer (a JEST curve compressed 4x must give 4).
"""
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.report import build_report
from reference_cases import metrics_text, reference_cases

FLOP_KEYS = {"train": "flops_train", "train+score": "flops_train_score", "total": "flops_total"}


# ---------------------------------------------------------------- the independent implementation
def read_series(run_dir: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `key` in a run's metrics.jsonl; the last row of a repeated step wins."""
    by_step = {}
    for line in metrics_text(run_dir).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn last line
        if row.get(key) is not None:
            by_step[row["step"]] = row[key]
    steps = np.array(sorted(by_step), dtype=float)
    return steps, np.array([by_step[s] for s in sorted(by_step)], dtype=float)


def mean_curve(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = max(s[0] for s, _ in series), min(s[-1] for s, _ in series)
    grid = np.unique(np.concatenate([s for s, _ in series]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    return grid, np.mean([np.interp(grid, s, v) for s, v in series], axis=0)


def first_reach(steps, values, target, higher_is_better=False):
    sign = -1.0 if higher_is_better else 1.0
    for i, v in enumerate(values):
        if sign * v <= sign * target:
            if i == 0:
                return float(steps[0])
            v0, v1 = sign * values[i - 1], sign * v
            frac = (v0 - sign * target) / (v0 - v1)
            return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]))
    return None


def independent_parity(runs_dir: Path, baseline: str, arm: str, base_seeds, arm_seeds, metric: str,
                       higher_is_better: bool) -> dict:
    base = [read_series(runs_dir / f"{baseline}_s{s}", metric) for s in base_seeds]
    T_u = min(s[-1] for s, _ in base)
    target = float(np.mean([np.interp(T_u, s, v) for s, v in base]))
    steps, values = mean_curve([read_series(runs_dir / f"{arm}_s{s}", metric) for s in arm_seeds])
    T_j = first_reach(steps, values, target, higher_is_better)
    out = {"T_u": T_u, "target": target, "T_j": T_j, "iterations": None if T_j is None else T_u / T_j, "flops": {}}
    if T_j is not None:
        for acc, key in FLOP_KEYS.items():
            F_u = np.mean([np.interp(T_u, *read_series(runs_dir / f"{baseline}_s{s}", key)) for s in base_seeds])
            F_j = np.mean([np.interp(T_j, *read_series(runs_dir / f"{arm}_s{s}", key)) for s in arm_seeds])
            out["flops"][acc] = float(F_u / F_j)
    return out


def check_summary(summary: dict, runs_dir: Path) -> int:
    """Compare every reached arm of the summary (headline and ablations) with the recomputation;
    returns how many arms were checked."""
    metric = summary["primary_metric"]
    checked = 0
    by_arm = {r["arm"]: r for r in summary["parity"].get(metric["name"], [])}
    for row in summary["headline"] + summary.get("ablations", []):
        r = by_arm.get(row["arm"])
        if r is None or r["rule"] != "first":
            continue        # this recomputation follows the "first" rule only
        mine = independent_parity(runs_dir, summary["baseline"]["arm"], row["arm"], r["baseline_seeds"],
                                  r["arm_seeds"], metric["name"], metric["higher_is_better"])
        assert mine["T_u"] == pytest.approx(r["T_u"]) and mine["target"] == pytest.approx(r["target"])
        if not r["reached"]:
            assert mine["T_j"] is None, row["arm"]
            continue
        assert mine["T_j"] == pytest.approx(r["T_j"], rel=1e-9), row["arm"]
        assert mine["iterations"] == pytest.approx(r["iterations"]["value"], rel=1e-9), row["arm"]
        for acc, value in mine["flops"].items():
            assert value == pytest.approx(r["flops"][acc]["value"], rel=1e-9), (row["arm"], acc)
        checked += 1
    return checked


# ---------------------------------------------------------------- the checks
def test_synthetic_jest_curve_compressed_4x_gives_4(tmp_path, make_synth):
    res = make_synth(tmp_path)      # jest_f0.8 follows the baseline's curve at 4x speed, jest_f0.5 at 2x
    summary = build_report(res["results"], "synth", tmp_path / "report", n_boot=50, rule="first", figures=False)
    mine = independent_parity(res["runs"], "uniform", "jest_f0.8", [0, 1, 2], [0, 1, 2], "heldout_loss", False)
    assert mine["iterations"] == pytest.approx(4.0) and mine["T_j"] == pytest.approx(50.0)
    assert independent_parity(res["runs"], "uniform", "jest_f0.5", [0, 1, 2], [0, 1, 2], "heldout_loss",
                              False)["iterations"] == pytest.approx(2.0)
    assert check_summary(summary, res["runs"]) == 2     # jest_f0.5 and jest_f0.8; topk never reaches




@pytest.mark.parametrize("summary_path,runs_dir", reference_cases())
def test_reference_summary_matches_an_independent_recomputation(summary_path, runs_dir):
    if summary_path is None:
        pytest.skip("no committed reference results with their run folders in this checkout "
                    "(results/reference/<config>/runs or results/<config>/runs); the synthetic check ran")
    summary = json.loads(Path(summary_path).read_text())
    if not any(r.get("rule") == "first" for r in summary["parity"].get(summary["primary_metric"]["name"], [])):
        pytest.skip("the summary's parity view uses another rule than 'first'")
    if summary["primary_metric"]["name"] not in ("heldout_loss", "heldout_bpb"):
        pytest.skip(f"primary metric {summary['primary_metric']['name']} is not in metrics.jsonl")
    # the run folders must be the ones the summary was built from: same final values, run by run
    for run in summary["runs"]:
        card_path = runs_dir / run["run"] / "card.json"
        if run["status"] != "finished":
            continue
        if not card_path.exists():
            pytest.skip(f"{runs_dir} lacks the run {run['run']} of {summary_path}")
        final = json.loads(card_path.read_text()).get("final") or {}
        if final.get("heldout_loss") != run["heldout_loss"]:
            pytest.skip(f"{runs_dir} holds other runs than {summary_path} was built from ({run['run']} differs)")
    assert check_summary(summary, runs_dir) >= 1

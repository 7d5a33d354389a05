"""The committed ladder results (results/reference/ladder/) recomputed outside analysis/ (issue #15).

1. Per rung and arm, the multipliers from the committed runs' metrics.jsonl.gz with the independent
   implementation of test_multiplier_independent.py (plain json, its own monotone fit and
   interpolation), each rung's runs on their own: its uniform family and its compared arms, not
   its lr sweep. They agree with the summary within 2%.
2. The slope of log multiplier vs log learner compute, refitted with numpy alone from the summary's
   per-rung numbers (per-seed multipliers and each rung's learner FLOPs): the same slope, inside
   the summary's stated interval; and that interval recomputed from the textbook formula of least
   squares on the rung means (the rung the unit of replication, rungs - 2 degrees of freedom).
3. The report says what range it covers and draws no crossing point.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st
from test_multiplier_independent import COLUMNS, independent_multipliers

from jest.config import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "results" / "reference" / "ladder"


@pytest.fixture(scope="module")
def summary() -> dict:
    path = REFERENCE / "summary.json"
    assert path.exists(), f"{path} is missing: the committed ladder results (README, 'The scale ladder')"
    return json.loads(path.read_text())


def _rung_runs(tmp_path: Path, rung: str, res: dict) -> Path:
    """A folder of links to one rung's family and compared runs (the lr sweep left out)."""
    out = tmp_path / rung
    out.mkdir()
    names = set(res["family"]) | {f"{rung}_{a}" for a in res["arms"]}
    for run in sorted((REFERENCE / "runs").glob(f"{rung}_*")):
        if run.name.rsplit("_s", 1)[0] in names:
            (out / run.name).symlink_to(run)
    return out


def test_committed_ladder_multipliers_agree_with_an_independent_recomputation(summary, tmp_path):
    checked = 0
    for rung, res in summary["rungs"].items():
        mine = independent_multipliers(_rung_runs(tmp_path, rung, res), summary["metric"], False)
        for arm, est in res["arms"].items():
            if est.get("pairing") != "paired":
                continue
            for q in COLUMNS:
                theirs = est["multiplier"][q]
                value, bounds = mine[f"{rung}_{arm}"][q]
                assert theirs["value"] == pytest.approx(value, rel=0.02), (rung, arm, q)
                assert (theirs["bound"] is not None) == bool(bounds), (rung, arm, q)
            checked += 1
    assert checked >= 3 * 4, checked          # 3 rungs x (JEST f = 0.5, 0.8, oracle, offline filter)


def test_committed_ladder_slope_refits_inside_its_interval(summary):
    log_c = {r: math.log(res["learner_flops_1x"]) for r, res in summary["rungs"].items()}
    checked = 0
    for arm, by_q in summary["slopes"].items():
        for q, fit in by_q.items():
            if fit["slope"] is None:
                continue
            points = [(log_c[r], math.log(p["value"])) for r, res in summary["rungs"].items()
                      for p in res["arms"].get(arm, {}).get("multiplier", {}).get(q, {}).get("per_seed", [])
                      if p["value"]]
            x = np.array([c for c, _ in points])
            y = np.array([m for _, m in points])
            rungs = sorted(set(x))
            means = np.array([y[x == c].mean() for c in rungs])
            slope = np.polyfit(np.array(rungs), means, 1)[0]               # the rung means, each rung once
            assert slope == pytest.approx(fit["slope"], abs=1e-9), (arm, q)
            lo, hi = fit["ci_t"]
            assert lo <= slope <= hi, (arm, q, slope, fit["ci_t"])
            # the t-interval of least squares on the rung means, from the textbook formula
            xr = np.array(rungs)
            b, a = np.polyfit(xr, means, 1)
            resid = means - (a + b * xr)
            se = math.sqrt((resid @ resid) / (len(xr) - 2) / ((xr - xr.mean()) @ (xr - xr.mean())))
            half = st.t.ppf(0.975, len(xr) - 2) * se
            assert [b - half, b + half] == pytest.approx(fit["ci_t"], abs=1e-9), (arm, q)
            assert fit["unit"] == "rung" and fit["df"] == len(xr) - 2
            checked += 1
    assert checked >= 4, checked


def test_committed_ladder_report_states_its_range_and_no_crossing(summary):
    report = (REFERENCE / "report.md").read_text()
    lo, hi = summary["covered"]["matmul_params"]
    assert len(summary["rungs"]) >= 3 and lo < hi
    assert "crossing" not in report.lower() or "no crossing" in report.lower()
    assert all(res["lr"] for res in summary["rungs"].values())
    assert summary["decision_agreement"]["decision_accuracy_vs_top"]
    assert (REFERENCE / "multiplier_vs_compute.png").stat().st_size > 10_000
    assert (REFERENCE / "regime_map.png").stat().st_size > 10_000

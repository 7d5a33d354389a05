"""analysis.lmeval_table: the per-task lm-eval table (accuracy and margin with SEs, per arm and snapshot)."""
import json

import pytest

from analysis.evals import MARGIN_METRIC, load_evals
from analysis.lmeval_table import load_task_table, per_task_table, task_rows
from analysis.render import render_markdown
from analysis.report import build_report


def _eval_file(run_dir, step, acc, margin, complete=True):
    """An eval file in the evaluation stage's format (jest-agg-v2: SEs and the margin per task)."""
    d = run_dir / "eval"
    d.mkdir(exist_ok=True)
    tasks = {"sva": {"metric": "acc", "value": acc, "acc": acc, "acc_se": 0.01, "chance": 0.5,
                     "centered": 2 * acc - 1, "centered_se": 0.02, "margin": margin, "margin_se": 0.005,
                     "n_items": 2400}}
    agg = {"version": "jest-agg-v2", "aggregate_centered_acc": 2 * acc - 1, "aggregate_margin": margin,
           "aggregate_margin_se": 0.005, "complete": complete, "missing": [], "tasks": tasks}
    (d / f"step_{step}.json").write_text(json.dumps({"results": {"sva": {"acc,none": acc}}, "aggregate": agg}))


def test_task_rows_read_the_fields_and_fall_back_to_lm_eval_results():
    rows = task_rows({"aggregate": {"tasks": {"t": {"value": 0.6, "acc_se": 0.02, "margin": 0.1, "margin_se": 0.01,
                                                    "n_items": 500, "chance": 0.25}}},
                      "results": {"u": {"acc,none": 0.3, "acc_stderr,none": 0.04}}})
    assert rows["t"]["acc"] == 0.6 and rows["t"]["margin_se"] == 0.01 and rows["t"]["n_items"] == 500
    assert rows["u"] == {"acc": 0.3, "acc_se": 0.04, "margin": None, "margin_se": None, "n_items": None,
                         "chance": None}


def test_per_task_table_per_arm_and_snapshot_with_ses_and_the_report_shows_it(synth_results):
    runs = synth_results["runs"]
    k = {"uniform": 0.0, "jest_f0.8": 0.05}
    for run in sorted(runs.iterdir()):
        arm, seed = run.name.rsplit("_s", 1)
        if arm in k:
            for step in (50, 200):
                _eval_file(run, step, 0.5 + k[arm] * step / 200 + 0.002 * int(seed), 0.1 * k[arm] * step / 200)
    rows = per_task_table(load_task_table(runs), ["uniform", "jest_f0.8"])
    assert [(r["arm"], r["step"]) for r in rows] == [("uniform", 50), ("uniform", 200), ("jest_f0.8", 50),
                                                     ("jest_f0.8", 200)]
    j = rows[-1]
    assert j["n_seeds"] == 3 and j["acc"] == pytest.approx(0.55 + 0.002) and j["acc_se"] == pytest.approx(0.01)
    assert j["acc_seed_sd"] == pytest.approx(0.002) and j["margin"] == pytest.approx(0.005)
    assert j["n_items"] == 2400 and j["chance"] == 0.5
    long, _ = load_evals(runs)
    assert MARGIN_METRIC in set(long["metric"])
    s = build_report(synth_results["results"], "synth", synth_results["results"] / "out", n_boot=20, figures=False)
    assert len(s["lmeval"]["tasks"]) == 4
    # no first-crossing parity on lm-eval snapshots: nothing is interpolated between two of them
    assert not any(m.startswith("lmeval") for m in s["parity"])
    md = render_markdown(s)
    assert "## lm-eval per task" in md and "| sva | jest_f0.8 | 200 | 3 | 2400 | 0.5 | 0.552 ± 0.010" in md

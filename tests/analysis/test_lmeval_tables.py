"""analysis.evals: eval/step_<N>.json per checkpoint -> a per-step table that parity reads."""
import json
import math

import pytest

from analysis.evals import AGGREGATE_METRIC, load_evals, wide
from analysis.parity import parity_table
from analysis.runs import load_curves


def _write_eval(run_dir, step, value, complete=True):
    d = run_dir / "eval"
    d.mkdir(exist_ok=True)
    agg = {"version": "jest-agg-v1", "aggregate_centered_acc": value, "complete": complete,
           "missing": [] if complete else ["sva"], "tasks": {"sva": {"metric": "acc", "value": 0.5 + value / 2,
                                                                     "chance": 0.5, "centered": value}}}
    (d / f"step_{step}.json").write_text(json.dumps({"results": {}, "aggregate": agg}))


def test_eval_files_go_through_the_same_parity_code(synth_results):
    runs = synth_results["runs"]
    acc = lambda s, k: 0.6 * (1 - math.exp(-k * s / 60.0))
    for run_dir in sorted(runs.iterdir()):
        k = {"uniform": 1.0, "jest_f0.5": 2.0}.get(run_dir.name.rsplit("_s", 1)[0])
        if k is None:
            continue
        for step in (50, 100, 150, 200):
            _write_eval(run_dir, step, acc(step, k))
    _write_eval(runs / "uniform_s0", 25, 0.1, complete=False)          # a suite with a task missing
    (runs / "uniform_s1" / "eval" / "step_999.json").write_text("{torn")  # unreadable: skipped, listed

    long, notes = load_evals(runs)
    assert set(long["metric"]) == {AGGREGATE_METRIC, "lmeval_sva_acc"}
    assert notes["incomplete"] == [["uniform_s0", 25]] and len(notes["unreadable"]) == 1
    table = wide(long)
    assert math.isnan(table[(table["run"] == "uniform_s0") & (table["step"] == 25)][AGGREGATE_METRIC].item())

    (r,) = parity_table(table, AGGREGATE_METRIC, "uniform", ["jest_f0.5"], higher_is_better=True,
                        flops_table=load_curves(runs))
    assert r.reached and r.iterations.value == pytest.approx(2.0)
    assert r.flops["train"].value == pytest.approx(2.0)
    assert r.flops["train+score"].value == pytest.approx(2.0 / (1 + 2 / 3))

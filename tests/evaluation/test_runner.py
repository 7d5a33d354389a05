"""evaluate_run with real lm-eval: per-item margins from lm-eval's samples, and a task added to an
evaluated config runs on every snapshot (issue 17 item 6) while the others are not redone."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest

from jest.config import PROJECT_ROOT

from jest.experiment import load_config
from jest.evaluation.runner import evaluate_run
from jest.tracking.records import read_metrics

AGR, CONT = "jest_agreement", "jest_continuation"
STEPS = (3, 9)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    """A run folder as training leaves it: snapshots/step_<N>/ and the tokenizer in model/."""
    run = tmp_path_factory.mktemp("run")
    shutil.copytree(tiny_model_dir, run / "model")
    for step in STEPS:
        shutil.copytree(tiny_model_dir, run / "snapshots" / f"step_{step}")
    return run


def _cfg(tasks):
    cfg = copy.deepcopy(load_config(PROJECT_ROOT / "config" / "smoke.yaml"))
    cfg["evaluation"].update(tasks=tasks, limit=5, batch_size=8, seed=7)
    cfg["device"], cfg["threads"] = "cpu", 1
    return cfg


def _step(run_dir, step):
    return json.loads((run_dir / "eval" / f"step_{step:07d}.json").read_text())


def test_margins_then_an_added_task_reaches_every_snapshot(run_dir, built):
    tasks_dir, _ = built
    evaluate_run(_cfg([AGR]), run_dir, tasks_dir)
    first = {step: _step(run_dir, step) for step in STEPS}
    for step, payload in first.items():
        agg = payload["aggregate"]
        assert agg["version"] == "jest-agg-v2" and agg["complete"] and list(agg["tasks"]) == [AGR]
        task = agg["tasks"][AGR]
        assert task["n_items"] == 5 and task["acc"] == pytest.approx(payload["results"]["results"][AGR]["acc,none"])
        assert task["acc_se"] == pytest.approx(payload["results"]["results"][AGR]["acc_stderr,none"])
        items = read_metrics(run_dir / "eval" / f"items_{step:07d}.jsonl")
        assert [r["doc_id"] for r in items] == list(range(5)) and {r["task"] for r in items} == {AGR}
        for row in items:  # the margin is the continuous acc_norm: positive exactly when acc_norm scores it
            norm = [ll / n for ll, n in zip(row["lls"], row["chars"])]
            assert row["margin"] == pytest.approx(norm[row["gold"][0]] - max(v for i, v in enumerate(norm)
                                                                               if i not in row["gold"]))
            assert (row["margin"] > 0) == (row["acc_norm"] == 1.0)
        assert task["margin"] == pytest.approx(sum(r["margin"] for r in items) / 5)
    assert json.loads((run_dir / "eval" / "done.json").read_text())["complete"] is True
    # Both snapshots hold the same weights: the second, tokenized from the process-wide memo, scores the same.
    lls = [[r["lls"] for r in read_metrics(run_dir / "eval" / f"items_{step:07d}.jsonl")] for step in STEPS]
    assert lls[0] == lls[1]

    evaluate_run(_cfg([AGR, CONT]), run_dir, tasks_dir)  # the config gains a task
    for step in STEPS:
        payload = _step(run_dir, step)
        assert set(payload["evaluated"]) == {AGR, CONT} and payload["aggregate"]["complete"]
        assert [p["tasks"] for p in payload["results"]["jest_passes"]] == [[AGR], [CONT]]  # AGR not redone
        assert payload["results"]["results"][AGR] == first[step]["results"]["results"][AGR]
        items = read_metrics(run_dir / "eval" / f"items_{step:07d}.jsonl")
        assert {r["task"] for r in items} == {AGR, CONT} and len(items) == 10
        agg = payload["aggregate"]
        margins = [agg["tasks"][task]["margin"] for task in (AGR, CONT)]
        assert agg["aggregate_margin"] == pytest.approx(sum(margins) / 2)
        assert agg["aggregate_margin_se"] == pytest.approx(
            (agg["tasks"][AGR]["margin_se"] ** 2 + agg["tasks"][CONT]["margin_se"] ** 2) ** 0.5 / 2)
    rows = read_metrics(run_dir / "eval" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [*STEPS, *STEPS] and all(f"eval_{CONT}_acc_norm" in r for r in rows[2:])

    # Nothing left to do: a re-run evaluates nothing; a lost step file is redone alone.
    (run_dir / "eval" / f"step_{STEPS[0]:07d}.json").unlink()
    assert [r["step"] for r in evaluate_run(_cfg([AGR, CONT]), run_dir, tasks_dir)] == [STEPS[0]]
    # A task whose data file changed since (another sha256 in tasks.json) is redone, alone.
    path = run_dir / "eval" / f"step_{STEPS[1]:07d}.json"
    payload = json.loads(path.read_text())
    payload["evaluated"][CONT]["data_sha256"] = "stale"
    path.write_text(json.dumps(payload))
    assert [r["step"] for r in evaluate_run(_cfg([AGR, CONT]), run_dir, tasks_dir)] == [STEPS[1]]
    assert _step(run_dir, STEPS[1])["results"]["jest_passes"][-1]["tasks"] == [CONT]


def test_one_process_evaluates_several_runs_and_a_failed_run_stops_none(run_dir, built, tmp_path):
    """`python -m jest evaluate --run-dir A --run-dir B` (evaluation.group_by: seed, one process per
    seed): each run is evaluated as a process of its own would (same files), a run that fails (here:
    no snapshots, as a run whose training died before its first) is named at the end with exit 1,
    and the runs after it are still evaluated."""
    tasks_dir, _ = built
    cfg = _cfg([AGR])
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(cfg))
    broken, good = tmp_path / "broken_s0", tmp_path / "good_s0"
    broken.mkdir()
    shutil.copytree(run_dir, good, ignore=shutil.ignore_patterns("eval"))
    proc = subprocess.run([sys.executable, "-m", "jest", "evaluate", "--config", str(config), "--tasks", str(tasks_dir),
                           "--threads", "1", "--run-dir", str(broken), "--run-dir", str(good)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"evaluation failed for 1 of 2 runs:\n  {broken}: FileNotFoundError" in proc.stderr
    assert "[2/2]" in proc.stdout and not (broken / "eval" / "done.json").exists()
    solo = tmp_path / "solo_s0"
    shutil.copytree(run_dir, solo, ignore=shutil.ignore_patterns("eval"))
    evaluate_run(cfg, solo, tasks_dir)
    for step in STEPS:
        name = f"items_{step:07d}.jsonl"
        assert (good / "eval" / name).read_text() == (solo / "eval" / name).read_text()
        assert _step(good, step)["aggregate"] == _step(solo, step)["aggregate"]
    assert json.loads((good / "eval" / "done.json").read_text())["complete"] is True


def test_receipts_must_pair_with_run_folders(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jest", "evaluate", "--config", "config/smoke.yaml", "--tasks", "x",
                           "--run-dir", "a", "--run-dir", "b", "--receipt", "ra"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "--receipt is given 1 times for 2 --run-dir" in proc.stdout + proc.stderr

"""The evaluate stage for one training run: lm-eval on each saved snapshot.

Writes runs/<run>/eval/step_<N>.json (the whole lm-eval results dict and the
versioned aggregate) and eval/metrics.jsonl (one row per snapshot: accuracies
and the aggregate), which MLflow mirrors at that training step next to the
training metrics. Snapshots already evaluated are skipped, so a killed
evaluation resumes where it stopped.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import torch

from jest.config import PROJECT_ROOT
from jest.evaluation.evaluate import aggregate, evaluate_checkpoint
from jest.evaluation.preflight import check_datasets
from jest.evaluation.suites import task_table
from jest.evaluation.tasks import load_table
from jest.io import atomic_write_json
from jest.tracking import MetricsFile, read_metrics

STEP_DIR = re.compile(r"step_(\d+)$")


def _include_paths(cfg: dict, tasks_dir: Path) -> list[Path]:
    extra = [Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p for p in cfg["evaluation"]["include_paths"]]
    missing = [str(p) for p in extra if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"'evaluation.include_paths' lists folders that do not exist: {missing}")
    return [tasks_dir, *extra]


def eval_row(step: int, results: dict, agg: dict) -> dict:
    """Flat numeric metrics of one evaluation: eval_<task>_<metric> and the aggregate."""
    row: dict = {"step": step, "time": time.time()}
    for task, metrics in sorted(results.get("results", {}).items()):
        for key, value in metrics.items():
            name = key.partition(",")[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not name.endswith("_stderr"):
                row[f"eval_{task}_{name}"] = float(value)
    if agg.get("aggregate_centered_acc") is not None:
        row["eval_aggregate_centered_acc"] = float(agg["aggregate_centered_acc"])
    return row


def evaluate_run(cfg: dict, run_dir: Path, tasks_dir: Path, threads: int | None = None) -> list[dict]:
    ecfg = cfg["evaluation"]
    torch.set_num_threads(threads or cfg["threads"])
    device = "cuda" if cfg["device"] in ("cuda", "auto") and torch.cuda.is_available() else "cpu"
    snapshots = sorted((p for p in (run_dir / "snapshots").glob("step_*") if STEP_DIR.search(p.name)),
                       key=lambda p: int(STEP_DIR.search(p.name).group(1)))
    if not snapshots:
        raise FileNotFoundError(f"no snapshots in {run_dir / 'snapshots'}: train the run first")
    include_paths = _include_paths(cfg, tasks_dir)
    # Every requested task with a known or declared chance level, and only those (suites expanded).
    table = task_table(ecfg["tasks"], include_paths, load_table(tasks_dir))
    # Hub datasets (lm-eval's standard tasks) must be in the offline cache: say which are not, and how
    # to get them, before the first snapshot (the workflow checks this before any job, too).
    check_datasets(ecfg["tasks"], include_paths)
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_file = MetricsFile(out_dir / "metrics.jsonl")
    done = {r["step"] for r in read_metrics(rows_file.path)}
    tokenizer_dir = run_dir / "model"  # the tokenizer is saved with the final model
    rows = []
    for snap in snapshots:
        step = int(STEP_DIR.search(snap.name).group(1))
        if step in done:
            continue
        t0 = time.time()
        try:
            results = evaluate_checkpoint(snap, tokenizer_dir, list(ecfg["tasks"]), include_paths,
                                          device=device, seed=ecfg["seed"], limit=ecfg["limit"],
                                          batch_size=ecfg["batch_size"])
        except AssertionError as err:  # lm-eval asserts that every answer fits the model's context
            raise RuntimeError(
                f"lm-eval failed on {snap} ({err!r}): most likely an answer choice is longer than the model's "
                f"context of {cfg['data']['seq_len']} tokens. Raise 'data.seq_len' or drop the task from "
                "'evaluation.tasks'.") from err
        agg = aggregate(results, table)
        atomic_write_json(out_dir / f"step_{step:07d}.json", {"step": step, "results": results, "aggregate": agg})
        row = eval_row(step, results, agg)
        rows_file.append(row)
        rows.append(row)
        print(f"step {step}: aggregate centered accuracy {agg.get('aggregate_centered_acc')} "
              f"({'complete' if agg.get('complete') else 'missing ' + str(agg.get('missing'))}) "
              f"in {time.time() - t0:.0f} s", flush=True)
    atomic_write_json(out_dir / "done.json", {"steps": [int(STEP_DIR.search(s.name).group(1)) for s in snapshots],
                                              "tasks": ecfg["tasks"]})
    return rows

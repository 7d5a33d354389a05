"""The evaluate stage for one training run: lm-eval on each saved snapshot, in one process.

Output, under runs/<run>/eval/ (the format the analysis reads; README "Evaluation output"):

- ``step_<N:07d>.json``: ``{"format": "jest-eval-step-v2", "step", "results": lm-eval's
  results dict (per task ``acc,none``, ``acc_stderr,none``, ...; merged over passes),
  "aggregate": jest.evaluation.evaluate.aggregate (jest-agg-v2: per task ``metric``,
  ``acc``, ``acc_se``, ``centered``, ``centered_se``, ``margin``, ``margin_se``,
  ``n_items``; ``aggregate_centered_acc`` (+ ``_se``), ``aggregate_margin`` (+ ``_se``),
  ``complete``, ``missing``), "evaluated": {task: {"limit", "seed", "data_sha256", "version", "n_items"}}}``
- ``items_<N:07d>.jsonl``: one row per multiple-choice item and task (jest.evaluation.margins.
  item_row: ``task``, ``doc_id``, ``item_id``, ``gold``, ``lls``, ``chars``, ``acc``,
  ``acc_norm``, ``margin``): the same items in every run of a config (same seed and
  limit), so arms compare paired on ``(task, doc_id)``.
- ``metrics.jsonl``: one flat row per evaluation pass of a snapshot (``eval_<task>_<metric>``,
  the aggregates); a later row for a step supersedes an earlier one. MLflow mirrors it.
- ``done.json``: the steps, the tasks and whether every snapshot's aggregate is complete.

A snapshot is evaluated for exactly the tasks it lacks: those not in its
``evaluated`` record, or recorded with another ``limit``, ``seed`` or data file
(``data_sha256`` of tasks.json). So a
killed evaluation resumes, and a task added to ``evaluation.tasks`` is run on
every snapshot (the rule's rerun trigger hashes the evaluation section).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path


from jest.config import PROJECT_ROOT
from jest.evaluation.evaluate import aggregate, evaluate_checkpoint
from jest.evaluation.margins import item_rows
from jest.evaluation.preflight import check_datasets
from jest.evaluation.suites import SUITES, expand, task_table
from jest.evaluation.tasks import load_table
from jest.io import atomic_write_json, atomic_write_text
from jest.tracking.records import MetricsFile, read_metrics

STEP_DIR = re.compile(r"step_(\d+)$")
STEP_FORMAT = "jest-eval-step-v2"  # v1 files (no "evaluated" record, no per-item file) are re-evaluated
# lm-eval's results blocks keyed by task name: merged task by task across passes on one snapshot.
_PER_TASK_KEYS = ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples")


def _include_paths(cfg: dict, tasks_dir: Path) -> list[Path]:
    extra = [Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p for p in cfg["evaluation"]["include_paths"]]
    missing = [str(p) for p in extra if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"'evaluation.include_paths' lists folders that do not exist: {missing}")
    return [tasks_dir, *extra]


def eval_row(step: int, results: dict, agg: dict) -> dict:
    """Flat numeric metrics of one evaluation: eval_<task>_<metric> (lm-eval's, and the margin with its
    SE), and the aggregates with their SEs."""
    row: dict = {"step": step, "time": time.time()}
    for task, metrics in sorted(results.get("results", {}).items()):
        for key, value in metrics.items():
            name = key.partition(",")[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not name.endswith("_stderr"):
                row[f"eval_{task}_{name}"] = float(value)
    for task, entry in sorted(agg.get("tasks", {}).items()):
        for key in ("margin", "margin_se"):
            if entry.get(key) is not None:
                row[f"eval_{task}_{key}"] = float(entry[key])
    for key in ("aggregate_centered_acc", "aggregate_centered_acc_se", "aggregate_margin", "aggregate_margin_se"):
        if agg.get(key) is not None:
            row[f"eval_{key}"] = float(agg[key])
    return row


def evaluation_units(tasks: list[str], table: dict) -> list[str]:
    """The names lm-eval is asked for, one per leaf task: the table's tasks (groups and suites
    expanded) and any requested name the table does not resolve (an lm-eval group, a task
    without a chance level is in the table), so that a pass can run a subset."""
    units = list(table["tasks"])
    group = table.get("group")
    for name in expand(tasks):
        if name not in units and name != group and name not in SUITES:
            units.append(name)
    return units


def _load_step(path: Path) -> dict:
    """The step file written by an earlier pass, or an empty record (none, torn, or an older format)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return payload if payload.get("format") == STEP_FORMAT else {}


def _read_items(path: Path) -> dict[str, list[dict]]:
    items: dict[str, list[dict]] = {}
    for row in read_metrics(path):  # jsonl with a torn last line ignored
        items.setdefault(row["task"], []).append(row)
    return items


def _merge(old: dict, new: dict, redone: list[str]) -> dict:
    """lm-eval results of a pass over ``redone`` tasks merged into an earlier pass's."""
    merged = {k: v for k, v in new.items() if k not in _PER_TASK_KEYS}
    for key in _PER_TASK_KEYS:
        block = {k: v for k, v in (old.get(key) or {}).items() if k not in redone}
        block.update(new.get(key) or {})
        merged[key] = dict(sorted(block.items()))
    merged["jest_passes"] = [*old.get("jest_passes", []), new.get("jest", {})]
    return merged


def evaluate_run(cfg: dict, run_dir: Path, tasks_dir: Path, threads: int | None = None) -> list[dict]:
    import torch

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
    units = evaluation_units(list(ecfg["tasks"]), table)
    # Hub datasets (lm-eval's standard tasks) must be in the offline cache: say which are not, and how
    # to get them, before the first snapshot (the workflow checks this before any job, too).
    check_datasets(ecfg["tasks"], include_paths)
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_file = MetricsFile(out_dir / "metrics.jsonl")
    tokenizer_dir = run_dir / "model"  # the tokenizer is saved with the final model
    settings = {"limit": ecfg["limit"], "seed": ecfg["seed"]}
    # What a task's stored result depends on besides the model: the item sample, and for the
    # built tasks their data (a rebuild with other held-out documents changes it).
    expected = {u: {**settings, "data_sha256": table["tasks"].get(u, {}).get("data_sha256")} for u in units}
    rows, complete = [], True
    for snap in snapshots:
        step = int(STEP_DIR.search(snap.name).group(1))
        step_file, items_file = out_dir / f"step_{step:07d}.json", out_dir / f"items_{step:07d}.jsonl"
        previous = _load_step(step_file)
        evaluated = previous.get("evaluated", {})
        todo = [u for u in units if {k: (evaluated.get(u) or {}).get(k) for k in expected[u]} != expected[u]]
        dropped = set(evaluated) - set(units)  # tasks no longer requested leave the record and the aggregate
        if not todo and not dropped:
            complete = complete and bool(previous["aggregate"]["complete"])
            continue
        t0 = time.time()
        results = _evaluate(snap, tokenizer_dir, todo, include_paths, device, ecfg, cfg) if todo else {}
        new_items = item_rows(results.pop("samples", {}), results.get("configs", {}))
        items = {t: r for t, r in (_read_items(items_file) if previous else {}).items()
                 if t not in todo and t not in dropped}
        items.update(new_items)
        merged = _merge(previous.get("results", {}), results, [*todo, *dropped]) if previous else \
            {**results, "jest_passes": [results.get("jest", {})]}
        evaluated = {u: ({**expected[u], "version": (merged.get("versions") or {}).get(u),
                          "n_items": (merged.get("n-samples") or {}).get(u, {}).get("effective")}
                         if u in todo else evaluated[u]) for u in units}
        agg = aggregate(merged, table, items)
        # Never complete while a requested task has no result (perplexity and unknown-chance tasks
        # included, which the accuracy aggregate does not average).
        absent = [u for u in units if u not in merged["results"] and u not in agg["missing"]]
        if absent:
            agg.update(complete=False, missing=sorted([*agg["missing"], *absent]))
        atomic_write_text(items_file, "".join(json.dumps(r, sort_keys=True) + "\n"
                                              for t in sorted(items) for r in items[t]))
        atomic_write_json(step_file, {"format": STEP_FORMAT, "step": step, "results": merged, "aggregate": agg,
                                      "evaluated": evaluated})
        row = eval_row(step, merged, agg)
        rows_file.append(row)
        rows.append(row)
        complete = complete and bool(agg["complete"])
        print(f"step {step}: tasks {todo}: aggregate centered accuracy {_fmt(agg, 'aggregate_centered_acc')}, "
              f"margin {_fmt(agg, 'aggregate_margin')} "
              f"({'complete' if agg.get('complete') else 'missing ' + str(agg.get('missing'))}) "
              f"in {time.time() - t0:.0f} s", flush=True)
    atomic_write_json(out_dir / "done.json", {"steps": [int(STEP_DIR.search(s.name).group(1)) for s in snapshots],
                                              "tasks": ecfg["tasks"], "units": units, "complete": complete})
    return rows


def _evaluate(snap: Path, tokenizer_dir: Path, todo: list[str], include_paths: list[Path], device: str,
              ecfg: dict, cfg: dict) -> dict:
    try:
        return evaluate_checkpoint(snap, tokenizer_dir, todo, include_paths, device=device, seed=ecfg["seed"],
                                   limit=ecfg["limit"], batch_size=ecfg["batch_size"], log_samples=True)
    except AssertionError as err:  # lm-eval asserts that every answer fits the model's context
        raise RuntimeError(
            f"lm-eval failed on {snap} ({err!r}): most likely an answer choice is longer than the model's "
            f"context of {cfg['data']['seq_len']} tokens. Raise 'data.seq_len' or drop the task from "
            "'evaluation.tasks'.") from err


def _fmt(agg: dict, key: str) -> str:
    value, se = agg.get(key), agg.get(f"{key}_se")
    if value is None:
        return "n/a"
    return f"{value:.4f}" + (f" +- {se:.4f}" if se is not None else "")

"""Screen the evaluation suite on one trained run: does each task's margin rise with training?

A task whose items every snapshot of a long run scores at chance measures
nothing at this scale (noise in the aggregate), so a task family earns its
place in the default suite only if its margin and accuracy rise from the first
snapshot to the last. This evaluates every snapshot of RUN_DIR on every item
of the built tasks (no ``limit``), in a scratch copy (the run's own eval/ is
left alone), and prints, per task and snapshot, accuracy and the
log-likelihood margin with their standard errors, and the last-minus-first
difference of the margin paired over items (its SE from the per-item
differences):

    python scripts/screen_tasks.py --config config/tiny.yaml \
        --run-dir results/tiny/runs/uniform_x3_s0 --tasks results/tiny/tasks [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path


def _paired_rise(first: list[dict], last: list[dict]) -> tuple[float, float, int]:
    by_id = {row["doc_id"]: row["margin"] for row in first if row.get("margin") is not None}
    diffs = [row["margin"] - by_id[row["doc_id"]] for row in last
             if row.get("margin") is not None and row["doc_id"] in by_id]
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return mean, math.sqrt(var / n), n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--tasks", required=True, type=Path, help="the built tasks folder (tasks.json)")
    parser.add_argument("--only", nargs="*", help="task names (default: evaluation.tasks of the config)")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)

    from jest.experiment import load_config
    from jest.evaluation.runner import evaluate_run

    cfg = load_config(args.config)
    cfg["evaluation"] = {**cfg["evaluation"], "limit": None, "tasks": args.only or cfg["evaluation"]["tasks"]}
    with tempfile.TemporaryDirectory(prefix="screen-") as scratch:
        run = Path(scratch) / args.run_dir.name
        run.mkdir()
        for part in ("snapshots", "model"):
            (run / part).symlink_to((args.run_dir / part).resolve())
        evaluate_run(cfg, run, args.tasks, threads=cfg["threads"])
        steps = sorted(run.glob("eval/step_*.json"))
        table: dict[str, list[dict]] = {}
        items: dict[int, dict[str, list[dict]]] = {}
        for path in steps:
            step = json.loads(path.read_text())
            items[step["step"]] = {}
            for line in (run / "eval" / path.name.replace("step_", "items_").replace(".json", ".jsonl")).open():
                row = json.loads(line)
                items[step["step"]].setdefault(row["task"], []).append(row)
            for task, entry in step["aggregate"]["tasks"].items():
                table.setdefault(task, []).append({"step": step["step"], **{k: entry.get(k) for k in (
                    "metric", "acc", "acc_se", "centered", "margin", "margin_se", "n_items")}})
    first, last = min(items), max(items)
    print(f"{'task':24s} {'step':>6s} {'acc':>14s} {'margin':>18s}   n")
    for task, rows in sorted(table.items()):
        for row in rows:
            print(f"{task:24s} {row['step']:6d} {row['acc']:.3f} +- {row['acc_se']:.3f} "
                  f"{row['margin']:+.4f} +- {row['margin_se']:.4f} {row['n_items']:5d}")
        rise, se, n = _paired_rise(items[first][task], items[last][task])
        rows.append({"rise_first_to_last": rise, "rise_se": se, "paired_items": n})
        print(f"{'':24s} margin rise step {first} -> {last}: {rise:+.4f} +- {se:.4f} (paired, {n} items)")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

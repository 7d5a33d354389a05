"""The report's per-task lm-eval table: accuracy and the continuous log-likelihood margin, with
standard errors, per arm at each snapshot (issue #17 item 5).

Reads runs/<run>/eval/step_<N>.json (jest.evaluation: ``aggregate.tasks[<task>]``; the lm-eval
``results`` dict as a fallback). The field names live in FIELDS only, so that a change of the
evaluation's file format is a change here: for each column the keys tried in order.

Per arm, task and snapshot step over the arm's seeds:
- ``acc`` / ``margin``: the mean over seeds;
- ``acc_se`` / ``margin_se``: the item-sampling standard error (lm-eval's, per run), averaged over
  seeds: every run of a config is scored on the same items, so the item error does not shrink
  with seeds;
- ``acc_seed_sd`` / ``margin_seed_sd``: the spread over seeds (None with one seed).
No value is interpolated between snapshots: a row is a snapshot that was evaluated.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runs import load_cards

# column -> keys tried in order in aggregate.tasks[<task>] (jest-agg-v2), then in results[<task>]
FIELDS = {
    "acc": (("acc", "value"), ("acc,none", "acc_norm,none")),
    "acc_se": (("acc_se",), ("acc_stderr,none", "acc_norm_stderr,none")),
    "margin": (("margin",), ()),
    "margin_se": (("margin_se",), ()),
    "n_items": (("n_items",), ()),
    "chance": (("chance",), ()),
}
_STEP = re.compile(r"step_(\d+)\.json$")
COLUMNS = ["arm", "task", "step", "n_seeds", "n_items", "chance", "acc", "acc_se", "acc_seed_sd", "margin",
           "margin_se", "margin_seed_sd"]


def _first(d: dict, keys) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def task_rows(payload: dict) -> dict[str, dict]:
    """task -> {column: value} of one eval file."""
    agg_tasks = (payload.get("aggregate") or {}).get("tasks") or {}
    results = payload.get("results") or {}
    # jest-eval-step-v2 keeps lm-eval's whole output under "results"; its per-task dict is "results" inside
    results = results.get("results", results) if isinstance(results.get("results"), dict) else results
    results = {task: entry for task, entry in results.items() if isinstance(entry, dict)}
    out = {}
    for task in list(agg_tasks) + [t for t in results if t not in agg_tasks]:
        a, r = agg_tasks.get(task) or {}, results.get(task) or {}
        row = {col: _first(a, akeys) if _first(a, akeys) is not None else _first(r, rkeys)
               for col, (akeys, rkeys) in FIELDS.items()}
        if row["acc"] is not None or row["margin"] is not None:
            out[task] = row
    return out


def load_task_table(runs_dir: Path, arms: list[str] | None = None, runs=None) -> pd.DataFrame:
    """Long table per finished run (of the folders in `runs` when given), task and snapshot: run, arm,
    seed, step, task and FIELDS."""
    cards = load_cards(runs_dir, runs)
    cards = cards[cards["status"] == "finished"]
    if arms is not None:
        cards = cards[cards["arm"].isin(arms)]
    rows = []
    for card in cards.itertuples():
        for path in sorted(Path(card.run_dir, "eval").glob("step_*.json")):
            try:
                payload = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue        # analysis.evals lists unreadable files in the report's notes
            match = _STEP.search(path.name)
            step = int(payload.get("step", match.group(1) if match else -1))
            for task, row in task_rows(payload).items():
                rows.append({"run": card.run, "arm": card.arm, "seed": card.seed, "step": step, "task": task, **row})
    return pd.DataFrame(rows, columns=["run", "arm", "seed", "step", "task", *FIELDS])


def _sd(x: pd.Series) -> float | None:
    x = x.dropna()
    return float(x.std(ddof=1)) if len(x) > 1 else None


def _mean(x: pd.Series) -> float | None:
    x = x.dropna()
    return float(x.mean()) if len(x) else None


def per_task_table(long: pd.DataFrame, arm_order: list[str] | None = None) -> list[dict]:
    """One row per arm, task and snapshot (see the module docstring), in the arms' order."""
    if long.empty:
        return []
    order = {a: i for i, a in enumerate(arm_order or [])}
    rows = []
    for (arm, task, step), g in long.groupby(["arm", "task", "step"], sort=False):
        rows.append({"arm": arm, "task": task, "step": int(step), "n_seeds": int(g["seed"].nunique()),
                     "n_items": _mean(g["n_items"]), "chance": _mean(g["chance"]),
                     "acc": _mean(g["acc"]), "acc_se": _mean(g["acc_se"]), "acc_seed_sd": _sd(g["acc"]),
                     "margin": _mean(g["margin"]), "margin_se": _mean(g["margin_se"]),
                     "margin_seed_sd": _sd(g["margin"])})
    rows.sort(key=lambda r: (r["task"], order.get(r["arm"], len(order)), r["arm"], r["step"]))
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in rows]


__all__ = ["COLUMNS", "FIELDS", "load_task_table", "per_task_table", "task_rows"]

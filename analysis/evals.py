"""lm-eval results per checkpoint (runs/<run>/eval/step_<N>.json) as per-step metric tables.

Each file is expected to hold what the evaluate stage writes: the lm-eval
results dict and an ``aggregate`` block from jest.evaluation.aggregate
(``aggregate_centered_acc``, ``complete``, ``missing``, ``tasks: {name: {metric,
value, centered}}``). Read tolerantly: a file without an aggregate still gives
per-task accuracies from ``results``; an unreadable file is skipped and listed.

The aggregate of an incomplete suite is *not* used (NaN, and the step is listed
in `incomplete`): a missing task is reported as missing, never averaged away.
The output goes through the same parity code as held-out loss
(analysis.parity.parity_table(wide, metric, ..., flops_table=curves)).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from analysis.runs import load_cards

AGGREGATE_METRIC = "lmeval_aggregate_centered_acc"
MARGIN_METRIC = "lmeval_aggregate_margin"   # the continuous log-likelihood margin (jest-agg-v2)
_STEP = re.compile(r"step_(\d+)\.json$")


def _rows_of(payload: dict) -> tuple[list[tuple[str, float]], bool]:
    """(metric, value) pairs of one eval file, and whether its aggregate is complete."""
    agg = payload.get("aggregate") or ({} if "aggregate_centered_acc" not in payload else payload)
    rows, complete = [], bool(agg.get("complete", False))
    if agg:
        value = agg.get("aggregate_centered_acc")
        rows.append((AGGREGATE_METRIC, float(value) if complete and value is not None else float("nan")))
        if agg.get("aggregate_margin") is not None:
            rows.append((MARGIN_METRIC, float(agg["aggregate_margin"]) if complete else float("nan")))
        for task, entry in (agg.get("tasks") or {}).items():
            if entry.get("value") is not None:
                rows.append((f"lmeval_{task}_{entry.get('metric', 'acc')}", float(entry["value"])))
    else:
        for task, res in (payload.get("results") or {}).items():
            for key in ("acc,none", "acc_norm,none"):
                if isinstance(res.get(key), (int, float)):
                    rows.append((f"lmeval_{task}_{key.split(',')[0]}", float(res[key])))
    return rows, complete


def load_evals(runs_dir: Path, finished_only: bool = True, runs=None) -> tuple[pd.DataFrame, dict]:
    """Long table (run, arm, seed, policy, step, metric, value, higher_is_better) and notes; of the
    folders named in `runs` when given (analysis.runs.config_runs).

    notes: {"unreadable": [paths], "incomplete": [[run, step], ...]}. Every lm-eval
    metric read here (accuracies, centered accuracies) is higher-is-better.
    """
    cards = load_cards(runs_dir, runs)
    if finished_only:
        cards = cards[cards["status"] == "finished"]
    rows, notes = [], {"unreadable": [], "incomplete": []}
    for card in cards.itertuples():
        for path in sorted(Path(card.run_dir, "eval").glob("step_*.json")):
            try:
                payload = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                notes["unreadable"].append(str(path))
                continue
            match = _STEP.search(path.name)
            step = int(payload.get("step", match.group(1) if match else -1))
            pairs, complete = _rows_of(payload)
            if pairs and pairs[0][0] == AGGREGATE_METRIC and not complete:
                notes["incomplete"].append([card.run, step])
            rows += [{"run": card.run, "arm": card.arm, "seed": card.seed, "policy": card.policy, "step": step,
                      "metric": m, "value": v, "higher_is_better": True} for m, v in pairs]
    cols = ["run", "arm", "seed", "policy", "step", "metric", "value", "higher_is_better"]
    return pd.DataFrame(rows, columns=cols), notes


def wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, arm, seed, step), one column per metric: the shape parity_table reads."""
    if long.empty:
        return pd.DataFrame(columns=["run", "arm", "seed", "policy", "step"])
    keys = ["run", "arm", "seed", "policy", "step"]
    return long.groupby(keys + ["metric"])["value"].last().unstack("metric").reset_index().rename_axis(columns=None)

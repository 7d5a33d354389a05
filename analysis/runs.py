"""Read run folders into tables: one row per logged step, with the run's arm, seed and status."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from jest.tracking import read_metrics


def load_cards(runs_dir: Path) -> pd.DataFrame:
    """One row per run folder that has an ID card: run, arm, seed, status, policy."""
    rows = []
    for card_path in sorted(Path(runs_dir).glob("*/card.json")):
        card = json.loads(card_path.read_text())
        rows.append({"run": card["run"], "arm": card["arm"], "seed": card["seed"], "status": card["status"],
                     "policy": card["config"]["arms"][card["arm"]]["policy"], "run_dir": str(card_path.parent)})
    return pd.DataFrame(rows, columns=["run", "arm", "seed", "status", "policy", "run_dir"])


def load_curves(runs_dir: Path, finished_only: bool = True) -> pd.DataFrame:
    """All metrics rows of all runs, long by step; unfinished runs are left out unless asked."""
    cards = load_cards(runs_dir)
    if finished_only:
        cards = cards[cards["status"] == "finished"]
    frames = []
    for card in cards.itertuples():
        df = pd.DataFrame(read_metrics(Path(card.run_dir) / "metrics.jsonl"))
        if df.empty:
            continue
        frames.append(df.assign(run=card.run, arm=card.arm, seed=card.seed, policy=card.policy))
    if not frames:
        return pd.DataFrame(columns=["run", "arm", "seed", "policy", "step"])
    return pd.concat(frames, ignore_index=True)

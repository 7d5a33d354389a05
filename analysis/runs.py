"""Read run folders into tables: one row per logged step, with the run's arm, seed and status.

Only the runs a config asks for are read (issue #30): runs/ keeps the folders of earlier configs
(an arm since dropped, a seed no longer run), trained with other settings, and a report that read
them would set old numbers against new ones. `config_runs` names the config's runs; every loader
takes them as `runs=` and `left_out` lists the folders that were not read. Every metrics.jsonl is
read through jest.tracking.metrics.verified_rows: a finished run's file must be the one it recorded, and
only its last line may be torn.
"""
from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path

import pandas as pd

from jest.tracking.metrics import verified_rows


def run_name(arm: str, seed: int) -> str:
    """The folder of one arm x seed (workflow/rules/common.smk run_dir)."""
    return f"{arm}_s{seed}"


def config_runs(config: dict, arms: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list[str]:
    """The run folders a config asks for: its arms (or `arms`) x its seeds (or `seeds`)."""
    return [run_name(arm, int(seed)) for arm in (config["arms"] if arms is None else arms)
            for seed in (config["seeds"] if seeds is None else seeds)]


def _card_paths(runs_dir: Path, runs: Collection[str] | None) -> list[Path]:
    paths = sorted(Path(runs_dir).glob("*/card.json"))
    return paths if runs is None else [p for p in paths if p.parent.name in set(runs)]


def left_out(runs_dir: Path, runs: Collection[str] | None) -> list[str]:
    """Folders under runs_dir with a card that `runs` does not name (none when runs is None)."""
    if runs is None:
        return []
    return sorted(p.parent.name for p in Path(runs_dir).glob("*/card.json") if p.parent.name not in set(runs))


def load_cards(runs_dir: Path, runs: Collection[str] | None = None) -> pd.DataFrame:
    """One row per run folder that has an ID card (only the folders named in `runs` when given):
    run, arm, seed, status, policy."""
    rows = []
    for card_path in _card_paths(runs_dir, runs):
        card = json.loads(card_path.read_text())
        rows.append({"run": card["run"], "arm": card["arm"], "seed": card["seed"], "status": card["status"],
                     "policy": card["config"]["arms"][card["arm"]]["policy"], "run_dir": str(card_path.parent)})
    return pd.DataFrame(rows, columns=["run", "arm", "seed", "status", "policy", "run_dir"])


def load_curves(runs_dir: Path, finished_only: bool = True, runs: Collection[str] | None = None) -> pd.DataFrame:
    """All metrics rows of all runs (of `runs` when given), long by step; unfinished runs are left out
    unless asked. Raises jest.tracking.metrics.MetricsError for a metrics.jsonl changed since its run finished
    or damaged before its last line, naming the file and the job that writes it again."""
    cards = load_cards(runs_dir, runs)
    if finished_only:
        cards = cards[cards["status"] == "finished"]
    frames = []
    for card in cards.itertuples():
        df = pd.DataFrame(verified_rows(Path(card.run_dir)))
        if df.empty:
            continue
        frames.append(df.assign(run=card.run, arm=card.arm, seed=card.seed, policy=card.policy))
    if not frames:
        return pd.DataFrame(columns=["run", "arm", "seed", "policy", "step"])
    return pd.concat(frames, ignore_index=True)

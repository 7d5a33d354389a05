"""The scale ladder's per-rung learning rate (issue #15): the lr of each rung's sweep (the uniform 1x
arm at every lr of the grid, one seed) whose run ends with the lowest final held-out loss
(`ladder.lr_metric`). Small models are sensitive to the lr, and an untuned rung would bias the
slope of the multiplier against compute.

    python -m jest.ladder.lr --config SNAPSHOT --runs results/<name>/runs --out results/<name>/ladder/lr_choice.json

The rung's other arms read the choice at run time (jest.ladder.rungs.arm_view) and record it in their card
(config.arms.<arm>.lr_choice). A sweep run that ended without a finite final value (diverged) loses.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from jest.experiment import load_config
from jest.io import atomic_write_json
from jest.ladder.rungs import rung_plan, sweep_seed
from jest.training.runspec import run_name

SCHEMA = "jest-ladder-lr-v1"


def choose_lr(losses: dict[float, float]) -> dict:
    """The lr with the lowest finite loss (ties: the smaller lr), and whether it sits at an edge of the grid
    (then the optimum may lie outside it: widen the grid)."""
    finite = {lr: v for lr, v in losses.items() if v is not None and math.isfinite(v)}
    if not finite:
        raise ValueError(f"no sweep run has a finite final value: {losses}")
    best = min(finite, key=lambda lr: (finite[lr], lr))
    grid = sorted(losses)
    return {"lr": best, "loss": finite[best], "at_grid_edge": len(grid) > 1 and best in (grid[0], grid[-1])}


def final_value(run_dir: Path, metric: str) -> float | None:
    """The run's last logged value of `metric` (its card's final row first, else metrics.jsonl)."""
    card = json.loads((run_dir / "card.json").read_text())
    if card.get("status") == "finished" and metric in (card.get("final") or {}):
        return float(card["final"][metric])
    value = None
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get(metric) is not None:
                value = float(row[metric])
    return value


def lr_choice(cfg: dict, runs_dir: Path) -> dict:
    metric, seed = cfg["ladder"]["lr_metric"], sweep_seed(cfg)
    out = {"schema": SCHEMA, "metric": metric, "seed": seed, "rungs": {}}
    for rung, plan in rung_plan(cfg).items():
        losses = {lr: final_value(Path(runs_dir) / run_name(arm, seed), metric) for arm, lr in plan["sweep"].items()}
        choice = choose_lr(losses)
        out["rungs"][rung] = {**choice, "metric": metric,
                              "losses": {f"{lr:g}": v for lr, v in sorted(losses.items())},
                              "runs": {f"{lr:g}": run_name(arm, seed) for arm, lr in plan["sweep"].items()}}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--runs", required=True, help="results/<name>/runs")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    choice = lr_choice(load_config(args.config), Path(args.runs))
    atomic_write_json(Path(args.out), choice)
    for rung, c in choice["rungs"].items():
        edge = " (at the grid's edge: widen ladder.lr_grid)" if c["at_grid_edge"] else ""
        print(f"{rung}: lr {c['lr']:g} ({choice['metric']} {c['loss']:.4f}; sweep {c['losses']}){edge}")


if __name__ == "__main__":
    main()

"""The scale ladder's per-rung learning rate (issue #15): the lr of each rung's sweep (the uniform 1x
arm at every lr of the grid, one seed) whose run ends with the lowest final held-out loss
(`ladder.lr_metric`). Small models are sensitive to the lr, and an untuned rung would bias the
slope of the multiplier against compute.

The grid extends itself (issue #28): a round scores the runs of its grid; while the best sits on an
edge and `ladder.lr_grid_extend` allows another lr beyond it, the next round adds that lr (a
Snakemake checkpoint per rung and round, workflow/rules/ladder.smk, so only the lrs a rung needs
are trained). The choice is the last round's; one still on an edge is flagged.

    python -m jest.ladder.lr round --config SNAPSHOT --runs results/<name>/runs --rung R --round K [--previous FILE] --out FILE
    python -m jest.ladder.lr choose --config SNAPSHOT --rung R --rounds FILE... --out results/<name>/ladder/lr_choice/R.json
    python -m jest.ladder.lr merge --config SNAPSHOT --choices FILE... --out results/<name>/ladder/lr_choice.json

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

SCHEMA = "jest-ladder-lr-v2"  # v2: rounds of a self-extending grid


def choose_lr(losses: dict[float, float]) -> dict:
    """The lr with the lowest finite loss (ties: the smaller lr), and whether it sits at an edge of the grid
    (then the optimum may lie outside it: widen the grid)."""
    finite = {lr: v for lr, v in losses.items() if v is not None and math.isfinite(v)}
    if not finite:
        raise ValueError(f"no sweep run has a finite final value: {losses}")
    best = min(finite, key=lambda lr: (finite[lr], lr))
    grid = sorted(losses)
    # a one-value grid is all edge: nothing says the optimum is not beside it
    return {"lr": best, "loss": finite[best], "at_grid_edge": best in (grid[0], grid[-1])}


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


def round_grid(plan: dict, previous: dict | None) -> list[float]:
    """The lrs of a round: the rung's first grid, or the previous round's grid and the lr it added."""
    if previous is None:
        return sorted(plan["sweep"].values())
    return sorted(set(previous["grid"]) | set(previous["next"]))


def next_lrs(plan: dict, grid: list[float], best: float) -> list[float]:
    """The lr one step beyond the edge the best sits on, if the config allows one (else none: the sweep stops)."""
    allowed = sorted(set(plan["sweep"].values()) | set(plan["sweep_extra"].values()))
    if best == grid[0]:
        below = [lr for lr in allowed if lr < grid[0]]
        if below:
            return [below[-1]]
    if best == grid[-1]:
        above = [lr for lr in allowed if lr > grid[-1]]
        if above:
            return [above[0]]
    return []


def sweep_round(cfg: dict, runs_dir: Path, rung: str, k: int, previous: dict | None) -> dict:
    """Round `k` of `rung`'s sweep: the final values of its grid's runs, the best, and the lr to add next."""
    metric, seed, plan = cfg["ladder"]["lr_metric"], sweep_seed(cfg), rung_plan(cfg)[rung]
    arm_of = {lr: arm for arm, lr in {**plan["sweep"], **plan["sweep_extra"]}.items()}
    grid = round_grid(plan, previous)
    losses = {lr: final_value(Path(runs_dir) / run_name(arm_of[lr], seed), metric) for lr in grid}
    choice = choose_lr(losses)
    return {"schema": SCHEMA, "rung": rung, "round": k, "metric": metric, "seed": seed, "grid": grid,
            "losses": {f"{lr:g}": v for lr, v in sorted(losses.items())},
            "runs": {f"{lr:g}": run_name(arm_of[lr], seed) for lr in grid},
            **choice, "next": next_lrs(plan, grid, choice["lr"])}


def choose(cfg: dict, rounds: list[dict], rungs: list[str] | None = None) -> dict:
    """The choice of `rungs` (default: every rung) from their last rounds: the lr, every lr tried, how many
    rounds it took, and whether it is still on an edge."""
    metric, seed = cfg["ladder"]["lr_metric"], sweep_seed(cfg)
    out = {"schema": SCHEMA, "metric": metric, "seed": seed, "rungs": {}}
    last = {}
    for r in rounds:
        if r["rung"] not in last or r["round"] > last[r["rung"]]["round"]:
            last[r["rung"]] = r
    plans = rung_plan(cfg)
    for rung in rungs or plans:
        if rung not in last:
            raise ValueError(f"no sweep round of rung '{rung}' among the inputs")
        r = last[rung]
        if r["next"]:
            raise ValueError(f"rung '{rung}': round {r['round']} asks for another lr {r['next']}; it is not the last")
        out["rungs"][rung] = {"lr": r["lr"], "loss": r["loss"], "at_grid_edge": r["at_grid_edge"], "metric": metric,
                              "losses": r["losses"], "runs": r["runs"], "rounds": r["round"] + 1,
                              "first_grid": sorted(plans[rung]["sweep"].values())}
    return out


def merge(cfg: dict, choices: list[dict]) -> dict:
    """lr_choice.json: every rung's own choice in one file (the report's and the published results')."""
    out = {"schema": SCHEMA, "metric": cfg["ladder"]["lr_metric"], "seed": sweep_seed(cfg), "rungs": {}}
    for c in choices:
        out["rungs"].update(c["rungs"])
    missing = sorted(set(rung_plan(cfg)) - set(out["rungs"]))
    if missing:
        raise ValueError(f"no lr choice for rungs {missing}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("round", help="score one round of a rung's sweep")
    r.add_argument("--config", required=True)
    r.add_argument("--runs", required=True, help="results/<name>/runs")
    r.add_argument("--rung", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--previous", help="the rung's previous round (rounds after the first; empty for the first)")
    r.add_argument("--out", required=True)
    c = sub.add_parser("choose", help="a rung's choice from its rounds (every rung's without --rung)")
    c.add_argument("--config", required=True)
    c.add_argument("--rung", action="append", help="the rung(s) to choose for (default: every rung)")
    c.add_argument("--rounds", nargs="+", required=True)
    c.add_argument("--out", required=True)
    m = sub.add_parser("merge", help="lr_choice.json from the rungs' own choices")
    m.add_argument("--config", required=True)
    m.add_argument("--choices", nargs="+", required=True)
    m.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.cmd == "round":
        previous = json.loads(Path(args.previous).read_text()) if args.previous else None
        out = sweep_round(cfg, Path(args.runs), args.rung, args.round, previous)
        atomic_write_json(Path(args.out), out)
        then = f"; next round adds lr {out['next'][0]:g}" if out["next"] else ""
        edge = " (still at the grid's edge: raise ladder.lr_grid_extend)" if out["at_grid_edge"] and not out["next"] else ""
        print(f"{args.rung} round {args.round}: best lr {out['lr']:g} ({out['metric']} {out['loss']:.4f}; "
              f"sweep {out['losses']}){then}{edge}")
        return
    if args.cmd == "merge":
        atomic_write_json(Path(args.out), merge(cfg, [json.loads(Path(f).read_text()) for f in args.choices]))
        print(f"lr choice of every rung: {args.out}")
        return
    choice = choose(cfg, [json.loads(Path(f).read_text()) for f in args.rounds], args.rung)
    atomic_write_json(Path(args.out), choice)
    for rung, ch in choice["rungs"].items():
        edge = " (at the grid's edge after every extension: widen ladder.lr_grid or raise ladder.lr_grid_extend)" \
            if ch["at_grid_edge"] else ""
        print(f"{rung}: lr {ch['lr']:g} ({choice['metric']} {ch['loss']:.4f}; sweep {ch['losses']}, "
              f"{ch['rounds']} round(s)){edge}")


if __name__ == "__main__":
    main()

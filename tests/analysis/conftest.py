"""Synthetic run folders in the trainer's real formats (card.json + metrics.jsonl), with known answers.

The baseline's held-out loss is L(s) = 3 + 4 exp(-s / 60) (+ a per-seed offset).
An arm with speedup k follows L(k s): it reaches the baseline's final value at
T_u / k exactly. FLOPs per step: C for training; an arm with filter ratio f
scores a super-batch of b / (1 - f) at a third of the training cost per token,
so train+score = C (1 + (1 / (1 - f)) / 3) per step; total adds FIXED once.

The uniform compute family: uniform arms at budgets 0.5, 1, 2, 4 (100-800 steps) follow the same
L(s), so the family's final value at b x 200 steps is L(200 b): an arm with speed k ends (at 200
steps) at L(200 k), exactly the family's final value at budget k, and its iso-loss multiplier in
iterations is k. Extra held-out sets: `src_email` (JEST arms learn it at half speed: multiplier
0.5) and `ext_bible` (speed 1 for every arm). Every run logs candidates drawn and passes over a
pool of POOL_SEQUENCES.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

T, EVAL_EVERY, BATCH = 200, 25, 16
C = 1.0e9          # training FLOPs per step
FIXED = 5.0e10     # one-time reference cost (the `total` accounting)
POOL = {"brown": 0.2, "email": 0.5, "sotu": 0.3}
POOL_SEQUENCES = 12_000
BUDGETS = {"uniform_b0.5": 0.5, "uniform": 1.0, "uniform_b2": 2.0, "uniform_b4": 4.0}
QUALITY = {"clean": 0.8, "corrupted": 0.2}


def loss(step: float, speed: float = 1.0, offset: float = 0.0) -> float:
    return 3.0 + 4.0 * math.exp(-speed * step / 60.0) + offset


def score_overhead(filter_ratio: float) -> float:
    """Scoring FLOPs per step as a multiple of training FLOPs: B/b forward passes at 1/3 the cost."""
    return 0.0 if filter_ratio == 0 else (1.0 / (1.0 - filter_ratio)) / 3.0


def write_run(runs: Path, arm: str, seed: int, config: dict, *, speed: float = 1.0, offset: float = 0.0,
              status: str = "finished", steps: int | None = None, brown_end: float | None = None,
              set_speeds: dict | None = None) -> Path:
    """One run folder; `brown_end`: the selected share of 'brown' at the last step (linear ramp from the pool's)."""
    arm_cfg = config["arms"][arm]
    steps = steps or round(T * arm_cfg.get("budget", 1.0))
    f = arm_cfg.get("filter_ratio", 0.0) if arm_cfg["policy"] in ("jest", "offline_filter") else 0.0
    if arm_cfg["policy"] == "offline_filter":
        f = 0.0                     # scored once, offline: no per-step scoring; the pool scoring is in FIXED
    fixed = FIXED if arm_cfg["policy"] in ("jest", "offline_filter") else 0.0
    sets = {"src_email": 1.0, "ext_bible": 1.0, **(set_speeds or {})}
    d = runs / f"{arm}_s{seed}"
    d.mkdir(parents=True)
    rows = []
    for s in range(1, steps + 1):
        brown = POOL["brown"] if brown_end is None else POOL["brown"] + (brown_end - POOL["brown"]) * s / T
        rest = (1 - brown) / (1 - POOL["brown"])
        row = {"step": s, "examples_seen": s * BATCH, "tokens_seen": s * BATCH * 128, "train_loss": loss(s, speed),
               "flops_train": C * s, "flops_train_score": C * s * (1 + score_overhead(f)),
               "flops_total": C * s * (1 + score_overhead(f)) + fixed, "lr": 1e-3, "grad_norm": 1.0,
               "wall_time": 0.5 * s, "sel_share_source_brown": brown,
               "sel_share_source_email": POOL["email"] * rest, "sel_share_source_sotu": POOL["sotu"] * rest,
               "sel_share_quality_clean": 0.8, "sel_share_quality_corrupted": 0.2}
        candidates = s * BATCH / (1.0 - f)
        row.update(candidates_seen=candidates, pool_passes=candidates / POOL_SEQUENCES,
                   unique_sequences=min(candidates, POOL_SEQUENCES))
        if s % EVAL_EVERY == 0 or s == steps:
            row["heldout_loss"] = loss(s, speed, offset)
            row["heldout_bpb"] = row["heldout_loss"] / math.log(2) / 4.0
            for name, k in sets.items():
                row[f"heldout_loss_{name}"] = loss(s, k, offset)
                row[f"heldout_bpb_{name}"] = row[f"heldout_loss_{name}"] / math.log(2) / 4.0
        rows.append(row)
    card = {"run": d.name, "arm": arm, "seed": seed, "status": status, "config": config,
            "config_hash": "abc123", "git_commit": "deadbeef", "error": None if status != "failed" else "boom",
            "packages": {"python": "3.11.7", "torch": "2.13.0+cpu"}, "machine": {"host": "test", "cpus": 2},
            "device": "cpu", "n_params": 418272, "fixed_flops": fixed, "started": "2026-01-01T00:00:00+0000",
            "pool_share": {**{f"pool_share_source_{k}": v for k, v in POOL.items()},
                           **{f"pool_share_quality_{k}": v for k, v in QUALITY.items()}}}
    if status == "finished":
        card.update(finished="2026-01-01T01:00:00+0000", steps=steps, final=rows[-1],
                    flops={k: rows[-1][k] for k in ("flops_train", "flops_train_score", "flops_total")})
    (d / "card.json").write_text(json.dumps(card))
    with open(d / "metrics.jsonl", "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    return d


def synth_config(arms: dict) -> dict:
    return {"name": "synth", "seeds": [0, 1, 2], "model": {"n_layer": 2, "n_embd": 96},
            "train": {"steps": T, "eval_every": EVAL_EVERY}, "arms": arms}


def make_synth_results(root: Path, family: bool = True, controls: bool = False) -> dict:
    """<root>/results/synth/runs with a uniform baseline (3 seeds), the uniform family around it
    (budgets 0.5, 2, 4; `family`), three JEST arms with known speedups: jest_f0.5 (2x), jest_f0.8
    (4x: the family shifted by 4x in compute), jest_topk_f0.8 (never reaches parity: 0.8x), a failed
    run, and with `controls` an oracle_clean arm (3x) and an offline_filter arm at f = 0.8 (2x)."""
    arms = {"uniform": {"policy": "uniform"},
            "jest_f0.5": {"policy": "jest", "filter_ratio": 0.5, "criterion": "learnability", "selector": "joint"},
            "jest_f0.8": {"policy": "jest", "filter_ratio": 0.8, "criterion": "learnability", "selector": "joint"},
            "jest_topk_f0.8": {"policy": "jest", "filter_ratio": 0.8, "criterion": "learnability",
                               "selector": "topk"}}
    if family:
        arms.update({a: {"policy": "uniform", "budget": b} for a, b in BUDGETS.items() if a != "uniform"})
    if controls:
        arms.update({"oracle_clean": {"policy": "oracle_clean"},
                     "offline_filter_f0.8": {"policy": "offline_filter", "filter_ratio": 0.8}})
    cfg = synth_config(arms)
    runs = root / "results" / "synth" / "runs"
    email = {"src_email": 0.5}
    for seed, off in {0: -0.01, 1: 0.0, 2: 0.01}.items():
        write_run(runs, "uniform", seed, cfg, offset=off)
        for arm in (a for a in BUDGETS if a != "uniform" and family):
            write_run(runs, arm, seed, cfg, offset=off)
        write_run(runs, "jest_f0.5", seed, cfg, speed=2.0, offset=off, brown_end=0.4, set_speeds=email)
        write_run(runs, "jest_f0.8", seed, cfg, speed=4.0, offset=off, brown_end=0.7, set_speeds=email)
        write_run(runs, "jest_topk_f0.8", seed, cfg, speed=0.8, offset=off, brown_end=0.9, set_speeds=email)
        if controls:
            write_run(runs, "oracle_clean", seed, cfg, speed=3.0, offset=off, brown_end=1.0, set_speeds=email)
            write_run(runs, "offline_filter_f0.8", seed, cfg, speed=2.0, offset=off, brown_end=0.6,
                      set_speeds=email)
    write_run(runs, "jest_f0.8", 3, cfg, speed=4.0, status="failed", steps=40)
    ref = root / "results" / "synth" / "references" / "ref"
    ref.mkdir(parents=True)
    (ref / "card.json").write_text(json.dumps({"status": "finished", "steps": 300, "n_params": 664192,
                                               "train_split": "curated", "final": {"heldout_loss": 3.05,
                                                                                   "flops_train": 2.7e12}}))
    return {"results": root / "results", "config": "synth", "runs": runs, "cfg": cfg}


@pytest.fixture(scope="session")
def make_synth():
    return make_synth_results


@pytest.fixture
def synth_results(tmp_path):
    return make_synth_results(tmp_path)


@pytest.fixture(scope="session")
def write_synth_run():
    return write_run

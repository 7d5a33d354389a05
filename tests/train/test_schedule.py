"""The learning-rate schedules at known points, the arm budget (the uniform compute family)
in the config, and a real smoke run of a budget arm: own length, own anneal, own evaluation
points, budget and FLOPs on the card."""
from __future__ import annotations

import json
import math

import pytest

from jest.config import ConfigError, deep_merge

from jest.experiment import validate_config
from jest.training.schedule import StepPlan, arm_train_config, decay_steps, log_spaced_steps, lr_at, run_steps
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, train


def _train_cfg(**train) -> dict:
    return validate_config({"name": "x", "train": {"steps": 100, "warmup_steps": 10, "lr": 1.0,
                                                   "min_lr_ratio": 0.1, **train}})["train"]


def test_cosine_at_known_points():
    tcfg = _train_cfg()
    assert lr_at(0, tcfg) == pytest.approx(0.1)                # warmup: (step + 1) / warmup of the peak
    assert lr_at(9, tcfg) == pytest.approx(1.0)
    assert lr_at(10, tcfg) == pytest.approx(1.0)               # decay starts at the peak
    assert lr_at(55, tcfg) == pytest.approx(0.55)              # halfway through the decay: (peak + floor) / 2
    assert lr_at(99, tcfg) == pytest.approx(0.1, abs=1e-3)     # the floor at the run's end
    assert all(lr_at(s, tcfg) > lr_at(s + 1, tcfg) for s in range(10, 99))


def test_wsd_at_known_points():
    tcfg = _train_cfg(schedule="wsd", decay_fraction=0.2)
    assert decay_steps(tcfg) == 20
    assert lr_at(0, tcfg) == pytest.approx(0.1) and lr_at(9, tcfg) == pytest.approx(1.0)
    assert {lr_at(s, tcfg) for s in range(10, 80)} == {1.0}    # stable: the peak, exactly
    assert lr_at(80, tcfg) == pytest.approx(1.0 - 0.9 / 20)    # the first decay step
    assert lr_at(89, tcfg) == pytest.approx(0.55)              # halfway down
    assert lr_at(99, tcfg) == pytest.approx(0.1)               # the floor exactly at the final step
    assert all(lr_at(s, tcfg) > lr_at(s + 1, tcfg) for s in range(79, 99))


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
@pytest.mark.parametrize("budget, steps", [(0.5, 100), (1.0, 200), (2.0, 400), (4.0, 800)])
def test_budget_scales_the_steps_and_each_run_anneals_to_the_floor_at_its_own_end(schedule, budget, steps):
    cfg = validate_config({"name": "x", "train": {"steps": 200, "warmup_steps": 20, "lr": 1.0, "min_lr_ratio": 0.1,
                                                  "schedule": schedule},
                           "arms": {"u": {"policy": "uniform", "budget": budget}}})
    assert cfg["arms"]["u"] == {"policy": "uniform", "budget": budget}
    tcfg = arm_train_config(cfg, "u")
    assert tcfg["steps"] == run_steps(cfg["train"], budget) == steps and cfg["train"]["steps"] == 200
    assert tcfg["warmup_steps"] == 20                          # warmup is not scaled
    assert lr_at(steps - 1, tcfg) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(steps // 2, tcfg) > 0.3                       # mid-run: far above the floor, at every budget
    plan = StepPlan.for_run(cfg, tcfg, snapshots=True)
    assert plan.evaluates(steps) and plan.snapshots(steps) and plan.checkpoints(steps)
    assert max(plan.snapshot_steps) == max(plan.eval_steps) == steps
    assert min(plan.eval_steps) == max(1, round(steps / 64))   # evaluation points scale with the run


def test_budget_defaults_to_one_on_every_arm():
    cfg = validate_config({"name": "x"})
    assert cfg["arms"]["uniform"]["budget"] == 1.0


@pytest.mark.parametrize("arms, train, expected", [
    ({"u": {"policy": "uniform", "budget": 0.05}}, {}, "'arms.u.budget' = 0.05 gives 10 steps, too few"),
    ({"u": {"policy": "uniform", "budget": 0.0}}, {}, "arms.u.budget"),
    ({"u": {"policy": "uniform", "budget": 0.5}}, {"schedule": "wsd", "decay_fraction": 0.9},
     "the wsd decay's 90 steps ('train.decay_fraction')"),
    ({"u": {"policy": "uniform", "budget": 2, "tau": 0.1}}, {}, "'allow_repeats' takes no other keys; remove ['tau']"),
])
def test_a_budget_too_small_for_the_schedule_names_the_key(arms, train, expected):
    with pytest.raises(ConfigError) as err:
        validate_config({"name": "x", "train": {"steps": 200, "warmup_steps": 20, **train}, "arms": arms})
    assert expected in str(err.value)


def test_a_budget_arm_trains_to_its_own_length_with_the_same_warmup(smoke_workspace, tmp_path):
    """Two real runs of one seed: budget 1 (12 steps) and budget 0.5 (6 steps). The half run anneals
    to the floor at its own step 6, evaluates and snapshots there, records its budget, steps,
    examples and FLOPs; the warmup updates are the same in both (the same data, the same lr)."""
    ws = smoke_workspace
    cfg = deep_merge(ws["cfg"], {"train": {"steps": 12, "warmup_steps": 3, "eval_every": 100, "eval_log_points": 2,
                                           "checkpoint_every": 100},
                                 "arms": {"uniform_x0.5": {"policy": "uniform", "budget": 0.5}},
                                 "evaluation": {"checkpoints": 2}, "mlflow": {"sync_every": 100}})
    cfg = validate_config(cfg)
    rows = {}
    for arm in ("uniform", "uniform_x0.5"):
        train(RunSpec(cfg=cfg, arm=arm, seed=0, run_dir=tmp_path / arm, shards_dir=ws["shards"],
                      tokenizer_dir=ws["tokenizer"]), threads=1, progress=False)
        rows[arm] = read_metrics(tmp_path / arm / "metrics.jsonl")
    full, half = rows["uniform"], rows["uniform_x0.5"]
    assert [r["step"] for r in half] == list(range(1, 7)) and [r["step"] for r in full] == list(range(1, 13))
    # each row's lr is its own schedule's: the half run is further down at the same step
    assert [r["lr"] for r in half] == [lr_at(s, arm_train_config(cfg, "uniform_x0.5")) for s in range(6)]
    assert [r["lr"] for r in full] == [lr_at(s, cfg["train"]) for s in range(12)]
    assert half[5]["lr"] < full[5]["lr"]
    # the updates of steps 0-3 (warmup, then the decay's first step at the peak) are the same in both
    # runs: rows 1-5 (the loss before each update) agree bit for bit, and part from row 6 on
    assert [r["train_loss"] for r in half[:5]] == [r["train_loss"] for r in full[:5]]
    assert half[5]["train_loss"] != full[5]["train_loss"]
    assert half[-1]["heldout_loss"] > full[-1]["heldout_loss"]  # less training, worse held-out loss
    assert sorted(p.name for p in (tmp_path / "uniform_x0.5" / "snapshots").iterdir()) == \
        [f"step_{s:07d}" for s in log_spaced_steps(6, 2)]
    card = json.loads((tmp_path / "uniform_x0.5" / "card.json").read_text())
    assert card["budget"] == 0.5 and card["config"]["arms"]["uniform_x0.5"]["budget"] == 0.5
    assert card["steps"] == card["schedule"]["steps"] == 6 and card["config"]["train"]["steps"] == 12
    b, seq_len = cfg["train"]["batch_size"], cfg["data"]["seq_len"]
    assert card["final"]["examples_seen"] == 6 * b and card["final"]["tokens_seen"] == 6 * b * seq_len
    per_step = card["flops_per_token"]["train"] * b * seq_len
    assert card["flops"]["flops_train"] == card["flops"]["flops_total"] == pytest.approx(6 * per_step)
    assert full[-1]["flops_train"] == pytest.approx(2 * half[-1]["flops_train"])
    assert math.isfinite(half[-1]["heldout_loss"])
    # the curated-domain set at every evaluation, every other held-out set only at the all-set points
    # (eval_sets_points, log-spaced, the final step included)
    plan = StepPlan.for_run(cfg, cfg["train"], snapshots=True)
    curated = [r["step"] for r in full if "heldout_loss" in r]
    others = {k for r in full for k in r if k.startswith("heldout_loss_")}
    assert others, "the smoke shards hold pool_heldout and external sets"
    for key in others:
        assert [r["step"] for r in full if key in r] == sorted(plan.all_sets_steps) == \
            log_spaced_steps(12, cfg["train"]["eval_sets_points"])
    assert set(plan.all_sets_steps) <= set(curated) and 12 in plan.all_sets_steps


def test_every_held_out_set_is_scored_only_at_the_log_spaced_all_set_points():
    tcfg = _train_cfg(steps=200, eval_every=50, eval_log_points=16, eval_sets_points=4)
    plan = StepPlan.for_run({"evaluation": {"checkpoints": 4}}, tcfg, snapshots=True)
    assert sorted(plan.all_sets_steps) == [12, 31, 79, 200] == sorted(plan.snapshot_steps)
    assert all(plan.evaluates(s) for s in plan.all_sets_steps)          # an all-set point is an evaluation
    assert [s for s in range(1, 201) if plan.evaluates_all_sets(s)] == [12, 31, 79, 200]
    assert plan.evaluates(50) and not plan.evaluates_all_sets(50)       # the curated set alone

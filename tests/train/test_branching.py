"""Cooldown branches of the uniform compute family (jest/training/branching.py), on real smoke-scale runs: a
branch that starts from its trunk's state at its decay is the separately trained run bit for bit
(rows, held-out losses, snapshots, final weights, card), also when killed mid-decay, and costs only
its decay; the config refuses a branch that could not be that run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import jest.training.trainer
from jest.training.branching import BRANCH_POINTS, BRANCH_SNAPSHOTS, branch_step, trunk_plan
from jest.config import ConfigError, deep_merge
from jest.experiment import validate_config
from jest.training.schedule import StepPlan, arm_train_config
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, train

VOLATILE = ("wall_time", "time")
TRUNK, BRANCHES = "uniform_x2", ("uniform", "uniform_x0.5")
# 20 steps at budget 1; wsd with a 20% decay: the trunk (x2) runs 40 steps (decay from step 32), the
# branches 20 (S = 16) and 10 (S = 8). Evaluation and snapshot points differ per length, so the trunk
# evaluates for the branches at steps its own plan skips, and both branches need its step-1 snapshot.
FAMILY = {"train": {"steps": 20, "warmup_steps": 3, "schedule": "wsd", "decay_fraction": 0.2, "eval_every": 100,
                    "eval_log_points": 4, "checkpoint_every": 6},
          "evaluation": {"checkpoints": 2}, "mlflow": {"sync_every": 100},
          "arms": {"uniform": {"policy": "uniform", "branch_from": TRUNK},
                   "uniform_x0.5": {"policy": "uniform", "budget": 0.5, "branch_from": TRUNK},
                   TRUNK: {"policy": "uniform", "budget": 2}}}


def _separate(cfg: dict) -> dict:
    """The same family, every run trained separately (no branch_from)."""
    return {**cfg, "arms": {a: {k: v for k, v in arm.items() if k != "branch_from"} for a, arm in cfg["arms"].items()}}


class StepCounter:
    """train_step of the real loop, counted; optionally failing at one call (a fault in the real path)."""

    def __init__(self, fail_at: int | None = None):
        self.calls, self.fail_at, self.real = 0, fail_at, jest.training.trainer.train_step

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("injected fault: the job dies here")
        return self.real(*args, **kwargs)


def _train(ws, cfg, arm, family_dir: Path, monkeypatch, counter: StepCounter | None = None) -> int:
    counter = counter or StepCounter()
    with monkeypatch.context() as m:
        m.setattr(jest.training.trainer, "train_step", counter)
        train(RunSpec(cfg=cfg, arm=arm, seed=0, run_dir=family_dir / f"{arm}_s0", shards_dir=ws["shards"],
                      tokenizer_dir=ws["tokenizer"]), threads=1, progress=False)
    return counter.calls


@pytest.fixture(scope="module")
def family(smoke_workspace, tmp_path_factory):
    """The trunk (trained once; each test branches from its own copy) and the separately trained runs."""
    ws, base = smoke_workspace, tmp_path_factory.mktemp("family")
    cfg = validate_config(deep_merge(ws["cfg"], {**FAMILY, "results_dir": str(base)}))
    separate = validate_config(_separate(cfg))
    mp = pytest.MonkeyPatch()
    steps = {"trunk": _train(ws, cfg, TRUNK, base / "trunk", mp)}
    for arm in BRANCHES:
        steps[arm] = _train(ws, separate, arm, base / "separate", mp)
    return {"ws": ws, "cfg": cfg, "base": base, "separate": base / "separate", "steps": steps}


def _branch_family(family, name: str) -> Path:
    family_dir = family["base"] / name
    shutil.copytree(family["base"] / "trunk" / f"{TRUNK}_s0", family_dir / f"{TRUNK}_s0")
    return family_dir


def _rows(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_metrics(run_dir / "metrics.jsonl")]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _assert_is_the_separate_run(run: Path, separate: Path) -> dict:
    assert _rows(run) == _rows(separate)  # every row, every key (train_loss, lr, each held-out set), exactly
    assert _same_weights(run / "model", separate / "model")
    snapshots = sorted(p.name for p in (run / "snapshots").iterdir())
    assert snapshots == sorted(p.name for p in (separate / "snapshots").iterdir())
    assert all(_same_weights(run / "snapshots" / s, separate / "snapshots" / s) for s in snapshots)
    card, alone = (json.loads((d / "card.json").read_text()) for d in (run, separate))
    strip = lambda final: {k: v for k, v in final.items() if k not in VOLATILE}  # noqa: E731
    assert strip(card["final"]) == strip(alone["final"]) and card["flops"] == alone["flops"]
    assert (card["steps"], card["unique_sequences"], card["pool_passes"]) == \
        (alone["steps"], alone["unique_sequences"], alone["pool_passes"])
    return card


def test_a_branch_is_the_separately_trained_run_bit_for_bit_and_trains_only_its_decay(family, monkeypatch):
    ws, cfg, family_dir = family["ws"], family["cfg"], _branch_family(family, "branched")
    trunk = family_dir / f"{TRUNK}_s0"
    assert sorted(p.name for p in (trunk / BRANCH_POINTS).iterdir()) == ["step_0000008", "step_0000016"]
    # the trunk's own lm-eval points only in snapshots/; the one both branches need (step 1) apart
    assert sorted(p.name for p in (trunk / "snapshots").iterdir()) == ["step_0000002", "step_0000040"]
    assert sorted(p.name for p in (trunk / BRANCH_SNAPSHOTS).iterdir()) == ["step_0000001"]
    trained = {}
    for arm in BRANCHES:
        trained[arm] = _train(ws, cfg, arm, family_dir, monkeypatch)
        card = _assert_is_the_separate_run(family_dir / f"{arm}_s0", family["separate"] / f"{arm}_s0")
        at = branch_step(cfg, arm)
        assert card["branched_from"] == {"run": f"{TRUNK}_s0", "step": at}
        assert card["trained_steps"] == trained[arm] == card["steps"] - at and card["resumed_from_step"] == at
    # each branch trained its decay only: 4 and 2 optimizer steps, against 20 and 10 separately
    assert trained == {"uniform": 4, "uniform_x0.5": 2}
    assert {arm: family["steps"][arm] for arm in BRANCHES} == {"uniform": 20, "uniform_x0.5": 10}
    with_branches = family["steps"]["trunk"] + sum(trained.values())
    separately = family["steps"]["trunk"] + sum(family["steps"][arm] for arm in BRANCHES)
    assert (with_branches, separately) == (46, 70)
    # once copied, the trunk's branch points and branch-only snapshots are gone
    assert not any((trunk / BRANCH_POINTS).iterdir()) and not any((trunk / BRANCH_SNAPSHOTS).iterdir())


def test_a_branch_killed_mid_decay_resumes_to_the_same_result(family, monkeypatch):
    ws, cfg, family_dir = family["ws"], family["cfg"], _branch_family(family, "killed")
    run = family_dir / "uniform_s0"
    # steps 17, 18 (checkpoint_every 6: a checkpoint of the branch's own at 18), then dies in step 19
    with pytest.raises(RuntimeError, match="injected fault"):
        _train(ws, cfg, "uniform", family_dir, monkeypatch, StepCounter(fail_at=3))
    assert json.loads((run / "card.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000016", "step_0000018"]
    assert _train(ws, cfg, "uniform", family_dir, monkeypatch) == 2  # steps 19 and 20
    card = _assert_is_the_separate_run(run, family["separate"] / "uniform_s0")
    assert card["resumed_from_step"] == 18 and card["branched_from"] == {"run": f"{TRUNK}_s0", "step": 16}
    assert card["trained_steps"] == 4


def test_a_branch_without_its_trunks_branch_point_trains_from_step_0_to_the_same_result(family, monkeypatch):
    ws, cfg, family_dir = family["ws"], family["cfg"], _branch_family(family, "no_point")
    shutil.rmtree(family_dir / f"{TRUNK}_s0" / BRANCH_POINTS)  # a trunk trained before the branch was configured
    assert _train(ws, cfg, "uniform_x0.5", family_dir, monkeypatch) == 10
    card = _assert_is_the_separate_run(family_dir / "uniform_x0.5_s0", family["separate"] / "uniform_x0.5_s0")
    assert card["branched_from"] is None and card["trained_steps"] == 10


def test_the_trunk_plan_adds_what_each_branch_needs_before_its_branch_point():
    cfg = validate_config({"name": "x", **FAMILY})
    tcfg = arm_train_config(cfg, TRUNK)
    own, plan = StepPlan.for_run(cfg, tcfg, snapshots=True), trunk_plan(cfg, TRUNK, StepPlan.for_run(cfg, tcfg, True))
    assert plan.branch_points == {8, 16} and plan.snapshot_steps == own.snapshot_steps == {2, 40}
    assert plan.branch_snapshot_steps == {1}
    for arm in BRANCHES:
        branch, at = StepPlan.for_run(cfg, arm_train_config(cfg, arm), True), branch_step(cfg, arm)
        assert all(plan.evaluates(s) for s in range(1, at + 1) if branch.evaluates(s))
        assert all(plan.evaluates_all_sets(s) for s in branch.all_sets_steps if s <= at)
    assert plan.evaluates(7) and not own.evaluates(7)  # the 20-step branch's log-spaced point
    assert trunk_plan(cfg, "uniform", own) == own  # a branch is no trunk: its plan is its own


@pytest.mark.parametrize("change, expected", [
    ({"train": {"schedule": "cosine"}}, "'arms.uniform.branch_from' = 'uniform_x2' needs 'train.schedule' = 'wsd'"),
    ({"arms": {"uniform": {"branch_from": "nope"}}}, "is not another uniform-policy arm (the same draw set); allowed"),
    ({"arms": {"uniform": {"branch_from": "uniform"}}}, "is not another uniform-policy arm"),
    ({"arms": {"uniform": {"budget": 3}}}, "the branch's budget 3 must be below the trunk's 2"),
    ({"arms": {TRUNK: {"branch_from": "uniform"}}}, "= 'uniform_x2' is itself a branch (of 'uniform')"),
    ({"arms": {"j": {"policy": "jest", "branch_from": TRUNK}}}, "'arms.j.branch_from': only a uniform-policy arm"),
])
def test_a_branch_that_could_not_be_the_separate_run_is_refused_naming_the_key(change, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(deep_merge({"name": "x", **FAMILY}, change))
    assert expected in str(err.value)

"""The length axis (issue #28, config/length.yaml): the ladder machinery with `ladder.axis:
tokens_per_param`: one learner shape at training lengths from 0.25 to 16 tokens per parameter, each
length's uniform family a warmup-stable-decay trunk with cooldown branches, an lr sweep per length
that may extend its grid, no repetition at any length. What the config must say, what it refuses,
and what `snakemake length -n` plans without a corpus."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jest.config import PROJECT_ROOT, ConfigError, deep_merge
from jest.experiment import load_config, validate_config
from jest.ladder.rungs import arm_view, check_draws, estimate_cost, own_steps, rung_plan
from jest.training.schedule import arm_train_config, stable_steps

LENGTH = PROJECT_ROOT / "config" / "length.yaml"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def cfg():
    return load_config(LENGTH)


def test_lengths_span_a_quarter_to_sixteen_tokens_per_parameter_on_one_learner(cfg):
    plans = rung_plan(cfg)
    tpp = [p["tokens_per_param"] for p in plans.values()]
    assert len(plans) >= 4 and tpp == sorted(tpp)
    assert tpp[0] == pytest.approx(0.25, rel=0.02) and tpp[-1] >= 16 * 0.99
    assert len({p["matmul_params"] for p in plans.values()}) == 1
    assert next(iter(plans.values()))["matmul_params"] == 417_792        # the tiny default's learner
    assert any(abs(t - 1.0) < 0.05 for t in tpp)                         # the default's length is a point
    assert len(cfg["seeds"]) >= 3


def test_each_length_family_is_a_trunk_with_cooldown_branches(cfg):
    for rung, plan in rung_plan(cfg).items():
        trunk = max(plan["family"], key=plan["family"].get)
        assert "branch_from" not in cfg["arms"][trunk]
        for arm in plan["family"]:
            if arm != trunk:
                assert cfg["arms"][arm]["branch_from"] == trunk
                # the branch shares every step before its decay with the trunk, and trains only that decay
                t = arm_train_config(cfg, arm)
                assert stable_steps(t) <= stable_steps(arm_train_config(cfg, trunk))
                assert own_steps(cfg, arm) == t["steps"] - stable_steps(t) < t["steps"]


def test_a_branch_sees_its_trunk_with_the_same_lr_choice(cfg, tmp_path):
    """The branch checks the trunk's state against the trunk's identity computed from the branch's view:
    the view must carry the rung's lr choice on the trunk too, or every branch would retrain from step 0."""
    choice = tmp_path / "L4.json"
    choice.write_text(json.dumps({"rungs": {"L4": {"lr": 0.003, "metric": "heldout_loss", "losses": {"0.003": 5.0}}}}))
    view = arm_view(cfg, "L4_uniform", choice)
    trunk_view = arm_view(cfg, "L4_uniform_x2", choice)
    from jest.training.runspec import training_hash
    assert training_hash(view, "L4_uniform_x2") == training_hash(trunk_view, "L4_uniform_x2")


def test_no_arm_repeats_data_at_any_length(cfg):
    rows = check_draws(cfg, pool_sequences=740_696, clean_sequences=31_000)   # the large pool (2026-12-07 build)
    assert max(r["passes"] for r in rows) < 1
    longest = max(rung_plan(cfg), key=lambda r: rung_plan(cfg)[r]["tokens"])
    jest = next(r for r in rows if r["arm"] == f"{longest}_jest_f0.8")
    assert jest["drawn"] == rung_plan(cfg)[longest]["steps"] * 80            # b / (1 - f) = 16 / 0.2


def test_the_cost_estimate_counts_branches_by_their_decay_only(cfg):
    est = estimate_cost(cfg, {r: 16_700.0 for r in rung_plan(cfg)}, {r: 42_000.0 for r in rung_plan(cfg)})
    plans = rung_plan(cfg)
    assert list(est["core_seconds"]) == list(plans)
    # 4x longer at each step of the axis: the cost grows about 4x per length
    costs = list(est["core_seconds"].values())
    assert all(3.5 < b / a < 4.5 for a, b in zip(costs[1:], costs[2:]))


@pytest.mark.parametrize("edit, match", [
    (lambda raw: raw["ladder"]["rungs"]["L4"].update(model={"n_layer": 2, "n_embd": 64, "n_head": 4}),
     r"one learner at several lengths"),
    (lambda raw: raw["ladder"]["rungs"]["L4"].update(tokens_per_param=1.5), r"L4.tokens_per_param' = 1.5 is only"),
    (lambda raw: raw["train"].update(schedule="cosine"), r"family_branches' needs 'train.schedule: wsd'"),
])
def test_a_length_axis_that_cannot_be_read_is_refused_naming_the_key(edit, match):
    raw = yaml.safe_load(LENGTH.read_text())
    edit(raw)
    with pytest.raises(ConfigError, match=match):
        validate_config(raw)


@pytest.mark.slow
def test_dry_run_plans_every_length_sweep_and_arm_without_a_corpus(cfg, tmp_path):
    path = tmp_path / "length.yaml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(LENGTH.read_text()), {"results_dir": str(tmp_path / "r")})))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "length", "-n", "--configfile", str(path)],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    runs = set(re.findall(r"--arm (\S+) --seed (\d+)", out))
    seeds = {str(s) for s in cfg["seeds"]}
    for rung, plan in rung_plan(cfg).items():
        for arm in plan["arms"]:
            assert {s for a, s in runs if a == arm} == seeds, arm
        for arm in plan["sweep"]:                              # every length's first sweep round at once
            assert {s for a, s in runs if a == arm} == {str(cfg["seeds"][0])}, arm
        assert not {a for a, _ in runs} & set(plan["sweep_extra"])   # extra lrs only when a round asks
    assert "checkpoint ladder_lr_round" in out and "rule analyze_ladder" in out

"""analysis.costs predicts the FLOP ledger the runs log, exactly (the numbers below are the ledger
of the committed tiny reference runs: results/reference/tiny, cards of uniform_s0 / jest_f0.8_s0)."""
import pytest

from analysis.costs import config_costs, hours, main
from jest.config import PROJECT_ROOT
from jest.experiment import load_config

TINY_POOL_SEQUENCES = 18877   # results/tiny/shards/manifest.json: pool sequences of 128 tokens


def test_tiny_costs_equal_the_logged_flop_ledger():
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    costs = config_costs(cfg, pool_tokens=TINY_POOL_SEQUENCES * 128)
    arms = costs["arms"]
    assert arms["uniform"]["train"] == arms["uniform"]["train+score"] == 1147561574400      # flops_train
    assert arms["jest_f0.8"]["train+score"] == 3060164198400                              # flops_train_score
    assert arms["jest_f0.9"]["train+score"] == 4972766822400
    ref = costs["references"]["ref"]
    assert ref["train_flops"] + ref["pool_scoring"] == 6211036512256                      # the card's fixed_flops
    # cheap scoring: the learner scores 32 of 128 tokens, a quarter of the tokens at a shorter attention span
    prefix = arms["abl_prefix0.25_f0.8"]
    assert prefix["train+score"] - prefix["train"] < (arms["jest_f0.8"]["train+score"] - prefix["train"]) / 4
    assert costs["references"]["ref_q25"]["train_flops"] == ref["train_flops"]    # same shape and steps


def test_wall_time_is_flops_over_peak_times_mfu(capsys):
    assert hours(3600 * 1e15, gpus=2, peak=1e15, mfu=0.5) == pytest.approx(1.0)
    assert main([str(PROJECT_ROOT / "config" / "gpu.yaml"), "--pool-tokens", "2.7e9"]) == 0
    out = capsys.readouterr().out
    assert "N = 110,100,480" in out and "assumed MFU 40%" in out and "8.114e+17" in out


def test_budgets_scale_a_run_and_the_offline_filter_pays_for_its_reference():
    """A family arm at budget x trains round(x * steps) steps, scoring included (jest/training/schedule.py);
    offline_filter trains like uniform but its reference and pool scoring are one-time costs."""
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    only = ["uniform", "uniform_x0.5", "uniform_x3", "offline_filter_f0.8"]
    costs = config_costs(cfg, pool_tokens=TINY_POOL_SEQUENCES * 128, arms=only)
    arms = costs["arms"]
    assert arms["uniform_x0.5"]["train"] * 2 == arms["uniform"]["train"] == arms["uniform_x3"]["train"] / 3
    assert arms["offline_filter_f0.8"]["train+score"] == arms["uniform"]["train"]
    assert set(costs["references"]) == {"ref"} and costs["references"]["ref"]["pool_scoring"] > 0


def test_the_spec_counts_rho_and_the_mixture_matched_arm_as_their_runs_log_them():
    """Costs come from each policy's spec (jest/policies/registry.py). The numbers: the FLOP ledger of a smoke
    run of the RHO-1 arm (2026-12-07, commit 71dd934: flops_train 31,708,938,240, flops_train_score
    52,848,230,400: the learner's and the reference's forward over each batch)."""
    import yaml

    from jest.experiment import validate_config
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text())
    raw["plugins"], raw["arms"]["rho"] = ["baselines.rho"], {"policy": "rho1", "token_keep": 0.6}
    arms = config_costs(validate_config(raw))["arms"]
    assert arms["rho"]["train"] == 31708938240 and arms["rho"]["train+score"] == 52848230400
    # the mixture-matched control draws JEST's super-batch but scores nothing: a uniform run's FLOPs
    assert arms["mixture_matched_f0.5"]["train+score"] == arms["uniform"]["train+score"]
    assert arms["mixture_matched_f0.5"]["super_batch"] == arms["jest_f0.5"]["super_batch"] == 16
    # easy_reference needs no learner forward (the policy counts none either)
    easy = dict(raw["arms"]["jest_f0.5"], criterion="easy_reference")
    raw["arms"] = {"uniform": raw["arms"]["uniform"], "easy": easy}
    assert config_costs(validate_config(raw))["arms"]["easy"]["score"] == 0

"""analysis.parity on synthetic curves whose parity step and speedups are known exactly."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis.parity import (
    SeedCurves,
    crossing_steps,
    first_crossing,
    parity,
    parity_table,
    seed_curves,
)

T_U = 200
EVAL = np.arange(25, T_U + 1, 25, dtype=float)     # eval every 25 steps, as the tiny config
STEPS = np.arange(1, T_U + 1, dtype=float)          # FLOPs logged every step
C, FIXED = 1e9, 5e10


def L(s, speed=1.0):
    return 3.0 + 4.0 * np.exp(-speed * np.asarray(s, float) / 60.0)


def curves(arm, values, overhead=0.0, fixed=0.0, eval_steps=EVAL, flop_steps=STEPS):
    """SeedCurves with FLOP columns: train C/step, train+score C(1+overhead)/step, total + fixed."""
    values = np.atleast_2d(values)
    n = values.shape[0]
    train = np.tile(C * flop_steps, (n, 1))
    return SeedCurves(arm, list(range(n)), np.asarray(eval_steps, float), values, np.asarray(flop_steps, float),
                      {"train": train, "train+score": train * (1 + overhead),
                       "total": train * (1 + overhead) + fixed})


def test_baseline_compressed_4x_gives_speedup_4_and_flop_speedups_with_score_overhead():
    overhead = 5 / 3   # f = 0.8: a 5x super-batch scored at a third of the training cost per token
    base = curves("uniform", L(EVAL))
    jest = curves("jest", L(EVAL, speed=4.0), overhead=overhead, fixed=FIXED)
    r = parity(base, jest, higher_is_better=False, metric="heldout_loss")
    assert r.reached and r.T_j == pytest.approx(50.0)
    assert r.target == pytest.approx(L(200))
    assert r.iterations.value == pytest.approx(4.0) and r.iterations.bound is None
    assert r.flops["train"].value == pytest.approx(4.0)
    assert r.flops["train+score"].value == pytest.approx(4.0 / (1 + overhead))
    assert r.flops["total"].value == pytest.approx(200 * C / (50 * C * (1 + overhead) + FIXED))
    assert r.flops_at_parity["total"]["baseline"] == pytest.approx(200 * C)
    assert r.max_measurable_speedup == pytest.approx(8.0)   # T_u / first eval step


def test_interpolation_between_eval_points():
    # Linear curves are interpolated exactly: baseline 5 - 0.01 s ends at 3; the arm 5 - 0.03 s
    # crosses 3 at s = 66.67, between the eval points 50 and 75.
    base = curves("uniform", 5 - 0.01 * EVAL)
    jest = curves("jest", 5 - 0.03 * EVAL)
    r = parity(base, jest, False)
    assert r.T_j == pytest.approx(200 / 3)
    assert r.iterations.value == pytest.approx(3.0)
    assert r.flops["train"].value == pytest.approx(3.0)   # F interpolated at a fractional step
    assert first_crossing([40, 80], [3.0, 2.0], 2.5) == (pytest.approx(60.0), False)
    assert first_crossing([40, 80], [0.3, 0.5], 0.45, higher_is_better=True) == (pytest.approx(70.0), False)


def test_never_reached_reports_an_upper_bound():
    base = curves("uniform", L(EVAL))
    slow = curves("slow", L(EVAL, speed=0.8))
    r = parity(base, slow, False)
    assert not r.reached and r.T_j is None
    assert r.iterations.bound == "upper" and r.iterations.value == pytest.approx(1.0)   # T_u / T_end
    assert r.flops["train"].bound == "upper"
    # A longer arm: the bound is T_u / T_end < 1 (parity lies beyond T_end = 400).
    long_steps = np.arange(25, 401, 25, dtype=float)
    slower = curves("slower", L(long_steps, speed=0.3), eval_steps=long_steps,
                    flop_steps=np.arange(1, 401, dtype=float))
    r = parity(base, slower, False)
    assert not r.reached and r.iterations.value == pytest.approx(0.5)
    # ... and one that gets there after T_u: a measured speedup below 1.
    r = parity(base, curves("later", L(long_steps, speed=0.8), eval_steps=long_steps,
                            flop_steps=np.arange(1, 401, dtype=float)), False)
    assert r.reached and r.T_j == pytest.approx(250.0) and r.iterations.value == pytest.approx(0.8)


def test_parity_at_the_first_eval_point_is_a_lower_bound():
    base = curves("uniform", L(EVAL))
    fast = curves("fast", L(EVAL, speed=10.0))    # true parity at step 20, before the first eval (25)
    r = parity(base, fast, False)
    assert r.reached and r.T_j == 25.0
    assert r.iterations.bound == "lower" and r.iterations.value == pytest.approx(8.0)


def test_bootstrap_ci_contains_the_truth_is_seeded_and_reports_reach_share():
    rng = np.random.default_rng(1)
    base = curves("uniform", np.stack([L(EVAL) + rng.normal(0, 0.02) for _ in range(5)]))
    jest = curves("jest", np.stack([L(EVAL, speed=4.0) + rng.normal(0, 0.02) for _ in range(5)]))
    r = parity(base, jest, False, n_boot=1000, seed=3)
    assert r.ci_available and r.n_boot == 1000
    assert r.iterations.ci_low < 4.0 < r.iterations.ci_high
    assert r.iterations.ci_low <= r.iterations.value <= r.iterations.ci_high
    assert r.flops["train"].ci_low < 4.0 < r.flops["train"].ci_high
    assert r.p_reached == 1.0
    again = parity(base, jest, False, n_boot=1000, seed=3)
    assert (again.iterations.ci_low, again.iterations.ci_high) == (r.iterations.ci_low, r.iterations.ci_high)
    assert len(r.per_seed) == 5 and all(p["reached"] for p in r.per_seed)


def test_identical_seeds_give_a_degenerate_ci_and_one_seed_gives_none():
    base = curves("uniform", np.stack([L(EVAL)] * 3))
    jest = curves("jest", np.stack([L(EVAL, speed=2.0)] * 3))
    r = parity(base, jest, False)
    assert r.ci_available
    assert r.iterations.ci_low == pytest.approx(2.0) and r.iterations.ci_high == pytest.approx(2.0)
    one = parity(base, curves("jest1", L(EVAL, speed=2.0)), False)
    assert not one.ci_available and one.n_boot == 0
    assert one.iterations.ci_low == one.iterations.value == one.iterations.ci_high == pytest.approx(2.0)


def test_partly_unreached_bootstrap_censors_the_low_end():
    # Two of three arm seeds never reach: replicates without a reaching majority sit at the bound.
    base = curves("uniform", np.stack([L(EVAL)] * 3))
    jest = curves("jest", np.stack([L(EVAL, speed=2.0) - 0.2, L(EVAL, 0.8), L(EVAL, 0.8)]))
    r = parity(base, jest, False, n_boot=500)
    assert 0.0 < r.p_reached < 1.0
    assert r.iterations.ci_low_censored and r.iterations.ci_low == pytest.approx(1.0)


def test_higher_is_better_metric():
    acc = lambda s, k=1.0: 0.8 - 0.5 * np.exp(-k * s / 60.0)
    base = curves("uniform", acc(EVAL))
    r = parity(base, curves("jest", acc(EVAL, 4.0)), higher_is_better=True)
    assert r.reached and r.iterations.value == pytest.approx(4.0)
    r = parity(base, curves("worse", acc(EVAL, 0.5)), higher_is_better=True)
    assert not r.reached and r.iterations.bound == "upper"


def test_noise_rules_first_vs_sustained_and_running_best():
    steps = np.array([25, 50, 75, 100, 125, 150, 175, 200], float)
    dip = np.array([5.0, 2.9, 3.5, 3.4, 3.2, 2.95, 2.9, 2.8])    # a lucky dip at 50, then for good at 150
    t, _ = crossing_steps(steps, dip[None], np.array([3.0]))
    assert t[0] == pytest.approx(25 + 25 * (5.0 - 3.0) / (5.0 - 2.9))
    t, _ = crossing_steps(steps, dip[None], np.array([3.0]), rule="sustained")
    assert t[0] == pytest.approx(125 + 25 * (3.2 - 3.0) / (3.2 - 2.95))
    t, _ = crossing_steps(steps, dip[None], np.array([3.0]), smooth="running_best")
    assert 25 < t[0] <= 50   # running best only moves the crossing within the same interval


def test_baseline_self_step_exposes_a_plateau():
    plateau = np.array([5.0, 4.0, 3.5, 3.2, 3.0, 3.05, 3.02, 3.0])   # already at 3.0 by step 125
    r = parity(curves("uniform", plateau), curves("jest", plateau), False)
    assert r.baseline_self_step == pytest.approx(125.0)
    assert r.iterations.value == pytest.approx(200 / 125)   # a "speedup" that is only the plateau


def test_generic_long_table_with_separate_flop_table():
    # The lm-eval route: metric values at a few checkpoints, FLOPs from metrics.jsonl.
    ckpts = [50, 100, 150, 200]
    acc = lambda s, k: 0.8 - 0.5 * math.exp(-k * s / 60.0)
    metric = pd.DataFrame([{"arm": arm, "seed": seed, "step": s, "acc": acc(s, k)}
                           for arm, k in (("uniform", 1.0), ("jest", 2.0)) for seed in (0, 1) for s in ckpts])
    flops = pd.DataFrame([{"arm": arm, "seed": seed, "step": s, "flops_train": C * s,
                           "flops_train_score": C * s * (1 + o), "flops_total": C * s * (1 + o) + fx}
                          for arm, o, fx in (("uniform", 0, 0), ("jest", 2 / 3, FIXED))
                          for seed in (0, 1) for s in range(1, 201)])
    (r,) = parity_table(metric, "acc", "uniform", ["jest", "missing_arm"], higher_is_better=True,
                        flops_table=flops)
    assert r.iterations.value == pytest.approx(2.0)
    assert r.flops["train+score"].value == pytest.approx(2.0 / (1 + 2 / 3))
    sc = seed_curves(metric, "jest", "acc", flops)
    assert list(sc.steps) == ckpts and sc.flop_steps[-1] == 200 and sc.n_seeds == 2


def test_seeds_with_different_eval_grids_are_aligned():
    df = pd.DataFrame([{"arm": "a", "seed": 0, "step": s, "m": float(s)} for s in (10, 20, 30)]
                      + [{"arm": "a", "seed": 1, "step": s, "m": float(s) + 1} for s in (10, 15, 30, 40)])
    sc = seed_curves(df, "a", "m")
    assert list(sc.steps) == [10, 15, 20, 30]                 # union inside the common range
    assert sc.values[0].tolist() == [10, 15, 20, 30] and sc.values[1].tolist() == [11, 16, 21, 31]
    assert sc.flops == {}

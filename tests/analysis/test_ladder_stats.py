"""The ladder's statistics (analysis/ladder_stats.py) on inputs with a known answer: the slope of log
multiplier vs log compute and the coverage of its interval, DataDecide's decision agreement, and when a
claimed factor counts as excluded."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.ladder_stats import decision_agreement, excludes, fit_slope, trend_word

LOG_C = [math.log(c) for c in (1e12, 2e13, 4e14)]  # three rungs ~20x apart in compute


def _points(slope: float, sd: float, seeds: int, rng: np.random.Generator) -> list[list[float]]:
    return [list(0.3 + slope * (c - LOG_C[0]) + rng.normal(0, sd, seeds)) for c in LOG_C]


def test_the_slope_of_noise_free_points_is_exact():
    fit = fit_slope(LOG_C, [[0.3 + 0.1 * (c - LOG_C[0])] * 3 for c in LOG_C])
    assert fit["slope"] == pytest.approx(0.1, abs=1e-12)
    assert fit["n_rungs"] == 3 and fit["n_points"] == 9


def test_a_known_slope_is_recovered_with_its_interval_covering_it():
    """Simulation with a known truth (slope 0.12 per e-fold of compute, per-seed sd 0.15 in log multiplier,
    3 rungs x 3 seeds, the ladder's design): the t-interval covers the truth at its nominal 95% (>= 93%); the
    bootstrap over 3 seeds per rung is coarse and covers less, as analysis/ladder_stats.py says."""
    rng = np.random.default_rng(20261202)
    truth, cover_t, cover_b, slopes = 0.12, 0, 0, []
    n = 300
    for _ in range(n):
        fit = fit_slope(LOG_C, _points(truth, 0.15, 3, rng), n_resamples=300, seed=int(rng.integers(1 << 30)))
        slopes.append(fit["slope"])
        cover_t += fit["ci_t"][0] <= truth <= fit["ci_t"][1]
        cover_b += fit["ci_bootstrap"][0] <= truth <= fit["ci_bootstrap"][1]
    assert np.mean(slopes) == pytest.approx(truth, abs=0.01)      # unbiased
    assert cover_t / n >= 0.93, cover_t / n
    assert cover_b / n < cover_t / n                              # the coarse bootstrap, measured
    fit = fit_slope(LOG_C, _points(truth, 0.02, 5, rng))
    assert trend_word(fit) == "rises" and fit["ci_t"][0] > 0
    assert trend_word(fit_slope(LOG_C, _points(-truth, 0.02, 5, rng))) == "falls"


def test_one_rung_gives_no_slope_and_a_flat_noisy_one_is_undecided():
    assert fit_slope(LOG_C[:1], [[0.1, 0.2, 0.3]])["slope"] is None
    rng = np.random.default_rng(1)
    assert trend_word(fit_slope(LOG_C, _points(0.0, 0.5, 3, rng))).startswith("undecided")


def test_decision_agreement_counts_pairs_ordered_the_same_way():
    # final held-out values (lower is better) of four arms at three rungs
    values = {"r1": {"uniform": 5.0, "jest_f0.5": 4.9, "jest_f0.8": 4.8, "oracle_clean": 4.7},
              "r2": {"uniform": 4.0, "jest_f0.5": 3.9, "jest_f0.8": 4.05, "oracle_clean": 3.7},  # f0.8 swaps with 2
              "r3": {"uniform": 3.0, "jest_f0.5": 2.9, "jest_f0.8": 2.8, "oracle_clean": 2.7}}
    da = decision_agreement(values)
    assert da["pairs"]["r1|r3"]["agreement"] == 1.0 and da["pairs"]["r1|r3"]["pairs"] == 6
    # r2 orders (jest_f0.8, uniform) and (jest_f0.5, jest_f0.8) the other way: 4 of 6 agree
    assert da["pairs"]["r2|r3"]["agree"] == 4 and da["pairs"]["r2|r3"]["agreement"] == pytest.approx(4 / 6)
    assert sorted(map(tuple, da["pairs"]["r2|r3"]["disagreeing"])) == [("jest_f0.5", "jest_f0.8"),
                                                                       ("jest_f0.8", "uniform")]
    assert da["top_rung"] == "r3" and da["decision_accuracy_vs_top"] == {"r1": 1.0, "r2": pytest.approx(4 / 6)}
    # an arm missing at one rung is left out of that pair; a tie is a disagreement
    tie = decision_agreement({"a": {"x": 1.0, "y": 1.0}, "b": {"x": 1.0, "y": 2.0, "z": 0.0}})
    assert tie["pairs"]["a|b"]["pairs"] == 1 and tie["pairs"]["a|b"]["agreement"] == 0.0


def test_a_factor_is_excluded_only_below_a_closed_upper_end():
    assert excludes(4.2, 13.0) and not excludes(14.0, 13.0)
    assert not excludes(None, 13.0) and not excludes(math.inf, 10.0)

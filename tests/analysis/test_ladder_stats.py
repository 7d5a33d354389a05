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


LOG_C5 = [math.log(c) for c in (1e11, 1e12, 1e13, 1e14, 1e15)]  # five rungs, the issue #28 ladder's count


def _pooled_t(log_c, samples):
    """The seed-points interval the ladder reported before issue #28 (every point a replicate)."""
    from scipy import stats as st
    x = np.concatenate([[c] * len(s) for c, s in zip(log_c, samples)])
    y = np.concatenate(samples)
    fit = st.linregress(x, y)
    half = st.t.ppf(0.975, len(x) - 2) * fit.stderr
    return fit.slope - half, fit.slope + half


def test_a_known_slope_is_recovered_with_its_interval_covering_it_at_rung_level():
    """Simulation with a known truth (slope 0.12 per e-fold, per-seed sd 0.15 in log multiplier, and a rung
    effect of sd 0.15 the line does not capture: an lr, a reference ratio): the rung-means t-interval covers
    the truth at its nominal 95% (>= 93%) at 3 rungs x 3 seeds and at 5 rungs x 3 seeds; the interval on
    every seed point, which counts seeds as rungs, covers far less (issue #28's finding)."""
    rng = np.random.default_rng(20261202)
    truth, n = 0.12, 400
    for log_c in (LOG_C, LOG_C5):
        cover, cover_pooled, slopes = 0, 0, []
        for _ in range(n):
            rung_effect = rng.normal(0, 0.15, len(log_c))
            pts = [list(0.3 + truth * (c - log_c[0]) + u + rng.normal(0, 0.15, 3)) for c, u in zip(log_c, rung_effect)]
            fit = fit_slope(log_c, pts)
            slopes.append(fit["slope"])
            cover += fit["ci_t"][0] <= truth <= fit["ci_t"][1]
            lo, hi = _pooled_t(log_c, [np.array(p) for p in pts])
            cover_pooled += lo <= truth <= hi
        assert np.mean(slopes) == pytest.approx(truth, abs=0.01)      # unbiased
        assert cover / n >= 0.93, (len(log_c), cover / n)
        assert cover_pooled / n < 0.85, (len(log_c), cover_pooled / n)
    fit = fit_slope(LOG_C5, [list(0.3 + 0.12 * (c - LOG_C5[0]) + rng.normal(0, 0.02, 5)) for c in LOG_C5])
    assert trend_word(fit) == "rises" and fit["ci_t"][0] > 0 and fit["df"] == 3 and fit["unit"] == "rung"
    assert trend_word(fit_slope(LOG_C5, [list(0.3 - 0.12 * (c - LOG_C5[0]) + rng.normal(0, 0.02, 5))
                                         for c in LOG_C5])) == "falls"


def test_two_rungs_give_a_slope_and_no_interval():
    fit = fit_slope(LOG_C[:2], [[0.1, 0.2], [0.3, 0.4]])
    assert fit["slope"] is not None and fit["ci_t"] is None and trend_word(fit) == "not measured"


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

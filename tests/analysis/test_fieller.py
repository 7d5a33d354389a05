"""analysis.stats.fieller_share: Fieller's interval for a control's share of JEST's log gain, checked
against scipy's paired t-test at its ends, the committed tiny numbers, and its coverage."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.stats import Estimate, fieller_share

# the committed tiny reference (results/reference/tiny/summary.json, controls.offline_share): per-seed
# iterations multipliers of jest_f0.8 and offline_filter_f0.8, seeds 0-4
JEST = [1.0257812732827907, 1.2343608424646095, 1.2732189224546455, 1.168188859334284, 1.383088960316963]
OFFLINE = [1.0899815547593485, 1.291731713416465, 1.0259964926269964, 0.9598917087185288, 1.4419938178491893]


def _estimate(values, bounds=None) -> Estimate:
    bounds = bounds or [None] * len(values)
    return Estimate(float(np.exp(np.mean(np.log(values)))), None, None, n=len(values),
                    per_seed=[{"seed": i, "value": v, "bound": b} for i, (v, b) in enumerate(zip(values, bounds))])


def test_the_ends_are_where_the_paired_t_test_of_x_minus_r_y_has_p_alpha():
    ci = fieller_share(_estimate(OFFLINE), _estimate(JEST))
    x, y = np.log(OFFLINE), np.log(JEST)
    assert ci["n"] == 5 and ci["ratio"] == pytest.approx(x.mean() / y.mean())
    for r in (ci["ci_low"], ci["ci_high"]):
        assert stats.ttest_1samp(x - r * y, 0.0).pvalue == pytest.approx(0.05, abs=1e-9)
    # the share the report printed alone (0.72) has an interval from below 0 to nearly 2 (issue #27)
    assert (round(ci["ratio"], 2), round(ci["ci_low"], 2), round(ci["ci_high"], 2)) == (0.72, -0.73, 1.9)


def test_unbounded_when_jest_gain_is_not_clearly_above_zero():
    jest = [1.10, 0.95, 1.05, 0.97, 1.02]          # log gain inside noise: the denominator can be 0
    ci = fieller_share(_estimate([1.05, 1.0, 1.02, 0.99, 1.01]), _estimate(jest))
    assert ci["ci_low"] is None and ci["ci_high"] is None
    assert fieller_share(_estimate([1.1]), _estimate([1.2])) is None                 # one seed: no interval


def test_seeds_with_a_bound_are_left_out():
    ci = fieller_share(_estimate(OFFLINE, [None, None, None, None, "lower"]), _estimate(JEST))
    assert ci["n"] == 4


def test_coverage_near_nominal_at_5_seeds():
    rng = np.random.default_rng(0)
    true, hits, runs = 0.5, 0, 2000
    for _ in range(runs):
        y = rng.normal(0.25, 0.05, 5)                              # JEST's log gain, clearly above 0
        x = true * y + rng.normal(0.0, 0.05, 5)                    # a control with half of it, paired noise
        ci = fieller_share(_estimate(np.exp(x)), _estimate(np.exp(y)))
        hits += ci["ci_low"] is None or ci["ci_low"] <= true <= ci["ci_high"]
    assert 0.93 <= hits / runs <= 0.97


def test_the_report_prints_the_share_with_its_interval():
    from analysis.report_sections import share
    row = {"share_of_log_gain": 0.7238, "share_ci": fieller_share(_estimate(OFFLINE), _estimate(JEST))}
    assert share(row) == "0.72 [-0.73, 1.90]"
    assert share({"share_of_log_gain": 0.1, "share_ci": {"ci_low": None, "ci_high": None}}) == "0.10 [unbounded]"
    assert share({"share_of_log_gain": None, "share_ci": None}) == "n/a"

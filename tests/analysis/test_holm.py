"""Holm over the ablations' comparisons (analysis.stats.holm_family): a verdict that holds for one test
can fail for a family of them, and the report says both."""
from __future__ import annotations

import pytest

from analysis.stats import DIFFERENT, EQUIVALENT, UNDECIDED, holm_family


def _test(p_diff, p_eq, verdict, ratio=1.5):
    return {"p_difference": p_diff, "p_equivalence": p_eq, "verdict": verdict, "ratio": ratio, "margin": 1.1,
            "reason": "raw"}


def test_two_raw_differences_at_3_and_4_percent_do_not_survive_holm():
    tests = holm_family([_test(0.03, 0.6, DIFFERENT), _test(0.04, 0.7, DIFFERENT)])
    assert [t["p_difference_holm"] for t in tests] == pytest.approx([0.06, 0.06])
    assert [t["verdict"] for t in tests] == [UNDECIDED, UNDECIDED]
    assert [t["verdict_uncorrected"] for t in tests] == [DIFFERENT, DIFFERENT]
    assert tests[0]["correction"] == "Holm over 2 comparisons" and "before correction" in tests[0]["reason"]


def test_a_strong_result_survives_and_equivalence_is_corrected_too():
    tests = holm_family([_test(0.001, 0.9, DIFFERENT), _test(0.5, 0.01, EQUIVALENT, ratio=1.02),
                         _test(0.6, 0.04, EQUIVALENT, ratio=1.01)])
    assert [t["verdict"] for t in tests] == [DIFFERENT, EQUIVALENT, UNDECIDED]
    assert tests[1]["p_equivalence_holm"] == pytest.approx(0.03)   # 0.01 x 3
    assert tests[2]["p_equivalence_holm"] == pytest.approx(0.08)   # max(0.03, 0.04 x 2)


def test_a_significant_difference_inside_the_margin_is_not_called_different():
    (t,) = holm_family([_test(0.001, 0.2, UNDECIDED, ratio=1.05)])
    assert t["verdict"] == UNDECIDED


def test_tests_without_p_values_keep_their_verdict():
    single = {"p_difference": None, "p_equivalence": None, "verdict": "single seed: no verdict"}
    (t,) = holm_family([single])
    assert t["verdict"] == "single seed: no verdict" and "p_difference_holm" not in t


def test_seeds_to_settle_a_clear_difference_matches_the_power_formula():
    import math

    from statsmodels.stats.power import TTestPower

    from analysis.stats import seeds_to_settle
    mean, sd = math.log(1.5), 0.2   # far outside the 1.1 margin: the t-test decides
    n_formula = math.ceil(TTestPower().solve_power(effect_size=mean / sd, power=0.8, alpha=0.05))
    assert abs(seeds_to_settle(mean, sd, 1.1) - n_formula) <= 1


def test_seeds_to_settle_grows_as_the_ratio_nears_the_margin_and_is_none_at_its_edge():
    import math

    from analysis.stats import seeds_to_settle
    near, far = seeds_to_settle(math.log(1.2), 0.15, 1.1), seeds_to_settle(math.log(1.5), 0.15, 1.1)
    assert far < near
    equal = seeds_to_settle(0.0, 0.15, 1.1)           # truly equal: TOST decides with enough seeds
    assert equal is not None and equal > 3
    assert seeds_to_settle(math.log(1.1), 0.15, 1.1, n_max=100) is None   # at the margin: never

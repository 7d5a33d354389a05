"""analysis.claims: verdicts against 13x / 10x from speedups, CIs and bounds."""
from analysis.claims import CLAIMS, FAILS, HOLDS, INCONCLUSIVE, judge, verdict
from analysis.parity import Speedup


def test_verdict_uses_the_interval_and_the_bounds():
    assert verdict(Speedup(15.0, 13.5, 16.0), 13)[0] == HOLDS
    assert verdict(Speedup(2.0, 1.8, 2.2), 13)[0] == FAILS
    assert verdict(Speedup(12.0, 9.0, 15.0), 13)[0] == INCONCLUSIVE
    # never reached: the truth is below 1x -> cannot reach 13x
    assert verdict(Speedup(1.0, 1.0, 1.0, bound="upper", ci_low_censored=True), 13)[0] == FAILS
    # reached at the first eval: at least 8x, maybe more -> the grid cannot decide
    v, why = verdict(Speedup(8.0, 8.0, 8.0, bound="lower", ci_high_censored=True), 13)
    assert v == INCONCLUSIVE and "eval" in why
    assert verdict(Speedup(16.0, 16.0, 16.0, bound="lower"), 13)[0] == HOLDS
    assert verdict(None, 13)[0] == INCONCLUSIVE


def test_judge_over_arms_names_the_best_and_flags_single_seeds():
    iters, compute = CLAIMS
    arms = [{"arm": "a", "iterations": Speedup(2.0, 1.5, 2.5), "ci_available": True,
             "flops": {"train+score": Speedup(1.1, 1.0, 1.2)}},
            {"arm": "b", "iterations": Speedup(4.0, 3.0, 5.0), "ci_available": True,
             "flops": {"train+score": Speedup(1.5, 1.2, 1.8)}}]
    j = judge(iters, arms)
    assert j["verdict"] == FAILS and j["best_arm"] == "b" and len(j["per_arm"]) == 2
    assert judge(compute, arms)["verdict"] == FAILS
    arms.append({"arm": "c", "iterations": Speedup(20.0, 20.0, 20.0), "ci_available": False, "flops": {}})
    j = judge(iters, arms)
    assert j["verdict"] == HOLDS and j["best_arm"] == "c" and "single seed" in j["reason"]
    assert judge(iters, [])["verdict"] == INCONCLUSIVE

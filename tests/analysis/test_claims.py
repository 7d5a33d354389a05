"""analysis.claims + analysis.verdicts.claims: each claim judged on the right quantity of the multiplier."""
from analysis.claims import CLAIMS
from analysis.multiplier import SeedMultiplier
from analysis.stats import NOT_REPRODUCED, REPRODUCED
from analysis.stats import aggregate
from analysis.verdicts import claims


def _est(values):
    return aggregate([SeedMultiplier(i, v, None, None, None, 0.0, "x") for i, v in enumerate(values)])


def test_iterations_claim_reads_iterations_and_compute_claim_reads_train_plus_score():
    assert [(c.id, c.factor, c.quantity, c.accounting) for c in CLAIMS] == [
        ("iterations_13x", 13.0, "iterations", None), ("compute_10x", 10.0, "flops", "train+score")]
    mults = {"jest": {"quantities": {"iterations": _est([14, 15, 16, 15, 14.5]),
                                     "train+score": _est([1.1, 1.2, 1.0, 1.15, 1.05]),
                                     "total": _est([30, 31, 32, 33, 30])}}}
    by_id = {c["id"]: c for c in claims(mults, ["jest"])}
    assert by_id["iterations_13x"]["verdict"] == REPRODUCED and by_id["iterations_13x"]["best_arm"] == "jest"
    assert by_id["compute_10x"]["verdict"] == NOT_REPRODUCED       # not the (here larger) `total` accounting
    assert "WebLI" in by_id["compute_10x"]["paper_setting"]

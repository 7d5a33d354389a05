"""analysis.multiplier: the iso-loss compute multiplier on synthetic families with known answers."""
import numpy as np
import pandas as pd
import pytest

from analysis.multiplier import (
    PAIRED,
    POOLED,
    arm_seed_multipliers,
    family_arms,
    family_curves,
    needed_compute,
    run_finals,
)
from analysis.runs import load_curves
from analysis.stats import aggregate
from analysis.verdicts import metric_multipliers

BUDGETS = np.array([0.5, 1.0, 2.0, 4.0])


def test_needed_compute_inverts_a_log_linear_family_exactly_and_bounds_outside():
    f = 3.0 - 0.3 * np.log(BUDGETS)                  # linear in log compute: interpolation is exact
    assert needed_compute(BUDGETS, f, 3.0 - 0.3 * np.log(3.0)) == (pytest.approx(3.0), None)
    assert needed_compute(BUDGETS, f, f[3]) == (pytest.approx(4.0), None)     # on the largest budget
    assert needed_compute(BUDGETS, f, f[3] - 0.01) == (4.0, "lower")          # better than every budget
    assert needed_compute(BUDGETS, f, f[0] + 0.01) == (0.5, "upper")          # worse than every budget
    acc = 0.2 + 0.1 * np.log(BUDGETS)                                         # higher is better
    assert needed_compute(BUDGETS, acc, 0.2 + 0.1 * np.log(1.5), higher_is_better=True)[0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match=">= 2 budgets"):
        needed_compute(BUDGETS[:1], f[:1], 3.0)


def test_a_noisy_non_monotone_family_is_made_monotone_before_inverting():
    noisy = np.array([3.2, 3.0, 3.05, 2.8])          # budget 2 ended worse than budget 1 (seed noise)
    c, bound = needed_compute(BUDGETS, noisy, 3.01)
    # isotonic fit pools budgets 1 and 2 at 3.025: 3.01 lies between 3.025 (at 2) and 2.8 (at 4)
    assert bound is None and 2.0 < c < 4.0
    assert c == pytest.approx(np.exp(np.log(2) + (3.025 - 3.01) / (3.025 - 2.8) * np.log(2)))


def test_synthetic_arm_shifted_4x_in_compute_gives_4(synth_results):
    """The known answer: jest_f0.8 ends (200 steps) where the family ends at 800 steps: 4.0x in
    iterations, examples and FLOPs (train); train+score pays the scoring of a 5x super-batch."""
    runs = synth_results["runs"]
    curves = load_curves(runs)
    settings = synth_results["cfg"]["arms"]
    fam = family_arms(settings)
    assert fam == {"uniform": 1.0, "uniform_b0.5": 0.5, "uniform_b2": 2.0, "uniform_b4": 4.0}
    m = metric_multipliers(curves, "heldout_loss", fam, ["jest_f0.5", "jest_f0.8", "jest_topk_f0.8"])
    j = m["jest_f0.8"]
    assert j["pairing"] == PAIRED
    for q in ("iterations", "examples", "train"):
        assert j["quantities"][q].value == pytest.approx(4.0) and j["quantities"][q].bound is None
        assert j["quantities"][q].n == 3
    assert j["quantities"]["train+score"].value == pytest.approx(4.0 / (1 + 5 / 3))
    assert j["quantities"]["total"].value < j["quantities"]["train+score"].value     # the one-time cost
    assert m["jest_f0.5"]["quantities"]["iterations"].value == pytest.approx(2.0)
    assert 0.8 <= m["jest_topk_f0.8"]["quantities"]["iterations"].value < 0.9     # between budgets 0.5 and 1
    assert j["range"]["iterations"] == [pytest.approx(0.5), pytest.approx(4.0)]
    # per held-out set: JEST learns e-mail at half speed, the external set at uniform's
    email = metric_multipliers(curves, "heldout_loss_src_email", fam, ["jest_f0.8"])
    assert email["jest_f0.8"]["quantities"]["iterations"].value == pytest.approx(0.5)
    bpb = metric_multipliers(curves, "heldout_bpb_ext_bible", fam, ["jest_f0.8"])
    assert bpb["jest_f0.8"]["quantities"]["iterations"].value == pytest.approx(1.0)


def _finals(rows):
    return pd.DataFrame([{"run": f"{a}_s{s}", "arm": a, "seed": s, "step": 1.0, "value": v, "iterations": c,
                          "examples": c, "train": c, "train+score": c, "total": c} for a, s, v, c in rows])


def test_pairing_by_seed_cancels_a_seed_effect_the_pooled_curve_keeps():
    rows = []
    for seed, u in ((0, -0.05), (1, 0.0), (2, 0.05)):        # a seed effect shared by every arm
        rows += [(f"u{b:g}", seed, 3.0 - 0.3 * np.log(b) + u, b) for b in BUDGETS]
        rows.append(("arm", seed, 3.0 - 0.3 * np.log(2.0) + u, 1.0))
    finals = _finals(rows)
    fam = {f"u{b:g}": float(b) for b in BUDGETS}
    curves = family_curves(finals, fam)
    assert set(curves) == {0, 1, 2, POOLED}
    per_q, pairing = arm_seed_multipliers(finals, "arm", curves)
    assert pairing == PAIRED
    assert [p.value for p in per_q["iterations"]] == [pytest.approx(2.0)] * 3
    pooled, _ = arm_seed_multipliers(finals, "arm", curves, pairing=POOLED)
    values = [p.value for p in pooled["iterations"]]
    assert values[0] > 2.0 > values[2]                     # the seed effect stays in each seed
    assert aggregate(pooled["iterations"]).log_sd > aggregate(per_q["iterations"]).log_sd
    # an arm seed the family lacks: the whole arm falls back to the pooled curve
    finals = pd.concat([finals, _finals([("arm", 7, 2.8, 1.0)])], ignore_index=True)
    assert arm_seed_multipliers(finals, "arm", family_curves(finals, fam))[1] == POOLED


def test_run_finals_reads_the_last_value_and_the_compute_at_its_step():
    curves = pd.DataFrame({"run": ["r"] * 4, "arm": ["a"] * 4, "seed": [0] * 4, "step": [1, 2, 3, 4],
                           "heldout_loss": [5.0, np.nan, 4.0, np.nan], "examples_seen": [16, 32, 48, 64],
                           "flops_train": [1.0, 2.0, np.nan, 4.0]})
    (row,) = run_finals(curves, "heldout_loss").to_dict("records")
    assert row["step"] == 3 and row["value"] == 4.0 and row["examples"] == 48
    assert row["train"] == pytest.approx(3.0)                # interpolated: not logged on that row
    assert np.isnan(row["total"])

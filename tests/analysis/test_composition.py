"""analysis.composition: selected shares over training against the pool, from the trainer's columns."""
import pandas as pd
import pytest

from analysis.composition import (
    composition_summary,
    pool_shares,
    pool_shares_agree,
    selection_over_training,
    share_columns,
)


def _curves():
    rows = []
    for seed in (0, 1):
        for step in range(1, 101):
            brown = 0.2 if step <= 50 else 0.6 + 0.1 * seed      # second half: JEST prefers brown
            rows.append({"arm": "jest", "seed": seed, "step": step, "sel_share_source_brown": brown,
                         "sel_share_source_email": 1 - brown, "sel_share_quality_clean": 1.0})
            rows.append({"arm": "uniform", "seed": seed, "step": step, "sel_share_source_brown": 0.2,
                         "sel_share_source_email": 0.8, "sel_share_quality_clean": 1.0})
    return pd.DataFrame(rows)


CARD = {"pool_share": {"pool_share_source_brown": 0.2, "pool_share_source_email": 0.8,
                       "pool_share_quality_clean": 1.0}}


def test_share_columns_and_pool_shares():
    assert share_columns(_curves().columns, "source") == {"brown": "sel_share_source_brown",
                                                          "email": "sel_share_source_email"}
    assert pool_shares([{}, CARD], "source").to_dict() == {"brown": 0.2, "email": 0.8}
    assert pool_shares([{}], "source").empty
    assert pool_shares_agree([CARD, CARD])
    assert not pool_shares_agree([CARD, {"pool_share": {**CARD["pool_share"], "pool_share_source_brown": 0.3}}])


def test_selection_over_training_bins_steps_and_averages_seeds():
    over = selection_over_training(_curves(), "source", n_bins=2)
    j = over[(over["arm"] == "jest") & (over["label"] == "brown")].set_index("bin")
    assert j.loc[0, "share"] == pytest.approx(0.2) and j.loc[0, "share_sd"] == pytest.approx(0.0)
    assert j.loc[1, "share"] == pytest.approx(0.65)             # mean of the seeds' 0.6 and 0.7
    assert j.loc[1, "share_sd"] > 0 and j.loc[1, "n_seeds"] == 2
    assert (j.loc[0, "step_lo"], j.loc[0, "step_hi"], j.loc[1, "step_hi"]) == (0, 50, 100)


def test_composition_summary_enrichment_against_the_pool():
    summ = composition_summary(_curves(), pool_shares([CARD], "source"), "source").set_index(["arm", "label"])
    assert summ.loc[("uniform", "brown"), "enrichment"] == pytest.approx(1.0)
    assert summ.loc[("jest", "brown"), "selected_share"] == pytest.approx((0.2 + 0.65) / 2)
    assert summ.loc[("jest", "brown"), "enrichment"] > 2


def test_runs_without_share_columns_give_empty_tables():
    df = pd.DataFrame({"arm": ["u"], "seed": [0], "step": [1], "train_loss": [3.0]})
    assert selection_over_training(df, "source").empty
    assert composition_summary(df, pd.Series(dtype=float), "source").empty

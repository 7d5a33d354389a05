"""The general-domain metric (config analysis.general_sets): the declared held-out sets' mean loss."""
from __future__ import annotations

import math

import pandas as pd

from analysis.verdicts import add_general_metric, heldout_metrics


def _curves():
    return pd.DataFrame({"arm": ["a", "a"], "step": [10, 20], "heldout_loss": [5.0, 4.0],
                         "heldout_loss_pool_mix": [6.0, 5.0], "heldout_loss_ext_poems": [7.0, float("nan")],
                         "heldout_loss_ext_plays": [8.0, 6.0], "heldout_loss_src_email": [9.0, 9.0],
                         "heldout_bpb_pool_mix": [1.0, 1.0], "heldout_bpb_ext_poems": [2.0, 2.0],
                         "heldout_bpb_ext_plays": [3.0, 3.0]})


def test_the_declared_sets_are_averaged_with_equal_weight_where_all_were_evaluated():
    curves, used = add_general_metric(_curves(), ["pool_mix", "ext_*"])
    assert used == ["ext_plays", "ext_poems", "pool_mix"]      # 'ext_*' matched both external sets; src_ not
    assert curves["heldout_loss_general"][0] == (6.0 + 7.0 + 8.0) / 3
    assert math.isnan(curves["heldout_loss_general"][1])       # a set missing at that step: no value
    assert curves["heldout_bpb_general"][0] == 2.0
    assert "heldout_loss_general" in heldout_metrics(curves)    # so it gets multipliers like any set


def test_no_matching_set_leaves_the_curves_alone():
    curves, used = add_general_metric(_curves(), ["ext_novels"])
    assert used == [] and "heldout_loss_general" not in curves

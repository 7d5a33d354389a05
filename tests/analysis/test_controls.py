"""Control arms in the report: the oracle's reference line and the share of JEST's gain the offline filter reaches."""
import math

import pytest

from analysis.report import build_report


def test_oracle_ceiling_and_offline_filter_share(tmp_path, make_synth):
    res = make_synth(tmp_path, controls=True)     # oracle_clean at 3x speed, offline_filter_f0.8 at 2x
    s = build_report(res["results"], "synth", tmp_path / "out", n_boot=20, figures=False)
    assert [r["arm"] for r in s["control_arms"]] == ["oracle_clean", "offline_filter_f0.8"]
    assert "oracle_clean" not in {h["arm"] for h in s["headline"]}            # never in the claim verdicts
    assert {p["arm"] for c in s["claims"] for p in c["per_arm"]} == {"jest_f0.5", "jest_f0.8", "jest_topk_f0.8"}
    c = s["controls"]
    assert c["oracle_ceiling"]["arm"] == "oracle_clean" and 3.5 < c["oracle_ceiling"]["iterations"]["value"] < 4.0
    share = {r["arm"]: r for r in c["offline_share"]}
    # the offline filter (2x) reaches all of jest_f0.5's gain (2x) and half of jest_f0.8's (4x) in log compute
    assert share["jest_f0.5"]["share_of_log_gain"] == pytest.approx(1.0)
    assert share["jest_f0.8"]["share_of_log_gain"] == pytest.approx(math.log(2) / math.log(4))
    assert share["jest_f0.5"]["jest_over_offline"]["verdict"] == "equivalent"
    assert share["jest_f0.8"]["jest_over_offline"]["verdict"] == "different"
    assert share["jest_f0.8"]["jest_over_offline"]["ratio"] == pytest.approx(2.0)
    # what the offline filter gives up elsewhere: the per-set table has the controls too
    per = {(r["set"], r["arm"]): r["iterations"]["value"] for r in s["per_set"]}
    assert per[("src_email", "offline_filter_f0.8")] == pytest.approx(0.5)
    assert share["jest_f0.8"]["offline_filter"] == "offline_filter_f0.8"

"""Ablation arms in the report: left out of the headline report, listed and compared in the full one."""
import json
from html import unescape

import pytest

from analysis.report import build_report


@pytest.fixture(scope="module")
def ablation_reports(tmp_path_factory, make_synth):
    """The synthetic results with jest_topk_f0.8 declared an ablation (as the DAG's resolved config says)."""
    root = tmp_path_factory.mktemp("ablations")
    res = make_synth(root)
    resolved = {**res["cfg"], "ablation_arms": ["jest_topk_f0.8"]}
    (res["results"] / "synth" / "config.resolved.json").write_text(json.dumps(resolved))
    out = {scope: root / f"report_{scope}" for scope in ("headline", "all")}
    summaries = {scope: build_report(res["results"], "synth", path, arms=scope, n_boot=200, figures=scope == "all")
                 for scope, path in out.items()}
    return {"out": out, "summary": summaries}


def test_headline_report_leaves_ablations_out_but_names_them(ablation_reports):
    s = ablation_reports["summary"]["headline"]
    assert s["arm_scope"] == "headline" and s["ablation_arms"] == ["jest_topk_f0.8"]
    assert [h["arm"] for h in s["headline"]] == ["jest_f0.5", "jest_f0.8"] and s["ablations"] == []
    assert not any(r["arm"] == "jest_topk_f0.8" for r in s["runs"])
    assert {p["arm"] for c in s["claims"] for p in c["per_arm"]} == {"jest_f0.5", "jest_f0.8"}
    assert any("Ablation arms are not in this report: jest_topk_f0.8" in n for n in s["notes"])
    md = (ablation_reports["out"]["headline"] / "report.md").read_text()
    assert "## Ablations" in md and "snakemake ablations" in md


def test_full_report_compares_ablations_with_the_headline_arm(ablation_reports):
    s = ablation_reports["summary"]["all"]
    assert s["arm_scope"] == "all"
    assert [h["arm"] for h in s["headline"]] == ["jest_f0.5", "jest_f0.8"]
    (abl,) = s["ablations"]
    assert abl["arm"] == "jest_topk_f0.8" and abl["compared_to"] == "jest_f0.8"
    assert abl["differs"] == {"selector": {"ablation": "topk", "headline": "joint"}}
    assert not abl["reached"] and abl["parity"]["iterations"]["bound"] == "upper"
    # the "no difference" question as a test: topk (0.86x) against jest_f0.8 (4x) is different
    (eq,) = s["equivalence"]
    assert eq["arm"] == "jest_topk_f0.8" and eq["against"] == "jest_f0.8" and eq["verdict"] == "different"
    assert eq["ratio"] == pytest.approx(abl["iterations"]["value"] / 4.0) and abl["equivalence"] == eq
    # the claims are judged on headline arms only, even where an ablation would be the best arm
    assert {p["arm"] for c in s["claims"] for p in c["per_arm"]} == {"jest_f0.5", "jest_f0.8"}
    assert {r["arm"] for r in s["parity"]["heldout_loss"]} == {"jest_f0.5", "jest_f0.8", "jest_topk_f0.8"}
    assert "multiplier_per_arm" in s["figures"] and "parity_per_arm" in s["figures"]
    for name in ("report.md", "report.html"):
        text = unescape((ablation_reports["out"]["all"] / name).read_text())
        assert "Ablations: equivalence tests" in text and "selector = topk (headline: joint)" in text
        assert "< 1.00x (not reached)" in text and "different" in text

"""python -m analysis.report on synthetic run folders: summary.json, report.md, report.html, figures."""
import base64
import io
import json
import xml.etree.ElementTree as ET
from html import unescape
from html.parser import HTMLParser

import pytest
from matplotlib.image import imread

from analysis.report import SUMMARY_SCHEMA_VERSION, build_report, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory, make_synth):
    """Build the report once, through the CLI (rendering the figures is the slow part)."""
    root = tmp_path_factory.mktemp("report")
    res = make_synth(root)
    out = root / "out"
    # --no-mlflow: the MLflow summary run has its own tests (test_mlflow_summary, tests/test_mlflow_server.py)
    assert main(["--results", str(res["results"]), "--config", "synth", "--out", str(out), "--n-boot", "300",
                 "--no-mlflow"]) == 0
    return {"out": out, "summary": json.loads((out / "summary.json").read_text()), **res}


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.tables = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])
        self.tables += tag == "table"


def test_summary_headline_is_the_multiplier_with_the_known_answers(report):
    s = report["summary"]
    assert s["schema_version"] == SUMMARY_SCHEMA_VERSION == "jest-summary-v3"
    assert s["primary_metric"]["name"] == "heldout_loss" and not s["primary_metric"]["higher_is_better"]
    assert s["baseline"]["arm"] == "uniform" and s["baseline"]["seeds"] == [0, 1, 2]
    assert s["family"]["budgets"] == [0.5, 1.0, 2.0, 4.0]
    assert [f["arm"] for f in s["family"]["arms"]] == ["uniform_b0.5", "uniform", "uniform_b2", "uniform_b4"]
    head = {h["arm"]: h for h in s["headline"]}
    assert list(head) == ["jest_f0.5", "jest_f0.8", "jest_topk_f0.8"]        # the config's order, no family
    assert head["jest_f0.5"]["iterations"]["value"] == pytest.approx(2.0)
    j = head["jest_f0.8"]
    assert j["iterations"]["value"] == pytest.approx(4.0) and j["pairing"] == "paired"
    assert j["examples"]["value"] == pytest.approx(4.0) and j["flops"]["train"]["value"] == pytest.approx(4.0)
    assert j["flops"]["train+score"]["value"] == pytest.approx(4.0 / (1 + 5 / 3))
    assert j["iterations"]["ci_low"] == pytest.approx(4.0) and j["iterations"]["n"] == 3
    assert j["seeds"] == [0, 1, 2]                                           # the failed seed 3 is left out
    assert j["parity"]["reached"] and j["parity"]["iterations"]["value"] == pytest.approx(4.0)
    assert j["parity"]["rule"] == "sustained"
    topk = head["jest_topk_f0.8"]
    assert not topk["parity"]["reached"] and topk["parity"]["iterations"]["bound"] == "upper"
    assert 0.8 < topk["iterations"]["value"] < 0.9                          # measured, not a bound
    assert head["jest_f0.5"]["filter_ratio"] == 0.5 and head["jest_f0.5"]["series"] == "selector=joint"
    assert set(s["parity"]) == {"heldout_loss", "heldout_bpb"}
    assert {"heldout_loss", "heldout_loss_src_email", "heldout_bpb_ext_bible"} <= set(s["metrics"])
    claims = {c["id"]: c for c in s["claims"]}
    assert claims["iterations_13x"]["verdict"] == "not reproduced at this scale"
    assert claims["iterations_13x"]["best_arm"] == "jest_f0.8"
    assert claims["compute_10x"]["verdict"] == "not reproduced at this scale"
    assert "WebLI" in claims["iterations_13x"]["paper_setting"]
    assert s["best_arm"]["arm"] == "jest_f0.8" and s["best_arm"]["significant"]
    assert s["statistics"]["equivalence_margin"] == 1.10


def test_per_set_multipliers_show_what_an_arm_gives_up(report):
    per = {(r["set"], r["arm"]): r for r in report["summary"]["per_set"]}
    assert per[("default", "jest_f0.8")]["iterations"]["value"] == pytest.approx(4.0)
    assert per[("src_email", "jest_f0.8")]["iterations"]["value"] == pytest.approx(0.5)
    assert per[("ext_bible", "jest_f0.8")]["iterations"]["value"] == pytest.approx(1.0)
    assert not any("_bpb" in r["metric"] for r in report["summary"]["per_set"])   # bpb: the same multiplier


def test_summary_runs_provenance_repetition_and_composition(report):
    s = report["summary"]
    runs = {r["run"]: r for r in s["runs"]}
    assert len(runs) == 22 and runs["jest_f0.8_s3"]["status"] == "failed" and runs["jest_f0.8_s3"]["error"] == "boom"
    assert runs["uniform_s0"]["heldout_loss"] == pytest.approx(3.0 + 4.0 * 2.718281828 ** (-200 / 60) - 0.01)
    assert runs["uniform_b4_s0"]["budget"] == 4.0 and runs["uniform_b4_s0"]["steps"] == 800
    assert s["references"] == [{"name": "ref", "status": "finished", "steps": 300, "n_params": 664192,
                                "train_split": "curated", "heldout_loss": 3.05, "heldout_bpb": None,
                                "flops_train": 2.7e12}]
    assert s["provenance"]["git_commits"] == ["deadbeef"] and s["provenance"]["packages"]["torch"] == ["2.13.0+cpu"]
    assert s["provenance"]["started"] == "2026-01-01T00:00:00+0000"
    sel = {(r["arm"], r["label"]): r for r in s["composition"]["source"]["selected"]}
    assert sel[("uniform", "brown")]["enrichment"] == pytest.approx(1.0)
    assert sel[("jest_topk_f0.8", "brown")]["enrichment"] > 2
    assert not any(arm.startswith("uniform_b") for arm, _ in sel)          # the family is not a compared arm
    rep = {r["arm"]: r for r in s["repetition"]}
    assert rep["jest_f0.8"]["repeats"] and rep["jest_f0.8"]["pool_passes"] == pytest.approx(16000 / 12000)
    assert not rep["jest_f0.5"]["repeats"]
    assert any("not finished" in n for n in s["notes"])
    assert any("jest_f0.8 repeats data: 1.33 passes" in n for n in s["notes"])
    assert any("Fewer than the 5 seeds" in n for n in s["notes"])


def test_every_figure_is_written_referenced_and_loadable(report):
    out, figures = report["out"], report["summary"]["figures"]
    assert {"multiplier_per_arm", "family", "multiplier_vs_filter_ratio", "multiplier_per_set",
            "curves_heldout_loss", "flops_heldout_loss", "parity_per_arm", "composition_source"} <= set(figures)
    md = (out / "report.md").read_text()
    for f in figures.values():
        png = (out / f["png"]).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and imread(io.BytesIO(png)).ndim == 3
        assert ET.parse(out / f["svg"]).getroot().tag.endswith("svg")
        assert f"]({f['png']})" in md
    parser = _Images()
    parser.feed((out / "report.html").read_text())
    assert len(parser.srcs) == len(figures) and parser.tables >= 5
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE) and imread(io.BytesIO(png)).shape[0] > 100


def test_report_texts_show_claims_and_verdicts(report):
    md, html = (report["out"] / "report.md").read_text(), (report["out"] / "report.html").read_text()
    assert "<script" not in html and "<link" not in html       # nothing external to load
    html = unescape(html)
    for text in (md, html):
        assert "13x fewer iterations" in text and "10x less compute" in text
        assert "not reproduced at this scale" in text and "does not hold" not in text
        assert "4.00x [4.00, 4.00]" in text and "< 1.00x (not reached)" in text
        assert "Per held-out set" in text and "src_email" in text and "0.50x [0.50, 0.50]" in text
        assert "The uniform compute family" in text and "Second view: first-crossing parity" in text


def test_no_runs_gives_an_empty_but_valid_report(tmp_path):
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    s = build_report(tmp_path, "empty", tmp_path / "out")
    assert s["headline"] == [] and s["figures"] == {} and s["baseline"]["arm"] is None
    assert {c["verdict"] for c in s["claims"]} == {"undecided"}
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "report.md").exists()


def test_one_seed_gives_no_verdict_and_a_report_without_a_family_still_has_parity(tmp_path, make_synth):
    res = make_synth(tmp_path, family=False)
    for run in res["runs"].iterdir():
        if not run.name.endswith("_s0"):
            (run / "card.json").write_text((run / "card.json").read_text().replace('"finished"', '"running"'))
    s = build_report(res["results"], "synth", tmp_path / "out", n_boot=20, figures=False)
    assert s["family"]["arms"] == [] and any("No uniform compute family" in n for n in s["notes"])
    assert {c["verdict"] for c in s["claims"]} == {"undecided"}
    assert s["headline"][1]["parity"]["iterations"]["value"] == pytest.approx(4.0)
    res2 = make_synth(tmp_path / "one")
    for run in res2["runs"].iterdir():
        if not run.name.endswith("_s0"):
            (run / "card.json").write_text((run / "card.json").read_text().replace('"finished"', '"running"'))
    s = build_report(res2["results"], "synth", tmp_path / "out2", n_boot=20, figures=False)
    assert {c["verdict"] for c in s["claims"]} == {"single seed: no verdict"}
    assert s["headline"][1]["iterations"]["value"] == pytest.approx(4.0)
    md = (tmp_path / "out2" / "report.md").read_text()
    assert "single seed: no verdict" in md and "4.00x (1 seed)" in md


def test_contents_figures_next_to_their_tables_and_no_empty_rows(report):
    """Issue #29: a table of contents whose links reach the headings (GitHub's anchors in the
    Markdown, the same ids in the HTML); the family figure in the claims section and each other
    figure after its table, not in one block; no composition row for a label nobody drew."""
    from analysis.render import slug
    md, html = (report["out"] / "report.md").read_text(), (report["out"] / "report.html").read_text()
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert "Figures" not in headings                        # every figure found its section
    links = [line for line in md.splitlines() if line.startswith("- [") and "](#" in line]
    assert len(links) == len(headings) >= 8
    for title in headings:
        assert f"](#{slug(title)})" in md and f'id="{slug(title)}"' in html and f'href="#{slug(title)}"' in html
    claims = md.split("## Claims\n", 1)[1].split("\n## ", 1)[0]
    assert "](figures/family.png)" in claims
    per_set = md.split("## Per held-out set", 1)[1].split("\n## ", 1)[0]
    assert "](figures/multiplier_per_set.png)" in per_set
    assert {f["section"] for f in report["summary"]["figures"].values()} >= {"claims", "headline", "parity"}
    for kind in ("source", "quality"):
        rows = report["summary"]["composition"][kind]["selected"]
        empty = {r["label"] for r in rows if not r["pool_share"] and not r["selected_share"]}
        table = md.split(f"## What the arms trained on, by {kind}", 1)[1].split("\n## ", 1)[0]
        for label in empty:
            assert f"| {label} |" not in table


def test_controls_without_a_filter_ratio_and_one_jest_arm(tmp_path, make_synth):
    """oracle_clean has no filter ratio (it read 0); with one JEST arm there is no 'better than every
    other JEST arm' to claim; with one filter ratio no multiplier-vs-ratio figure, and the report says why."""
    res = make_synth(tmp_path, controls=True)
    cfg_path = res["results"] / "synth" / "config.resolved.json"
    cfg = json.loads((res["runs"] / "uniform_s0" / "card.json").read_text())["config"]
    cfg["ablation_arms"] = ["jest_f0.5", "jest_topk_f0.8"]
    cfg_path.write_text(json.dumps(cfg))
    s = build_report(res["results"], "synth", tmp_path / "out", n_boot=20)
    rows = {r["arm"]: r for r in s["headline"] + s["control_arms"]}
    assert rows["oracle_clean"]["filter_ratio"] is None and rows["offline_filter_f0.8"]["filter_ratio"] == 0.8
    md = (tmp_path / "out" / "report.md").read_text()
    assert "\n| oracle_clean | - |" in md and "\n| oracle_clean | 0 |" not in md    # the headline row
    assert "every other JEST arm" not in md and "One JEST arm in this report (jest_f0.8)" in md
    assert "multiplier_vs_filter_ratio" not in s["figures"]
    assert "single filter ratio" in s["figures_absent"]["multiplier_vs_filter_ratio"]["reason"]
    assert "No multiplier-vs-filter-ratio figure" in md

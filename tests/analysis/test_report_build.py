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


def test_summary_headline_has_the_known_answers(report):
    s = report["summary"]
    assert s["schema_version"] == SUMMARY_SCHEMA_VERSION
    assert s["primary_metric"]["name"] == "heldout_loss" and not s["primary_metric"]["higher_is_better"]
    assert s["baseline"]["arm"] == "uniform" and s["baseline"]["seeds"] == [0, 1, 2]
    head = {h["arm"]: h for h in s["headline"]}
    assert list(head) == ["jest_f0.5", "jest_f0.8", "jest_topk_f0.8"]        # the config's order
    assert head["jest_f0.5"]["iterations"]["value"] == pytest.approx(2.0)
    assert head["jest_f0.8"]["iterations"]["value"] == pytest.approx(4.0)
    assert head["jest_f0.8"]["flops"]["train+score"]["value"] == pytest.approx(4.0 / (1 + 5 / 3))
    lo, hi = head["jest_f0.8"]["iterations"]["ci_low"], head["jest_f0.8"]["iterations"]["ci_high"]
    assert lo <= 4.0 <= hi
    assert head["jest_f0.8"]["seeds"] == [0, 1, 2]                             # the failed seed 3 is left out
    topk = head["jest_topk_f0.8"]
    assert not topk["reached"] and topk["iterations"]["bound"] == "upper" and topk["T_j"] is None
    assert head["jest_f0.5"]["filter_ratio"] == 0.5 and head["jest_f0.5"]["series"] == "selector=joint"
    assert set(s["parity"]) == {"heldout_loss", "heldout_bpb"}
    claims = {c["id"]: c for c in s["claims"]}
    assert claims["iterations_13x"]["verdict"] == "does not hold"
    assert claims["iterations_13x"]["best_arm"] == "jest_f0.8"
    assert claims["compute_10x"]["verdict"] == "does not hold"
    assert "WebLI" in claims["iterations_13x"]["paper_setting"]


def test_summary_runs_provenance_and_composition(report):
    s = report["summary"]
    runs = {r["run"]: r for r in s["runs"]}
    assert len(runs) == 13 and runs["jest_f0.8_s3"]["status"] == "failed" and runs["jest_f0.8_s3"]["error"] == "boom"
    assert runs["uniform_s0"]["heldout_loss"] == pytest.approx(3.0 + 4.0 * 2.718281828 ** (-200 / 60) - 0.01)
    assert s["references"] == [{"name": "ref", "status": "finished", "steps": 300, "n_params": 664192,
                                "train_split": "curated", "heldout_loss": 3.05, "heldout_bpb": None,
                                "flops_train": 2.7e12}]
    assert s["provenance"]["git_commits"] == ["deadbeef"] and s["provenance"]["packages"]["torch"] == ["2.13.0+cpu"]
    assert s["provenance"]["started"] == "2026-01-01T00:00:00+0000"
    sel = {(r["arm"], r["label"]): r for r in s["composition"]["source"]["selected"]}
    assert sel[("uniform", "brown")]["enrichment"] == pytest.approx(1.0)
    assert sel[("jest_topk_f0.8", "brown")]["enrichment"] > 2
    assert any("not finished" in n for n in s["notes"])
    assert sum("resolves iteration speedups up to 8.0x" in n for n in s["notes"]) == 1


def test_every_figure_is_written_referenced_and_loadable(report):
    out, figures = report["out"], report["summary"]["figures"]
    assert {"curves_heldout_loss", "flops_heldout_loss", "speedup_vs_filter_ratio", "speedup_per_arm",
            "composition_source"} <= set(figures)
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
        assert "13x fewer iterations" in text and "10x less compute" in text and "does not hold" in text
        assert "4.00x [" in text and "< 1.00x (not reached)" in text


def test_no_runs_gives_an_empty_but_valid_report(tmp_path):
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    s = build_report(tmp_path, "empty", tmp_path / "out")
    assert s["headline"] == [] and s["figures"] == {} and s["baseline"]["arm"] is None
    assert {c["verdict"] for c in s["claims"]} == {"inconclusive"}
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "report.md").exists()

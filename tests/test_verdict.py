"""`python -m jest verdict` (jest/verdict.py, jest/verdict_reference.py) on the committed reference
summaries: the whole finding (claims, every compared arm's multiplier, the controls, the paired
verdicts), one word for the multiplier, at most 100 columns, and the agreement with the reference."""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import pytest

from jest.config import PROJECT_ROOT
from jest.verdict import WIDTH, main as verdict_main, render
from jest.verdict_reference import Z_AGREE, agreement, log_se, reference_path_for

REFERENCE = PROJECT_ROOT / "results" / "reference" / "tiny"
SUMMARIES = [REFERENCE / "summary.json", REFERENCE / "ablations" / "summary.json"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run([sys.executable, "-m", "jest", "verdict", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=env)


@pytest.mark.parametrize("path", SUMMARIES, ids=["headline", "ablations"])
def test_the_verdict_tells_the_whole_finding_in_100_columns(path):
    proc = _cli("--summary", str(path))
    assert proc.returncode == 0, proc.stderr
    out, summary = proc.stdout, json.loads(path.read_text())
    too_wide = [line for line in out.splitlines() if len(line) > WIDTH]
    assert not too_wide, too_wide
    for claim in summary["claims"] + summary["general_domain"]["claims"]:
        assert claim["claim"] in out and claim["verdict"] in out
    # every compared arm (headline, ablations, controls) with its iterations multiplier and interval
    for row in summary["headline"] + summary["ablations"] + summary["control_arms"]:
        it = row["iterations"]
        line = next(l for l in out.splitlines() if l.startswith(row["arm"] + " "))
        assert f"{it['value']:.2f}x [{it['ci_low']:.2f}, {it['ci_high']:.2f}]" in line
    for kind, arms in summary["controls"]["arms"].items():
        for arm in arms:
            assert any(l.startswith(arm + " ") and kind.replace("_", " ") in l for l in out.splitlines())
    # the paired verdicts against the offline filter and the mixture-matched control
    for pair, test in (("offline_share", "jest_over_offline"), ("mixture_matched", "jest_over_matched")):
        for p in summary["controls"][pair]:
            assert f"{p[test]['ratio']:.2f}x [{p[test]['ci_low']:.2f}, {p[test]['ci_high']:.2f}]" in out
            assert p[test]["verdict"] in out
    for row in summary["equivalence"]:
        assert any(l.startswith(row["arm"] + " ") and row["verdict"] in l for l in out.splitlines())
    assert "speedup" not in out.lower() and "multiplier" in out   # the report's word, and only it
    assert out.rstrip().endswith(f"Report: {path.parent / 'report.html'}")
    assert "This is the committed reference of config tiny" in out


def test_the_reference_has_the_findings_the_issue_names():
    """What the committed tiny reference says (if a regenerated reference changes these, the test says so):
    JEST vs the offline filter is undecided, vs the mixture-matched control different."""
    out = render(json.loads(SUMMARIES[0].read_text()), SUMMARIES[0])
    rows = {l.split()[1]: l for l in out.splitlines() if l.startswith("jest_f0.8  ")}
    assert rows["offline_filter_f0.8"].endswith("undecided")
    assert rows["mixture_matched_f0.8"].endswith("different")


def _shifted(value: float) -> dict:
    """The reference summary with its JEST multiplier moved to `value`, the interval moved with it."""
    summary = copy.deepcopy(json.loads(SUMMARIES[0].read_text()))
    it = summary["headline"][0]["iterations"]
    scale = value / it["value"]
    it.update(value=value, ci_low=it["ci_low"] * scale, ci_high=it["ci_high"] * scale,
              log_mean=math.log(value))
    return summary


@pytest.mark.parametrize("value, word", [(1.19, "within the seeds' spread"),
                                          (1.60, "beyond the seeds' spread: they differ")])
def test_a_fresh_run_is_judged_against_the_committed_reference(tmp_path, value, word):
    fresh = tmp_path / "report" / "summary.json"
    fresh.parent.mkdir()
    fresh.write_text(json.dumps(_shifted(value)))
    assert reference_path_for(json.loads(fresh.read_text()), fresh) == SUMMARIES[0]
    out = render(json.loads(fresh.read_text()), fresh, SUMMARIES[0])
    line = next(l for l in out.splitlines() if l.startswith("jest_f0.8: "))
    # z from the per-seed log sd (a route independent of the intervals the code reads)
    ref = json.loads(SUMMARIES[0].read_text())["headline"][0]["iterations"]
    se = ref["log_sd"] / math.sqrt(ref["n"])
    z = math.log(value / ref["value"]) / math.hypot(se, se)
    assert (abs(z) < Z_AGREE) == word.startswith("within")
    assert line == f"jest_f0.8: {value:.2f}x here, {ref['value']:.2f}x in the reference: z = {z:+.2f}, {word}"


def test_the_standard_error_is_read_back_from_the_interval():
    it = json.loads(SUMMARIES[0].read_text())["headline"][0]["iterations"]
    assert log_se(it) == pytest.approx(it["log_sd"] / math.sqrt(it["n"]), rel=1e-9)
    assert log_se(dict(it, bound="upper")) is None and agreement(dict(it, bound="upper"), it) is None


def test_a_summary_without_a_reference_gets_no_reference_line(tmp_path):
    summary = json.loads(SUMMARIES[0].read_text())
    summary["config"]["name"] = "no_such_config"
    path = tmp_path / "summary.json"
    assert reference_path_for(summary, path) is None
    assert "committed reference" not in render(summary, path, None)


def test_long_names_and_a_newer_schema_still_fit_and_are_named():
    summary = copy.deepcopy(json.loads(SUMMARIES[0].read_text()))
    long_name = "abl_" + "a_very_long_ablation_name_" * 3 + "f0.8"
    summary["headline"][0]["arm"] = long_name
    summary["headline"][0]["multiplier_compute"] = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    del summary["claims"]
    text = render(summary, SUMMARIES[0])
    assert all(len(line) <= WIDTH for line in text.splitlines())
    assert long_name in text and "multiplier_compute" in text and "The paper's claims" not in text


def test_the_verdict_without_a_report_says_so(tmp_path, capsys):
    assert verdict_main(str(tmp_path / "summary.json"), None) == 1
    assert "no report yet" in capsys.readouterr().out


def test_every_verdict_is_read_beside_the_positive_control(tmp_path):
    """The committed positive control (a planted-noise pool) is named under the verdict with its measured
    multipliers; without its summary the section is absent, never invented."""
    from jest.config import PROJECT_ROOT
    from jest.verdict import POSITIVE_CONTROL, positive_control_lines
    lines = positive_control_lines(PROJECT_ROOT / POSITIVE_CONTROL)
    pc = json.loads((PROJECT_ROOT / POSITIVE_CONTROL).read_text())
    text = " ".join(lines)
    for arm, a in pc["arms"].items():
        assert f"{arm} {a['measured']['value']:.2f}x" in text
    assert all(len(line) <= 100 for line in lines)
    assert positive_control_lines(tmp_path / "absent.json") == []

"""The report's MLflow summary run: what it logs, and that MLflow trouble never fails the report.
(The real store and server path: tests/test_mlflow_server.py.)"""
import warnings

import pytest

from analysis import report
from analysis.mlflow_summary import log_summary, store_of, summary_metrics, summary_tags

BAD_URI = "sqlite:////proc/jest-no-such-dir/mlflow.db"   # its lock file cannot be created


def _speedup(value, lo=None, hi=None, bound=None):
    return {"value": value, "ci_low": lo, "ci_high": hi, "bound": bound}


SUMMARY = {
    "schema_version": "jest-summary-v2", "arm_scope": "all", "ablation_arms": ["abl_topk_f0.8"],
    "config": {"name": "synth", "resolved": {"name": "synth", "mlflow": {"tracking_uri": None, "experiment": None}}},
    "baseline": {"arm": "uniform"}, "primary_metric": {"name": "heldout_loss"},
    "provenance": {"git_commits": ["abc"]},
    "claims": [{"id": "iterations_13x", "claim": "13x fewer iterations", "verdict": "does not hold", "reason": "r"}],
    "headline": [{"arm": "jest_f0.8", "reached": True, "T_j": 50.0, "iterations": _speedup(4.0, 3.5, 4.5),
                  "flops": {"train": _speedup(4.0), "train+score": _speedup(1.5, 1.2, 1.8), "total": _speedup(None)}}],
    "ablations": [{"arm": "abl_topk_f0.8", "reached": False, "T_j": None, "iterations": _speedup(0.8, bound="upper"),
                   "flops": {"train+score": _speedup(0.3)}}],
    "control_arms": [{"arm": "offline_filter_f0.8", "reached": True, "T_j": 60.0,
                      "iterations": _speedup(1.15, 0.93, 1.42), "examples": _speedup(1.15, 0.93, 1.42),
                      "flops": {"train+score": _speedup(1.15, 0.93, 1.42)}}],
    "runs": [],
}


def test_metrics_and_tags_flatten_every_compared_arm_as_multipliers():
    m = summary_metrics(SUMMARY)
    assert m["multiplier_iterations.jest_f0.8"] == 4.0 and m["multiplier_iterations_ci_low.jest_f0.8"] == 3.5
    assert m["multiplier_flops_train_score.jest_f0.8"] == 1.5 and m["multiplier_flops_train.jest_f0.8"] == 4.0
    assert "multiplier_flops_total.jest_f0.8" not in m                   # None is left out, not logged as 0
    assert m["reached.jest_f0.8"] == 1.0 and m["T_j.jest_f0.8"] == 50.0
    assert m["reached.abl_topk_f0.8"] == 0.0 and "T_j.abl_topk_f0.8" not in m
    # issue #29: the controls' multipliers too (they were missing: only headline and ablation rows were read)
    assert m["multiplier_iterations.offline_filter_f0.8"] == 1.15
    assert m["multiplier_flops_train_score_ci_high.offline_filter_f0.8"] == 1.42
    assert m["multiplier_examples.offline_filter_f0.8"] == 1.15
    # an upper bound's open low end is not logged (no 0 standing in for "open")
    assert m["multiplier_iterations.abl_topk_f0.8"] == 0.8 and "multiplier_iterations_ci_low.abl_topk_f0.8" not in m
    assert not any("speedup" in k for k in m)                           # the word is "multiplier"
    tags = summary_tags(SUMMARY)
    assert tags["kind"] == "summary" and tags["method"] == "summary" and tags["arm_scope"] == "all"
    assert tags["group"] == "ablation" and tags["mlflow.source.type"] == "LOCAL"   # the all-arms report
    assert tags["verdict.iterations_13x"] == "does not hold" and tags["headline_arms"] == "jest_f0.8"
    assert tags["control_arms"] == "offline_filter_f0.8"


def test_store_is_the_training_runs_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store_of(SUMMARY, tmp_path) == (f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}", "jest-synth")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert store_of(SUMMARY, tmp_path)[0] == "http://127.0.0.1:1"


def test_mlflow_failure_only_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", BAD_URI)
    with pytest.warns(UserWarning, match="was not logged"):
        assert log_summary(SUMMARY, tmp_path, tmp_path, retries=1) is None


def test_report_cli_succeeds_when_mlflow_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", BAD_URI)
    monkeypatch.setattr(report, "build_report", lambda *a, **k: {**SUMMARY, "notes": []})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert report.main(["--results", str(tmp_path), "--config", "synth", "--out", str(tmp_path / "r")]) == 0
    assert any("was not logged" in str(w.message) for w in caught)
    assert "MLflow summary run" not in capsys.readouterr().out

"""tools.compare_results: what shows that a refactoring changed no result."""
from __future__ import annotations

import json
from pathlib import Path

from tools.compare_results import compare


def _results(root: Path, loss: float, weights: bytes = b"w") -> Path:
    run = root / "runs" / "a_s0"
    (run / "model").mkdir(parents=True)
    (run / "eval").mkdir()
    rows = [{"step": 1, "heldout_loss": loss, "wall_time": 3.0, "time": 1.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "model" / "model.safetensors").write_bytes(weights)
    (run / "eval" / "metrics.jsonl").write_text(json.dumps({"step": 1, "acc": 0.5}) + "\n")
    (root / "report").mkdir()
    (root / "report" / "summary.json").write_text(json.dumps({"headline": [{"x": loss}], "notes": ["n"]}))
    return root


def test_identical_folders_pass_and_timings_are_ignored(tmp_path):
    a, b = _results(tmp_path / "a", 1.0), _results(tmp_path / "b", 1.0)
    rows = [json.loads(x) for x in (b / "runs/a_s0/metrics.jsonl").read_text().splitlines()]
    rows[0]["wall_time"] = 99.0
    (b / "runs/a_s0/metrics.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert compare(a, b) == []


def test_a_changed_loss_weight_or_summary_number_is_reported(tmp_path):
    a, b = _results(tmp_path / "a", 1.0), _results(tmp_path / "b", 1.0 + 1e-12, weights=b"v")
    diffs = compare(a, b)
    assert "a_s0: metrics.jsonl rows differ" in diffs and "a_s0: final weights differ" in diffs
    assert any(d.startswith("report/summary.json.headline[0].x") for d in diffs)

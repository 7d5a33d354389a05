"""The (summary.json, runs folder) pairs of committed or local reference results that still have
their run folders, for the tests that recompute a committed summary independently, and how those
tests read a run's metrics (plain or gzipped)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from jest.config import PROJECT_ROOT


def reference_cases() -> list:
    cases = []
    reference = PROJECT_ROOT / "results" / "reference"
    # each config's headline summary, and its ablations' (every arm) beside it, read from the same runs
    for summary_path in sorted([*reference.glob("*/summary.json"), *reference.glob("*/ablations/summary.json")]):
        top = summary_path.parent if summary_path.parent.name != "ablations" else summary_path.parent.parent
        name, label = top.name, str(summary_path.parent.relative_to(reference))
        if not json.loads(summary_path.read_text()).get("schema_version", "").startswith("jest-summary-"):
            continue        # the ladder's summary (jest-ladder-summary-*) has its own check: test_ladder_reference.py
        for runs in (top / "runs", PROJECT_ROOT / "results" / name / "runs"):
            if runs.is_dir():
                cases.append(pytest.param(summary_path, runs, id=f"{label}:{runs.relative_to(PROJECT_ROOT)}"))
                break
    return cases or [pytest.param(None, None, id="no-reference-run-folders")]


def metrics_text(run_dir: Path) -> str:
    """A run's metrics.jsonl, or the gzipped copy that committed reference results hold."""
    plain = run_dir / "metrics.jsonl"
    return plain.read_text() if plain.exists() else gzip.decompress((run_dir / "metrics.jsonl.gz").read_bytes()).decode()

"""The committed tiny reference: every family of the default lm-eval suite rises with training.

A task whose items a model scores at chance whatever its training adds noise to the aggregate and
measures nothing. This reads each committed run's lm-eval rows (results/reference/tiny/runs/*/eval/
metrics.jsonl.gz: 4 log-spaced snapshots per run, 200 items per task) and asks, per task, whether the
log-likelihood margin of the last snapshot exceeds the first's: the mean of that rise over runs, with
the runs as the unit of replication, must be positive by more than 3 standard errors.
"""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from jest.config import PROJECT_ROOT

from jest.experiment import load_config

REFERENCE = PROJECT_ROOT / "results" / "reference" / "tiny"


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _rises(task: str) -> list[float]:
    rises = []
    for path in sorted(REFERENCE.glob("runs/*/eval/metrics.jsonl.gz")):
        by_step = {row["step"]: row for row in _rows(path) if f"eval_{task}_margin" in row}
        if len(by_step) >= 2:
            first, last = by_step[min(by_step)], by_step[max(by_step)]
            rises.append(last[f"eval_{task}_margin"] - first[f"eval_{task}_margin"])
    return rises


@pytest.mark.parametrize("task", load_config(PROJECT_ROOT / "config" / "tiny.yaml")["evaluation"]["tasks"])
def test_every_default_family_rises_from_the_first_to_the_last_snapshot(task):
    rises = _rises(task)
    assert len(rises) >= 30, f"{task}: only {len(rises)} committed runs evaluate it"
    mean = sum(rises) / len(rises)
    se = math.sqrt(sum((r - mean) ** 2 for r in rises) / (len(rises) - 1) / len(rises))
    assert mean > 3 * se, f"{task}: margin rise {mean:+.4f} +- {se:.4f} over {len(rises)} runs"

"""Does a run's JEST multiplier agree with the committed reference of its config (results/reference/<name>/)?

A fresh `make reproduce` gives, say, 1.19x where the README quotes the reference's 1.21x; the
question is whether the gap is within what the seeds' spread allows. The test: the difference of
the two log multipliers against their combined standard error, each standard error read back from
its interval (a t-interval on the per-seed log multipliers, analysis/stats.py: half-width / t
quantile with n - 1 degrees of freedom), z = (log a - log b) / sqrt(se_a^2 + se_b^2); they agree
when |z| < 1.96 (two-sided 5%). The two runs are treated as independent, which holds across
machines (CPU kernels and thread counts change the arithmetic) and is conservative otherwise: the
same seeds make the runs positively correlated, so the true standard error of the gap is smaller.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from scipy import stats

from jest.config import PROJECT_ROOT

Z_AGREE = 1.96  # two-sided 5% (the report's alpha)


def reference_path_for(summary: dict, summary_path: Path) -> Path | None:
    """The committed summary of the same config and report (the headline's, or report/ablations/'s), if any."""
    name = (summary.get("config") or {}).get("name")
    if not name:
        return None
    folder = PROJECT_ROOT / "results" / "reference" / name
    path = (folder / "ablations" if summary_path.parent.name == "ablations" else folder) / "summary.json"
    return path if path.is_file() else None


def log_se(m: dict) -> float | None:
    """The standard error of log(multiplier) read back from its interval; None for a bound or no interval."""
    if not isinstance(m, dict) or m.get("bound") or not m.get("n") or m["n"] < 2:
        return None
    lo, hi = m.get("ci_low"), m.get("ci_high")
    if not all(isinstance(v, (int, float)) and v > 0 and math.isfinite(v) for v in (lo, hi)):
        return None
    level = m.get("ci_level", 0.95)
    q = stats.t.ppf((1 + level) / 2, m["n"] - 1) if m.get("method", "t") == "t" else stats.norm.ppf((1 + level) / 2)
    return (math.log(hi) - math.log(lo)) / (2 * q)


def agreement(here: dict, there: dict) -> tuple[float, str] | None:
    """(z, word) for two multipliers, or None when either is a bound or lacks an interval."""
    se_a, se_b = log_se(here), log_se(there)
    if se_a is None or se_b is None or not (here.get("value") or 0) > 0 or not (there.get("value") or 0) > 0:
        return None
    z = (math.log(here["value"]) - math.log(there["value"])) / math.hypot(se_a, se_b)
    return z, ("within the seeds' spread" if abs(z) < Z_AGREE else "beyond the seeds' spread: they differ")


def _headline(summary: dict) -> dict[str, dict]:
    return {row.get("arm"): row.get("iterations") for row in summary.get("headline") or []}


def reference_lines(summary: dict, summary_path: Path, reference: Path) -> list[str]:
    """One line per headline arm the two summaries share; one line when the summary is the reference."""
    try:
        rel = reference.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        rel = reference
    if summary_path.resolve() == reference.resolve():
        return [f"This is the committed reference of config {summary['config']['name']} ({rel})."]
    ref = json.loads(reference.read_text())
    lines = [f"Against the committed reference {rel}, iterations multiplier",
             f"(z: log ratio / combined standard error read from both intervals; agree: |z| < {Z_AGREE})"]
    theirs = _headline(ref)
    for arm, mine in _headline(summary).items():
        if arm not in theirs:
            lines.append(f"{arm}: not in the reference")
            continue
        result = agreement(mine or {}, theirs[arm] or {})
        here, there = (f"{_value(m)}x" for m in (mine, theirs[arm]))
        lines.append(f"{arm}: {here} here, {there} in the reference: "
                     + (f"z = {result[0]:+.2f}, {result[1]}" if result else "a bound or no interval: not judged"))
    return lines


def _value(m) -> str:
    v = m.get("value") if isinstance(m, dict) else None
    return f"{v:.2f}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"

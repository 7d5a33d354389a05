"""metrics.jsonl: a run's append-only rows, and the checks its readers make (issue #30).

The trainer appends one JSON line per logged step. When the run finishes, its card records the
file's sha256 (`metrics_sha256`, written by jest.tracking.records.write_card), so that a reader can tell
the file the run wrote from one edited, truncated or copied over later. Two readers:

- `read_metrics(path)`: tolerant, for a file still being written (training's resume, the live
  MLflow mirror): a torn last line (a writer killed mid-line) is ignored.
- `verified_rows(run_dir)`: for the numbers of a report or the MLflow mirror: the sha256 the
  finished run recorded must match, and only the last line may be bad; otherwise `MetricsError`,
  naming the file and the job that writes it again.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from jest.io import sha256_file

METRICS_FILE = "metrics.jsonl"
CARD_FILE = "card.json"


class MetricsError(ValueError):
    """A run's metrics.jsonl that cannot be trusted: changed after its run finished, or damaged before its last line."""


class MetricsFile:
    """Append-only metrics.jsonl; one JSON object per logged step."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def rows(self) -> list[dict]:
        return read_metrics(self.path)


def rerun_hint(path: Path) -> str:
    """The fix for a bad metrics.jsonl: its training job writes it again. `--forcerun FILE` re-runs the
    job whose output FILE is (train or train_reference), and what depends on it; the path is given
    relative to the working directory, as the rules name their outputs (results/<name>/runs/...)."""
    path = Path(path).resolve()
    try:
        path = path.relative_to(Path.cwd().resolve())
    except ValueError:
        pass  # outside the working directory: the absolute path
    return (f"re-run its training job: `snakemake --cores 1 --configfile <your config> --forcerun {path}` "
            f"(or delete {path.parent} and run `snakemake` again)")


def _parse(path: Path) -> tuple[list[dict], int | None]:
    """(rows up to the first bad line, 1-based number of that line if it is not the last line)."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            # the last line may be torn (a killed writer, or a run still being written): ignored
            return rows, (number if number < len(lines) else None)
        rows.append(row)
    return rows, None


def read_metrics(path: Path, strict: bool = False) -> list[dict]:
    """Rows of a metrics.jsonl; a torn last line is ignored. A bad line before the last means the file
    was damaged: `strict` raises MetricsError naming it; otherwise the rows before it are returned
    with a warning (the trainer's own readers; a finished run's readers use `verified_rows`)."""
    path = Path(path)
    if not path.exists():
        return []
    rows, bad = _parse(path)
    if bad is not None:
        message = (f"{path}: line {bad} is not a JSON object, and {bad - 1} rows come before it: the file is "
                   f"damaged (a torn line can only be the last), so every row after it would be lost")
        if strict:
            raise MetricsError(f"{message}. Fix: {rerun_hint(path)}")
        warnings.warn(f"{message}; reading the rows before it", stacklevel=2)
    return rows


def metrics_digest(run_dir: Path) -> str | None:
    """sha256 of the run's metrics.jsonl (None without one): what the finished run's card records."""
    path = Path(run_dir) / METRICS_FILE
    return sha256_file(path) if path.exists() else None


def verified_rows(run_dir: Path, card: dict | None = None) -> list[dict]:
    """The rows of a run folder's metrics.jsonl, checked: a finished run's file must have the sha256 its
    card recorded when the run finished (cards older than the record are read unchecked), and no line
    before the last may be bad. Raises MetricsError naming the file and the fix."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if card is None:
        card = json.loads((run_dir / CARD_FILE).read_text())
    recorded = card.get("metrics_sha256")
    if card.get("status") == "finished" and recorded:
        actual = metrics_digest(run_dir)
        if actual != recorded:
            found = "is missing" if actual is None else f"has sha256 {actual[:12]}..."
            raise MetricsError(
                f"{path} {found}, but its run recorded sha256 {recorded[:12]}... when it finished "
                f"({run_dir / CARD_FILE}, metrics_sha256): the file changed after training (edited, truncated or "
                f"copied over), so its numbers are not the run's. Fix: {rerun_hint(path)}")
    return read_metrics(path, strict=True)

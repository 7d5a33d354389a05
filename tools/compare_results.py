"""Are two results folders of one config the same experiment? Compares what a refactoring must not change.

    python -m tools.compare_results results_a/<name> results_b/<name>

For every run folder present in both: the metrics.jsonl rows (every field but the timings), the final
weights (sha256 of model/model.safetensors) and the lm-eval rows (eval/*.jsonl, timings left out); then
every number of report/summary.json (paths, provenance, figures and notes left out). Prints what differs
and exits 1 if anything does, 0 if the two are identical. The timings (wall time, tokens/s, MFU) differ
from run to run by nature and are never compared.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

TIMING = ("time", "mfu", "per_s", "seconds", "utilisation")     # substrings of the fields never compared
NOT_RESULTS = ("figures", "provenance", "config", "git_commit", "runs", "notes", "run_dir", "path")


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _numbers(value, path: str = ""):
    """(path, number) for every number of a JSON value, outside the keys that are not results."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in NOT_RESULTS and not any(t in k for t in TIMING):
                yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def compare(a: Path, b: Path) -> list[str]:
    """What differs between results folders `a` and `b` (each results/<name>), one line per difference."""
    out = []
    runs_a = {p.name for p in (a / "runs").iterdir() if p.is_dir()}
    runs_b = {p.name for p in (b / "runs").iterdir() if p.is_dir()}
    out += [f"run {r} only in {a if r in runs_a else b}" for r in sorted(runs_a ^ runs_b)]
    for run in sorted(runs_a & runs_b):
        ra, rb = a / "runs" / run, b / "runs" / run
        if _rows(ra / "metrics.jsonl") != _rows(rb / "metrics.jsonl"):
            out.append(f"{run}: metrics.jsonl rows differ")
        if _sha256(ra / "model" / "model.safetensors") != _sha256(rb / "model" / "model.safetensors"):
            out.append(f"{run}: final weights differ")
        for f in sorted((ra / "eval").glob("*.jsonl")):
            if not (rb / "eval" / f.name).is_file() or _rows(f) != _rows(rb / "eval" / f.name):
                out.append(f"{run}: eval/{f.name} differs")
    for summary in sorted({p.relative_to(a) for p in a.glob("report/**/summary.json")}):
        if not (b / summary).is_file():
            out.append(f"{summary} only in {a}")
            continue
        na = dict(_numbers(json.loads((a / summary).read_text())))
        nb = dict(_numbers(json.loads((b / summary).read_text())))
        out += [f"{summary}{k}: {na.get(k)} vs {nb.get(k)}" for k in sorted(set(na) | set(nb)) if na.get(k) != nb.get(k)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.compare_results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args(argv)
    diffs = compare(args.a, args.b)
    runs = len([d for d in (args.a / "runs").iterdir() if d.is_dir()])
    for line in diffs[:50]:
        print(line)
    print(f"{runs} runs compared: " + ("identical" if not diffs else f"{len(diffs)} differences"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

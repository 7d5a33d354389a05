"""Copy a finished config's results into results/reference/<config>/ for committing.

What a reader needs to recompute every number: the report (summary.json, report.md/html,
figures) and, per run and reference, its card and its metrics.jsonl (gzipped, with a fixed
mtime so that the same rows give the same bytes), plus each run's lm-eval aggregates.
Model weights, checkpoints and snapshots are left out (megabytes, and derivable).

    python scripts/publish_reference.py results/tiny results/reference/tiny
    python scripts/publish_reference.py results/ladder results/reference/ladder \
        --report results/ladder/report/ladder --also results/ladder/ladder/lr_choice.json
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

# Small per-run files worth keeping beside the metrics (paths relative to a run folder).
RUN_FILES = ("card.json",)
EVAL_FILES = ("eval/done.json", "eval/metrics.jsonl")


def gzip_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        # mtime=0 and no file name in the header: the archive depends only on the rows.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fout:
            shutil.copyfileobj(fin, fout)


def publish_run(run: Path, dst: Path) -> int:
    copied = 0
    for name in RUN_FILES:
        if (run / name).exists():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, dst / name)
            copied += 1
    for name in ("metrics.jsonl", *EVAL_FILES):
        src = run / name
        if src.exists():
            target = dst / (name + ".gz") if name.endswith(".jsonl") else dst / name
            if name.endswith(".jsonl"):
                gzip_file(src, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="results/<config> of a finished run")
    ap.add_argument("dest", type=Path, help="results/reference/<config>")
    ap.add_argument("--report", type=Path, help="the report folder (default: <results>/report)")
    ap.add_argument("--also", type=Path, nargs="*", default=[],
                    help="more files to copy to the top of dest (the ladder's lr_choice.json)")
    args = ap.parse_args(argv)
    report = args.report or args.results / "report"
    if not (report / "summary.json").exists():
        sys.exit(f"{report / 'summary.json'} is missing: run the DAG to the end first")
    args.dest.mkdir(parents=True, exist_ok=True)
    for item in report.iterdir():
        target = args.dest / item.name
        if item.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)
    for extra in args.also:
        if not extra.is_file():
            sys.exit(f"{extra} (--also) is missing")
        shutil.copy2(extra, args.dest / extra.name)
    n_runs = 0
    for group in ("runs", "references"):
        for run in sorted((args.results / group).glob("*")):
            if run.is_dir() and publish_run(run, args.dest / group / run.name):
                n_runs += 1
    print(f"published {args.results} -> {args.dest}: report + {n_runs} runs/references")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

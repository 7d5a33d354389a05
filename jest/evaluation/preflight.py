"""Pre-flight: are the Hugging Face datasets of the requested lm-eval tasks in the offline cache?

Evaluation jobs run offline (``HF_DATASETS_OFFLINE=1``, ``HF_HUB_OFFLINE=1``,
``HF_HOME=<cache>/hf``). The shipped tasks read local files, but lm-eval's
standard tasks (the ``standard`` suite: hellaswag, arc, piqa, ...) and user
tasks may name hub datasets; if one is not cached, lm-eval fails only when the
first checkpoint is evaluated, after the training it was meant to measure.
:func:`check_datasets` finds every hub dataset the configured tasks need
(``dataset_path`` / ``dataset_name`` / ``dataset_kwargs`` from the task YAMLs,
lm-eval's own included), loads each from the cache exactly as lm-eval will
(``datasets.load_dataset(path, name, **dataset_kwargs)``), and raises
:class:`MissingDatasetsError` naming the missing ones and the commands that
fetch them on a machine with internet access. Unknown task names are
reported in the same message.

The workflow runs it before any job (``onstart`` in workflow/rules/evaluate.smk;
not on dry runs, so ``snakemake -n`` works on a machine without the datasets),
and the evaluate stage runs it again before its first snapshot. By hand::

    python -m jest.evaluation.preflight --config config/gpu.yaml             # check the cache
    python -m jest.evaluation.preflight --config config/gpu.yaml --download  # fill it (needs internet)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jest.evaluation.errors import EvaluationError, TaskYamlError
from jest.evaluation.suites import expand, lm_eval_dirs

# `datasets` builders that read local files (their data_files are checked by check_task_data).
PACKAGED_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow", "pandas", "webdataset", "imagefolder",
                               "audiofolder", "videofolder", "xml", "sql"})
STAMP_VERSION = "jest-preflight-v1"


class MissingDatasetsError(EvaluationError):
    """Some requested lm-eval task needs a hub dataset that is not in the cache (or the task is unknown)."""


@dataclass
class HubDataset:
    """One ``datasets.load_dataset(path, name, **kwargs)`` call and the tasks that need it."""

    path: str
    name: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return json.dumps([self.path, self.name, self.kwargs], sort_keys=True, default=str)

    def call(self) -> str:
        """The Python call that loads it (and, online, fetches it into the cache)."""
        args = [repr(self.path)] + ([repr(self.name)] if self.name is not None else [])
        args += [f"{k}={v!r}" for k, v in sorted(self.kwargs.items())]
        return f"datasets.load_dataset({', '.join(args)})"


@dataclass
class Needs:
    datasets: list[HubDataset]
    unknown: list[str]  # names neither lm-eval nor the include paths define
    unchecked: list[str]  # Python-defined tasks / custom_dataset: left to lm-eval


def _built_names() -> frozenset[str]:
    from jest.evaluation.tasks import BUILT_NAMES

    return BUILT_NAMES


def _index(names: Sequence[str], include_paths: Sequence[Path]) -> dict[str, Any]:
    """lm-eval's task index over the include paths and the folders of known tasks; all of lm-eval's
    ~14k YAMLs (10-100 s) only if a name is still missing."""
    from lm_eval.tasks import TaskManager

    # Tags shared by two indexed folders (super_glue's boolq and copa) log an "overrides" warning each.
    index_log = logging.getLogger("lm_eval.tasks._index")
    level = index_log.level
    index_log.setLevel(logging.ERROR)
    try:
        local = [*lm_eval_dirs(names), *include_paths]
        index = dict(TaskManager(include_path=[str(p) for p in local], include_defaults=False).task_index) \
            if local else {}
        if any(name not in index for name in names):
            index = dict(TaskManager(include_path=[str(p) for p in include_paths] or None).task_index)
    finally:
        index_log.setLevel(level)
    return index


def check_task_yaml_syntax(include_paths: Iterable[Path]) -> None:
    """Raise TaskYamlError naming the file and line of every task YAML under ``include_paths`` that does
    not parse. lm-eval's indexer logs such a file at debug level and skips it, so its tasks surface
    only as "unknown task name(s)", with the YAML error hidden (issue #30)."""
    import yaml

    class Loader(yaml.SafeLoader):  # lm-eval's tags (!function) are not the syntax under test
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    bad = []
    for root in (Path(p) for p in include_paths):
        files = [root] if root.is_file() else sorted(root.rglob("*.yaml")) if root.is_dir() else []
        for path in files:
            try:
                yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
            except UnicodeDecodeError as err:
                bad.append(f"{path}: not UTF-8 text ({err})")
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
                where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
                what = " ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
                bad.append(f"{where}: {what or err}")
    if bad:
        raise TaskYamlError("task YAML file(s) under 'evaluation.include_paths' do not parse, so lm-eval would skip "
                            "them and call their tasks unknown:\n  " + "\n  ".join(bad) +
                            "\nFix the YAML at that line (check it with `python -c \"import yaml,sys; "
                            "yaml.safe_load(open(sys.argv[1]))\" FILE`), or remove the file from the include path.")


def dataset_needs(tasks: Iterable[str], include_paths: Iterable[Path]) -> Needs:
    """The hub datasets behind ``tasks`` (suites, groups and tags expanded), from the task YAMLs."""
    built = _built_names()
    names = [name for name in expand(tasks) if name not in built]
    include_paths = [Path(p) for p in include_paths if Path(p).is_dir()]
    check_task_yaml_syntax(include_paths)
    if not names:
        return Needs([], [], [])
    index = _index(names, include_paths)
    leaves: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    unchecked: list[str] = []
    pending: list[Any] = list(names)
    seen: set[str] = set()
    while pending:
        item = pending.pop(0)
        if isinstance(item, dict):  # an inline task of a group: overrides over a registered task
            name = item.get("task") if isinstance(item.get("task"), str) else None
            entry = index.get(name) if name else None
            config = {**((entry.cfg or {}) if entry is not None else {}), **item}
            if name and "dataset_path" in config:
                leaves[name] = config
            elif name:
                pending.append(name)
            continue
        if not isinstance(item, str) or item in seen or item in built:
            continue
        seen.add(item)
        entry = index.get(item)
        if entry is None:
            unknown.append(item)
            continue
        kind = entry.kind.name
        if kind == "GROUP":
            members = (entry.cfg or {}).get("task") or []
            pending.extend(members if isinstance(members, list) else [members])
        elif kind == "TAG":
            pending.extend(sorted(entry.tags))
        elif kind == "TASK" and entry.cfg is not None:
            leaves[item] = entry.cfg
        else:
            unchecked.append(item)
    found: dict[str, HubDataset] = {}
    for name, config in leaves.items():
        path = config.get("dataset_path")
        if config.get("custom_dataset") or not isinstance(path, str):
            unchecked.append(name)
            continue
        if path in PACKAGED_BUILDERS or Path(path).is_absolute() or Path(path).exists():
            continue  # local files: check_task_data's business
        kwargs = dict(config.get("dataset_kwargs") or {})
        kwargs.pop("trust_remote_code", None)  # dropped by lm-eval with datasets >= 4
        dataset = HubDataset(path, config.get("dataset_name"), kwargs)
        found.setdefault(dataset.key, dataset).tasks.append(name)
    return Needs(list(found.values()), unknown, unchecked)


def _try_load(dataset: HubDataset) -> str | None:
    import datasets

    try:
        datasets.load_dataset(dataset.path, dataset.name, **dataset.kwargs)
    except Exception as err:  # noqa: BLE001 - whatever datasets raises, the dataset is not usable
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{type(err).__name__}: {first[:200]}"
    return None


def hf_home() -> Path:
    """The folder the ``datasets`` / ``huggingface_hub`` caches live in (HF_HOME, as read at import)."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HOME).resolve()
    except ImportError:  # pragma: no cover - huggingface_hub comes with datasets
        if os.environ.get("HF_HOME"):
            return Path(os.environ["HF_HOME"]).resolve()
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"


def _datasets_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datasets")
    except PackageNotFoundError:
        return "?"


def _double_quoted(code: str) -> str:
    """``code`` as one shell word, in double quotes when that needs no escapes (it reads better)."""
    return f'"{code}"' if not any(c in code for c in '"$`\\!') else shlex.quote(code)


def _message(missing: list[tuple[HubDataset, str]], unknown: list[str], config_hint: str) -> str:
    home = hf_home()
    lines = []
    if missing:
        lines.append(f"the evaluation tasks need {len(missing)} Hugging Face dataset(s) that are not in the offline "
                     f"cache (HF_HOME={home}); evaluation jobs never download (HF_DATASETS_OFFLINE=1), so lm-eval "
                     "would fail on them after training:")
        for dataset, error in missing:
            where = dataset.path + (f" (name {dataset.name!r})" if dataset.name is not None else "")
            extra = f" {dataset.kwargs}" if dataset.kwargs else ""
            lines.append(f"  {', '.join(dataset.tasks)}: {where}{extra}\n      {error}")
        calls = "; ".join(d.call() for d, _ in missing)
        lines += [
            ("Fetch them on a machine with internet access, with the same `datasets` version "
             f"({_datasets_version()}), into the same HF_HOME path, and copy that folder here:"),
            f"  HF_HOME={shlex.quote(str(home))} python -c {_double_quoted('import datasets; ' + calls)}",
            f"  rsync -a <that machine>:{home}/ {home}/",
            "or, from a checkout of this project on that machine (it runs the same calls):",
            f"  python -m jest.evaluation.preflight {config_hint} --download",
        ]
    if unknown:
        lines.append(f"unknown task name(s) {unknown}: neither lm-eval's registry nor 'evaluation.include_paths' "
                     "defines them (a typo? a missing include path?).")
    lines.append("Or remove these tasks from 'evaluation.tasks'.")
    return "\n".join(lines)


def missing_datasets(tasks: Iterable[str], include_paths: Iterable[Path], *,
                     download: bool = False) -> tuple[Needs, list[tuple[HubDataset, str]]]:
    """What ``tasks`` need, and each hub dataset that does not load (with why); ``python -m jest
    doctor`` reports these as lines, :func:`check_datasets` as one error."""
    needs = dataset_needs(list(tasks), list(include_paths))
    missing = []
    for dataset in needs.datasets:
        error = _try_load(dataset)
        if error is not None:
            missing.append((dataset, error))
        elif download:
            print(f"cached {dataset.call()} for {', '.join(dataset.tasks)}", flush=True)
    return needs, missing


def check_datasets(tasks: Iterable[str], include_paths: Iterable[Path], *, config_hint: str = "--config <config>",
                   download: bool = False) -> Needs:
    """Raise :class:`MissingDatasetsError` unless every hub dataset of ``tasks`` loads from the cache.

    Returns what was checked. ``download``: load them online instead (fills
    the cache; the caller must have unset the offline variables before
    ``datasets`` was imported).
    """
    needs, missing = missing_datasets(tasks, include_paths, download=download)
    if missing or needs.unknown:
        raise MissingDatasetsError(_message(missing, needs.unknown, config_hint))
    return needs


def _config_include_paths(cfg: dict[str, Any]) -> list[Path]:
    from jest.config import PROJECT_ROOT

    return [Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p for p in cfg["evaluation"]["include_paths"]]


def _stamp_key(cfg: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """What a recorded pass vouches for (tasks, include paths, cache, datasets version) and its digest."""
    key = {"version": STAMP_VERSION, "tasks": expand(cfg["evaluation"]["tasks"]),
           "include_paths": [str(p) for p in _config_include_paths(cfg)],
           "hf_home": str(hf_home()), "datasets": _datasets_version(),
           "offline": os.environ.get("HF_DATASETS_OFFLINE", "")}
    return key, hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def stamp_passed(cfg: dict[str, Any], stamp: Path) -> bool:
    """Does ``stamp`` record a pass with this config's inputs? (A stat and a read: no lm-eval import.)"""
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text()).get("sha256") == _stamp_key(cfg)[1]
    except (OSError, ValueError):
        return False


def workflow_preflight(cfg: dict[str, Any], stamp: Path, config_hint: str) -> None:
    """The workflow's check before any job: skipped when ``stamp`` records a pass with the same inputs."""
    include_paths = _config_include_paths(cfg)
    missing_dirs = [str(p) for p in include_paths if not p.is_dir()]
    if missing_dirs:
        raise MissingDatasetsError(f"'evaluation.include_paths' lists folders that do not exist: {missing_dirs}")
    tasks = expand(cfg["evaluation"]["tasks"])
    if not [name for name in tasks if name not in _built_names()]:
        return  # the shipped tasks only: local files, built by the workflow
    key, digest = _stamp_key(cfg)
    if stamp_passed(cfg, stamp):
        return
    needs = check_datasets(tasks, include_paths, config_hint=config_hint)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"sha256": digest, **key, "datasets_found": [d.call() for d in needs.datasets],
                               "unchecked": needs.unchecked}, indent=1) + "\n")
    tmp.replace(stamp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jest.evaluation.preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a config file (config/<scale>.yaml)")
    parser.add_argument("--download", action="store_true",
                        help="fetch the missing datasets into the cache (needs internet access)")
    args = parser.parse_args(argv)
    from jest.config import ConfigError, cache_root
    from jest.experiment import load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as err:  # the user's to fix: the message, not the library's stack
        print(f"error: {err}", file=sys.stderr)
        return 1
    os.environ.setdefault("HF_HOME", str(cache_root(cfg) / "hf"))  # as the workflow (common.smk)
    offline = "0" if args.download else "1"
    os.environ.update(HF_DATASETS_OFFLINE=offline, HF_HUB_OFFLINE=offline)
    try:
        needs = check_datasets(cfg["evaluation"]["tasks"], _config_include_paths(cfg),
                               config_hint=f"--config {args.config}", download=args.download)
    except MissingDatasetsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"ok: {len(needs.datasets)} hub dataset(s) in the cache at {hf_home()}"
          + (f"; left to lm-eval: {needs.unchecked}" if needs.unchecked else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate one checkpoint with lm-evaluation-harness, and aggregate the suite into one versioned score.

``evaluate_checkpoint`` wraps ``lm_eval.simple_evaluate`` on an in-memory
``HFLM`` and returns the whole results dict, made JSON-serialisable, plus a
``jest`` ID card (what ran, with which versions, how long). ``aggregate``
turns the multiple-choice accuracies into centered accuracies and their mean,
``aggregate_centered_acc`` (DCLM style): a task that is missing from the
results is listed as missing and flags the aggregate ``complete: false``; it
is never silently averaged away.

lm-eval 0.4.x quirks handled here:
- ``HFLM(pretrained=<model object>)`` ignores its ``device`` argument and uses
  ``model.device``: the model is moved to ``device`` before wrapping it.
- ``simple_evaluate`` defaults ``device`` to cuda for string models; it is
  always passed (and recorded in ``config``).
- The max context is read from ``config.max_position_embeddings`` (128 for the
  tiny models): longer requests are truncated from the left by lm-eval.
- A task YAML whose ``data_files`` is missing fails deep inside ``datasets``
  with a hub error; the files are checked first (``check_task_data``).
- ``TaskManager()`` indexes all ~14k built-in task YAMLs on construction (10-100 s
  on a busy 2-core CPU); for local-only suites ``include_defaults=False`` is used.
- ``bootstrap_iters`` defaults to 100,000 (stderr of perplexities); 1,000 here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jest.evaluation.errors import MissingTaskDataError
from jest.evaluation.suites import expand, lm_eval_dirs
from jest.evaluation.task_yamls import task_yamls

_task_yamls = task_yamls  # the former private name, kept for callers that import it from here

AGGREGATE_VERSION = "jest-agg-v2"  # v2: standard errors and the log-likelihood margin
KEEP_KEYS = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
             "n-samples", "config", "git_hash", "date", "total_evaluation_time_seconds", "samples")

_REBUILD_HINT = ("Regenerate the task files with jest.evaluation.tasks.build_tasks(heldout_jsonl, cache_dir, "
                 "out_dir, seed) (the Snakemake rule that builds the eval tasks), and pass that out_dir as the "
                 "include path.")


def _data_files(config: Mapping[str, Any]) -> list[str]:
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if files is None:
        return []
    if isinstance(files, str):
        return [files]
    if isinstance(files, Mapping):
        values = files.values()
    else:
        values = files
    out: list[str] = []
    for value in values:
        out.extend([value] if isinstance(value, str) else list(value))
    return out


def _all_local(tasks: Sequence[str], include_paths: Iterable[Path]) -> bool:
    """Whether every task (group members included) is defined by a YAML under ``include_paths``."""
    yamls = task_yamls(include_paths)
    pending, seen = list(tasks), set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        if name not in yamls:
            return False
        seen.add(name)
        config = yamls[name][1]
        if "group" in config and not isinstance(config.get("task"), str):
            pending.extend(m if isinstance(m, str) else m.get("task", "") for m in config.get("task") or [])
    return True


_DEFAULT_TASK_MANAGERS: dict[tuple[str, ...], Any] = {}


def _task_manager(tasks: Sequence[str], include_paths: list[Path]):
    """A TaskManager that indexes lm-eval's ~14k built-in YAMLs only when a task needs them.

    Indexing the built-ins takes 10-100 s of CPU (most of a tiny model's
    evaluation), so suites of local tasks skip it; with built-ins the manager
    is reused within the process.
    """
    from lm_eval.tasks import TaskManager

    from jest.evaluation.preflight import check_task_yaml_syntax

    check_task_yaml_syntax(include_paths)  # else lm-eval skips a broken file and calls its tasks unknown
    paths = [str(p) for p in include_paths]
    # lm-eval's standard tasks we know the folder of are indexed from that folder alone; the
    # include paths come last so that they override built-in names, as in lm-eval.
    local = [*lm_eval_dirs(tasks), *include_paths]
    if _all_local(tasks, local):
        return TaskManager(include_path=[str(p) for p in local], include_defaults=False)
    key = tuple(paths)
    if key not in _DEFAULT_TASK_MANAGERS:
        _DEFAULT_TASK_MANAGERS[key] = TaskManager(include_path=paths or None)
    return _DEFAULT_TASK_MANAGERS[key]


def check_task_data(tasks: Sequence[str], include_paths: Iterable[Path]) -> None:
    """Raise :class:`MissingTaskDataError` if a local task (or a group member) lacks a data file.

    Tasks not defined under ``include_paths`` (lm-eval's built-in tasks) are
    left to lm-eval.
    """
    include_paths = [Path(p) for p in include_paths]
    yamls = task_yamls(include_paths)
    pending, seen = list(tasks), set()
    while pending:
        name = pending.pop(0)
        if name in seen or name not in yamls:
            continue
        seen.add(name)
        path, config = yamls[name]
        if "group" in config and not isinstance(config.get("task"), str):
            members = config.get("task") or []
            pending.extend(m if isinstance(m, str) else m.get("task", "") for m in members)
            continue
        for data_file in _data_files(config):
            file_path = Path(data_file)
            if not file_path.is_absolute():
                raise MissingTaskDataError(
                    f"task {name!r} ({path}) names a relative data file {data_file!r}: lm-eval would resolve it "
                    f"against the working directory ({os.getcwd()}). Use absolute paths. {_REBUILD_HINT}")
            if not file_path.is_file():
                raise MissingTaskDataError(
                    f"task {name!r} ({path}) needs the data file {file_path}, which does not exist. {_REBUILD_HINT}")


def _jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of ``value``; objects JSON cannot hold are dropped (``_DROP``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            converted = _jsonable(item)
            if converted is not _DROP:
                out[str(key)] = converted
        return out
    if isinstance(value, (list, tuple)):
        return [item for item in (_jsonable(v) for v in value) if item is not _DROP]
    if isinstance(value, Path):
        return str(value)
    # numpy / torch scalars and 0-d arrays
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            return _DROP
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _jsonable(tolist())
    return _DROP


_DROP = object()


def evaluate_checkpoint(model_dir_or_model: Any, tokenizer: Any, tasks: list[str], include_paths: list[Path],
                        device: str, seed: int, limit: int | float | None, batch_size: int | str = 32,
                        *, log_samples: bool = False) -> dict[str, Any]:
    """Run lm-eval on one model and return its results dict, JSON-serialisable.

    ``model_dir_or_model``: a folder written by ``save_pretrained`` or a
    ``PreTrainedModel``; ``tokenizer``: a tokenizer, a folder, or None (the
    model folder). ``tasks``: task, group or suite names (e.g.
    ``["jest_core", "standard"]``, see :mod:`jest.evaluation.suites`);
    ``include_paths``: folders of task YAMLs (``build_tasks``' out_dir).
    ``limit``: at most this many documents per task (None: all); the data
    files are shuffled when built, so the first ``limit`` are a sample.
    ``log_samples``: keep lm-eval's per-document ``samples`` (large).

    The returned dict keeps lm-eval's ``results``, ``groups``, ``configs``,
    ``versions``, ``n-shot``, ``n-samples``, ``higher_is_better``, ``config``,
    ... with non-serialisable objects dropped, plus ``jest``: the arguments,
    package versions and wall time.
    """
    import lm_eval
    import torch
    import transformers
    from lm_eval.models.huggingface import HFLM

    from jest.evaluation.loading import load_model
    from jest.evaluation.memo import env_info_once, memo_hflm

    tasks = expand(tasks)  # suite names ("standard") -> their lm-eval tasks
    include_paths = [Path(p).resolve() for p in include_paths]
    check_task_data(tasks, include_paths)
    model, tok, model_name = load_model(model_dir_or_model, tokenizer)
    was_training = model.training
    model.to(device)  # HFLM uses model.device for an in-memory model and ignores its `device` argument
    model.eval()
    started = time.perf_counter()
    try:
        lm = memo_hflm(HFLM)(pretrained=model, tokenizer=tok, device=device, batch_size=batch_size)
        task_manager = _task_manager(tasks, include_paths)
        env_info_once()
        raw = lm_eval.simple_evaluate(
            model=lm, tasks=list(tasks), task_manager=task_manager, device=device, limit=limit,
            batch_size=batch_size, log_samples=log_samples, random_seed=seed, numpy_random_seed=seed,
            torch_random_seed=seed, fewshot_random_seed=seed, bootstrap_iters=1000,
        )
    finally:
        model.train(was_training)
    elapsed = time.perf_counter() - started
    if raw is None:  # only on non-zero ranks of a distributed run
        raise RuntimeError("lm_eval.simple_evaluate returned None (not rank 0 of a distributed run?)")
    results = {key: _jsonable(raw[key]) for key in KEEP_KEYS if key in raw}
    results = {key: value for key, value in results.items() if value is not _DROP}
    results["jest"] = {
        "model": model_name,
        "tasks": list(tasks),
        "include_paths": [str(p) for p in include_paths],
        "device": device,
        "seed": seed,
        "limit": limit,
        "batch_size": batch_size,
        "log_samples": log_samples,
        "eval_seconds": round(elapsed, 3),
        "versions": {"lm_eval": _version("lm_eval"), "transformers": transformers.__version__,
                     "torch": torch.__version__, "datasets": _version("datasets")},
    }
    return results


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def aggregate(results: Mapping[str, Any], table: Mapping[str, Any],
              items: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> dict[str, Any]:
    """Centered accuracy per multiple-choice task and their mean, with missing tasks flagged.

    ``results``: what :func:`evaluate_checkpoint` returned (or its
    ``results`` block alone); ``table``: ``tasks.json`` from ``build_tasks``
    (``{"tasks": {name: {"metric": ..., "chance": ..., ...}}}``). Centered
    accuracy is ``(acc - chance) / (1 - chance)`` with each task's primary
    accuracy (``metric``: acc, or acc_norm for jest_continuation): 0 at chance,
    1 when perfect, negative below chance. Every table task with a chance
    level counts; if any is absent from ``results``, the mean is taken over
    the present ones and the answer says ``complete: false`` and lists it
    under ``missing``. A suite
    that runs a subset on purpose passes the table filtered to that subset
    (``{"tasks": {k: table["tasks"][k] for k in subset}}``); the version string
    then still names the formula, and ``n_expected`` says over how many tasks.
    :func:`jest.evaluation.suites.task_table` builds the table for a config's
    ``evaluation.tasks`` (shipped tasks, lm-eval's standard ones, user tasks
    that declare ``metadata.chance``). Tasks with metrics in ``results`` but no
    chance level (not in the table, or declared without one) are passed through
    under ``other_metrics`` and named in ``chance_unknown``: stored, never averaged.

    ``items``: per-item rows by task (:func:`jest.evaluation.margins.item_rows`).
    With them every scored task also gets ``acc_se``, ``centered_se``,
    ``margin``, ``margin_se`` and ``n_items``, and the answer
    ``aggregate_centered_acc_se``, ``aggregate_margin`` and
    ``aggregate_margin_se`` (means over tasks; the tasks' item sets are
    disjoint, so SE = sqrt(sum of the tasks' SE^2) / n_tasks); a scored task
    without items is then missing. Without ``items`` (v1 callers) those keys are absent.
    """
    from jest.evaluation.margins import task_summary

    per_task_results = results.get("results", results)
    entries = table.get("tasks", table)
    scored = {name: entry for name, entry in sorted(entries.items()) if entry.get("chance") is not None}
    tasks: dict[str, Any] = {}
    missing: list[str] = []
    for name, entry in scored.items():
        metric = entry.get("metric", "acc")
        value = (per_task_results.get(name) or {}).get(f"{metric},none")
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            missing.append(name)
            continue
        chance = float(entry["chance"])
        task = {"metric": metric, "value": float(value), "chance": chance,
                "centered": (float(value) - chance) / (1.0 - chance)}
        if items is not None:
            summary = task_summary(items.get(name) or [], metric)
            if summary["n_items"] == 0 or summary["margin"] is None:
                missing.append(name)
                continue
            task.update(summary, centered_se=None if summary["acc_se"] is None else summary["acc_se"] / (1.0 - chance))
        tasks[name] = task
    centered = [t["centered"] for t in tasks.values()]
    out: dict[str, Any] = {
        "version": AGGREGATE_VERSION,
        "aggregate_centered_acc": sum(centered) / len(centered) if centered else None,
        "n_tasks": len(tasks),
        "n_expected": len(scored),
        "complete": not missing,
        "missing": missing,
        "tasks": tasks,
    }
    if items is not None:
        out["aggregate_centered_acc_se"] = _mean_se(tasks, "centered_se")
        margins = [t["margin"] for t in tasks.values()]
        out["aggregate_margin"] = sum(margins) / len(margins) if margins else None
        out["aggregate_margin_se"] = _mean_se(tasks, "margin_se")
    # Perplexity-type tasks are passed through, not averaged into the accuracy; so are tasks whose
    # chance level is unknown (a user task that declares none, an lm-eval task the table lacks),
    # with all their metrics, listed under `chance_unknown`.
    unknown = [name for name, entry in entries.items() if entry.get("chance") is None and not entry.get("metric")]
    unknown += [name for name in per_task_results if name not in entries and _numeric(per_task_results[name])]
    for name, entry in sorted(entries.items()):
        if entry.get("chance") is None and entry.get("metric"):
            value = (per_task_results.get(name) or {}).get(f"{entry['metric']},none")
            out.setdefault("other_metrics", {})[name] = {entry["metric"]: value}
    for name in sorted(unknown):
        out.setdefault("other_metrics", {})[name] = _numeric(per_task_results.get(name) or {})
    if unknown:
        out["chance_unknown"] = sorted(unknown)
    return out


def _mean_se(tasks: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    """SE of a mean over tasks of per-task means with independent SEs (None if any is unknown)."""
    ses = [t.get(key) for t in tasks.values()]
    if not ses or any(se is None for se in ses):
        return None
    return math.sqrt(sum(se * se for se in ses)) / len(ses)


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of one task's results (``acc,none`` -> ``acc``), without standard errors."""
    if not isinstance(metrics, Mapping):
        return {}
    out = {}
    for key, value in metrics.items():
        name, _, filter_name = str(key).partition(",")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not name.endswith("_stderr") \
                and name != "sample_len":
            out[name if filter_name in ("", "none") else str(key)] = float(value)
    return out

"""Named task suites, the chance levels of lm-eval's standard tasks, and the per-config aggregate table.

``evaluation.tasks`` may name, besides lm-eval task and group names, a suite
of :data:`SUITES`; it is expanded before lm-eval sees it:

    evaluation:
      tasks: [jest_core, standard]     # the shipped suite + lm-eval's standard zero-shot tasks

``standard`` = hellaswag, arc_easy, arc_challenge, piqa, winogrande, sciq,
lambada_openai, openbookqa, boolq: lm-eval's own task YAMLs (prompts, splits,
metrics unchanged), scored zero-shot. Their data come from the Hugging Face hub,
which evaluation jobs never reach (``HF_DATASETS_OFFLINE=1``): they must be in
the cache first (``jest.evaluation.preflight`` says which, and how).

The aggregate (``jest-agg-v2``, mean centered accuracy) needs each task's
primary metric and chance level. They come from, in this order:

1. the table ``build_tasks`` writes (``tasks.json``) for the shipped tasks;
2. :data:`KNOWN_TASKS` below for lm-eval's standard tasks;
3. the task's own YAML: ``metadata: {version: 1, chance: 0.25, metric: acc_norm}``
   (``metric`` defaults to ``acc``; ``chance: null`` or no ``chance``: the task's
   metrics are stored and reported, but it does not enter the aggregate).

A task with no chance level from any of these (a user task that declares none,
an lm-eval task not listed here, the members of an lm-eval group) is reported
under ``other_metrics`` and listed in ``chance_unknown``, never averaged in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jest.evaluation.task_yamls import task_yamls

STANDARD = "standard"


@dataclass(frozen=True)
class KnownTask:
    """An lm-eval built-in task: its primary metric, chance level, and lm-eval's folder that defines it."""

    metric: str
    chance: float
    lm_eval_dir: str  # under lm_eval/tasks/, so that only that folder is indexed (not all ~14k YAMLs)
    note: str


# Primary metrics as commonly reported for small models (GPT-3, Pythia, OLMo, DCLM): acc_norm
# (log-likelihood per byte) where the choices differ in length, acc where they are of one length
# or the task is partial scoring (winogrande) or exact match (lambada). Chance: 1 / choices;
# boolq: the majority class, as DCLM.
KNOWN_TASKS: dict[str, KnownTask] = {
    "hellaswag": KnownTask("acc_norm", 0.25, "hellaswag", "4 endings; validation split (10,042)"),
    "arc_easy": KnownTask("acc_norm", 0.25, "arc", "4 choices (a few items have 3 or 5); test split (2,376)"),
    "arc_challenge": KnownTask("acc_norm", 0.25, "arc", "4 choices (a few items have 3 or 5); test split (1,172)"),
    "piqa": KnownTask("acc_norm", 0.5, "piqa", "2 solutions; validation split (1,838)"),
    "winogrande": KnownTask("acc", 0.5, "winogrande", "2 fillers, partial scoring; winogrande_xl validation (1,267)"),
    "sciq": KnownTask("acc_norm", 0.25, "sciq", "4 choices, with the support paragraph; test split (1,000)"),
    "lambada_openai": KnownTask("acc", 0.0, "lambada", "greedy exact match of the last word; test split (5,153)"),
    "openbookqa": KnownTask("acc_norm", 0.25, "openbookqa", "4 choices; test split (500)"),
    "boolq": KnownTask("acc", 0.622, "super_glue/boolq",
                       "yes/no; chance = the majority class (62.2 % yes in validation, 3,270), as DCLM"),
    "copa": KnownTask("acc", 0.5, "super_glue/copa", "2 alternatives; validation split (100 items: +-5 points)"),
}

SUITES: dict[str, tuple[str, ...]] = {
    # copa is left out (100 items: its noise would dominate the mean); add it by name if wanted.
    STANDARD: ("hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande", "sciq", "lambada_openai",
               "openbookqa", "boolq"),
}


def expand(tasks: Iterable[str]) -> list[str]:
    """``tasks`` with suite names replaced by their members, in order, without duplicates."""
    out: list[str] = []
    for name in tasks:
        for member in SUITES.get(name, (name,)):
            if member not in out:
                out.append(member)
    return out


def lm_eval_dirs(tasks: Iterable[str]) -> list[Path]:
    """lm-eval's folders that define the known tasks among ``tasks`` (so only those are indexed)."""
    names = [t for t in expand(tasks) if t in KNOWN_TASKS]
    if not names:
        return []
    import lm_eval.tasks

    root = Path(lm_eval.tasks.__file__).parent
    dirs: list[Path] = []
    for name in names:
        folder = root / KNOWN_TASKS[name].lm_eval_dir
        if folder.is_dir() and folder not in dirs:
            dirs.append(folder)
    return dirs


def _user_entry(name: str, path: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    metadata = config.get("metadata") if isinstance(config.get("metadata"), Mapping) else {}
    chance = metadata.get("chance")
    if chance is not None:
        chance = float(chance)
        if not 0.0 <= chance < 1.0:
            raise ValueError(f"task {name!r} ({path}): metadata.chance must be in [0, 1), got {chance}")
    metric = metadata.get("metric", "acc") if chance is not None else None  # no chance: all metrics passed through
    return {"task": name, "metric": metric, "chance": chance, "higher_is_better": True if chance is not None else None,
            "source": f"user task {path}", "chance_declared": chance is not None}


def task_table(tasks: Sequence[str], include_paths: Iterable[Path], built: Mapping[str, Any]) -> dict[str, Any]:
    """The table :func:`jest.evaluation.evaluate.aggregate` scores against, for one ``evaluation.tasks``.

    ``built``: ``tasks.json`` of ``build_tasks``. The result has the built
    table's keys and ``tasks`` = one entry per requested leaf task whose chance
    level is known or declared (see the module docstring); requested tasks
    without one are kept with ``chance: None`` so the report lists them.
    """
    built_tasks = built.get("tasks", {})
    group = built.get("group", "jest_core")
    local = task_yamls([Path(p) for p in include_paths])
    entries: dict[str, Any] = {}
    pending, seen = list(expand(tasks)), set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name == group:
            entries.update({k: v for k, v in built_tasks.items() if k not in entries})
        elif name in built_tasks:
            entries[name] = built_tasks[name]
        elif name in local and "group" in local[name][1] and not isinstance(local[name][1].get("task"), str):
            members = local[name][1].get("task") or []
            pending.extend(m if isinstance(m, str) else m.get("task", "") for m in members)
        elif name in local:
            entries[name] = _user_entry(name, *local[name])
        elif name in KNOWN_TASKS:
            known = KNOWN_TASKS[name]
            entries[name] = {"task": name, "metric": known.metric, "chance": known.chance, "higher_is_better": True,
                             "source": f"lm-eval built-in task {name}", "description": known.note}
        # anything else (an lm-eval group or a task we know nothing of) is passed through by aggregate()
    return {**{k: v for k, v in built.items() if k != "tasks"}, "tasks": entries}

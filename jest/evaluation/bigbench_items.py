"""BIG-bench tasks as lm-eval multiple-choice rows (opt-in: the default suite does not use them).

BIG-bench's items come from the ``bigbench`` 1.0.0 source package, which PyPI
no longer serves (since 2026-12): a config that names one of these tasks needs
a verified copy of the sdist, in the cache, at ``evaluation.bigbench_sdist``,
or from an escrow folder (``python -m jest sources import DIR``). The
workflow's preflight stops before any training when none is there.

The three tasks below gave signal at the tiny scale before (word statistics or
local grammar decide them); the default suite keeps a family of each kind,
generated from held-out text (jest/evaluation/items.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jest.evaluation.items import shuffled_choices

GROUP = "jest_bigbench"
GROUP_VERSION = 1


@dataclass(frozen=True)
class MCTask:
    """A BIG-bench task turned into multiple-choice rows ``{id, context, choices, gold, ...}``."""

    name: str
    version: int  # bump on any change to its rows or YAML
    members: tuple[str, ...]  # paths under bigbench/benchmark_tasks/
    convert: Callable[[dict[str, Any], random.Random], list[dict[str, Any]]]
    source_task: str
    description: str


# The 12 English subtasks subject_verb_agreement/task.py runs by default (the
# official task); the 2 Italian ones and the *_mini / *_cont files are left out.
SVA_SUBTASKS = (
    "simple_english", "adv_english", "adv_adv_english", "adv_conjunction_english", "namepp_english",
    "nounpp_adv_english", "nounpp_english", "long_nested_inner_english", "long_nested_outer_english",
    "linzen2016_english", "gulordava_nonce_english", "frequency_disbalance_nonce_english",
)
SVA_PER_SUBTASK = 200  # 2400 items in all, balanced over subtasks like the official macro average


# ----------------------------------------------------------------------------- BIG-bench conversions


def _gold(target_scores: dict[str, float]) -> str:
    best = max(target_scores.values())
    winners = [choice for choice, score in target_scores.items() if score == best]
    if len(winners) != 1:
        raise ValueError(f"no single best choice in {target_scores}")
    return winners[0]


def _well_formed(example: dict[str, Any]) -> bool:
    """At least two distinct choices and one best. BIG-bench has a few broken items (linzen2016_english
    has one with a single choice), which would otherwise count as free points."""
    scores = example["target_scores"]
    choices = {choice.strip() for choice in scores}
    return len(scores) >= 2 and len(choices) == len(scores) and list(scores.values()).count(max(scores.values())) == 1


def _subject_verb_agreement(files: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for subtask in SVA_SUBTASKS:
        examples = files[f"subject_verb_agreement/{subtask}.json"]["examples"]
        usable = [i for i, example in enumerate(examples) if _well_formed(example)]
        picked = sorted(rng.sample(usable, min(SVA_PER_SUBTASK, len(usable))))
        for index in picked:
            example = examples[index]
            rows.append({**_mc_row(example, f"subject_verb_agreement/{subtask}/{index}", rng),
                         "subtask": subtask, "condition": example.get("comment", "")})
    return rows


def _mc_row(example: dict[str, Any], row_id: str, rng: random.Random) -> dict[str, Any]:
    """A BIG-bench multiple-choice example as a row: stripped context, choices shuffled with `rng`."""
    gold = _gold(example["target_scores"]).strip()
    choices, gold_index = shuffled_choices([c.strip() for c in example["target_scores"]], gold, rng)
    return {"id": row_id, "context": example["input"].strip(), "choices": choices, "gold": gold_index}


def _whole_task(relpath: str, id_prefix: str):
    """Rows of every well-formed example of one BIG-bench task file, in file order."""
    def build(files: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        return [_mc_row(example, f"{id_prefix}/{index}", rng)
                for index, example in enumerate(files[relpath]["examples"]) if _well_formed(example)]
    return build


# A sentence as context; 10 versions of the next sentence that differ only in their discourse marker.
_discourse_marker_prediction = _whole_task("discourse_marker_prediction/task.json", "discourse_marker_prediction")
# Scrambled words as context, 8 candidate sentences; the fluent original is the answer.
_reorder_words = _whole_task("undo_permutation/reorder_words/task.json", "undo_permutation/reorder_words")


MC_TASKS: tuple[MCTask, ...] = (
    MCTask("jest_bb_subject_verb_agreement", 1,  # malformed items (1 in linzen2016) are never sampled
           tuple(f"subject_verb_agreement/{s}.json" for s in SVA_SUBTASKS), _subject_verb_agreement,
           "subject_verb_agreement",
           f"Subject-verb agreement minimal pairs, {SVA_PER_SUBTASK} per English subtask (12 subtasks)."),
    MCTask("jest_bb_reorder_words", 1, ("undo_permutation/reorder_words/task.json",), _reorder_words,
           "undo_permutation/reorder_words",
           "The original sentence among 8 candidates (scrambles, word swaps), given its scrambled words."),
    MCTask("jest_bb_discourse_marker_prediction", 1, ("discourse_marker_prediction/task.json",),
           _discourse_marker_prediction, "discourse_marker_prediction",
           "The next sentence with the right discourse marker among 10 that differ only in the marker."),
)


NAMES = frozenset(task.name for task in MC_TASKS)


def needs_bigbench(task_names) -> bool:
    """Whether any of ``task_names`` (suites already expanded) is a BIG-bench task or their group."""
    return any(name in NAMES or name == GROUP for name in task_names)

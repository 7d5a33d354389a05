"""Per-item scores of multiple-choice tasks, read from lm-eval's own logged samples, and their means with SEs.

Accuracy moves in steps of 1/n and sits near chance for tiny models, so a
data choice shows in it only with many items. The continuous score kept here
is the log-likelihood margin of the correct choice:

    margin = max over gold choices g of ll(g) / chars(g)  -  max over wrong choices w of ll(w) / chars(w)

``ll`` is lm-eval's summed log-likelihood of the choice's continuation after
the context (its ``filtered_resps``), ``chars`` the length of the choice text
(without the target delimiter). DataDecide (Magnusson et al., arXiv
2504.11393) shows that such continuous scores (its CORRECT PROB, MARGIN, ...)
rank pretraining-data choices at a small fraction of the compute accuracy
needs; its margin is on probabilities, which for 15-word continuations under
a tiny model are all ~1e-30 (no spread left), hence log-likelihoods here.
Why per character: it is exactly lm-eval's ``acc_norm`` normalisation
(``lls / len(choice)``), so ``margin > 0`` is ``acc_norm == 1`` (ties aside):
the margin is the continuous version of the accuracy we report; choices of a
task differ in length (a raw sum favours short ones); and characters, unlike
tokens, do not depend on the tokenizer, so runs with different vocabularies
(scales) stay comparable. Unit: nats per character.

Nothing is re-scored: every number comes from the samples lm-eval logged in
the same pass that produced its accuracies (``log_samples=True``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MARGIN_DEFINITION = ("max_gold ll/chars - max_wrong ll/chars (nats per character; lm-eval acc_norm's "
                     "length normalisation)")


def _gold_indices(target: Any, choices: Sequence[str], task: str, doc_id: Any) -> list[int]:
    targets = target if isinstance(target, list) else [target]
    out = []
    for value in targets:
        if isinstance(value, bool):
            raise ValueError(f"task {task!r} doc {doc_id}: boolean target {value!r} is not a choice index")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and value not in choices):
            index = int(value)
        elif isinstance(value, str) and value in choices:
            index = choices.index(value)
        else:
            raise ValueError(f"task {task!r} doc {doc_id}: target {value!r} is neither a choice index nor one of "
                             f"its choices {list(choices)}")
        if not 0 <= index < len(choices):
            raise ValueError(f"task {task!r} doc {doc_id}: target index {index} outside its {len(choices)} choices")
        out.append(index)
    return sorted(set(out))


def item_row(task: str, sample: Mapping[str, Any], delimiter: str) -> dict[str, Any]:
    """One multiple-choice document as lm-eval logged it -> its per-item scores (JSON-able)."""
    doc_id = sample["doc_id"]
    continuations = [str(args[1]) for args in sample["arguments"]]
    lls = [float(resp[0]) for resp in sample["filtered_resps"]]
    if "acc_mutual_info" in sample.get("metrics", []):  # the unconditional requests come after the choices
        continuations, lls = continuations[:len(lls) // 2], lls[:len(lls) // 2]
    choices = [c[len(delimiter):] if delimiter and c.startswith(delimiter) else c for c in continuations]
    gold = _gold_indices(sample["target"], choices, task, doc_id)
    chars = [max(1, len(c)) for c in choices]
    norm = [ll / n for ll, n in zip(lls, chars)]
    wrong = [norm[i] for i in range(len(norm)) if i not in gold]
    margin = max(norm[i] for i in gold) - max(wrong) if wrong else None
    doc = sample.get("doc") or {}
    item_id = doc.get("id") if isinstance(doc, Mapping) and isinstance(doc.get("id"), (str, int)) else None
    return {"task": task, "doc_id": int(doc_id), "item_id": item_id, "doc_hash": sample.get("doc_hash"),
            "gold": gold, "lls": lls, "chars": chars,
            "acc": _float(sample.get("acc")), "acc_norm": _float(sample.get("acc_norm")),
            "margin": margin if margin is None or math.isfinite(margin) else None}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def item_rows(samples: Mapping[str, list[dict]], configs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """Per-item rows of every multiple-choice task in lm-eval's ``samples`` (by task, in doc order).

    ``configs``: lm-eval's ``configs`` block (output type and target delimiter
    per task). A task logged under several filters keeps its first filter's
    rows (``none`` for multiple-choice tasks).
    """
    out: dict[str, list[dict]] = {}
    for task, task_samples in samples.items():
        config = configs.get(task) or {}
        if config.get("output_type") != "multiple_choice" or not task_samples:
            continue
        first_filter = task_samples[0].get("filter")
        rows = [item_row(task, s, str(config.get("target_delimiter", " ")))
                for s in task_samples if s.get("filter") == first_filter]
        out[task] = sorted(rows, key=lambda r: r["doc_id"])
    return out


def mean_se(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean, its standard error (sample sd with n-1 / sqrt(n); None under 2 values) and n, Nones dropped."""
    xs = [v for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return None, None, 0
    mean = sum(xs) / n
    if n < 2:
        return mean, None, n
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var / n), n


def task_summary(rows: Sequence[Mapping[str, Any]], metric: str = "acc") -> dict[str, Any]:
    """Mean and SE of the task's primary accuracy (``metric``: acc or acc_norm) and of the margin."""
    acc, acc_se, n = mean_se([r.get(metric) for r in rows])
    margin, margin_se, n_margin = mean_se([r.get("margin") for r in rows])
    return {"acc": acc, "acc_se": acc_se, "n_items": n, "margin": margin, "margin_se": margin_se,
            "n_margin": n_margin}

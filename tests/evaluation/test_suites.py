"""Suites (the `standard` lm-eval tasks), the per-config aggregate table, and a task folder the harness
has never seen, added through the config alone (evaluation.include_paths + evaluation.tasks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from jest.evaluation.evaluate import aggregate
from jest.evaluation.preflight import dataset_needs
from jest.evaluation.suites import (
    KNOWN_TASKS,
    STANDARD,
    SUITES,
    expand,
    lm_eval_dirs,
    task_table,
)

# lm-eval's task configs (the installed version) for the standard suite: dataset path and name.
STANDARD_DATASETS = {
    "hellaswag": ("Rowan/hellaswag", None), "arc_easy": ("allenai/ai2_arc", "ARC-Easy"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge"), "piqa": ("baber/piqa", None),
    "winogrande": ("allenai/winogrande", "winogrande_xl"), "sciq": ("allenai/sciq", None),
    "lambada_openai": ("EleutherAI/lambada_openai", "default"), "openbookqa": ("allenai/openbookqa", "main"),
    "boolq": ("aps/super_glue", "boolq"),
}


def test_expand_suites():
    assert expand(["jest_core", STANDARD]) == ["jest_core", *SUITES[STANDARD]]
    assert expand(["hellaswag", STANDARD, "copa"]) == [*SUITES[STANDARD], "copa"]  # order kept, no duplicates
    assert set(SUITES[STANDARD]) == set(STANDARD_DATASETS)
    for name, known in KNOWN_TASKS.items():
        assert 0.0 <= known.chance < 1.0 and known.metric in ("acc", "acc_norm"), name


def test_standard_suite_matches_lm_eval():
    """Every standard task is defined in the lm-eval folder we index, with the metric we aggregate."""
    dirs = lm_eval_dirs([STANDARD])
    assert dirs and all(d.is_dir() for d in dirs)
    needs = dataset_needs([STANDARD], [])
    assert needs.unknown == [] and needs.unchecked == []
    found = {task: (d.path, d.name) for d in needs.datasets for task in d.tasks}
    assert found == STANDARD_DATASETS
    from jest.evaluation.evaluate import _task_yamls

    yamls = _task_yamls(dirs)
    for name in SUITES[STANDARD]:
        path, config = yamls[name]
        if "metric_list" not in config:  # arc_challenge includes arc_easy
            config = {**yaml.load((path.parent / config["include"]).read_text(), Loader=yaml.SafeLoader), **config}
        assert KNOWN_TASKS[name].metric in [m["metric"] for m in config["metric_list"]], name


def _built_table() -> dict:
    return {"version": "jest-tasks-v1", "group": "jest_core", "tasks": {
        "jest_word_order": {"task": "jest_word_order", "metric": "acc", "chance": 0.25},
        "jest_heldout_ppl": {"task": "jest_heldout_ppl", "metric": "bits_per_byte", "chance": None}}}


def test_table_and_aggregate_with_the_standard_suite(tmp_path):
    table = task_table(["jest_core", STANDARD], [tmp_path], _built_table())
    assert list(table["tasks"]) == ["jest_word_order", "jest_heldout_ppl", *SUITES[STANDARD]]
    assert table["tasks"]["hellaswag"]["chance"] == 0.25 and table["tasks"]["hellaswag"]["metric"] == "acc_norm"
    results = {"jest_core": {"alias": "jest_core"}, "jest_word_order": {"acc,none": 0.25},
               "jest_heldout_ppl": {"bits_per_byte,none": 2.0}, "mmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01}}
    for name in SUITES[STANDARD]:
        known = KNOWN_TASKS[name]
        results[name] = {f"{known.metric},none": known.chance + 0.5 * (1 - known.chance), "acc_stderr,none": 0.01}
    out = aggregate({"results": results}, table)
    assert out["complete"] and out["n_tasks"] == out["n_expected"] == 1 + len(SUITES[STANDARD])
    assert out["tasks"]["hellaswag"]["centered"] == pytest.approx(0.5)
    assert out["aggregate_centered_acc"] == pytest.approx(0.5 * len(SUITES[STANDARD]) / (1 + len(SUITES[STANDARD])))
    # An lm-eval task outside the table is stored and reported, never averaged in.
    assert out["chance_unknown"] == ["mmlu"] and out["other_metrics"]["mmlu"] == {"acc": 0.3}
    # The shipped tasks only: the table and the aggregate keep their old form.
    only = task_table(["jest_word_order"], [tmp_path], _built_table())
    assert list(only["tasks"]) == ["jest_word_order"]
    assert "chance_unknown" not in aggregate({"results": {"jest_word_order": {"acc,none": 0.5}}}, only)
    missing = aggregate({"results": {"jest_word_order": {"acc,none": 0.5}}}, table)
    assert missing["complete"] is False and missing["missing"] == sorted(SUITES[STANDARD])


# ----------------------------------------------------------------------------- a task folder never seen before

COLOURS = [("The sky on a clear day is", ["blue", "green", "red", "black"], 0),
           ("Fresh grass is", ["purple", "green", "white", "orange"], 1),
           ("Snow is", ["black", "brown", "white", "pink"], 2),
           ("A ripe tomato is", ["grey", "blue", "yellow", "red"], 3),
           ("Coal is", ["black", "white", "green", "blue"], 0),
           ("The sun looks", ["blue", "yellow", "violet", "black"], 1)]


def _user_tasks(folder: Path) -> None:
    """Two lm-eval tasks over one local jsonl: one declares its chance level, one does not."""
    data = folder / "data" / "colours.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n" for q, c, a in COLOURS))
    base = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
            "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "question",
            "doc_to_choice": "choices", "doc_to_target": "answer", "target_delimiter": " ",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
    (folder / "colours.yaml").write_text(yaml.safe_dump(
        {"task": "my_colours", **base, "metadata": {"version": 1, "chance": 0.25, "metric": "acc_norm"}}))
    (folder / "colours_nochance.yaml").write_text(yaml.safe_dump(
        {"task": "my_colours_nochance", **base, "metadata": {"version": 1}}))


def test_a_new_task_folder_is_evaluated_from_the_config_alone(built, tiny_model_dir, seed, tmp_path):
    from jest.evaluation.runner import evaluate_run
    from jest.tracking.records import read_metrics

    tasks_dir, _ = built
    user = tmp_path / "my_tasks"
    _user_tasks(user)
    run = tmp_path / "run"
    for step in (3, 10):  # two snapshots of one run
        shutil.copytree(tiny_model_dir, run / "snapshots" / f"step_{step:07d}")
    shutil.copytree(tiny_model_dir, run / "model")
    cfg = {"threads": 1, "device": "cpu", "data": {"seq_len": 128},
           "evaluation": {"tasks": ["jest_word_order", "my_colours", "my_colours_nochance"],
                          "include_paths": [str(user)], "limit": 4, "batch_size": 8, "seed": seed}}
    rows = evaluate_run(cfg, run, tasks_dir, threads=1)

    assert [r["step"] for r in rows] == [3, 10]
    for step in (3, 10):
        stored = json.loads((run / "eval" / f"step_{step:07d}.json").read_text())
        results, agg = stored["results"], stored["aggregate"]
        assert results["versions"]["my_colours"] == 1 and results["n-samples"]["my_colours"]["effective"] == 4
        acc_norm = results["results"]["my_colours"]["acc_norm,none"]
        entry = agg["tasks"]["my_colours"]
        assert {k: entry[k] for k in ("metric", "value", "chance", "centered", "acc", "n_items")} == {
            "metric": "acc_norm", "value": acc_norm, "chance": 0.25,
            "centered": pytest.approx((acc_norm - 0.25) / 0.75), "acc": pytest.approx(acc_norm), "n_items": 4}
        assert entry["margin"] is not None and entry["margin_se"] is not None  # a user task gets margins too
        assert agg["complete"] and agg["n_tasks"] == 2 and "jest_word_order" in agg["tasks"]
        # Declared without a chance level: stored and reported with all its metrics, not averaged in.
        assert agg["chance_unknown"] == ["my_colours_nochance"]
        assert set(agg["other_metrics"]["my_colours_nochance"]) == {"acc", "acc_norm"}
    logged = {r["step"]: r for r in read_metrics(run / "eval" / "metrics.jsonl")}
    assert set(logged) == {3, 10} and "eval_my_colours_acc_norm" in logged[10]
    assert "eval_my_colours_nochance_acc" in logged[10] and "eval_aggregate_centered_acc" in logged[10]
    assert json.loads((run / "eval" / "done.json").read_text())["steps"] == [3, 10]
    assert evaluate_run(cfg, run, tasks_dir, threads=1) == []  # evaluated snapshots are skipped


def test_a_bad_declared_chance_is_an_error(tmp_path):
    (tmp_path / "t.yaml").write_text("task: odd\ndataset_path: json\nmetadata: {version: 1, chance: 1.5}\n")
    with pytest.raises(ValueError, match="metadata.chance"):
        task_table(["odd"], [tmp_path], _built_table())

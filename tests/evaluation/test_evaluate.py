"""evaluate_checkpoint end to end (offline, tiny random model), aggregate math, missing-data errors."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from jest.evaluation.errors import MissingTaskDataError
from jest.evaluation.evaluate import AGGREGATE_VERSION, aggregate, check_task_data, evaluate_checkpoint

LIMIT = 6


@pytest.fixture(scope="module")
def evaluated(built, tiny_model_dir, seed) -> dict:
    out_dir, _ = built
    return evaluate_checkpoint(tiny_model_dir, None, ["jest_core"], [out_dir], device="cpu", seed=seed,
                               limit=LIMIT, batch_size=8)


def test_end_to_end_from_folder(evaluated, built, seed):
    out_dir, table = built
    json.dumps(evaluated, allow_nan=False)  # serialisable, strict JSON
    for key in ("results", "configs", "versions", "n-samples", "higher_is_better", "config", "jest"):
        assert key in evaluated, key
    results = evaluated["results"]
    for name, entry in table["tasks"].items():
        assert evaluated["versions"][name] == entry["version"]
        assert evaluated["n-samples"][name]["effective"] == min(LIMIT, entry["n_items"])
        if entry["output_type"] == "multiple_choice":
            for metric in ("acc,none", "acc_norm,none"):
                assert 0.0 <= results[name][metric] <= 1.0
        else:
            bpb = results[name]["bits_per_byte,none"]
            # An untrained model over ~300 tokens: about log2(300) bits per token, a few bytes per token.
            assert 0.5 < bpb < 10 and math.isfinite(results[name]["word_perplexity,none"])
    assert evaluated["config"]["random_seed"] == seed and evaluated["config"]["limit"] == LIMIT
    assert evaluated["jest"]["device"] == "cpu" and evaluated["jest"]["versions"]["lm_eval"]
    summary = aggregate(evaluated, table)
    assert summary["complete"] and summary["missing"] == [] and summary["n_tasks"] == 4
    assert summary["version"] == AGGREGATE_VERSION
    assert -1.0 <= summary["aggregate_centered_acc"] <= 1.0
    assert "jest_heldout_ppl" in summary["other_metrics"]


def test_in_memory_model_gives_the_same_numbers(evaluated, built, tiny_model_dir, seed):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir, _ = built
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.train()  # as a trainer would hand it over; evaluation runs in eval mode and restores this
    again = evaluate_checkpoint(model, tokenizer, ["jest_word_order"], [out_dir], device="cpu", seed=seed,
                                limit=LIMIT, batch_size=4)
    assert again["results"]["jest_word_order"]["acc,none"] == evaluated["results"]["jest_word_order"][
        "acc,none"]
    assert model.training is True
    assert again["jest"]["model"] == "LlamaForCausalLM"


def _table(**chances):
    return {"tasks": {name: {"metric": "acc", "chance": chance} for name, chance in chances.items()}
            | {"ppl": {"metric": "bits_per_byte", "chance": None}}}


def test_aggregate_centered_accuracy():
    table = _table(two=0.5, four=0.25, eight=0.125)
    results = {"results": {"two": {"acc,none": 0.75}, "four": {"acc,none": 0.25}, "eight": {"acc,none": 0.0},
                           "ppl": {"bits_per_byte,none": 1.5}}}
    out = aggregate(results, table)
    assert out["tasks"]["two"]["centered"] == pytest.approx(0.5)
    assert out["tasks"]["four"]["centered"] == pytest.approx(0.0)
    assert out["tasks"]["eight"]["centered"] == pytest.approx(-1 / 7)
    assert out["aggregate_centered_acc"] == pytest.approx((0.5 + 0.0 - 1 / 7) / 3)
    assert out["complete"] is True and out["missing"] == [] and out["n_tasks"] == out["n_expected"] == 3
    assert out["version"] == AGGREGATE_VERSION == "jest-agg-v2"
    assert out["other_metrics"] == {"ppl": {"bits_per_byte": 1.5}}
    # The bare `results` block works too.
    assert aggregate(results["results"], table)["aggregate_centered_acc"] == out["aggregate_centered_acc"]


def test_aggregate_flags_missing_tasks():
    table = _table(two=0.5, four=0.25)
    out = aggregate({"results": {"two": {"acc,none": 1.0}}}, table)
    assert out["complete"] is False and out["missing"] == ["four"]
    assert out["aggregate_centered_acc"] == pytest.approx(1.0)  # over the present task, and flagged
    assert out["n_tasks"] == 1 and out["n_expected"] == 2
    nothing = aggregate({"results": {"four": {"acc,none": float("nan")}}}, table)
    assert nothing["aggregate_centered_acc"] is None and nothing["missing"] == ["four", "two"]


def test_missing_data_file_is_a_clear_error(built, tiny_model_dir, tmp_path):
    out_dir, _ = built
    broken = tmp_path / "tasks"
    shutil.copytree(out_dir, broken)
    # Point the copied YAMLs at the copied data, then lose one data file.
    for yaml_path in broken.glob("*.yaml"):
        yaml_path.write_text(yaml_path.read_text().replace(str(out_dir.resolve()), str(broken.resolve())))
    missing = broken / "jest_word_order.jsonl"
    missing.unlink()
    check_task_data(["jest_heldout_ppl"], [broken])  # unaffected tasks pass
    for tasks in (["jest_word_order"], ["jest_core"]):
        with pytest.raises(MissingTaskDataError) as info:
            evaluate_checkpoint(tiny_model_dir, None, tasks, [broken], device="cpu", seed=0, limit=2, batch_size=2)
        message = str(info.value)
        assert "jest_word_order" in message and str(missing) in message and "build_tasks" in message


def test_relative_data_path_is_rejected(tmp_path):
    (tmp_path / "t.yaml").write_text("task: rel\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                     "    test: data/t.jsonl\n")
    with pytest.raises(MissingTaskDataError, match="relative"):
        check_task_data(["rel"], [tmp_path])
    check_task_data(["hellaswag"], [tmp_path])  # not local: left to lm-eval

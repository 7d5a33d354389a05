"""build_tasks: files, absolute paths, item counts, chance levels, determinism."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from jest.evaluation import tasks as T
from jest.evaluation.tasks import build_tasks, load_table

EXPECTED = ["jest_heldout_ppl", "jest_bb_subject_verb_agreement", "jest_bb_reorder_words",
            "jest_bb_discourse_marker_prediction", "jest_continuation"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_layout_and_yaml(built):
    out_dir, table = built
    assert list(table["tasks"]) == EXPECTED
    assert table["include_path"] == str(out_dir.resolve())
    assert load_table(out_dir)["tasks"] == table["tasks"]
    for name in EXPECTED:
        config = yaml.safe_load((out_dir / f"{name}.yaml").read_text())
        data_file = Path(config["dataset_kwargs"]["data_files"]["test"])
        assert config["task"] == name and config["dataset_path"] == "json"
        assert data_file.is_absolute() and data_file == out_dir.resolve() / f"{name}.jsonl" and data_file.is_file()
        assert isinstance(config["metadata"]["version"], int)
        assert config["metadata"]["data_sha256"] == table["tasks"][name]["data_sha256"]
        metrics = [m["metric"] for m in config["metric_list"]]
        if name == "jest_heldout_ppl":
            assert config["output_type"] == "loglikelihood_rolling"
            assert metrics == ["word_perplexity", "byte_perplexity", "bits_per_byte"]
        else:
            assert config["output_type"] == "multiple_choice" and metrics == ["acc", "acc_norm"]
    group = yaml.safe_load((out_dir / "jest_core.yaml").read_text())
    assert group["group"] == "jest_core" and group["task"] == EXPECTED and "version" in group["metadata"]


def test_table_entries(built, n_heldout):
    out_dir, table = built
    for name, entry in table["tasks"].items():
        rows = _rows(out_dir / entry["data_file"])
        assert entry["n_items"] == len(rows) > 0
        assert entry["source"] and entry["licence"]
        if entry["output_type"] == "multiple_choice":
            assert entry["higher_is_better"] is True
            assert entry["metric"] == ("acc_norm" if name == "jest_continuation" else "acc")
            expected = sum(1 / len(r["choices"]) for r in rows) / len(rows)
            assert entry["chance"] == pytest.approx(expected, abs=1e-6)
            for row in rows:
                assert 0 <= row["gold"] < len(row["choices"]) and len(set(row["choices"])) == len(row["choices"])
            golds = [r["gold"] for r in rows]
            assert len(set(golds)) > 1, "the answer must not always sit in the same position"
        else:
            assert entry["chance"] is None and entry["higher_is_better"] is False
    counts = {name: e["n_items"] for name, e in table["tasks"].items()}
    assert counts["jest_heldout_ppl"] == n_heldout
    assert counts["jest_bb_subject_verb_agreement"] == len(T.SVA_SUBTASKS) * T.SVA_PER_SUBTASK
    assert counts["jest_bb_discourse_marker_prediction"] == 857
    assert counts["jest_bb_reorder_words"] == 100
    assert table["tasks"]["jest_bb_subject_verb_agreement"]["chance"] == 0.5
    assert table["tasks"]["jest_bb_discourse_marker_prediction"]["chance"] == pytest.approx(0.1)
    assert table["tasks"]["jest_continuation"]["chance"] == 0.25
    assert table["tasks"]["jest_bb_reorder_words"]["licence"] == "Apache-2.0"


def test_item_content(built, heldout_jsonl):
    out_dir, _ = built
    sva = _rows(out_dir / "jest_bb_subject_verb_agreement.jsonl")
    assert {r["subtask"] for r in sva} == set(T.SVA_SUBTASKS)
    simple = next(r for r in sva if r["subtask"] == "simple_english")
    assert simple["context"].startswith("The ") and all(" " not in c for c in simple["choices"])
    for row in _rows(out_dir / "jest_bb_discourse_marker_prediction.jsonl"):
        shared_tail = os.path.commonprefix([c[::-1] for c in row["choices"]])[::-1]
        assert row["context"] and len(row["choices"]) == 10
        assert len(shared_tail) >= min(len(c) for c in row["choices"]) - 25, "choices differ only in the marker"
    def bag(text: str) -> list[str]:
        return sorted(w.strip(".?!,") for w in text.lower().split())

    for row in _rows(out_dir / "jest_bb_reorder_words.jsonl"):
        assert bag(row["choices"][row["gold"]]) == bag(row["context"]), "the answer unscrambles the context"
    texts = [json.loads(line)["text"] for line in heldout_jsonl.read_text().splitlines()]
    for row in _rows(out_dir / "jest_continuation.jsonl"):
        words = row["context"].split()
        assert len(words) == T.CONTEXT_WORDS and len(row["choices"]) == T.N_DISTRACTORS + 1
        true = row["choices"][row["gold"]]
        owners = [i for i, t in enumerate(texts) if " ".join(t.split()).find(row["context"] + " " + true) >= 0]
        assert len(owners) == 1, "the gold continuation follows its context in exactly one document"
        for k, choice in enumerate(row["choices"]):
            assert len(choice.split()) == T.CONTINUATION_WORDS
            if k != row["gold"]:
                assert " ".join(texts[owners[0]].split()).find(choice) < 0, "distractors come from other documents"


def test_rebuild_is_byte_identical(built, heldout_jsonl, cache_dir, tmp_path, seed):
    out_dir, table = built
    before = _snapshot(out_dir)
    again = build_tasks(heldout_jsonl, cache_dir, out_dir, seed=seed)
    assert _snapshot(out_dir) == before and again == table
    # Elsewhere: same data and table, YAMLs differ only by the folder they name.
    other = tmp_path / "elsewhere"
    build_tasks(heldout_jsonl, cache_dir, other, seed=seed)
    moved = _snapshot(other)
    assert moved.keys() == before.keys()
    for name, data in before.items():
        expected = data.replace(str(out_dir.resolve()).encode(), str(other.resolve()).encode())
        assert moved[name] == expected, name


def test_seed_and_doc_cap_change_the_items(heldout_jsonl, cache_dir, tmp_path, built, seed):
    out_dir, _ = built
    table = build_tasks(heldout_jsonl, cache_dir, tmp_path, seed=seed + 1, n_heldout_docs=5)
    assert table["tasks"]["jest_heldout_ppl"]["n_items"] == 5
    assert table["tasks"]["jest_continuation"]["n_items"] < _count(out_dir / "jest_continuation.jsonl")
    for name in ("jest_bb_discourse_marker_prediction", "jest_bb_subject_verb_agreement"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() != (out_dir / f"{name}.jsonl").read_bytes()
    # reorder_words keeps all 100 items; only their order and the choice order follow the seed.
    assert sorted(r["id"] for r in _rows(tmp_path / "jest_bb_reorder_words.jsonl")) == sorted(
        r["id"] for r in _rows(out_dir / "jest_bb_reorder_words.jsonl"))


def _count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_bad_heldout_inputs(cache_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no documents"):
        build_tasks(empty, cache_dir, tmp_path / "a", seed=0)
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match="'text'"):
        build_tasks(no_text, cache_dir, tmp_path / "b", seed=0)
    too_few = tmp_path / "few.jsonl"
    too_few.write_text("".join(json.dumps({"text": " ".join(["word"] * 80)}) + "\n" for _ in range(2)))
    with pytest.raises(ValueError, match="at least 4"):
        build_tasks(too_few, cache_dir, tmp_path / "c", seed=0)

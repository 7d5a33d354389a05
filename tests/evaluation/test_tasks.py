"""build_tasks: files, absolute paths, item counts, chance levels, balance, determinism, BIG-bench opt-in."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from jest.evaluation import bigbench, bigbench_items
from jest.evaluation import items as I
from jest.evaluation.errors import ChecksumMismatchError, SourceFetchError
from jest.evaluation.tasks import build_tasks, load_table

EXPECTED = ["jest_heldout_ppl", "jest_agreement", "jest_discourse_marker", "jest_word_order", "jest_continuation"]
PRIMARY = {"jest_agreement": "acc", "jest_discourse_marker": "acc_norm", "jest_word_order": "acc",
           "jest_continuation": "acc_norm"}


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
            assert entry["metric"] == PRIMARY[name]
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
    assert min(counts.values()) >= 12, counts  # 12 short documents already give every family items
    assert table["tasks"]["jest_agreement"]["chance"] == 0.5
    for name in ("jest_discourse_marker", "jest_word_order", "jest_continuation"):
        assert table["tasks"][name]["chance"] == 0.25
    assert "bigbench" not in table and not any(name.startswith("jest_bb") for name in table["tasks"])


def _texts(heldout_jsonl: Path) -> list[str]:
    return [" ".join(json.loads(line)["text"].split()) for line in heldout_jsonl.read_text().splitlines()]


def test_agreement_items_are_balanced_minimal_pairs(built, heldout_jsonl):
    out_dir, _ = built
    rows = _rows(out_dir / "jest_agreement.jsonl")
    texts = _texts(heldout_jsonl)
    pairs = {f"{a}/{b}": {a, b} for a, b in I.AGREEMENT_PAIRS}
    for row in rows:
        gold, rival = row["choices"][row["gold"]], row["choices"][1 - row["gold"]]
        assert {gold.lower(), rival.lower()} == pairs[row["pair"]] and gold.lower() == row["form"]
        assert any(f"{row['context']} {gold}" in text for text in texts), "the verb as written follows its context"
    # Each form of a pair is the answer equally often: a model blind to the context (always "is", or
    # always the shorter word) scores exactly chance.
    by_form = Counter(row["form"] for row in rows)
    for a, b in I.AGREEMENT_PAIRS:
        assert by_form[a] == by_form[b]
    always_first_of_pair = sum(row["form"] == row["pair"].split("/")[0] for row in rows)
    assert always_first_of_pair * 2 == len(rows)


def test_discourse_marker_items(built, heldout_jsonl):
    out_dir, _ = built
    rows = _rows(out_dir / "jest_discourse_marker.jsonl")
    texts = _texts(heldout_jsonl)
    for row in rows:
        gold = row["choices"][row["gold"]]
        assert gold.startswith(row["marker"]) and len(row["choices"]) == I.MARKER_RIVALS + 1
        rests = {c.split(",", 1)[1] if row["kind"] == "comma" else c.split(" ", 1)[1] for c in row["choices"]}
        assert len(rests) == 1, "the choices differ only in the marker"
        assert any(f"{row['context']} {gold}" in text for text in texts)
    for kind in ("comma", "bare"):
        counts = Counter(row["marker"] for row in rows if row["kind"] == kind)
        assert len(set(counts.values())) <= 1, f"every {kind} marker is the answer equally often: {counts}"


def test_word_order_items(built, heldout_jsonl):
    out_dir, _ = built
    texts = _texts(heldout_jsonl)
    for row in _rows(out_dir / "jest_word_order.jsonl"):
        gold = row["choices"][row["gold"]].split()
        assert any(f"{row['context']} {' '.join(gold)}" in text for text in texts)
        for k, choice in enumerate(row["choices"]):
            if k == row["gold"]:
                continue
            words = choice.split()
            diff = [i for i, (a, b) in enumerate(zip(words, gold)) if a != b]
            assert sorted(words) == sorted(gold) and len(diff) == 2 and diff[1] == diff[0] + 1 and diff[0] >= 1
            assert words[diff[0]] == gold[diff[1]] and words[diff[0]].islower()


def test_continuation_items(built, heldout_jsonl):
    out_dir, _ = built
    texts = [json.loads(line)["text"] for line in heldout_jsonl.read_text().splitlines()]
    for row in _rows(out_dir / "jest_continuation.jsonl"):
        words = row["context"].split()
        assert len(words) == I.CONTEXT_WORDS and len(row["choices"]) == I.N_DISTRACTORS + 1
        true = row["choices"][row["gold"]]
        owners = [i for i, t in enumerate(texts) if " ".join(t.split()).find(row["context"] + " " + true) >= 0]
        assert len(owners) == 1, "the gold continuation follows its context in exactly one document"
        for k, choice in enumerate(row["choices"]):
            assert len(choice.split()) == I.CONTINUATION_WORDS
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
    # The cap is the perplexity task's alone: the families draw from every held-out document.
    assert table["tasks"]["jest_word_order"]["n_items"] == _count(out_dir / "jest_word_order.jsonl")
    for name in EXPECTED:
        assert (tmp_path / f"{name}.jsonl").read_bytes() != (out_dir / f"{name}.jsonl").read_bytes()


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
    with pytest.raises(ValueError, match="jest_agreement: .* yields no items"):
        build_tasks(too_few, cache_dir, tmp_path / "c", seed=0)


def test_bigbench_is_opt_in_from_a_local_copy(heldout_jsonl, cache_dir, tmp_path, seed, fake_bigbench):
    out_dir = tmp_path / "tasks"
    table = build_tasks(heldout_jsonl, tmp_path / "cache", out_dir, seed=seed, with_bigbench=True,
                        bigbench_sdist=fake_bigbench)
    assert [n for n in table["tasks"] if n.startswith("jest_bb")] == [t.name for t in bigbench_items.MC_TASKS]
    assert table["bigbench"]["sdist_sha256"] == bigbench.BIGBENCH.sha256
    assert (tmp_path / "cache" / "pypi" / fake_bigbench.name).read_bytes() == fake_bigbench.read_bytes()
    sva = _rows(out_dir / "jest_bb_subject_verb_agreement.jsonl")
    assert {r["subtask"] for r in sva} == set(bigbench_items.SVA_SUBTASKS) and len(sva) == 3 * 12
    for row in _rows(out_dir / "jest_bb_reorder_words.jsonl"):
        assert row["choices"][row["gold"]] == "the cat sat"
    group = yaml.safe_load((out_dir / "jest_bigbench.yaml").read_text())
    assert sorted(group["task"]) == sorted(bigbench_items.NAMES)
    # A later build that does not ask for them removes them: lm-eval must not find stale tasks.
    build_tasks(heldout_jsonl, tmp_path / "cache", out_dir, seed=seed)
    assert not list(out_dir.glob("jest_bb*")) and not (out_dir / "jest_bigbench.yaml").exists()


def test_a_wrong_local_copy_is_refused(heldout_jsonl, tmp_path, seed, fake_bigbench):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(fake_bigbench.read_bytes() + b"x")
    with pytest.raises(ChecksumMismatchError, match=f"{bad}.*not the pinned"):
        build_tasks(heldout_jsonl, tmp_path / "cache", tmp_path / "t", seed=seed, with_bigbench=True,
                    bigbench_sdist=bad)


def test_vanished_release_says_how_to_provide_it(heldout_jsonl, tmp_path, seed, monkeypatch):
    """What PyPI answers today for bigbench==1.0.0, through the real fetch path (pip stubbed)."""
    stderr = ("ERROR: Could not find a version that satisfies the requirement bigbench==1.0.0 (from versions: "
              "0.0.1)\nERROR: No matching distribution found for bigbench==1.0.0")
    monkeypatch.setattr(bigbench, "_pip_version", lambda: (25, 0))
    monkeypatch.setattr(bigbench, "_run_pip",
                        lambda pip, pin, dest, pypi: subprocess.CompletedProcess(pip, 1, stdout="", stderr=stderr))
    with pytest.raises(SourceFetchError) as info:
        build_tasks(heldout_jsonl, tmp_path / "cache", tmp_path / "t", seed=seed, with_bigbench=True)
    message = str(info.value)
    for hint in ("bigbench==1.0.0", "evaluation.bigbench_sdist", "python -m jest sources import",
                 bigbench.BIGBENCH.sha256, "evaluation.tasks"):
        assert hint in message

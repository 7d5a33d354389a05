"""Issue #30, items 5 and 6: what is knowable is refused at planning time (jest/planning.py, called by
jest.experiment.validate_config, hence by Snakemake's parse and dry runs too), and the messages of a
broken task YAML and a full disk name the file and a fix that works."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from jest.config import PROJECT_ROOT

from jest.experiment import load_config
from jest.planning import PlanError

SMOKE = PROJECT_ROOT / "config" / "smoke.yaml"


def _smoke(tmp_path: Path, **overrides) -> dict:
    return load_config(SMOKE, {"results_dir": str(tmp_path), **overrides})


# ---------------------------------------------------------------- names the file system can hold
def test_an_arm_name_too_long_for_its_run_folder_and_log_is_refused_naming_the_key(tmp_path):
    long = "a" * 250  # passes the schema's pattern; <arm>_s<seed>.log.attempts would be 266 bytes
    with pytest.raises(PlanError) as err:
        _smoke(tmp_path, arms={long: {"policy": "uniform"}})
    message = str(err.value)
    assert f"'arms.{long}'" in message and "more than the 255" in message and "at most 239 characters" in message
    _smoke(tmp_path, arms={"a" * 239: {"policy": "uniform"}})  # the limit it names is the one that works


def test_a_reference_name_too_long_is_refused(tmp_path):
    long = "r" * 250
    cfg = load_config(SMOKE)  # the smoke reference's section, under the long name
    with pytest.raises(PlanError, match=rf"'references\.{long}'.*at most 242 characters"):
        _smoke(tmp_path, references={long: cfg["references"]["ref"]},
               arms={"jest_f0.5": {"reference": long}, "offline_filter_f0.5": {"reference": long}})


# ---------------------------------------------------------------- repetition, before the data exists
def _byo(tmp_path: Path, curated_docs: int) -> dict:
    """A bring-your-own corpus alone (no embedded Brown): small curated and pool jsonl files."""
    text = " ".join(["the quick brown fox jumps over the lazy dog"] * 20)  # ~900 bytes a document
    paths = {}
    for split, n in (("curated", curated_docs), ("pool", 400), ("heldout", 40)):
        paths[split] = tmp_path / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps({"text": f"{i} {text}"}) + "\n" for i in range(n)))
    return {"embedded": False, "noisy_max_chars": {"sotu": 0, "spam_assassin": 0, "nlp_corpus": 0},
            "extra_sources": [{"kind": "jsonl", "name": f"my_{s}", "path": str(p), "split": s}
                              for s, p in paths.items()]}


def test_a_byo_corpus_that_would_make_the_reference_repeat_is_refused_before_the_data_exists(tmp_path):
    cfg = load_config(SMOKE)
    data = _byo(tmp_path, curated_docs=10)  # at most 2 x 9 kB / seq_len sequences: fewer than the reference draws
    with pytest.raises(PlanError) as err:
        _smoke(tmp_path, data=data)
    message = str(err.value)
    assert "reference 'ref'" in message and "upper bound" in message and "the data is not built" in message
    assert "references.ref.train.steps" in message and "references.ref.train.allow_repeats: true" in message
    assert not (tmp_path / cfg["name"] / "data").exists()  # refused at validation: no job ran
    # the same corpus with enough curated text passes (the bound never refuses what data could serve)
    _smoke(tmp_path, data=_byo(tmp_path, curated_docs=2000))


# ---------------------------------------------------------------- exact sizes from the built shards
def _fake_built_data(tmp_path: Path, cfg: dict, pool: int, curated: int) -> Path:
    """The data stage's manifests as prepare_data and build_shards leave them (counts only)."""
    root = tmp_path / cfg["name"]
    (root / "data").mkdir(parents=True)
    (root / "data" / "manifest.json").write_text(json.dumps({"data_cfg": cfg["data"], "input_files": []}))
    (root / "shards").mkdir()
    shards = {"seq_len": cfg["data"]["seq_len"], "splits": {"pool": {"sequences": pool}, "curated": {"sequences": curated}}}
    (root / "shards" / "manifest.json").write_text(json.dumps(shards))
    return root


def test_an_offline_filter_keeping_fewer_than_its_draws_names_the_ratio_not_the_batch(tmp_path):
    cfg = _smoke(tmp_path)
    _fake_built_data(tmp_path, cfg, pool=20_000, curated=20_000)
    with pytest.raises(PlanError) as err:
        _smoke(tmp_path, arms={"offline_filter_f0.5": {"filter_ratio": 0.999}})
    message = str(err.value)
    steps, b = cfg["train"]["steps"], cfg["train"]["batch_size"]
    assert "'arms.offline_filter_f0.5.filter_ratio' = 0.999 keeps round((1 - 0.999) x 20,000) = 20 pool" in message
    assert "Lowering 'train.batch_size' does not help" in message
    f_max = int((1 - steps * b / 20_000) * 1000) / 1000
    assert f"lower 'arms.offline_filter_f0.5.filter_ratio' to at most {f_max}" in message
    _smoke(tmp_path, arms={"offline_filter_f0.5": {"filter_ratio": f_max}})  # the named fix passes


def test_every_run_at_fault_is_listed_at_once_from_the_built_shards(tmp_path):
    cfg = _smoke(tmp_path)
    _fake_built_data(tmp_path, cfg, pool=100, curated=100)
    with pytest.raises(PlanError) as err:
        _smoke(tmp_path)
    message = str(err.value)
    assert str(tmp_path / cfg["name"] / "shards" / "manifest.json") in message
    assert "reference 'ref'" in message
    faulty = [a for a in cfg["arms"] if f"arm '{a}'" in message]
    assert len(faulty) >= 2, message  # not one arm at a time


def test_shards_built_from_another_data_section_are_not_used(tmp_path):
    cfg = _smoke(tmp_path)
    root = _fake_built_data(tmp_path, cfg, pool=100, curated=100)
    manifest = json.loads((root / "data" / "manifest.json").read_text())
    manifest["data_cfg"]["seq_len"] += 1  # the data stage will rebuild: its counts say nothing yet
    (root / "data" / "manifest.json").write_text(json.dumps(manifest))
    _smoke(tmp_path)


# ---------------------------------------------------------------- a task YAML that does not parse
def test_a_task_yaml_syntax_error_names_the_file_and_line_not_an_unknown_task(tmp_path):
    from jest.evaluation.errors import TaskYamlError
    from jest.evaluation.preflight import check_datasets

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "ok.yaml").write_text("task: my_ok\ndataset_path: json\n")
    (tasks / "mine.yaml").write_text("task: my_task\ndataset_path: json\ndoc_to_text: [unclosed\noutput_type: x\n")
    with pytest.raises(TaskYamlError) as err:
        check_datasets(["my_task"], [tasks])
    message = str(err.value)
    assert f"{tasks / 'mine.yaml'}, line " in message and "unknown task" not in message.split("\n")[1]
    assert "ok.yaml" not in message and "Fix the YAML at that line" in message


# ---------------------------------------------------------------- a full disk
def test_a_full_disk_while_writing_shards_says_the_disk_is_full(tmp_path, monkeypatch):
    import jest.data.shards as shards

    def short_write(f, array):  # numpy's array.tofile on a full disk: a bare short write, no errno
        f.write(b"\0" * 16)
        raise OSError("35328 requested and 16320 written")

    monkeypatch.setattr(shards.np, "save", short_write)
    path = tmp_path / "pool.tokens.npy"
    with pytest.raises(OSError) as err:
        shards._save_npy(path, np.zeros(17_664, dtype=np.uint16))
    message = str(err.value)
    assert f"the disk holding {tmp_path} is full" in message and "pool.tokens.npy needed 35,456 bytes" in message
    assert "'results_dir'" in message and "bytes are free there now" in message
    assert not path.exists() and not path.with_suffix(".npy.tmp").exists()


def test_enospc_in_an_atomic_write_says_the_disk_is_full(tmp_path, monkeypatch):
    import jest.io as io

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", no_space)
    with pytest.raises(io.DiskFullError, match=r"the disk holding .* is full: writing labels.json needed"):
        io.atomic_write_json(tmp_path / "labels.json", [{"source": "brown"}] * 100)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind

"""The offline pre-flight: hub datasets of lm-eval tasks missing from the cache are named, with the fix,
before any job runs; dry runs are unaffected. Runs for real offline (the standard datasets are not in
the empty HF_HOME these tests use)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jest.config import PROJECT_ROOT, deep_merge
from jest.evaluation import preflight
from jest.evaluation.preflight import (
    MissingDatasetsError,
    check_datasets,
    dataset_needs,
    workflow_preflight,
)

CACHE = PROJECT_ROOT / "results" / "cache"


def _env(hf_home: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(hf_home), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def _config(tmp_path: Path, tasks: list[str], include_paths: list[str] | None = None) -> Path:
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     {"results_dir": str(tmp_path / "results"), "cache_dir": str(CACHE),
                      "evaluation": {"tasks": tasks, "include_paths": include_paths or []}})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_missing_standard_datasets_are_named_with_the_fix(tmp_path):
    hf_home = tmp_path / "hf"
    proc = subprocess.run([sys.executable, "-m", "jest.evaluation.preflight", "--config",
                           str(_config(tmp_path, ["jest_core", "standard"]))],
                          cwd=PROJECT_ROOT, env=_env(hf_home), capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = proc.stderr
    assert "9 Hugging Face dataset(s) that are not in the offline cache" in message
    for expected in ("hellaswag: Rowan/hellaswag", "arc_easy: allenai/ai2_arc (name 'ARC-Easy')",
                     "boolq: aps/super_glue (name 'boolq')", f"HF_HOME={hf_home.resolve()}",
                     "datasets.load_dataset('Rowan/hellaswag')", "datasets.load_dataset('allenai/ai2_arc', 'ARC-Easy')",
                     f"rsync -a <that machine>:{hf_home.resolve()}/", "--download", "evaluation.tasks"):
        assert expected in message, expected
    assert "jest_" not in message.split("Fetch them")[0], "the shipped tasks need no hub dataset"


def test_unknown_task_names_are_reported(monkeypatch):
    monkeypatch.setattr(preflight, "_index", lambda names, include_paths: {})  # (the full index takes ~30 s)
    assert dataset_needs(["jest_core", "no_such_task"], []).unknown == ["no_such_task"]
    with pytest.raises(MissingDatasetsError, match=r"unknown task name\(s\) \['no_such_task'\]"):
        check_datasets(["no_such_task"], [])


def test_local_tasks_need_nothing_and_present_datasets_pass(tmp_path, monkeypatch):
    # The shipped tasks: nothing to check, and lm-eval is not even imported for them.
    assert dataset_needs(["jest_core", "jest_bb_subject_verb_agreement"], []).datasets == []
    check_datasets(["jest_core"], [])
    # A user task over local files needs no hub dataset either.
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({
        "task": "mine", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(tmp_path / "x.jsonl")}},
        "output_type": "multiple_choice", "metadata": {"version": 1}}))
    needs = dataset_needs(["mine", "arc_easy"], [tmp_path])
    assert [(d.path, d.name, d.tasks) for d in needs.datasets] == [("allenai/ai2_arc", "ARC-Easy", ["arc_easy"])]
    # Present in the cache (simulated): passes.
    monkeypatch.setattr(preflight, "_try_load", lambda dataset: None)
    assert check_datasets(["mine", "arc_easy"], [tmp_path]).datasets[0].call() == \
        "datasets.load_dataset('allenai/ai2_arc', 'ARC-Easy')"


def test_workflow_preflight_records_a_pass(tmp_path, monkeypatch):
    calls = []

    def fake_check(tasks, include_paths, **kwargs):
        calls.append(tasks)
        return preflight.Needs([], [], [])

    monkeypatch.setattr(preflight, "check_datasets", fake_check)
    cfg = {"evaluation": {"tasks": ["jest_core"], "include_paths": []}}
    stamp = tmp_path / "tasks" / "datasets_checked.json"
    workflow_preflight(cfg, stamp, "--config c")
    assert calls == [] and not stamp.exists()  # shipped tasks only: nothing to check
    cfg["evaluation"]["tasks"] = ["jest_core", "standard"]
    workflow_preflight(cfg, stamp, "--config c")
    workflow_preflight(cfg, stamp, "--config c")
    assert len(calls) == 1 and json.loads(stamp.read_text())["tasks"][-1] == "boolq"
    cfg["evaluation"]["tasks"] = ["jest_core", "copa"]  # other tasks: checked again
    workflow_preflight(cfg, stamp, "--config c")
    assert len(calls) == 2
    cfg["evaluation"]["include_paths"] = [str(tmp_path / "nowhere")]
    with pytest.raises(MissingDatasetsError, match="do not exist"):
        workflow_preflight(cfg, stamp, "--config c")


def test_workflow_stops_before_any_job_but_dry_runs_work(tmp_path):
    """`snakemake -n` works without the datasets; a real run stops before its first job, naming them."""
    config = _config(tmp_path, ["jest_bb_subject_verb_agreement", "standard"])
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)]
    env = _env(tmp_path / "hf")
    dry = subprocess.run([*command, "-n"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "build_tasks" in dry.stdout + dry.stderr
    real = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    output = real.stdout + real.stderr
    assert real.returncode != 0, output[-3000:]
    assert "MissingDatasetsError" in output and "Rowan/hellaswag" in output and "--download" in output
    smoke = tmp_path / "results" / "smoke"
    assert not (smoke / "data").exists() and not (smoke / "runs").exists(), "no job may have run"
    assert not (smoke / "tasks" / "datasets_checked.json").exists()

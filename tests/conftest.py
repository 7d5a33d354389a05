"""Shared fixtures: one real smoke-scale workspace (pinned data, tokenizer, shards) per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from jest.config import PROJECT_ROOT

# The pinned npm tarballs are cached across test sessions (and shared with real runs).

from jest.experiment import load_config
SOURCE_CACHE = PROJECT_ROOT / "results" / "cache"

# Never let a test reach a hub; keep HF caches inside the project.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  MLFLOW_DISABLE_TELEMETRY="true")


def smoke_config(tmp_root: Path, **overrides) -> dict:
    """The smoke config with its outputs (and MLflow store) under `tmp_root`."""
    from jest.config import deep_merge
    return load_config(PROJECT_ROOT / "config" / "smoke.yaml",
                       overrides=deep_merge({"results_dir": str(tmp_root)}, overrides))


@pytest.fixture(scope="session")
def smoke_workspace(tmp_path_factory) -> dict:
    """prepare_data -> train_tokenizer -> build_shards on the smoke config, once per session."""
    from jest.data.prepare import prepare_corpus
    from jest.data.shards import build_shards
    from jest.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("smoke")
    cfg = smoke_config(root)
    data, tok, shards = root / "data", root / "tokenizer", root / "shards"
    prepare_corpus(cfg["data"], data, SOURCE_CACHE)
    train_tokenizer([data / "curated.jsonl", data / "pool.jsonl"], cfg["data"]["vocab_size"], tok)
    build_shards(data, tok, shards, cfg["data"]["seq_len"])
    return {"root": root, "cfg": cfg, "data": data, "tokenizer": tok, "shards": shards}


@pytest.fixture(scope="session")
def smoke_dag(tmp_path_factory) -> Path:
    """One uninterrupted real Snakemake run of the smoke DAG (outputs under a temporary results_dir),
    shared by every test that compares an interrupted run with it. Returns the results_dir."""
    import subprocess
    import sys

    import yaml

    from jest.config import deep_merge
    results = tmp_path_factory.mktemp("smoke_dag")
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     {"results_dir": str(results), "cache_dir": str(SOURCE_CACHE)})
    (results / "smoke.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                           str(results / "smoke.yaml")], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          check=False)
    (results / "terminal.txt").write_text(proc.stdout + proc.stderr)  # what a user's terminal showed
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results

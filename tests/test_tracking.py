"""The MLflow mirror: parallel writers on one sqlite store lose nothing; a dead store never kills a run."""
from __future__ import annotations

import json
import multiprocessing as mp
import warnings
from pathlib import Path

import pytest

from jest.tracking.records import MlflowMirror, MetricsFile, read_metrics

ROWS, KEYS = 250, ("train_loss", "lr", "grad_norm", "flops_train")


def _write_run(run_dir: Path, offset: float) -> None:
    run_dir.mkdir(parents=True)
    metrics = MetricsFile(run_dir / "metrics.jsonl")
    for step in range(1, ROWS + 1):
        metrics.append({"step": step, "time": 1.7e9 + step, **{k: offset + step * 0.001 + i for i, k in enumerate(KEYS)}})


def _sync_in_chunks(run_dir: str, uri: str, name: str) -> bool:
    """What a training job does: sync every few steps while rows keep coming, then a final sync."""
    mirror = MlflowMirror(Path(run_dir), uri, "jest-parallel", name, {"arm": name}, {"method": "uniform"})
    ok = True
    for _ in range(5):
        ok &= mirror.sync()
    return ok and mirror.sync(final_status="FINISHED")


def test_four_parallel_writers_on_one_sqlite_store_lose_no_point(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a fresh store: its schema migration is raced too
    runs = [tmp_path / f"run{i}" for i in range(4)]
    for i, run in enumerate(runs):
        _write_run(run, offset=i)
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_sync_in_chunks, [(str(r), uri, r.name) for r in runs])
    assert all(results)

    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("jest-parallel")
    assert len(client.search_runs([exp.experiment_id])) == 4
    for run in runs:
        run_id = json.loads((run / "mlflow_run.json").read_text())["run_id"]
        rows = read_metrics(run / "metrics.jsonl")
        for key in KEYS:
            history = {m.step: m.value for m in client.get_metric_history(run_id, key)}
            assert history == {r["step"]: pytest.approx(r[key]) for r in rows}
        mirror = MlflowMirror(run, uri, "jest-parallel", run.name, {}, {})
        assert mirror.missing_points() == 0 and mirror.file_points() == ROWS * len(KEYS)


def test_an_unreachable_store_warns_and_a_later_sync_reconciles(tmp_path):
    run = tmp_path / "run"
    _write_run(run, offset=0)
    dead = MlflowMirror(run, "http://127.0.0.1:9", "x", "run", {}, {}, retries=2)  # nothing listens on port 9
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dead.sync() is False
    assert any("sync-mlflow" in str(w.message) for w in caught)
    assert len(read_metrics(run / "metrics.jsonl")) == ROWS  # the files are untouched
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    live = MlflowMirror(run, uri, "x", "run", {}, {})
    assert live.sync(final_status="FINISHED") and live.missing_points() == 0

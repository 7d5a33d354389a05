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


# ---- issue #29: tags and colours that let the UI compare arms (jest.tracking.run_tags)

def test_filter_ratio_tag_is_the_arms_setting_for_every_policy_that_has_one():
    from jest.tracking.run_tags import arm_tags
    # the offline filter trains on b sequences a step (no super-batch): 1 - b / B gave it 0.0
    assert arm_tags("offline_filter", {"policy": "offline_filter", "filter_ratio": 0.8}) == {"filter_ratio": 0.8}
    assert arm_tags("jest", {"policy": "jest", "filter_ratio": 0.5})["filter_ratio"] == 0.5
    assert arm_tags("mixture_matched", {"policy": "mixture_matched", "filter_ratio": 0.8})["filter_ratio"] == 0.8
    # no filter ratio, no tag: a 0 would read "filters nothing"
    assert "filter_ratio" not in arm_tags("oracle_clean", {"policy": "oracle_clean"})
    assert arm_tags("uniform", {"policy": "uniform", "budget": 2}) == {"budget": "2x"}


def test_each_budget_of_the_uniform_family_has_its_own_run_colour():
    from jest.tracking.run_tags import BASELINE_COLOR, run_color
    colours = [run_color(f"uniform_x{b}", "uniform", f"{b}x") for b in (0.5, 1, 2, 3)]
    assert len(set(colours)) == 4 and colours[1] == BASELINE_COLOR
    assert run_color("uniform", "uniform", None) == BASELINE_COLOR
    assert run_color("jest_f0.8", "jest") not in colours


def _old_offline_filter_run(run_dir: Path) -> None:
    """A run folder as written before the fix: the card's MLflow tags say filter_ratio 0.0."""
    _write_run(run_dir, offset=0)
    arms = {"offline_filter_f0.8": {"policy": "offline_filter", "filter_ratio": 0.8},
            "uniform_x2": {"policy": "uniform", "budget": 2}}
    (run_dir / "card.json").write_text(json.dumps({
        "run": run_dir.name, "arm": "offline_filter_f0.8", "seed": 0, "status": "finished",
        "config": {"name": "t", "arms": arms, "mlflow": {"tracking_uri": None, "experiment": "jest-t"}},
        "mlflow_params": {"arm.filter_ratio": 0.8},
        "mlflow_tags": {"method": "offline_filter", "arm": "offline_filter_f0.8", "filter_ratio": 0.0}}))


def test_a_mirrored_old_card_gets_the_arms_filter_ratio_tag(tmp_path):
    from mlflow.tracking import MlflowClient

    from jest.tracking.records import mirror_run
    run = tmp_path / "offline_filter_f0.8_s0"
    _old_offline_filter_run(run)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mirror, ok, _ = mirror_run(run, uri)
    assert ok
    got = MlflowClient(uri).get_run(mirror.run_id()).data
    assert got.tags["filter_ratio"] == got.params["arm.filter_ratio"] == "0.8"

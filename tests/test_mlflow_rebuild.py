"""MLflow is a mirror that can always be rebuilt (issue #30): a deleted store, a store with garbage bytes
and a store that lost one run, on real run folders (tests/analysis/data/tiny_runs) and a real sqlite store."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import warnings

import pytest

from jest.__main__ import main
from jest.config import PROJECT_ROOT
from jest.experiment import load_config
from jest.tracking.mlflow_rebuild import rebuild
from jest.tracking.records import MlflowMirror, MlflowStoreError, check_store, mirror_run, read_metrics, write_card, \
    write_receipt

FIXTURE_RUNS = PROJECT_ROOT / "tests" / "analysis" / "data" / "tiny_runs"
RUNS = ("uniform_s0", "jest_f0.8_s0")


@pytest.fixture
def mirrored(tmp_path, monkeypatch):
    """results/tiny/runs/ with the two real runs (finished: their cards record the metrics' sha256, as the
    trainer's finish does), mirrored into results/mlflow.db with receipts, as the evaluate jobs leave them."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the config's store: results/mlflow.db
    results = tmp_path / "results"
    uri = f"sqlite:///{(results / 'mlflow.db').resolve()}"
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    cfg["results_dir"] = str(results)
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(cfg))
    runs = [results / "tiny" / "runs" / name for name in RUNS]
    for run in runs:
        shutil.copytree(FIXTURE_RUNS / run.name, run)
        write_card(run / "card.json", status="finished")
        # the cards' own config names the checkout's results/: the store is always given here
        mirror, ok, missing = mirror_run(run, uri)
        assert ok, mirror.last_error
        write_receipt(run / "mlflow_synced.json", mirror, missing)
    return {"cfg": cfg, "config_file": config_file, "runs": runs, "db": (results / "mlflow.db").resolve(), "uri": uri}


def _run_id(run) -> str:
    return json.loads((run / "mlflow_run.json").read_text())["run_id"]


def assert_store_holds_every_point(uri: str, runs) -> None:
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=uri)
    for run in runs:
        run_id = _run_id(run)
        assert json.loads((run / "mlflow_synced.json").read_text())["run_id"] == run_id
        assert client.get_run(run_id).info.status == "FINISHED"
        rows = read_metrics(run / "metrics.jsonl")
        for key in ("train_loss", "heldout_loss", "flops_train"):
            want = {r["step"]: r[key] for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])}
            assert want and {m.step: m.value for m in client.get_metric_history(run_id, key)} == pytest.approx(want)
        mirror = MlflowMirror(run, uri, "jest-tiny", run.name, {}, {})
        assert mirror.missing_points() == 0 and mirror.file_points() > 100


def test_a_deleted_store_is_rebuilt_by_one_command_with_new_run_ids_and_receipts(mirrored, capsys):
    old = {run: _run_id(run) for run in mirrored["runs"]}
    mirrored["db"].unlink()
    main(["rebuild-mlflow", "--config", str(mirrored["config_file"])])  # exit 0: returns
    out = capsys.readouterr().out
    assert "2 of 2 run folders mirrored" in out and "receipt rewritten" in out
    assert all(_run_id(run) != old[run] for run in mirrored["runs"])
    assert_store_holds_every_point(mirrored["uri"], mirrored["runs"])


def test_sync_of_a_run_the_store_lost_recreates_it_and_names_the_rebuild(mirrored):
    run = mirrored["runs"][0]
    old = _run_id(run)
    mirrored["db"].unlink()  # the store is gone; the run folder still records its old run id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mirror, ok, missing = mirror_run(run, mirrored["uri"])
    assert ok and missing == 0 and mirror.recreated_from == old and _run_id(run) != old
    assert any(old in str(w.message) and "rebuild-mlflow" in str(w.message) for w in caught)


def test_a_garbage_store_is_named_with_a_fix_that_works(mirrored, capsys):
    db = mirrored["db"]
    db.write_bytes(b"\x00garbage, not sqlite\n" * 64)
    with pytest.raises(MlflowStoreError, match="rebuild-mlflow") as err:
        check_store(mirrored["uri"])
    assert str(db) in str(err.value)
    # sync-mlflow fails at once (8 tries with their backoff would take over 16 s), naming the file and the rebuild
    started = time.monotonic()
    with pytest.raises(SystemExit) as done, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["sync-mlflow", str(mirrored["runs"][0]), "--tracking-uri", mirrored["uri"]])
    assert done.value.code == 1 and time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert "FAILED" in out and str(db) in out and "rebuild-mlflow --config" in out

    # the fix: the rebuild moves the damaged file aside (kept) and recreates every run
    assert rebuild(mirrored["cfg"], log=lambda line: None) == 0
    (aside,) = db.parent.glob("mlflow.db.replaced-*")
    assert aside.read_bytes().startswith(b"\x00garbage")
    check_store(mirrored["uri"])
    assert_store_holds_every_point(mirrored["uri"], mirrored["runs"])


def test_a_store_moved_aside_by_hand_is_rebuilt_too(mirrored):
    mirrored["db"].rename(mirrored["db"].with_name("mlflow.db.broken"))
    assert rebuild(mirrored["cfg"], log=lambda line: None) == 0
    assert not list(mirrored["db"].parent.glob("mlflow.db.replaced-*"))  # nothing there to move aside
    assert_store_holds_every_point(mirrored["uri"], mirrored["runs"])


def test_the_rebuild_refuses_an_edited_metrics_file_and_mirrors_the_others(mirrored):
    bad, good = mirrored["runs"]
    lines = (bad / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["heldout_loss"] -= 0.5
    (bad / "metrics.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last, sort_keys=True)]) + "\n")
    mirrored["db"].unlink()
    printed = []
    assert rebuild(mirrored["cfg"], log=printed.append) == 1
    text = "\n".join(printed)
    assert f"REFUSED  {bad}" in text and str(bad / "metrics.jsonl") in text and "--forcerun" in text
    assert not (bad / "mlflow_synced.json").exists()  # no receipt claims MLflow holds it
    assert_store_holds_every_point(mirrored["uri"], [good])


def test_snakemake_names_a_missing_or_damaged_store_and_the_rebuild(tmp_path):
    """A deleted store leaves every receipt up to date ("Nothing to be done"): the DAG says so, at planning time."""
    (tmp_path / "smoke" / "runs" / "uniform_s0").mkdir(parents=True)
    (tmp_path / "smoke" / "runs" / "uniform_s0" / "mlflow_synced.json").write_text("{}")

    def dry_run() -> str:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config/smoke.yaml",
                               "--config", f"results_dir={tmp_path}"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    out = dry_run()
    assert f"MLflow store {tmp_path / 'mlflow.db'} is missing" in out
    assert "python -m jest rebuild-mlflow --config config/smoke.yaml" in out or \
        f"rebuild-mlflow --config {PROJECT_ROOT / 'config' / 'smoke.yaml'}" in out
    (tmp_path / "mlflow.db").write_bytes(b"garbage")
    out = dry_run()
    assert f"MLflow store {tmp_path / 'mlflow.db'} is damaged" in out and "rebuild-mlflow --config" in out

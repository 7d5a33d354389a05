"""The real Snakemake DAG on the smoke config: dry run, lint, a full run, kill + rerun, a checkout path with a space."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from checkout_copy import copy_tracked_files
from jest.config import PROJECT_ROOT, deep_merge
from jest.tracking.records import read_metrics

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CACHE = PROJECT_ROOT / "results" / "cache"
STAGES = ("prepare_data", "train_tokenizer", "build_shards", "train_reference", "score_reference", "train",
          "evaluate", "analyze")


ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def _smoke_config(results: Path, **overrides) -> Path:
    """config/smoke.yaml with outputs under `results` (plus overrides), as a config file."""
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text()),
                     {"results_dir": str(results), "cache_dir": str(CACHE), **overrides})
    results.mkdir(parents=True, exist_ok=True)
    path = results / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cmd(results: Path, *extra: str, **overrides) -> list[str]:
    # extra (targets, options) before --configfile, which takes every following word as a config file
    return [*SNAKEMAKE, *extra, "--cores", "2", "--configfile", str(_smoke_config(results, **overrides))]


def _snakemake(results: Path, *extra: str, **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(results, *extra, **overrides), cwd=PROJECT_ROOT, env=ENV,
                          capture_output=True, text=True, check=False)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_dry_run_lists_every_stage(tmp_path):
    proc = _snakemake(tmp_path, "-n")
    _ok(proc)
    for stage in STAGES:
        assert stage in proc.stdout + proc.stderr, stage


def test_lint_is_clean(tmp_path):
    proc = _snakemake(tmp_path, "--lint")
    _ok(proc)
    assert "Congratulations" in proc.stdout + proc.stderr or "no issues" in (proc.stdout + proc.stderr).lower()


def test_a_bad_config_fails_before_any_job(tmp_path):
    proc = _snakemake(tmp_path, "-n", train={"batch_size": 8, "micro_batch_size": 3})
    assert proc.returncode != 0
    assert "'train.micro_batch_size' = 3 must divide" in proc.stdout + proc.stderr


def test_smoke_dag_end_to_end(smoke_dag):
    """What the one real DAG run of the default suite left (conftest.py's smoke_dag, shared with
    tests/test_integrity_dag.py): terminal progress, logs, data, runs, report and MLflow."""
    from mlflow.tracking import MlflowClient

    ref = smoke_dag
    # live progress in Snakemake's terminal (its stderr), throttled; logs without carriage returns
    terminal = (ref / "terminal.txt").read_text()
    for name in ("uniform_s0", "jest_f0.5_s0"):
        lines = [line for line in terminal.splitlines() if line.startswith(f"[{name}] step ")]
        assert lines and lines[-1].startswith(f"[{name}] step 30/30 (100%) loss ") and "tok/s" in lines[-1], terminal[-3000:]
        assert len(lines) <= 20, lines          # 30 steps: a line every 10% (3 steps) or 30 s, not every step
    logs = sorted((ref / "smoke" / "logs").rglob("*.log"))
    assert logs and not [log for log in logs if "\r" in log.read_text()]
    assert "[uniform_s0] step 30/30 (100%)" in (ref / "smoke" / "logs" / "train" / "uniform_s0.log").read_text()
    run = ref / "smoke" / "runs" / "uniform_s0"
    rows = read_metrics(run / "metrics.jsonl")
    assert rows and rows[-1]["step"] == 30 and "heldout_bpb" in rows[-1]
    manifest = json.loads((ref / "smoke" / "data" / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"curated", "heldout", "pool", "pool_heldout", "external"}
    # the held-out sets outside the curated domain and the repetition accounting (issue #13)
    assert {"heldout_loss_pool_mix", "heldout_bpb_ext_shakespeare", "heldout_loss_src_email"} <= set(rows[-1])
    assert rows[-1]["pool_passes"] <= 1 and rows[-1]["unique_sequences"] == 30 * 8
    receipt = json.loads((run / "mlflow_synced.json").read_text())
    assert receipt["missing"] == 0 and receipt["points"] > 30

    # the report and its machine-readable headline, for the JEST arm against the baseline
    summary = json.loads((ref / "smoke" / "report" / "summary.json").read_text())
    assert [row["arm"] for row in summary["headline"] if row["policy"] == "jest"] == ["jest_f0.5"]
    for control in ("oracle_clean", "offline_filter_f0.5", "curated_only"):  # the control arms ran too
        assert json.loads((ref / "smoke" / "runs" / f"{control}_s0" / "card.json").read_text())["status"] == "finished"
    assert summary["baseline"]["arm"] == "uniform"
    assert (ref / "smoke" / "report" / "report.html").stat().st_size > 10_000
    jest_rows = read_metrics(ref / "smoke" / "runs" / "jest_f0.5_s0" / "metrics.jsonl")
    assert "sel_share_quality_clean" in jest_rows[-1] and "score_mean_selected" in jest_rows[-1]

    client = MlflowClient(f"sqlite:///{ref / 'mlflow.db'}")
    exp = client.get_experiment_by_name("jest-smoke")
    (mlrun,) = client.search_runs([exp.experiment_id], "tags.method = 'uniform' and tags.arm = 'uniform'")
    (jest_run,) = client.search_runs([exp.experiment_id], "tags.method = 'jest'")
    assert jest_run.data.tags["filter_ratio"] == "0.5"
    # issue #29: the offline filter's tag is its setting too (1 - b / B tagged it 0.0)
    (offline,) = client.search_runs([exp.experiment_id], "tags.arm = 'offline_filter_f0.5'")
    assert offline.data.tags["filter_ratio"] == offline.data.params["arm.filter_ratio"] == "0.5"
    history = {m.step: m.value for m in client.get_metric_history(mlrun.info.run_id, "train_loss")}
    assert history == {r["step"]: r["train_loss"] for r in rows}


@pytest.mark.slow
@pytest.mark.dag
def test_smoke_dag_resumes_after_its_training_job_is_killed(tmp_path, smoke_dag):
    """The same DAG, its training job SIGKILLed after a checkpoint, then re-run: the rows of the
    uninterrupted run (tests/test_integrity_dag.py kills Snakemake itself; this kills one job)."""
    rows = read_metrics(smoke_dag / "smoke" / "runs" / "uniform_s0" / "metrics.jsonl")
    killed = tmp_path / "killed"
    # Only uniform_s0's chain: with the family and the control arms in the smoke DAG, Snakemake may
    # schedule other training jobs first and the uniform run would not start within the deadline
    # (seen: "no checkpoint appeared").
    cmd = _cmd(killed, str(killed / "smoke" / "runs" / "uniform_s0" / "card.json"))
    sm = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = killed / "smoke" / "runs" / "uniform_s0" / "checkpoints"
    deadline = time.time() + 600
    while not any(ckpts.glob("step_*")) if ckpts.is_dir() else True:
        assert time.time() < deadline and sm.poll() is None, "no checkpoint appeared"
        time.sleep(0.05)
    trainers = [p for p in psutil.Process(sm.pid).children(recursive=True)
                if "train" in p.cmdline() and "jest" in p.cmdline()]
    assert trainers, "training process not found"
    for p in trainers:
        p.send_signal(signal.SIGKILL)
    sm.wait(timeout=120)
    assert sm.returncode != 0
    _ok(subprocess.run(cmd, cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True))
    resumed = read_metrics(killed / "smoke" / "runs" / "uniform_s0" / "metrics.jsonl")
    volatile = ("wall_time", "time")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in volatile} for r in rs]  # noqa: E731
    assert strip(resumed) == strip(rows)
    card = json.loads((killed / "smoke" / "runs" / "uniform_s0" / "card.json").read_text())
    assert card["resumed_from_step"] >= 10
    # the killed attempt's log is kept: Snakemake empties the job's log, <log>.attempts keeps both
    log = killed / "smoke" / "logs" / "train" / "uniform_s0.log"
    attempts = Path(f"{log}.attempts").read_text()
    assert attempts.count("=== attempt started ") == 2 and log.read_text().count("=== attempt started ") == 1
    assert attempts.endswith(log.read_text())


@pytest.mark.slow
@pytest.mark.dag
def test_smoke_dag_runs_from_a_checkout_under_a_path_with_a_space(tmp_path):
    """The rules' shell lines hold absolute paths under the checkout (results, cache, configs), which
    no config check can cover; unquoted, `prepare_data` failed in '/tmp/my proj/jest' (seen before
    the `{...:q}` change). A copy of the tracked files under such a path runs the whole smoke DAG."""
    root = tmp_path / "my projects" / "jest harness"
    copy_tracked_files(root)
    cfg = yaml.safe_load((PROJECT_ROOT / "config" / "smoke.yaml").read_text())
    # results_dir and cache_dir keep their defaults: folders under the checkout, handed to the shell
    # lines as absolute paths under the spaced root; the cache links to the downloads the tests share
    cfg.pop("results_dir", None)
    cfg.pop("cache_dir", None)
    (root / "results").mkdir()
    CACHE.mkdir(parents=True, exist_ok=True)
    (root / "results" / "cache").symlink_to(CACHE, target_is_directory=True)
    (root / "smoke.yaml").write_text(yaml.safe_dump(cfg))
    env = {**ENV, "PYTHONPATH": str(root)}  # import the copy's jest, whose PROJECT_ROOT is the spaced path
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", "--configfile", "smoke.yaml"], cwd=root, env=env,
                          capture_output=True, text=True, check=False)
    _ok(proc)
    summary = json.loads((root / "results" / "smoke" / "report" / "summary.json").read_text())
    assert summary["runs"] and (root / "results" / "smoke" / "report" / "report.html").is_file()

"""The training loop on real smoke-scale data: determinism, kill + resume, MLflow mirror, faults."""
from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jest.config import PROJECT_ROOT, deep_merge

from jest.experiment import validate_config
from jest.io import atomic_write_json
from jest.tracking.records import read_metrics
from jest.training.schedule import log_spaced_steps, lr_at
from jest.training.trainer import NonFiniteLossError, RunSpec, train

VOLATILE = ("wall_time", "time")


def _curve(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in read_metrics(run_dir / "metrics.jsonl")]


def _spec(ws, run_dir, cfg=None, seed=0) -> RunSpec:
    return RunSpec(cfg=cfg or ws["cfg"], arm="uniform", seed=seed, run_dir=run_dir,
                   shards_dir=ws["shards"], tokenizer_dir=ws["tokenizer"])


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    tcfg = validate_config({"name": "x", "train": {"steps": 100, "warmup_steps": 10, "lr": 1.0,
                                                   "min_lr_ratio": 0.1}})["train"]
    assert lr_at(0, tcfg) == pytest.approx(0.1)
    assert lr_at(9, tcfg) == pytest.approx(1.0)
    assert lr_at(10, tcfg) == pytest.approx(1.0)
    assert lr_at(99, tcfg) == pytest.approx(0.1, abs=1e-3)
    assert all(lr_at(s, tcfg) >= lr_at(s + 1, tcfg) for s in range(10, 99))


def test_same_seed_same_curve_bit_for_bit_and_training_learns(smoke_workspace, tmp_path):
    ws = smoke_workspace
    train(_spec(ws, tmp_path / "a"), progress=False)
    train(_spec(ws, tmp_path / "b"), progress=False)
    a, b = _curve(tmp_path / "a"), _curve(tmp_path / "b")
    assert a == b  # exact float equality, every row
    steps = ws["cfg"]["train"]["steps"]
    assert [r["step"] for r in a] == list(range(1, steps + 1))
    tcfg = ws["cfg"]["train"]
    eval_rows = [r for r in a if "heldout_loss" in r]
    expected = {s for s in range(1, steps + 1) if s % tcfg["eval_every"] == 0}
    expected |= set(log_spaced_steps(steps, tcfg["eval_log_points"], first_fraction=1 / 64))
    expected |= set(log_spaced_steps(steps, tcfg["eval_sets_points"]))  # where every held-out set is scored
    assert {r["step"] for r in eval_rows} == expected
    # it learns: held-out loss falls from evaluation to evaluation, well below chance (ln V)
    evals = [r["heldout_loss"] for r in eval_rows]
    assert evals[0] > evals[len(evals) // 2] > evals[-1]
    assert evals[-1] < math.log(ws["cfg"]["data"]["vocab_size"]) - 0.5
    last = a[-1]
    b_ = ws["cfg"]["train"]["batch_size"]
    assert last["examples_seen"] == steps * b_ and last["tokens_seen"] == steps * b_ * ws["cfg"]["data"]["seq_len"]
    assert last["flops_train"] == last["flops_train_score"] == last["flops_total"] > 0
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["status"] == "finished" and card["seed"] == 0 and card["packages"]["torch"].startswith("2.13")
    assert (tmp_path / "a" / "model" / "config.json").exists()


def test_another_seed_gives_another_curve(smoke_workspace, tmp_path):
    ws = smoke_workspace
    cfg = deep_merge(ws["cfg"], {"train": {"steps": 6, "warmup_steps": 2, "eval_every": 3}})
    train(_spec(ws, tmp_path / "s0", cfg, seed=0), progress=False)
    train(_spec(ws, tmp_path / "s1", cfg, seed=1), progress=False)
    assert _curve(tmp_path / "s0")[0]["train_loss"] != _curve(tmp_path / "s1")[0]["train_loss"]


def test_mlflow_holds_every_metric_point(smoke_workspace, tmp_path):
    from mlflow.tracking import MlflowClient
    from jest.tracking.records import experiment_name, tracking_uri

    ws = smoke_workspace
    cfg = deep_merge(ws["cfg"], {"results_dir": str(tmp_path)})
    run_dir = tmp_path / "run"
    train(_spec(ws, run_dir, cfg), progress=False)
    client = MlflowClient(tracking_uri(cfg))
    exp = client.get_experiment_by_name(experiment_name(cfg))
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["method"] == "uniform" and run.data.tags["seed"] == "0"
    assert run.info.status == "FINISHED"
    rows = read_metrics(run_dir / "metrics.jsonl")
    for key in ("train_loss", "heldout_loss", "flops_total", "tokens_seen"):
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
        assert history == {r["step"]: pytest.approx(r[key]) for r in rows if key in r}, key


def _write_config(cfg: dict, path: Path) -> Path:
    atomic_write_json(path, cfg)
    return path


def _train_cmd(ws, cfg_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "jest", "train", "--config", str(cfg_path), "--arm", "uniform", "--seed", "0",
            "--run-dir", str(run_dir), "--shards", str(ws["shards"]), "--tokenizer", str(ws["tokenizer"]),
            "--threads", "1", "--no-progress"]


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_gives_identical_metrics(smoke_workspace, tmp_path):
    ws = smoke_workspace
    cfg = deep_merge(ws["cfg"], {"results_dir": str(tmp_path), "train": {"steps": 60, "checkpoint_every": 7}})
    cfg_path = _write_config(cfg, tmp_path / "cfg.json")
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_train_cmd(ws, cfg_path, ref), check=True, cwd=PROJECT_ROOT, capture_output=True)

    proc = subprocess.Popen(_train_cmd(ws, cfg_path, killed), cwd=PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoints").is_dir() or not any((killed / "checkpoints").glob("step_*")):
        assert time.time() < deadline and proc.poll() is None, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))  # somewhere after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rows_at_kill = len(read_metrics(killed / "metrics.jsonl"))
    assert rows_at_kill < 60, "the run finished before the kill; the test proves nothing"

    subprocess.run(_train_cmd(ws, cfg_path, killed), check=True, cwd=PROJECT_ROOT, capture_output=True)
    assert _curve(killed) == _curve(ref)
    card = json.loads((killed / "card.json").read_text())
    assert card["status"] == "finished" and card["resumed_from_step"] > 0


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(smoke_workspace, tmp_path):
    ws = smoke_workspace
    cfg = deep_merge(ws["cfg"], {"results_dir": str(tmp_path),
                                 "train": {"lr": 1e12, "grad_clip": 0, "warmup_steps": 0, "checkpoint_every": 1}})
    run_dir = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train(_spec(ws, run_dir, cfg), progress=False)
    card = json.loads((run_dir / "card.json").read_text())
    assert card["status"] == "failed" and "NonFiniteLossError" in card["error"]
    from safetensors.torch import load_file
    import torch
    for ckpt in (run_dir / "checkpoints").glob("step_*"):
        weights = load_file(ckpt / "model.safetensors")
        assert all(torch.isfinite(t).all() for t in weights.values())


def test_checkpoints_of_another_config_are_moved_aside_not_resumed(smoke_workspace, tmp_path):
    ws = smoke_workspace
    short = {"train": {"steps": 4, "warmup_steps": 1, "eval_every": 2, "checkpoint_every": 2}}
    first = deep_merge(ws["cfg"], short)
    train(_spec(ws, tmp_path / "r", first), progress=False)
    changed = deep_merge(first, {"train": {"lr": 0.001}})
    train(_spec(ws, tmp_path / "r", changed), progress=False)
    stale = list(tmp_path.glob("r/checkpoints.stale-*"))
    assert len(stale) == 1 and any(stale[0].glob("step_*"))  # kept, not deleted
    card = json.loads((tmp_path / "r" / "card.json").read_text())
    assert card["resumed_from_step"] is None and card["config"]["train"]["lr"] == 0.001
    fresh = _curve(tmp_path / "r")
    assert [r["step"] for r in fresh] == [1, 2, 3, 4]

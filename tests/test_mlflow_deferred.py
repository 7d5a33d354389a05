"""`mlflow.live: false` (the tiny default): a real smoke run trains without ever importing MLflow,
and the later mirror (the evaluate job's, or `python -m jest sync-mlflow`) creates the MLflow run
with the params and tags the trainer wrote into the card, every metric point, and its status."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from jest.config import PROJECT_ROOT, deep_merge
from jest.io import atomic_write_json
from jest.tracking.records import read_metrics

TRAIN_WITHOUT_MLFLOW = """
import json, sys
from pathlib import Path
from jest.experiment import validate_config
from jest.training.trainer import RunSpec, train
cfg, run_dir, shards, tok = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
train(RunSpec(cfg=validate_config(cfg), arm="uniform", seed=0, run_dir=run_dir, shards_dir=shards,
              tokenizer_dir=tok), threads=1, progress=False)
print("MLFLOW_IMPORTED", any(m == "mlflow" or m.startswith("mlflow.") for m in sys.modules))
"""


def test_a_run_not_mirrored_live_gets_its_params_tags_and_points_from_the_later_mirror(smoke_workspace, tmp_path):
    ws = smoke_workspace
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = deep_merge(ws["cfg"], {"results_dir": str(tmp_path), "mlflow": {"tracking_uri": store, "live": False},
                                 "train": {"steps": 6, "warmup_steps": 2, "eval_every": 3, "checkpoint_every": 3}})
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", TRAIN_WITHOUT_MLFLOW, json.dumps(cfg), str(run_dir),
                           str(ws["shards"]), str(ws["tokenizer"])],
                          cwd=PROJECT_ROOT, env=os.environ, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MLFLOW_IMPORTED False" in proc.stdout
    assert not (run_dir / "mlflow_run.json").exists() and not (tmp_path / "mlflow.db").exists()
    card = json.loads((run_dir / "card.json").read_text())
    assert card["status"] == "finished" and "mlflow_synced" not in card
    assert card["mlflow_params"]["arm"] == "uniform" and card["mlflow_tags"]["kind"] == "learner"

    # the evaluation's rows exist by then in the workflow: one stands in for them here
    atomic_write_json(run_dir / "eval" / "done.json", {})
    (run_dir / "eval" / "metrics.jsonl").write_text(json.dumps({"step": 6, "time": 1.0, "eval_aggregate_margin": 0.5})
                                                    + "\n")
    receipt = tmp_path / "synced.json"
    proc = subprocess.run([sys.executable, "-m", "jest", "sync-mlflow", str(run_dir), "--receipt", str(receipt)],
                          cwd=PROJECT_ROOT, env=os.environ, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(receipt.read_text())["missing"] == 0

    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(json.loads((run_dir / "mlflow_run.json").read_text())["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == card["run"]
    assert run.data.params["arm"] == "uniform" and run.data.params["seed"] == "0"
    assert run.data.params["train.steps"] == "6"
    assert run.data.tags["kind"] == "learner" and run.data.tags["arm"] == "uniform"
    # issue #29: a uniform run has no filter ratio (it was tagged 0.0) and shows its family budget
    assert "filter_ratio" not in run.data.tags and run.data.tags["budget"] == "1x"
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [r["step"] for r in rows]
    assert run.data.metrics["eval_aggregate_margin"] == 0.5

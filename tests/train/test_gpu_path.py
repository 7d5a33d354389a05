"""The GPU code path of the training loop, exercised on CPU (no GPU in the test machines).

On CUDA the loop reads the loss only at logged steps and logs MFU against the chip's peak;
here the device check and the peak table are replaced so that the same code runs on CPU.
bf16 runs the forward under autocast on CPU as it would on a GPU.
"""
from __future__ import annotations

import pytest
from safetensors.torch import load_file

from jest.training import trainer
from jest.config import deep_merge
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, train

STEPS = 7


def _cfg(ws, **train_cfg) -> dict:
    return deep_merge(ws["cfg"], {"train": {"steps": STEPS, "warmup_steps": 2, "eval_every": 100,
                                            "eval_log_points": 1, "checkpoint_every": 4, **train_cfg},
                                  "mlflow": {"sync_every": 100}})


def _run(ws, run_dir, cfg) -> list[dict]:
    train(RunSpec(cfg=cfg, arm="uniform", seed=0, run_dir=run_dir, shards_dir=ws["shards"],
                  tokenizer_dir=ws["tokenizer"]), threads=1, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def test_reading_the_loss_only_at_logged_steps_changes_nothing_and_logs_mfu(smoke_workspace, tmp_path, monkeypatch):
    ws = smoke_workspace
    cfg = _cfg(ws, log_every=3, eval_sets_points=1)  # every held-out set only at the final step (it is logged anyway)
    cpu_rows = _run(ws, tmp_path / "cpu", cfg)
    monkeypatch.setattr(trainer, "reads_every_step", lambda device: False)          # as on CUDA
    monkeypatch.setattr(trainer, "peak_flops_per_second", lambda device, precision: (1e12, "test peak"))
    gpu_rows = _run(ws, tmp_path / "gpu", cfg)
    assert [r["step"] for r in gpu_rows] == [r["step"] for r in cpu_rows] == [3, 6, 7]
    for cpu, gpu in zip(cpu_rows, gpu_rows):  # deferring the reads leaves training bit-identical
        assert gpu["train_loss"] == cpu["train_loss"] and gpu["grad_norm"] == cpu["grad_norm"]
        assert "mfu" not in cpu  # no peak-FLOPs entry for CPUs: no MFU rather than a guess
        assert 0 < gpu["mfu"] == gpu["mfu_train_score"] < 1  # uniform: no scoring FLOPs


def test_bf16_runs_the_forward_in_bf16_and_keeps_fp32_weights(smoke_workspace, tmp_path, monkeypatch):
    ws = smoke_workspace
    # the GPU path's bf16 on whatever CPU runs the tests: a CPU without bf16 units would refuse it
    # (jest.model.cpu; tests/train/test_bf16_units.py), a GPU never does
    monkeypatch.setattr(trainer, "check_precision", lambda *args, **kwargs: None)
    fp32 = _run(ws, tmp_path / "fp32", _cfg(ws))
    bf16 = _run(ws, tmp_path / "bf16", _cfg(ws, precision="bf16"))
    for a, b in zip(fp32, bf16):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-2)
    assert any(a["train_loss"] != b["train_loss"] for a, b in zip(fp32, bf16))  # autocast did act
    weights = load_file(tmp_path / "bf16" / "model" / "model.safetensors")
    assert {str(t.dtype) for t in weights.values()} == {"torch.float32"}

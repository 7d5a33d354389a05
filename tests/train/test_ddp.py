"""Multi-process JEST (jest/training/distributed.py): 2 processes under torchrun (gloo, CPU) against 1.

Given the same config and seed, 2 processes read the same global super-batch, score half of it
each, gather, choose the same sub-batch as 1 process and train on half of it each, with DDP
averaging the gradients: the same choices, and the same loss curve and final weights up to
float rounding. Measured on the smoke shapes (12 steps, CPU, gloo): every difference is exactly
0 (the two processes' gradients are averaged as (g0 + g1) / 2, one process accumulates
g0 / 2 + g1 / 2 over its two micro-batches: the same numbers), so the tolerances below are
headroom for other kernels and reduction orders. pytest -s prints the maxima.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from transformers import LlamaConfig

from jest.config import PROJECT_ROOT, deep_merge

from jest.experiment import validate_config
from jest.io import atomic_write_json
from jest.model.llama import build_model
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, reference_spec, train

pytestmark = pytest.mark.slow  # subprocess training under torchrun

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 12
RTOL = 1e-4  # losses of 1 vs 2 processes
WEIGHT_ATOL = 1e-5
COMPARED = ("train_loss", "grad_norm", "heldout_loss", "heldout_bpb", "learner_loss_mean_all",
            "learner_loss_mean_selected", "ref_loss_mean_all", "score_mean_selected")
EXACT = ("step", "examples_seen", "tokens_seen", "candidates_seen", "flops_train", "flops_train_score",
         "flops_total")
# A JEST arm that exercises every sharded path: learner and online reference scoring, and the
# pooled features gathered for the joint selector's interaction term.
JEST_ARM = {"policy": "jest", "filter_ratio": 0.5, "criterion": "learnability", "selector": "joint",
            "n_chunks": 4, "interaction": 0.5, "reference_scoring": "online"}


def _torchrun(*args: str) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def ddp_ws(smoke_workspace, tmp_path_factory):
    ws = dict(smoke_workspace)
    root = tmp_path_factory.mktemp("ddp")
    cfg = validate_config(deep_merge(ws["cfg"], {
        "results_dir": str(root),
        # fast_path off: under DDP the loss runs through HF's forward (jest.model.fastpath.fast_loss_fn), so the
        # one-process run must too for the two to differ by float rounding only
        "train": {"steps": STEPS, "warmup_steps": 2, "eval_every": 6, "eval_log_points": 2, "checkpoint_every": 6,
                  "fast_path": False},
        "mlflow": {"sync_every": 100},
        "references": {"ref": {"train": {"steps": 10, "batch_size": 8, "warmup_steps": 2, "eval_every": 10,
                                         "eval_sequences": 8, "checkpoint_every": 10}}},
        "arms": {"jest_joint": JEST_ARM}}))
    train(reference_spec(cfg, "ref", root / "references" / "ref", ws["shards"], ws["tokenizer"]),
          threads=1, progress=False)
    ws.update(cfg=cfg, root=root, refs=root / "references")
    return ws


def _spec(ws, arm: str, run_dir: Path) -> RunSpec:
    return RunSpec(cfg=ws["cfg"], arm=arm, seed=0, run_dir=run_dir, shards_dir=ws["shards"],
                   tokenizer_dir=ws["tokenizer"], references_root=ws["refs"])


def _compare_runs(one: Path, two: Path) -> dict:
    """Assert the 2-process run equals the 1-process one (rows and final weights); return the maxima."""
    rows1, rows2 = read_metrics(one / "metrics.jsonl"), read_metrics(two / "metrics.jsonl")
    # rank 0 alone writes: one row per step, not one per rank
    assert [r["step"] for r in rows1] == [r["step"] for r in rows2] == list(range(1, STEPS + 1))
    worst = {}
    for r1, r2 in zip(rows1, rows2):
        for key in EXACT:
            assert r1[key] == r2[key], (key, r1["step"])  # FLOPs count the global work, as one process
        for key in COMPARED:
            if key in r1:
                assert r2[key] == pytest.approx(r1[key], rel=RTOL), (key, r1["step"], r1[key], r2[key])
                worst[key] = max(worst.get(key, 0.0), abs(r1[key] - r2[key]))
    # the curve is not trivially flat: it moves far more than the tolerance
    assert abs(rows1[0]["train_loss"] - rows1[-1]["train_loss"]) > 100 * RTOL * rows1[0]["train_loss"]

    w1, w2 = load_file(one / "model" / "model.safetensors"), load_file(two / "model" / "model.safetensors")
    assert w1.keys() == w2.keys()
    worst["weights"] = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst["weights"] < WEIGHT_ATOL, worst
    # ... while training moved the weights far more than that (a rank that trained on the wrong
    # slice, or not at all, would be off by about this much)
    init = build_model(LlamaConfig.from_pretrained(one / "model"), seed=0).state_dict()
    moved = max((w1[k] - init[k]).abs().max().item() for k in w1)
    assert moved > 100 * WEIGHT_ATOL, moved
    card = json.loads((two / "card.json").read_text())
    assert card["status"] == "finished" and card["world_size"] == 2
    return worst


def test_uniform_arm_two_processes_train_like_one(ddp_ws, tmp_path):
    """Through the real command line under torchrun, as the train rule launches it."""
    one, two = tmp_path / "one", tmp_path / "two"
    train(_spec(ddp_ws, "uniform", one), threads=1, progress=False)
    cfg_path = tmp_path / "cfg.json"
    atomic_write_json(cfg_path, ddp_ws["cfg"])
    _torchrun("-m", "jest", "train", "--config", str(cfg_path), "--arm", "uniform", "--seed", "0",
              "--run-dir", str(two), "--shards", str(ddp_ws["shards"]), "--tokenizer", str(ddp_ws["tokenizer"]),
              "--threads", "1", "--no-progress")
    worst = _compare_runs(one, two)
    print(f"uniform, 1 vs 2 processes, max abs differences: {worst}")


def _train_recorded(ws, run_dirs: list[Path], processes: int) -> None:
    """Train the JEST arm into each of `run_dirs` in turn, in `processes` processes (one launch),
    recording every rank's choices."""
    jobs = [{"cfg": ws["cfg"], "arm": "jest_joint", "seed": 0, "run_dir": str(d), "shards": str(ws["shards"]),
             "tokenizer": str(ws["tokenizer"]), "references": str(ws["refs"]), "threads": 1} for d in run_dirs]
    if processes == 1:
        sys.path.insert(0, str(WORKER.parent))
        try:
            import ddp_worker
        finally:
            sys.path.remove(str(WORKER.parent))
        for job in jobs:
            ddp_worker.run_training(job)
    else:  # the worker checks the collectives (uneven shards, disagreeing ranks caught) first
        job_file = run_dirs[0].with_name("jobs.json")
        atomic_write_json(job_file, jobs)
        out = _torchrun(str(WORKER), str(job_file))
        assert "rank 0: collectives ok" in out and "rank 1: collectives ok" in out, out


def _chosen(run_dir: Path, rank: int) -> dict:
    return json.loads(run_dir.with_name(f"{run_dir.name}.chosen_rank{rank}.json").read_text())


def test_jest_arm_two_processes_choose_and_train_like_one_and_resume(ddp_ws, tmp_path):
    """Sharded learner and online-reference scoring, gathered losses and features, one choice."""
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    _train_recorded(ddp_ws, [one], 1)
    # resumed: the 1-process run killed after its step-6 checkpoint, finished by 2 processes
    # (both ranks load the checkpoint: data position, weights, optimizer state)
    shutil.copytree(one, resumed)
    shutil.rmtree(resumed / "checkpoints" / f"step_{STEPS:07d}")
    for name in ("metrics.jsonl", "card.json", "model", "mlflow_run.json"):
        p = resumed / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    _train_recorded(ddp_ws, [two, resumed], 2)

    # the same sub-batch at every step, on every rank, as one process chose
    c1, c2_r0, c2_r1 = _chosen(one, 0), _chosen(two, 0), _chosen(two, 1)
    assert len(c1) == STEPS and c1 == c2_r0 == c2_r1
    # ... and the choice is a real one: not the first b candidates, and another set every step
    b = ddp_ws["cfg"]["train"]["batch_size"]
    assert sum(v != list(range(b)) for v in c1.values()) >= STEPS - 1
    assert len({tuple(v) for v in c1.values()}) > STEPS // 2
    worst = _compare_runs(one, two)
    print(f"JEST (joint, interaction 0.5, online reference), 1 vs 2 processes, max abs differences: {worst}")

    # the resumed run picks up at step 6 on both ranks and ends where the uninterrupted ones did
    assert json.loads((resumed / "card.json").read_text())["resumed_from_step"] == STEPS // 2
    assert _chosen(resumed, 0) == _chosen(resumed, 1) == {k: v for k, v in c1.items() if int(k) >= STEPS // 2}
    worst_resumed = _compare_runs(one, resumed)
    print(f"JEST resumed by 2 processes from a 1-process checkpoint, max abs differences: {worst_resumed}")


def test_batch_that_does_not_split_over_the_processes_is_a_clear_error():
    from jest.training.distributed import World
    world = World(rank=0, world_size=3)
    with pytest.raises(ValueError, match=r"'train.batch_size' = 8 .*'train.nproc_per_node'"):
        world.batch_slice(8)
    assert World(rank=1, world_size=2).batch_slice(8) == slice(4, 8)
    assert np.array_equal(np.arange(10)[World(rank=1, world_size=3).shard(10)], [4, 5, 6])

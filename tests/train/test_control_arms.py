"""Control arms, held-out sets outside the reference's domain and repetition accounting, on the real
smoke workspace (pinned data, tokenizer, shards) through the one training loop."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from baselines.controls import clean_rows, keep_best
from jest.training.checkpoint import latest_checkpoint
from jest.config import deep_merge
from jest.experiment import validate_config
from jest.io import atomic_write_json, sha256_file
from jest.training.repetition import RepetitionError, TrainedSet
from jest.training.schedule import log_spaced_steps
from jest.data.shards import TokenShard
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, train

# a few steps, evaluated at the end only: these tests check what is drawn and logged, not learning
SHORT = {"steps": 6, "warmup_steps": 2, "eval_every": 6, "eval_log_points": 1, "checkpoint_every": 6}


def _cfg(ws, arms: dict, **train_kw) -> dict:
    return validate_config(deep_merge(ws["cfg"], {"arms": arms, "train": {**SHORT, **train_kw}}))


def _run(ws, tmp_path, arm: str, cfg: dict, refs=None) -> tuple[list[dict], dict, np.ndarray]:
    run_dir = tmp_path / arm
    train(RunSpec(cfg=cfg, arm=arm, seed=0, run_dir=run_dir, shards_dir=ws["shards"], tokenizer_dir=ws["tokenizer"],
                  references_root=refs), progress=False)
    state = json.loads((latest_checkpoint(run_dir / "checkpoints") / "state.json").read_text())
    trained = TrainedSet(state["trained"]["n"])
    trained.load_state_dict(state["trained"])
    return read_metrics(run_dir / "metrics.jsonl"), json.loads((run_dir / "card.json").read_text()), trained.seen


def test_keep_best_keeps_exactly_the_lowest_scores():
    scores = np.array([5.0, 1.0, 3.0, 1.0, 9.0, 0.5, 7.0, 2.0, 4.0, 6.0])
    assert keep_best(scores, np.arange(10), 0.8).tolist() == [1, 5]        # 0.5 and the first 1.0 (tie: lower row)
    assert keep_best(scores, np.arange(10), 0.5).tolist() == [1, 2, 3, 5, 7]
    assert keep_best(scores, np.array([0, 4, 6, 9]), 0.5).tolist() == [0, 9]  # within the given rows only


def test_oracle_trains_only_on_sequences_labelled_clean(smoke_workspace, tmp_path):
    ws = smoke_workspace
    pool = TokenShard(ws["shards"], "pool")
    quality = np.array([pool.labels[i]["quality"] for i in pool.index["label"]])
    clean = set(np.flatnonzero(quality == "clean").tolist())
    assert 0 < len(clean) < len(pool) / 2  # the pool is mostly not clean: the test can fail
    assert set(clean_rows(pool, np.arange(len(pool))).tolist()) == clean

    rows, card, trained = _run(ws, tmp_path, "oracle_clean", _cfg(ws, {"oracle_clean": {"policy": "oracle_clean"}}))
    assert card["draw_set_size"] == len(clean) and card["status"] == "finished"
    assert all(r["sel_share_quality_clean"] == 1.0 for r in rows)          # every logged step
    assert set(np.flatnonzero(trained).tolist()) <= clean                    # every trained sequence
    b = ws["cfg"]["train"]["batch_size"]
    assert rows[-1]["unique_sequences"] == trained.sum() == SHORT["steps"] * b  # the first pass repeats nothing
    assert rows[-1]["pool_passes"] == pytest.approx(SHORT["steps"] * b / len(clean))


def _fake_reference(ws, root, scores: np.ndarray) -> None:
    """A reference folder whose cached pool scores are `scores` (checked against the pool's and the
    model file's sha256 exactly as a real one)."""
    ref = root / "ref"
    (ref / "model").mkdir(parents=True)
    (ref / "model" / "model.safetensors").write_bytes(b"a reference's weights")
    np.save(ref / "pool_scores.npy", scores)
    pool_sha = json.loads((ws["shards"] / "manifest.json").read_text())["splits"]["pool"]["sha256"]
    atomic_write_json(ref / "pool_scores.json", {"reference_sha256": sha256_file(ref / "model" / "model.safetensors"),
                                                 "pool_sha256": pool_sha, "flops": 123.0,
                                                 "scores_sha256": sha256_file(ref / "pool_scores.npy")})
    atomic_write_json(ref / "card.json", {"status": "finished", "flops": {"flops_train": 1000.0}})


def test_offline_filter_keeps_exactly_the_best_fraction_and_trains_only_on_it(smoke_workspace, tmp_path):
    ws = smoke_workspace
    n = len(TokenShard(ws["shards"], "pool"))
    scores = np.random.default_rng(7).permutation(n).astype(np.float32)  # known ranks
    _fake_reference(ws, tmp_path / "references", scores)
    cfg = _cfg(ws, {"offline_filter_f0.5": {"policy": "offline_filter", "filter_ratio": 0.5}})
    assert cfg["arms"]["offline_filter_f0.5"]["criterion"] == "easy_reference"
    rows, card, trained = _run(ws, tmp_path, "offline_filter_f0.5", cfg, refs=tmp_path / "references")
    kept = set(np.flatnonzero(scores < round(0.5 * n)).tolist())  # the round(n/2) lowest scores
    assert card["draw_set_size"] == len(kept) == round(0.5 * n)
    assert set(np.flatnonzero(trained).tolist()) <= kept
    assert rows[-1]["flops_total"] == rows[-1]["flops_train"] + 1000.0 + 123.0  # reference + scoring, once


def test_curated_only_trains_on_the_curated_split(smoke_workspace, tmp_path):
    ws = smoke_workspace
    rows, card, trained = _run(ws, tmp_path, "curated_only", _cfg(ws, {"curated_only": {"policy": "curated_only"}}))
    assert card["train_split"] == "curated" and card["draw_set_size"] == len(TokenShard(ws["shards"], "curated"))
    assert rows[-1]["sel_share_source_brown"] == 1.0 and len(trained) == card["draw_set_size"]


def test_every_evaluation_scores_each_heldout_set(smoke_workspace, tmp_path):
    ws = smoke_workspace
    rows, card, _ = _run(ws, tmp_path, "uniform", _cfg(ws, {"uniform": {"policy": "uniform"}}, eval_every=3,
                                                         eval_sets_points=2))
    pool_sources = set(json.loads((ws["shards"] / "manifest.json").read_text())["splits"]["pool"]["by_source"])
    sets = {f"src_{s}" for s in pool_sources} | {"pool_mix", "ext_shakespeare"}
    assert set(card["heldout_sets"]) == sets | {"curated"}
    # the curated set at every evaluation; every other set at the eval_sets_points log-spaced points
    # (here steps 1 and 6: log_spaced_steps(6, 2)), and only there
    assert [r["step"] for r in rows if "heldout_loss" in r] == [1, 3, 6]
    evals = [r for r in rows if "heldout_loss_pool_mix" in r]
    assert [r["step"] for r in evals] == log_spaced_steps(6, 2) == [1, 6]
    assert all(set(r) >= {f"heldout_loss_{name}" for name in sets} for r in evals)
    for r in evals:
        for name in sets:
            assert math.isfinite(r[f"heldout_loss_{name}"]) and 0 < r[f"heldout_bpb_{name}"] < 20
    per_set = ws["cfg"]["train"]["eval_sequences_per_set"] or ws["cfg"]["train"]["eval_sequences"]
    assert all(info["sequences"] <= per_set for name, info in card["heldout_sets"].items() if name != "curated")
    # each set's loss comes with its standard error over sequences and the set's size, as the card says
    for name, info in card["heldout_sets"].items():
        suffix = "" if name == "curated" else f"_{name}"
        rows_of_set = [r for r in rows if f"heldout_loss{suffix}" in r]
        assert rows_of_set == [r for r in rows if f"heldout_sequences{suffix}" in r]
        for r in rows_of_set:
            assert r[f"heldout_sequences{suffix}"] == info["sequences"]
            assert r[f"heldout_tokens{suffix}"] == info["tokens"]
            assert info["tokens"] == info["sequences"] * (ws["cfg"]["data"]["seq_len"] - 1)
            if info["sequences"] >= 2:
                assert 0 < r[f"heldout_se_loss{suffix}"] < r[f"heldout_loss{suffix}"] / math.sqrt(info["sequences"])
    # Shakespeare is not what a model trained on Brown + e-mail + chat predicts best
    assert evals[-1]["heldout_loss_ext_shakespeare"] != evals[-1]["heldout_loss"]


def test_a_plan_that_repeats_data_is_refused_before_training(smoke_workspace, tmp_path):
    ws = smoke_workspace
    b = ws["cfg"]["train"]["batch_size"]
    n_clean = len(clean_rows(TokenShard(ws["shards"], "pool"), np.arange(len(TokenShard(ws["shards"], "pool")))))
    steps = n_clean // b + 2
    cfg = _cfg(ws, {"oracle_clean": {"policy": "oracle_clean"}}, steps=steps, eval_every=steps, checkpoint_every=steps)
    with pytest.raises(RepetitionError) as info:
        _run(ws, tmp_path, "oracle_clean", cfg)
    message = str(info.value)
    assert "oracle_clean_s0" in message and f"{steps * b - n_clean:,} short" in message
    assert "arms.oracle_clean.allow_repeats: true" in message and "filter_ratio" in message
    assert not (tmp_path / "oracle_clean" / "metrics.jsonl").exists()  # nothing trained

    allowed = _cfg(ws, {"oracle_clean": {"policy": "oracle_clean", "allow_repeats": True}},
                   steps=steps, eval_every=steps, checkpoint_every=steps)
    rows, card, trained = _run(ws, tmp_path, "oracle_clean", allowed)
    assert rows[-1]["pool_passes"] == pytest.approx(steps * b / n_clean) and rows[-1]["pool_passes"] > 1
    assert rows[-1]["unique_sequences"] == n_clean == card["unique_sequences"]
    assert card["planned_pool_passes"] == pytest.approx(rows[-1]["pool_passes"])

"""The scale ladder's share of the pool (ladder.pool_fraction): the reference scores only that fixed,
nested subset (jest.policies.scoring.score_pool `fraction`), with the same numbers the whole-pool scoring gives
those rows, NaN elsewhere, FLOPs for the scored rows only, and a resume after a kill; the whole-pool
path is unchanged."""
from __future__ import annotations

import json

import numpy as np
import pytest

from jest.model.llama import build_hf_config, build_model
from jest.training.runspec import training_subset
from jest.policies.scoring import PARTIAL_META, score_pool
from jest.data.shards import TokenShard
from jest.data.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def model_and_ref(smoke_workspace, tmp_path_factory):
    tok = load_tokenizer(smoke_workspace["tokenizer"])
    hf = build_hf_config({"n_layer": 1, "n_embd": 32, "n_head": 4, "tie_embeddings": True}, len(tok), 128,
                         tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    ref = tmp_path_factory.mktemp("ref")
    model = build_model(hf, 0).eval()
    model.save_pretrained(ref / "model", safe_serialization=True)
    return model, ref


def test_a_pool_share_scores_exactly_its_rows(smoke_workspace, model_and_ref, tmp_path):
    model, ref = model_and_ref
    shards = smoke_workspace["shards"]
    n = len(TokenShard(shards, "pool"))
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"
    full = score_pool(model, shards, full_dir, 8, ref, progress=False)
    part = score_pool(model, shards, part_dir, 8, ref, progress=False, fraction=0.3)
    rows = training_subset(n, 0.3)
    f, p = np.load(full_dir / "pool_scores.npy"), np.load(part_dir / "pool_scores.npy")
    assert len(p) == n and np.array_equal(p[rows], f[rows])              # the same numbers on its rows
    assert np.isnan(np.delete(p, rows)).all() and np.isfinite(p[rows]).all()
    assert part["scored_sequences"] == len(rows) and part["fraction"] == 0.3
    assert part["flops"] == pytest.approx(full["flops"] * len(rows) / n)  # only the scored rows cost
    assert "fraction" not in full and "scored_sequences" not in full     # the whole-pool record is unchanged
    # nested: the 0.3 share lies inside the 0.6 one (a smaller ladder share can reuse a larger scoring)
    assert set(rows) <= set(training_subset(n, 0.6))


def test_a_killed_share_scoring_resumes_to_the_same_scores(smoke_workspace, model_and_ref, tmp_path):
    model, ref = model_and_ref
    shards = smoke_workspace["shards"]
    whole = score_pool(model, shards, tmp_path / "a", 2, ref, progress=False, fraction=0.5, save_every=1)
    calls = {"n": 0}
    import jest.policies.scoring as scoring
    real = scoring.sequence_losses

    def dies_after_two_chunks(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    scoring.sequence_losses = dies_after_two_chunks
    try:
        with pytest.raises(KeyboardInterrupt):
            score_pool(model, shards, tmp_path / "b", 2, ref, progress=False, fraction=0.5, save_every=1)
    finally:
        scoring.sequence_losses = real
    assert json.loads((tmp_path / "b" / PARTIAL_META).read_text())["next"] == 2 * 2 * 16
    resumed = score_pool(model, shards, tmp_path / "b", 2, ref, progress=False, fraction=0.5, save_every=1)
    assert resumed["resumed_from"] == 64
    a, b = np.load(tmp_path / "a" / "pool_scores.npy"), np.load(tmp_path / "b" / "pool_scores.npy")
    assert np.array_equal(a, b, equal_nan=True) and whole["mean_loss"] == resumed["mean_loss"]

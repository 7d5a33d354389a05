"""The mixture-matched control (baselines/mixture.py): JEST's per-step mixture of (source, quality) cells,
drawn uniformly within each cell from the same super-batch."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from baselines.mixture import MissingMatchedRunError, MixtureMatchedPolicy, matched_counts
from jest.config import ConfigError
from jest.experiment import validate_config
from jest.policies.base import PolicyContext
from jest.training.runspec import label_shares

LABELS = [{"source": "brown", "quality": "clean"}, {"source": "brown", "quality": "corrupted"},
          {"source": "email", "quality": "noisy"}]


def _shard(n: int = 60):
    label = np.arange(n) % 3          # row i has label i % 3
    return SimpleNamespace(labels=LABELS, index={"label": label})


def _ctx(tmp_path, seed=0):
    return PolicyContext(seed=seed, seq_len=8, pool_size=60, pool_sha256="x", references_root=tmp_path,
                         device=torch.device("cpu"), runs_root=tmp_path)


def test_the_cells_of_a_selection_are_logged_and_read_back_as_counts():
    shard = _shard()
    chosen = np.array([0, 3, 6, 1, 2, 5, 8, 11])  # 3 clean, 1 corrupted, 4 noisy
    row = {"step": 1, **label_shares(LABELS, shard.index["label"][chosen], "sel_share_")}
    assert row["sel_share_cell_brown.clean"] == 3 / 8 and row["sel_share_source_brown"] == 4 / 8
    assert matched_counts([row], 8, 1, "m.jsonl") == [{"brown.clean": 3, "brown.corrupted": 1, "email.noisy": 4}]
    with pytest.raises(MissingMatchedRunError, match="no per-step selection cells at 1 of 2 steps"):
        matched_counts([row], 8, 2, "m.jsonl")
    with pytest.raises(MissingMatchedRunError, match="add up to 8 sequences, not the batch of 7"):
        matched_counts([row], 7, 1, "m.jsonl")  # 3/8, 1/8, 4/8 of 7 round to 3 + 1 + 4


def test_each_step_takes_jests_counts_per_cell_uniformly_within_the_cell(tmp_path):
    counts = [{"brown.clean": 3, "email.noisy": 1}, {"brown.corrupted": 4}]
    policy = MixtureMatchedPolicy({"filter_ratio": 0.5, "match_arm": "j"}, _ctx(tmp_path), counts=counts)
    shard = _shard()
    assert list(policy.draw_set(shard, np.arange(60))) == list(range(60))   # the whole stream, as JEST's
    ids = np.arange(9, 17)                                                   # a super-batch of 8 = 4 / (1 - 0.5)
    assert policy.super_batch_size(4) == 8
    sel = policy.select(0, None, ids, None, 4)
    cells = [LABELS[ids[i] % 3]["quality"] for i in sel.chosen]
    assert sorted(cells) == ["clean"] * 3 + ["noisy"] and len(set(sel.chosen)) == 4
    again = MixtureMatchedPolicy({"filter_ratio": 0.5, "match_arm": "j"}, _ctx(tmp_path), counts=counts)
    again.draw_set(shard, np.arange(60))
    assert list(again.select(0, None, ids, None, 4).chosen) == list(sel.chosen)  # (seed, step) decide
    # uniform within the cell: over many seeds every clean candidate of the super-batch is taken
    seen = set()
    for seed in range(30):
        p = MixtureMatchedPolicy({"filter_ratio": 0.5, "match_arm": "j"}, _ctx(tmp_path, seed), counts=counts)
        p.draw_set(shard, np.arange(60))
        seen |= {int(ids[i]) for i in p.select(0, None, ids, None, 4).chosen if ids[i] % 3 == 0}
    assert seen == {i for i in ids if i % 3 == 0}
    with pytest.raises(MissingMatchedRunError, match="JEST chose 4 sequences of cell brown.corrupted, this "
                                                     "super-batch has 3"):
        policy.select(1, None, np.arange(0, 8), None, 4)


def test_it_reads_the_matched_run_and_refuses_an_unfinished_one(tmp_path):
    run = tmp_path / "j_s0"
    run.mkdir()
    (run / "card.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(MissingMatchedRunError, match="is not finished"):
        MixtureMatchedPolicy({"filter_ratio": 0.5, "match_arm": "j"}, _ctx(tmp_path))


def test_the_config_takes_the_jest_arms_filter_ratio_and_refuses_another_arm():
    cfg = validate_config({"name": "x", "arms": {"u": {"policy": "uniform"}, "j": {"policy": "jest", "filter_ratio": 0.75},
                                                  "m": {"policy": "mixture_matched", "match_arm": "j"}}})
    assert cfg["arms"]["m"] == {"policy": "mixture_matched", "budget": 1.0, "match_arm": "j", "filter_ratio": 0.75}
    assert validate_config(cfg)["arms"]["m"] == cfg["arms"]["m"]
    with pytest.raises(ConfigError, match=r"'arms.m.match_arm' = 'u' is not a JEST arm of this config; allowed "
                                          r"values: \['j'\]"):
        validate_config({"name": "x", "arms": {"u": {"policy": "uniform"}, "j": {"policy": "jest"},
                                               "m": {"policy": "mixture_matched", "match_arm": "u"}}})

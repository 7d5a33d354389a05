"""jest.evaluation.heldout: the standard error of the held-out loss over sequences, and the set's size,
against numpy on per-sequence losses known in advance (a stub model) and computed independently (a
real model's forward)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jest.evaluation.heldout import METRIC_KEYS, evaluate_heldout, standard_error
from jest.model.llama import build_hf_config, build_model

V, T = 64, 17


class _Shard:
    """The two things evaluate_heldout reads from a TokenShard."""

    def __init__(self, tokens: torch.Tensor):
        self.tokens = tokens
        self.token_bytes = np.full(V, 2, dtype=np.int64)

    def get(self, idx):
        return self.tokens[torch.as_tensor(idx)]


class _KnownLoss(torch.nn.Module):
    """Logits 0 everywhere but c at the next token, c = the sequence's first token / 10: every token of
    the sequence then has the loss log(e^c + V - 1) - c, whatever the batch it is scored in."""

    def forward(self, input_ids):
        c = input_ids[:, :1].double() / 10                                        # (B, 1)
        logits = torch.zeros(*input_ids.shape, V, dtype=torch.float64)            # (B, T, V)
        nxt = torch.cat([input_ids[:, 1:], input_ids[:, :1]], dim=1)              # (B, T): the next token
        logits.scatter_(2, nxt[..., None], c[..., None].expand(-1, input_ids.size(1), 1))
        return SimpleNamespace(logits=logits)


def _known_shard(n: int) -> tuple[_Shard, np.ndarray]:
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (n, T), generator=g)
    c = tokens[:, 0].double().numpy() / 10
    return _Shard(tokens), np.log(np.exp(c) + V - 1) - c


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_standard_error_is_that_of_the_per_sequence_losses(batch_size):
    shard, losses = _known_shard(23)
    idx = np.arange(23)
    out = evaluate_heldout(_KnownLoss(), shard, idx, batch_size, torch.device("cpu"))
    assert set(out) == set(METRIC_KEYS)
    assert out["heldout_loss"] == pytest.approx(losses.mean(), rel=1e-6)  # fp32 logits
    assert out["heldout_se_loss"] == pytest.approx(losses.std(ddof=1) / math.sqrt(23), rel=1e-5)
    assert out["heldout_sequences"] == 23 and out["heldout_tokens"] == 23 * (T - 1)
    # a subset: the SE of those sequences only, larger with fewer of them (the losses spread widely)
    sub = evaluate_heldout(_KnownLoss(), shard, idx[::4], batch_size, torch.device("cpu"))
    assert sub["heldout_se_loss"] == pytest.approx(losses[::4].std(ddof=1) / math.sqrt(6), rel=1e-5)
    assert sub["heldout_sequences"] == 6


def test_one_sequence_has_no_standard_error():
    shard, _ = _known_shard(3)
    out = evaluate_heldout(_KnownLoss(), shard, np.array([1]), 8, torch.device("cpu"))
    assert "heldout_se_loss" not in out and out["heldout_sequences"] == 1
    assert standard_error(np.array([2.0])) is None
    assert standard_error(np.array([1.0, 3.0])) == pytest.approx(1.0)  # sd sqrt(2) / sqrt(2)


def test_real_model_se_matches_an_independent_forward_and_the_fast_path():
    model = build_model(build_hf_config({"n_layer": 2, "n_embd": 32, "n_head": 4, "tie_embeddings": False},
                                        V, T, 0, 0, 0), seed=0)
    tokens = torch.randint(0, V, (20, T), generator=torch.Generator().manual_seed(5))
    shard, idx = _Shard(tokens), np.arange(20)
    eager = evaluate_heldout(model, shard, idx, 8, torch.device("cpu"))
    fast = evaluate_heldout(model, shard, idx, 8, torch.device("cpu"), fast=True)
    with torch.no_grad():
        logits = model(input_ids=tokens).logits[:, :-1].float()
        per_seq = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none").mean(dim=1).double().numpy()
    expected = per_seq.std(ddof=1) / math.sqrt(20)
    assert eager["heldout_se_loss"] == pytest.approx(expected, rel=1e-5)
    assert fast["heldout_se_loss"] == pytest.approx(expected, rel=1e-4)
    assert eager["heldout_loss"] == pytest.approx(per_seq.mean(), rel=1e-6)
    assert 0 < expected < per_seq.std()  # a real spread, and the SE is below it

"""Per-token weights (a token-level policy's Selection.token_weights) through the training step, and
the RHO-1 plugin that produces them (baselines/rho.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.rho import RhoPolicy, keep_count, top_token_weights
from jest.model.fastpath import causal_lm_loss
from jest.model.flops import forward_flops_per_token
from jest.model.llama import build_hf_config, build_model, shape_summary
from jest.policies.base import PolicyContext
from jest.training.optim import build_optimizer, train_step, weighted_loss

MODEL = {"n_layer": 2, "n_embd": 32, "n_head": 4, "intermediate_size": None, "tie_embeddings": True}
TRAIN = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1}


def _model(seed: int = 0):
    return build_model(build_hf_config(MODEL, 64, 16, 0, 0, 0), seed=seed).train()


def _batch(b: int = 4, T: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 64, (b, T), generator=torch.Generator().manual_seed(seed))


def _masked_mean(model, x, w) -> torch.Tensor:
    """The definition, written out: HF's logits, the NLL of every target, the mean over the kept ones."""
    logits = model(input_ids=x).logits[:, :-1]
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none")
    kept = w.reshape(-1) > 0
    return nll[kept].mean()


@pytest.mark.parametrize("fast", [False, True])
def test_a_top_k_mask_trains_on_the_mean_loss_of_the_kept_tokens(fast):
    x = _batch()
    w = (torch.rand(4, 15, generator=torch.Generator().manual_seed(3)) > 0.4).float()
    ref, model = _model(), _model()
    expected = _masked_mean(ref, x, w)
    expected.backward()
    got = weighted_loss(model, x, w, causal_lm_loss if fast else None)
    got.backward()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4), name


@pytest.mark.parametrize("fast", [False, True])
def test_weights_of_one_give_the_unweighted_step(fast):
    """All-ones weights through train_step, micro-batched: the same update as the unweighted step."""
    x = _batch(b=8)
    a, b = _model(), _model()
    opt_a, opt_b = build_optimizer(a, TRAIN, torch.device("cpu")), build_optimizer(b, TRAIN, torch.device("cpu"))
    fn = causal_lm_loss if fast else None
    # lr 0: compare the accumulated gradients (AdamW's first step is sign-like and would amplify rounding)
    loss_a, _ = train_step(a, opt_a, x, 4, 0.0, 0.0, loss_fn=fn)
    loss_b, _ = train_step(b, opt_b, x, 4, 0.0, 0.0, loss_fn=fn, token_weights=torch.ones(8, 15))
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-5)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-7, rtol=1e-4)


def test_micro_batches_weigh_each_part_by_its_share_of_the_weights():
    """Kept-token counts that differ between micro-batches: the step is the mean over all kept tokens."""
    x = _batch(b=4)
    w = torch.zeros(4, 15)
    w[0, :2] = 1
    w[1:, :] = 1  # micro-batch 1 keeps 2 + 15 tokens, micro-batch 2 keeps 30
    a, ref = _model(), _model()
    opt = build_optimizer(a, TRAIN, torch.device("cpu"))
    loss, _ = train_step(a, opt, x, 2, 1e-3, 0.0, token_weights=w)
    assert loss.item() == pytest.approx(_masked_mean(ref, x, w).item(), rel=1e-5)


def test_top_token_weights_keep_the_largest_excess_of_each_sequence():
    excess = torch.tensor([[0.1, 0.9, 0.5, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0, -1.0]])
    w = top_token_weights(excess, 0.6)  # ceil(0.6 x 5) = 3 per row; the tie at 0.5 keeps both earlier ones
    assert w.tolist() == [[0, 1, 1, 1, 0], [1, 1, 1, 0, 0]]
    assert keep_count(0.001, 127) == 1 and keep_count(1.0, 127) == 127 and keep_count(0.6, 127) == 77


def test_rho_policy_weights_every_sequence_and_counts_both_forwards(tmp_path):
    ref_model = _model(seed=5).eval()
    ref_dir = tmp_path / "references" / "ref"
    ref_model.save_pretrained(ref_dir / "model", safe_serialization=True)
    (ref_dir / "card.json").write_text(json.dumps({"status": "finished", "flops": {"flops_train": 123.0}}))
    ctx = PolicyContext(seed=0, seq_len=16, pool_size=100, pool_sha256="x", references_root=tmp_path / "references",
                        device=torch.device("cpu"))
    policy = RhoPolicy({"policy": "rho1", "reference": "ref", "token_keep": 0.6, "score_batch_size": 3}, ctx)
    learner, x = _model(), _batch(b=4)
    sel = policy.select(0, x, np.arange(4), learner, 4)
    assert sel.chosen.tolist() == [0, 1, 2, 3] and policy.fixed_flops == 123.0
    assert sel.token_weights.shape == (4, 15) and sel.token_weights.sum(dim=1).tolist() == [9.0] * 4
    fpt = forward_flops_per_token(shape_summary(learner.config), 16)
    assert sel.score_flops == 4 * 16 * 2 * fpt  # the learner's and the (same-shape) reference's forward
    # the kept tokens are those with the largest learner - reference loss
    with torch.no_grad():
        def nll(m):
            lg = m(input_ids=x).logits[:, :-1]
            return F.cross_entropy(lg.reshape(-1, 64), x[:, 1:].reshape(-1), reduction="none").view(4, 15)
        excess = nll(learner.eval()) - nll(ref_model)
    kept_min = torch.where(sel.token_weights > 0, excess, torch.tensor(math.inf)).min(dim=1).values
    dropped_max = torch.where(sel.token_weights == 0, excess, torch.tensor(-math.inf)).max(dim=1).values
    assert bool((kept_min >= dropped_max - 1e-5).all())
    assert sel.diagnostics["token_keep_share"] == pytest.approx(0.6)

"""jest.model.cpu_matmul: the oneDNN linear of the fast path (same values as F.linear to fp32 rounding,
same gradients, deterministic), its fallback, and the forward-only paths that use it (scoring,
held-out evaluation) against their eager versions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jest.model import cpu_matmul
from jest.evaluation.heldout import evaluate_heldout
from jest.model.llama import build_hf_config, build_model
from jest.policies.scoring import sequence_losses

onednn = pytest.mark.skipif(not cpu_matmul.onednn_linear_available(),
                            reason="oneDNN linear is used only where torch runs AVX-512 kernels")

SHAPES = [((2, 64, 96), 288), ((128, 256), 96), ((3, 40, 176), 2048)]  # N > K and N < K: both weight-grad forms


@onednn
@pytest.mark.parametrize("x_shape,n_out", SHAPES)
def test_onednn_linear_matches_f_linear_in_values_and_gradients(x_shape, n_out):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*x_shape, generator=g, requires_grad=True)
    w = torch.randn(n_out, x_shape[-1], generator=g, requires_grad=True)
    up = torch.randn(*x_shape[:-1], n_out, generator=g)
    y = cpu_matmul.linear(x, w)
    assert y.grad_fn is not None and "OneDNN" in type(y.grad_fn).__name__  # the oneDNN route was taken
    (y * up).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    y_ref = F.linear(x, w)
    (y_ref * up).sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gx, x.grad, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(gw, w.grad, rtol=1e-5, atol=1e-3)
    assert gw.is_contiguous() and cpu_matmul.weight_grad(up.reshape(-1, n_out), x.detach().reshape(-1, x_shape[-1])).is_contiguous()


@onednn
def test_onednn_linear_is_deterministic():
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(2048, 96, generator=g), torch.randn(2048, 96, generator=g)
    dy = torch.randn(2048, 2048, generator=g)
    assert torch.equal(cpu_matmul.mm_t(x, w), cpu_matmul.mm_t(x, w))
    assert torch.equal(cpu_matmul.weight_grad(dy, x), cpu_matmul.weight_grad(dy, x))


@onednn
def test_mm_t_and_add_weight_grad_write_where_asked():
    g = torch.Generator().manual_seed(2)
    a, b, dy = torch.randn(50, 96, generator=g), torch.randn(300, 96, generator=g), torch.randn(50, 300, generator=g)
    out = torch.empty(50, 300)
    res = cpu_matmul.mm_t(a, b, out=out)
    assert res.data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, a @ b.t(), rtol=1e-5, atol=1e-4)
    acc = torch.ones(300, 96)
    cpu_matmul.add_weight_grad(acc, dy, a)
    torch.testing.assert_close(acc, 1 + dy.t() @ a, rtol=1e-5, atol=1e-4)


def test_fallback_is_f_linear_bit_for_bit(monkeypatch):
    """Without oneDNN (an AVX2 machine, or the private op missing) every function is the MKL
    path the fast path used before, bit for bit."""
    monkeypatch.setattr(cpu_matmul, "onednn_linear_available", lambda: False)
    g = torch.Generator().manual_seed(3)
    x, w, dy = torch.randn(64, 96, generator=g), torch.randn(200, 96, generator=g), torch.randn(64, 200, generator=g)
    assert torch.equal(cpu_matmul.linear(x, w), F.linear(x, w))
    assert torch.equal(cpu_matmul.mm_t(x, w), x @ w.t())
    acc = torch.zeros(200, 96)
    cpu_matmul.add_weight_grad(acc, dy, x)
    assert torch.equal(acc, torch.zeros(200, 96).addmm_(dy.t(), x))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast always takes torch's own path
        monkeypatch.setattr(cpu_matmul, "onednn_linear_available", lambda: True)
        assert cpu_matmul.linear(x, w).dtype == torch.bfloat16


def _model():
    return build_model(build_hf_config({"n_layer": 2, "n_embd": 96, "n_head": 4, "tie_embeddings": False}, 512, 64, 0, 0, 0),
                       seed=0).train()


def test_fast_scoring_matches_hf_scoring():
    model = _model()
    tokens = torch.randint(0, 512, (40, 64), generator=torch.Generator().manual_seed(4))
    slow, f_slow = sequence_losses(model, tokens, 16, with_features=True)
    fast, f_fast = sequence_losses(model, tokens, 16, with_features=True, fast=True)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_fast, f_slow, rtol=1e-5, atol=1e-5)
    again, _ = sequence_losses(model, tokens, 16, fast=True)
    assert torch.equal(again, fast)


class _Shard:
    """The two things evaluate_heldout reads from a TokenShard."""

    def __init__(self, tokens: torch.Tensor):
        self.tokens = tokens
        self.token_bytes = np.full(512, 3, dtype=np.int64)

    def get(self, idx):
        return self.tokens[torch.as_tensor(idx)]


def test_fast_heldout_evaluation_matches_hf_forward():
    model = _model()
    shard = _Shard(torch.randint(0, 512, (20, 64), generator=torch.Generator().manual_seed(5)))
    idx = np.arange(20)
    slow = evaluate_heldout(model, shard, idx, 8, torch.device("cpu"))
    fast = evaluate_heldout(model, shard, idx, 8, torch.device("cpu"), fast=True)
    assert fast["heldout_loss"] == pytest.approx(slow["heldout_loss"], rel=1e-5)
    assert fast["heldout_bpb"] == pytest.approx(slow["heldout_bpb"], rel=1e-5)
    assert model.training  # the mode is restored


def test_fast_training_after_fast_scoring():
    """A JEST arm scores its first super-batch (inference mode) before its first training step:
    nothing the fused forward caches under inference mode may reach the training graph (the
    rotary tables did, and every JEST arm of the default failed at step 1)."""
    from jest.model import fastpath, fastforward
    fastforward._ROTARY_CACHE.clear()
    model = _model()
    tokens = torch.randint(0, 512, (8, 64), generator=torch.Generator().manual_seed(6))
    sequence_losses(model, tokens, 4, fast=True)
    loss = fastpath.causal_lm_loss(model, tokens)
    loss.backward()
    assert torch.isfinite(loss) and model.lm_head.weight.grad is not None

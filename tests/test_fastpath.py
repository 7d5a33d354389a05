"""jest.model.fastpath: the fused output projection + cross-entropy against HF's loss, run-to-run
bit-identity of the fast training step, and where the fast loss applies."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jest.model import fastpath
from jest.model.llama import build_hf_config, build_model
from jest.training.trainer import build_optimizer, set_determinism, train_step

MODEL = {"n_layer": 2, "n_embd": 32, "n_head": 4, "intermediate_size": None, "tie_embeddings": True}
TRAIN = {"lr": 3e-3, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95}


def _model(seed: int = 0):
    return build_model(build_hf_config(MODEL, 256, 32, 0, 0, 0), seed=seed).train()


def test_linear_cross_entropy_matches_autograd_loss_and_gradients():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(300, 16, generator=g, requires_grad=True)
    w = torch.randn(50, 16, generator=g, requires_grad=True)
    y = torch.randint(0, 50, (300,), generator=g)
    ref = F.cross_entropy(h @ w.t(), y)
    ref.backward()
    ref_gh, ref_gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    # 300 rows in chunks of 128: a short last chunk too; grad_output 3 checks the backward's scaling
    loss = fastpath.linear_cross_entropy(h, w, y, chunk_rows=128)
    (3 * loss).backward()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h.grad, 3 * ref_gh, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w.grad, 3 * ref_gw, rtol=1e-4, atol=1e-6)
    # no gradient wanted: the loss alone
    with torch.no_grad():
        torch.testing.assert_close(fastpath.linear_cross_entropy(h, w, y, chunk_rows=7), ref, rtol=1e-5, atol=1e-6)


def test_causal_lm_loss_and_token_nll_match_hf():
    model = _model()
    x = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))
    hf = model(input_ids=x, labels=x).loss
    torch.testing.assert_close(fastpath.causal_lm_loss(model, x, chunk_rows=40), hf, rtol=1e-5, atol=1e-6)
    with torch.inference_mode():
        hidden = model.model(input_ids=x).last_hidden_state[:, :-1].flatten(0, 1)
        logits = model.lm_head(hidden)
        ref = F.cross_entropy(logits, x[:, 1:].flatten(), reduction="none")
        torch.testing.assert_close(fastpath.token_nll(hidden, model.lm_head.weight, x[:, 1:].flatten(), 50), ref,
                                   rtol=1e-5, atol=1e-5)


def _fast_run(steps: int = 4) -> list[float]:
    set_determinism(torch.device("cpu"))
    model = _model()
    opt = build_optimizer(model, {**TRAIN, "fast_path": True}, torch.device("cpu"))
    loss_fn = fastpath.fast_loss_fn({"fast_path": True}, plain_model=True)
    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(steps):
        x = torch.randint(0, 256, (8, 32), generator=g)
        loss, _ = train_step(model, opt, x, 4, 3e-3, 1.0, loss_fn=loss_fn)
        out.append(loss.item())
    return out


def test_fast_training_is_bit_identical_run_to_run_and_close_to_eager():
    try:
        a, b = _fast_run(), _fast_run()
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = True
    assert a == b  # bit for bit (CPU, deterministic kernels, fixed chunk order)
    model = _model()
    opt = build_optimizer(model, TRAIN, torch.device("cpu"))
    assert opt.defaults["fused"] in (None, False)  # eager CPU default: foreach AdamW
    g = torch.Generator().manual_seed(2)
    eager = [train_step(model, opt, torch.randint(0, 256, (8, 32), generator=g), 4, 3e-3, 1.0)[0].item()
             for _ in range(4)]
    assert max(abs(x - y) for x, y in zip(a, eager)) < 1e-4


def test_fast_loss_applies_only_when_asked_and_on_a_plain_model():
    try:
        assert fastpath.fast_loss_fn({"fast_path": False}, plain_model=True) is None
        assert fastpath.fast_loss_fn({}, plain_model=True) is None
        assert torch.utils.deterministic.fill_uninitialized_memory is True  # untouched when off
        # under DDP or torch.compile the wrapper's own forward must run (gradient averaging)
        assert fastpath.fast_loss_fn({"fast_path": True}, plain_model=False) is None
        assert fastpath.fast_loss_fn({"fast_path": True}, plain_model=True) is fastpath.causal_lm_loss
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = True
    opt = build_optimizer(_model(), {**TRAIN, "fast_path": True}, torch.device("cpu"))
    assert opt.defaults["fused"] is True

"""jest.model.fastforward: the fused decoder forward of the fast path against HF's LlamaForCausalLM
(hidden states, loss, every parameter's gradient; at initialisation and after optimizer steps;
tied and untied embeddings; 2 and 4 layers), run-to-run bit-identity, the fallback for configs
it does not cover, and a real training run with `train.fast_path` on."""
from __future__ import annotations

import json

import pytest
import torch

from jest.model import fastforward, fastpath
from jest.config import deep_merge
from jest.experiment import validate_config
from jest.model.llama import build_hf_config, build_model
from jest.tracking.records import read_metrics
from jest.training.trainer import RunSpec, build_optimizer, set_determinism, train, train_step

TRAIN = {"lr": 3e-3, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95}
SHAPES = {  # (model config, vocab, T)
    "tiny-like, tied": ({"n_layer": 2, "n_embd": 48, "n_head": 4, "intermediate_size": None, "tie_embeddings": True},
                        256, 32),
    "4 layers, untied": ({"n_layer": 4, "n_embd": 64, "n_head": 4, "intermediate_size": None,
                          "tie_embeddings": False}, 300, 24),
}


def _model(shape: str, seed: int = 0):
    mc, vocab, T = SHAPES[shape]
    return build_model(build_hf_config(mc, vocab, T, 0, 0, 0), seed=seed).train()


def _tokens(shape: str, b: int = 4, seed: int = 1) -> torch.Tensor:
    _, vocab, T = SHAPES[shape]
    return torch.randint(0, vocab, (b, T), generator=torch.Generator().manual_seed(seed))


def _train_a_little(model, shape: str, steps: int = 3) -> None:
    """A few HF-loss AdamW steps: every weight (norm gains included) moves away from its init,
    so a swapped weight, a wrong norm or a misplaced rotary half shows in the comparison."""
    opt = build_optimizer(model, TRAIN, torch.device("cpu"))
    for s in range(steps):
        train_step(model, opt, _tokens(shape, seed=10 + s), 4, 3e-2, 1.0)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("trained", [False, True], ids=["init", "after 3 steps"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_fused_forward_matches_hf_hidden_states_loss_and_gradients(shape, trained):
    torch.use_deterministic_algorithms(True)
    model = _model(shape)
    if trained:
        _train_a_little(model, shape)
        assert not torch.equal(model.model.norm.weight, torch.ones_like(model.model.norm.weight))
    assert fastforward.unsupported_reason(model.config) is None
    x = _tokens(shape)
    with torch.no_grad():
        ref = model.model(input_ids=x).last_hidden_state
        got = fastforward.decoder_hidden(model, x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)

    model.zero_grad(set_to_none=True)
    hf_loss = model(input_ids=x, labels=x).loss
    hf_loss.backward()
    hf_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    loss = fastpath.causal_lm_loss(model, x, chunk_rows=50)  # several chunks, a short last one
    loss.backward()
    grads = _grads(model)
    assert abs(loss.item() - hf_loss.item()) < 1e-5
    assert grads.keys() == hf_grads.keys()  # q, k, v, gate and up each get their own gradient back
    for name, g in grads.items():
        torch.testing.assert_close(g, hf_grads[name], rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_fused_forward_is_bit_identical_run_to_run():
    torch.use_deterministic_algorithms(True)
    out = []
    for _ in range(2):
        model = _model("4 layers, untied")
        x = _tokens("4 layers, untied")
        loss = fastpath.causal_lm_loss(model, x, chunk_rows=50)
        loss.backward()
        out.append((loss.detach(), _grads(model)))
    (la, ga), (lb, gb) = out
    assert torch.equal(la, lb)
    assert all(torch.equal(ga[n], gb[n]) for n in ga)


def test_fast_training_steps_stay_within_float_rounding_of_eager():
    """Five optimizer steps each way from the same init on one repeated batch (random tokens: only
    a batch seen again can get a lower loss): the fast path (fused forward, fused cross-entropy,
    fused AdamW) follows the eager HF path."""
    set_determinism(torch.device("cpu"))
    shape = "tiny-like, tied"
    losses = {}
    try:
        for fast in (False, True):
            model = _model(shape)
            opt = build_optimizer(model, {**TRAIN, "fast_path": fast}, torch.device("cpu"))
            loss_fn = fastpath.fast_loss_fn({"fast_path": fast}, plain_model=True)
            losses[fast] = [train_step(model, opt, _tokens(shape, b=8, seed=20), 4, 3e-3, 1.0,
                                       loss_fn=loss_fn)[0].item() for _ in range(5)]
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = True
    assert max(abs(a - b) for a, b in zip(losses[True], losses[False])) < 1e-5
    assert losses[True][-1] < losses[True][0]  # it trains


def test_configs_it_does_not_cover_fall_back_to_hf():
    mc, vocab, T = SHAPES["tiny-like, tied"]
    cfg = build_hf_config(mc, vocab, T, 0, 0, 0)
    cfg.num_key_value_heads = 2  # grouped-query attention: not what jest.model.llama builds
    model = build_model(cfg, seed=0)
    assert "grouped-query" in fastforward.unsupported_reason(model.config)
    x = _tokens("tiny-like, tied")
    with torch.no_grad():
        torch.testing.assert_close(fastforward.final_hidden(model, x), model.model(input_ids=x).last_hidden_state)
        with pytest.raises(RuntimeError):  # the fused forward itself cannot run it: the fallback is needed
            fastforward.decoder_hidden(model, x)


def test_trainer_with_fast_path_trains_like_eager(smoke_workspace, tmp_path):
    """Real smoke runs through jest.training.trainer.train, fast path off and on, and on again."""
    ws = smoke_workspace
    short = {"steps": 8, "warmup_steps": 2, "eval_every": 8, "eval_log_points": 1, "checkpoint_every": 8,
             "log_every": 1}
    rows = {}
    try:
        for name, fast in (("eager", False), ("fast", True), ("fast_again", True)):
            cfg = validate_config(deep_merge(ws["cfg"], {"train": {**short, "fast_path": fast}}))
            run_dir = tmp_path / name
            train(RunSpec(cfg=cfg, arm="uniform", seed=0, run_dir=run_dir, shards_dir=ws["shards"],
                          tokenizer_dir=ws["tokenizer"]), progress=False)
            rows[name] = [r for r in read_metrics(run_dir / "metrics.jsonl") if "train_loss" in r]
            assert json.loads((run_dir / "card.json").read_text())
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = True
    eager, fast, again = ([r["train_loss"] for r in rows[k]] for k in ("eager", "fast", "fast_again"))
    assert len(fast) == 8 and fast == again  # bit-identical run to run
    assert max(abs(a - b) for a, b in zip(fast, eager)) < 1e-5
    assert abs(rows["fast"][-1]["heldout_loss"] - rows["eager"][-1]["heldout_loss"]) < 1e-5

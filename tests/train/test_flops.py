"""The analytic FLOP formulas against torch's FlopCounterMode on a real training step."""
import pytest
import torch

from jest.experiment import load_config

from jest.config import PROJECT_ROOT
from jest.model.flops import (FlopLedger, counted_train_step_flops, forward_flops_per_token, matmul_params,
                        train_flops_per_token)
from jest.model.llama import build_hf_config, build_model, shape_summary


@pytest.mark.parametrize("config_name", ["smoke", "tiny"])
def test_analytic_train_flops_match_flop_counter(config_name):
    cfg = load_config(PROJECT_ROOT / "config" / f"{config_name}.yaml")
    seq_len, vocab = cfg["data"]["seq_len"], cfg["data"]["vocab_size"]
    hf_config = build_hf_config(cfg["model"], vocab, seq_len, 0, 0, 0)
    model = build_model(hf_config, seed=0)
    batch = torch.randint(0, vocab, (4, seq_len))
    counted = counted_train_step_flops(model, batch)
    analytic = train_flops_per_token(shape_summary(hf_config), seq_len) * batch.numel()
    assert abs(analytic - counted) / counted < 0.10, (analytic, counted)
    # the matmul part alone is exact: attention is what FlopCounterMode and PaLM count alike
    assert counted > 6 * matmul_params(shape_summary(hf_config)) * batch.numel()


def test_forward_is_a_third_of_training():
    shape = {"n_layer": 2, "d_model": 96, "d_ff": 256, "n_head": 4, "n_kv_head": 4, "vocab_size": 2048}
    assert 3 * forward_flops_per_token(shape, 128) == train_flops_per_token(shape, 128)
    # N by hand: 2 layers x (4 d^2 attention + 3 d d_ff MLP) + d V output projection
    assert matmul_params(shape) == 2 * (4 * 96 * 96 + 3 * 96 * 256) + 96 * 2048


def test_ledger_accountings_nest():
    ledger = FlopLedger(fixed=100.0)
    ledger.add_train(10.0)
    ledger.add_score(5.0)
    snap = ledger.snapshot()
    assert snap == {"flops_train": 10.0, "flops_train_score": 15.0, "flops_total": 115.0}
    other = FlopLedger()
    other.load_state_dict(ledger.state_dict())
    assert other.snapshot() == snap

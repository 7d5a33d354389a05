"""Snapshots of one architecture share one model object per process; each loads exactly its own
weights (equal to HF's from_pretrained), tied embeddings included."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from jest.evaluation import loading
from jest.model.llama import build_hf_config, build_model


@pytest.mark.parametrize("tied", [False, True])
def test_each_snapshot_loads_its_own_weights_into_the_shared_model(tmp_path, tied):
    cfg = build_hf_config({"n_layer": 1, "n_embd": 32, "n_head": 2, "tie_embeddings": tied}, vocab_size=64,
                          seq_len=16, bos_token_id=0, eos_token_id=1)
    dirs = []
    for seed in (0, 1):
        build_model(cfg, seed).save_pretrained(tmp_path / f"s{seed}", safe_serialization=True)
        dirs.append(tmp_path / f"s{seed}")
    loading._SKELETONS.clear()
    first = loading._load_snapshot(dirs[0], AutoModelForCausalLM)
    first_weights = {k: v.clone() for k, v in first.state_dict().items()}
    second = loading._load_snapshot(dirs[1], AutoModelForCausalLM)
    assert second is first                                       # the same object, new weights
    x = torch.randint(0, 64, (2, 16))
    for model_dir, got in ((dirs[1], second.state_dict()), (dirs[0], first_weights)):
        want = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
        assert set(got) == set(want.state_dict())
        assert all(torch.equal(got[k], v) for k, v in want.state_dict().items())
    want = AutoModelForCausalLM.from_pretrained(dirs[1], local_files_only=True).eval()
    with torch.no_grad():
        assert torch.equal(second.eval()(input_ids=x).logits, want(input_ids=x).logits)
    if tied:
        assert second.lm_head.weight.data_ptr() == second.model.embed_tokens.weight.data_ptr()
    assert not all(torch.equal(first_weights[k], v) for k, v in second.state_dict().items())

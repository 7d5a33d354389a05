"""The learner / reference model: a Llama-style causal LM built from config.

Built with `transformers` so that every checkpoint is a plain `save_pretrained`
folder that lm-eval (and any HF tool) loads without our code.
"""
from __future__ import annotations

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def intermediate_size(model_cfg: dict) -> int:
    """SwiGLU width: 8/3 d (keeps the MLP at ~8 d^2 params like a 4d GELU MLP), multiple of 32."""
    if model_cfg.get("intermediate_size"):
        return int(model_cfg["intermediate_size"])
    return 32 * math.ceil(8 * model_cfg["n_embd"] / 3 / 32)


def build_hf_config(model_cfg: dict, vocab_size: int, seq_len: int,
                    bos_token_id: int, eos_token_id: int, pad_token_id: int | None = None) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=model_cfg["n_embd"],
        intermediate_size=intermediate_size(model_cfg),
        num_hidden_layers=model_cfg["n_layer"],
        num_attention_heads=model_cfg["n_head"],
        num_key_value_heads=model_cfg["n_head"],
        max_position_embeddings=seq_len,
        tie_word_embeddings=model_cfg["tie_embeddings"],
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        attention_dropout=0.0,
        use_cache=False,  # training and scoring never decode; a KV cache would only cost memory
        attn_implementation="sdpa",
    )


def build_model(hf_config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    """Initialise a model deterministically from `seed` (HF's own init, std 0.02)."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(hf_config)
    return model


def shape_summary(hf_config: LlamaConfig) -> dict:
    """The shape numbers the FLOP formulas need (jest.model.flops)."""
    return {
        "n_layer": hf_config.num_hidden_layers,
        "d_model": hf_config.hidden_size,
        "d_ff": hf_config.intermediate_size,
        "n_head": hf_config.num_attention_heads,
        "n_kv_head": hf_config.num_key_value_heads,
        "vocab_size": hf_config.vocab_size,
    }

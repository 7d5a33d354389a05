"""A fused forward of the Llama decoder body over the HF model's own parameters (`train.fast_path`).

The learner stays a transformers LlamaForCausalLM (jest/model.py): save_pretrained folders,
checkpoints, lm-eval and the optimizer state see the same nn.Parameters. Only the forward
that training (and, where it measures faster, scoring) runs is a plain function here, with
what HF's module forward spends on CPU at these widths (d = 96-176) taken out:

* q, k, v as one matmul (torch.cat of the three weights each call, (3d, d): 0.1 MiB at d = 96;
  autograd splits its gradient back into the three parameters), gate and up as another;
* rotary cos/sin computed once per (T, head_dim, device, dtype) and cached, applied to q and k
  together as x1 c - x2 s, x2 c + x1 s on the two halves (HF's rotate_half convention:
  q c + rotate_half(q) s with rotate_half(q) = (-q2, q1), the same IEEE operations);
* RMSNorm, SDPA (is_causal, no mask tensor, HF's scale head_dim**-0.5) and SwiGLU as
  functional calls, without HF's output dataclasses, mask construction, kwargs plumbing
  and per-module hooks.

Same arithmetic as HF's forward up to the order of floating-point operations inside fused
kernels (tests/test_fastforward.py bounds the difference); deterministic on CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# (inv_freq storage, T, device, dtype) -> (cos, sin), each (T, head_dim / 2); a few entries
# per process (one per model and sequence length)
_ROTARY_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def unsupported_reason(config) -> str | None:
    """Why the fused forward cannot stand in for HF's on this LlamaConfig, or None if it can.
    jest/model.py builds only supported configs; a checkpoint from elsewhere may not be one."""
    checks = {
        "num_key_value_heads != num_attention_heads (grouped-query attention)":
            config.num_key_value_heads != config.num_attention_heads,
        "attention_bias": bool(getattr(config, "attention_bias", False)),
        "mlp_bias": bool(getattr(config, "mlp_bias", False)),
        "hidden_act != silu": config.hidden_act != "silu",
        "rope_type != default": (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default") != "default",
        "head_dim != hidden_size / num_attention_heads":
            (getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
            * config.num_attention_heads != config.hidden_size,
    }
    bad = [name for name, hit in checks.items() if hit]
    return ", ".join(bad) if bad else None


def rotary_cos_sin(rotary_emb, seq_len: int, device: torch.device, dtype: torch.dtype):
    """cos, sin (T, head_dim/2) of positions 0..T-1: HF's LlamaRotaryEmbedding values (its two
    halves are equal, cat(freqs, freqs)), computed once per (T, device, dtype)."""
    inv_freq = rotary_emb.inv_freq
    key = (inv_freq.untyped_storage().data_ptr(), seq_len, device, dtype)
    hit = _ROTARY_CACHE.get(key)
    if hit is None:
        if len(_ROTARY_CACHE) > 32:  # bounded: models come and go in tests and the bench
            _ROTARY_CACHE.clear()
        with torch.no_grad():
            pos = torch.arange(seq_len, device=device).float()
            freqs = pos[:, None] * inv_freq.to(device=device, dtype=torch.float)           # (T, hd/2)
            scale = rotary_emb.attention_scaling
            hit = ((freqs.cos() * scale).to(dtype), (freqs.sin() * scale).to(dtype))
        _ROTARY_CACHE[key] = hit
    return hit


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """HF's LlamaRMSNorm in fp32: weight * (x * rsqrt(mean(x^2) + eps))."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def decoder_hidden(model, x: torch.Tensor) -> torch.Tensor:
    """The final (normed) hidden states (b, T, d) of LlamaForCausalLM `model` for input ids x
    (b, T): what model.model(input_ids=x).last_hidden_state returns (no padding mask, no cache)."""
    body, cfg = model.model, model.config
    b, T = x.shape
    H = cfg.num_attention_heads
    d = cfg.hidden_size
    hd = d // H
    half = hd // 2
    eps = cfg.rms_norm_eps
    scale = hd ** -0.5  # HF's LlamaAttention.scaling, passed explicitly as HF does
    emb = body.embed_tokens
    h = F.embedding(x, emb.weight, emb.padding_idx)                                          # (b, T, d)
    cos, sin = rotary_cos_sin(body.rotary_emb, T, h.device, h.dtype)
    cos, sin = cos[:, None, None, :], sin[:, None, None, :]                                   # (T, 1, 1, hd/2)
    for layer in body.layers:
        attn, mlp = layer.self_attn, layer.mlp
        # -- attention: one (3d, d) matmul for q, k, v
        a = _rms_norm(h, layer.input_layernorm.weight, eps)
        w_qkv = torch.cat((attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight))     # (3d, d)
        qkv = F.linear(a, w_qkv).view(b, T, 3, H, hd)                                        # (b, T, 3, H, hd)
        qk, v = qkv[:, :, :2], qkv[:, :, 2]
        x1, x2 = qk[..., :half], qk[..., half:]                                              # (b, T, 2, H, hd/2)
        qk = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)                   # rotary, q and k at once
        q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)                      # (b, H, T, hd)
        o = F.scaled_dot_product_attention(q, k, v.transpose(1, 2), is_causal=True, scale=scale)
        h = h + F.linear(o.transpose(1, 2).reshape(b, T, d), attn.o_proj.weight)
        # -- SwiGLU MLP: one (2 d_ff, d) matmul for gate and up; down(silu(gate) * up)
        m = _rms_norm(h, layer.post_attention_layernorm.weight, eps)
        gate, up = F.linear(m, torch.cat((mlp.gate_proj.weight, mlp.up_proj.weight))).chunk(2, dim=-1)
        h = h + F.linear(F.silu(gate) * up, mlp.down_proj.weight)
    return _rms_norm(h, body.norm.weight, eps)


def final_hidden(model, x: torch.Tensor) -> torch.Tensor:
    """decoder_hidden where the config allows it, else HF's own decoder body (same values)."""
    if unsupported_reason(model.config) is None:
        return decoder_hidden(model, x)
    return model.model(input_ids=x).last_hidden_state

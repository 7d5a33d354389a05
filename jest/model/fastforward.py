"""A fused forward of the Llama decoder body over the HF model's own parameters (`train.fast_path`).

The learner stays a transformers LlamaForCausalLM (jest/model/llama.py): save_pretrained folders,
checkpoints, lm-eval and the optimizer state see the same nn.Parameters. The forward that
training, scoring and held-out evaluation run under `train.fast_path` is a plain function here
(lm-eval keeps HF's), with what HF's module forward spends on CPU at these widths (d = 96-176)
taken out, and its linear layers through jest.model.cpu_matmul (oneDNN on AVX-512 CPUs):

* q, k, v as one matmul (torch.cat of the three weights each call, (3d, d): 0.1 MiB at d = 96;
  autograd splits its gradient back into the three parameters), gate and up as another;
* q, k, v taken apart with unbind, whose backward is one stack (slicing them out would cost a
  zero-filled full-size gradient each);
* rotary cos/sin computed once per (T, head_dim, device, dtype) and cached, applied as
  x cos + roll(x, hd/2) (-sin, sin): HF's convention, q cos + rotate_half(q) sin with
  rotate_half(q) = (-q2, q1), with the same IEEE operations, and a roll instead of the
  halves' slices and cat (whose backward zero-fills);
* RMSNorm, SDPA (is_causal, no mask tensor, HF's scale head_dim**-0.5) and SwiGLU as
  functional calls, without HF's output dataclasses, mask construction, kwargs plumbing
  and per-module hooks.

With MKL's matmuls (AVX2 machines) the arithmetic is HF's: the hidden states equal HF's bit for
bit on CPU (tests/test_fastforward.py allows 1e-5); with oneDNN's they differ in the last bits.
Runs are deterministic either way. The plumbing it removes bought 0-4% of a CPU training step
(docs/benchmarks.md); the oneDNN matmuls are what made the fast path 1.5-1.6x.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jest.model.cpu_matmul import linear

# (inv_freq storage, T, device, dtype) -> (inv_freq, cos, signed sin), cos and sin (T, 1, head_dim);
# a few entries per process (one per model and sequence length). Holding inv_freq keeps its
# storage alive, so no other model's inv_freq can reuse the address in the key.
_ROTARY_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def unsupported_reason(config) -> str | None:
    """Why the fused forward cannot stand in for HF's on this LlamaConfig, or None if it can.
    jest/model/llama.py builds only supported configs; a checkpoint from elsewhere may not be one."""
    checks = {
        "num_key_value_heads != num_attention_heads (grouped-query attention)":
            config.num_key_value_heads != config.num_attention_heads,
        "attention_bias": bool(getattr(config, "attention_bias", False)),
        "attention_dropout > 0 (HF drops attention weights in training; this forward does not)":
            float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0,
        "mlp_bias": bool(getattr(config, "mlp_bias", False)),
        "hidden_act != silu": config.hidden_act != "silu",
        "rope_type != default": (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default") != "default",
        "head_dim != hidden_size / num_attention_heads":
            (getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
            * config.num_attention_heads != config.hidden_size,
    }
    bad = [name for name, hit in checks.items() if hit]
    return ", ".join(bad) if bad else None


def rotary_tables(rotary_emb, seq_len: int, device: torch.device, dtype: torch.dtype):
    """cos (T, 1, hd) and signed sin (T, 1, hd) = (-sin, sin) of positions 0..T-1 from HF's
    LlamaRotaryEmbedding (inv_freq, attention_scaling; its cos and sin are cat(freqs, freqs)),
    computed once per (T, device, dtype)."""
    inv_freq = rotary_emb.inv_freq
    key = (inv_freq.untyped_storage().data_ptr(), seq_len, device, dtype)
    hit = _ROTARY_CACHE.get(key)
    if hit is None:
        if len(_ROTARY_CACHE) > 32:  # bounded: models come and go in tests and the bench
            _ROTARY_CACHE.clear()
        # Ordinary tensors even when first asked for under inference_mode (a JEST arm scores its
        # first super-batch before its first training step): inference tensors cannot be saved
        # for a later backward.
        with torch.inference_mode(False), torch.no_grad():
            pos = torch.arange(seq_len, device=device).float()
            freqs = pos[:, None] * inv_freq.to(device=device, dtype=torch.float)           # (T, hd/2)
            cos, sin = freqs.cos() * rotary_emb.attention_scaling, freqs.sin() * rotary_emb.attention_scaling
            hit = (inv_freq, torch.cat((cos, cos), -1)[:, None].to(dtype),
                   torch.cat((-sin, sin), -1)[:, None].to(dtype))
        _ROTARY_CACHE[key] = hit
    return hit[1], hit[2]


def _rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor, half: int) -> torch.Tensor:
    """HF's apply_rotary_pos_emb, x cos + rotate_half(x) sin with rotate_half(x) = (-x2, x1), as
    x cos + roll(x, hd/2) (-sin, sin): the same IEEE products and sums ((-a) b = a (-b)), and
    roll's backward is a roll, where slicing the halves costs zero-filled gradients."""
    return x * cos + torch.roll(x, half, dims=-1) * signed_sin


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
    cos, sin = rotary_tables(body.rotary_emb, T, h.device, h.dtype)                          # (T, 1, hd) each
    for layer in body.layers:
        attn, mlp = layer.self_attn, layer.mlp
        # -- attention: one (3d, d) matmul for q, k, v; unbind (its backward is one stack, where
        # slicing q, k, v out would zero-fill and copy a full-size gradient for each of them)
        a = _rms_norm(h, layer.input_layernorm.weight, eps)
        w_qkv = torch.cat((attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight))     # (3d, d)
        q, k, v = linear(a, w_qkv).view(b, T, 3, H, hd).unbind(2)                          # (b, T, H, hd) each
        q, k = _rotary(q, cos, sin, half), _rotary(k, cos, sin, half)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True, scale=scale)                      # (b, H, T, hd)
        h = h + linear(o.transpose(1, 2).reshape(b, T, d), attn.o_proj.weight)
        # -- SwiGLU MLP: one (2 d_ff, d) matmul for gate and up; down(silu(gate) * up)
        m = _rms_norm(h, layer.post_attention_layernorm.weight, eps)
        gate, up = linear(m, torch.cat((mlp.gate_proj.weight, mlp.up_proj.weight))).chunk(2, dim=-1)
        h = h + linear(F.silu(gate) * up, mlp.down_proj.weight)
    return _rms_norm(h, body.norm.weight, eps)


def final_hidden(model, x: torch.Tensor) -> torch.Tensor:
    """decoder_hidden where the config allows it, else HF's own decoder body (same values)."""
    if unsupported_reason(model.config) is None:
        return decoder_hidden(model, x)
    return model.model(input_ids=x).last_hidden_state

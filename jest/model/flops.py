"""Analytic FLOP accounting (DESIGN.md, "Compute accounting").

Convention, used everywhere in the harness:

    N = parameters that take part in a matrix multiply per token
      = n_layer * (attention projections + SwiGLU MLP) + d_model * vocab (the output projection)

The input embedding is a table lookup (no FLOPs) and is excluded. The output
projection is *included*, unlike Kaplan's "non-embedding" N: at our small scales
the d x V unembedding matmul is about half of all the work (d=96, V=2048: 197k
of 418k matmul parameters), so leaving it out would undercount by ~2x. At 1B+
scales the difference is a few percent.

Per token, for sequences of length T (PaLM, Chowdhery et al. 2022, appendix B):
    forward   = 2 N + 4 L d T      (2 FLOPs per multiply-add; QK^T and AV each 2 d T per layer)
    training  = 6 N + 12 L d T     (backward = 2x forward)
Attention is counted over the full T x T score matrix, as PaLM does and as
torch's FlopCounterMode does (no discount for the causal mask). Norms, softmax,
activations, the optimizer and the loss are not counted (O(d) per token).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# No module-level torch: the formulas are plain arithmetic, read by config checks and `python -m jest
# doctor` at every Snakemake start, where importing torch would cost seconds; the counter imports it.


def matmul_params(shape: dict) -> int:
    """N: the per-token matmul parameters of a Llama-style model (see module docstring)."""
    d, d_ff, L, V = shape["d_model"], shape["d_ff"], shape["n_layer"], shape["vocab_size"]
    head_dim = d // shape["n_head"]
    attn = d * d * 2 + 2 * d * (shape["n_kv_head"] * head_dim)  # q, o; k, v (GQA-aware)
    mlp = 3 * d * d_ff                                         # gate, up, down
    return L * (attn + mlp) + d * V


def attention_flops_per_token(shape: dict, seq_len: int) -> int:
    """Forward attention-score FLOPs per token: QK^T and AV, 2 d T each, per layer."""
    return 4 * shape["n_layer"] * shape["d_model"] * seq_len


def forward_flops_per_token(shape: dict, seq_len: int) -> int:
    """Forward-only (scoring, evaluation) FLOPs per token: 2N + 4LdT."""
    return 2 * matmul_params(shape) + attention_flops_per_token(shape, seq_len)


def train_flops_per_token(shape: dict, seq_len: int) -> int:
    """Training (forward + backward) FLOPs per token: 6N + 12LdT."""
    return 6 * matmul_params(shape) + 3 * attention_flops_per_token(shape, seq_len)


# accounting name (DESIGN.md) -> metric key (MLflow keys cannot hold "+")
ACCOUNTINGS = {"train": "flops_train", "train+score": "flops_train_score", "total": "flops_total"}


@dataclass
class FlopLedger:
    """Cumulative FLOPs under the three accountings of DESIGN.md.

    train        learner training only
    train+score  + scoring of super-batches (learner forward, online reference forward)
    total        + one-time costs: reference training and the pool's reference scoring
    """

    fixed: float = 0.0  # one-time costs paid before step 0 (enter `total` only)
    train: float = 0.0
    score: float = 0.0

    def add_train(self, flops: float) -> None:
        self.train += flops

    def add_score(self, flops: float) -> None:
        self.score += flops

    def snapshot(self) -> dict:
        return {
            "flops_train": self.train,
            "flops_train_score": self.train + self.score,
            "flops_total": self.train + self.score + self.fixed,
        }

    def state_dict(self) -> dict:
        return {"fixed": self.fixed, "train": self.train, "score": self.score}

    def load_state_dict(self, state: dict) -> None:
        self.fixed, self.train, self.score = state["fixed"], state["train"], state["score"]


def _register_cpu_sdpa_formulas() -> None:
    """torch's FlopCounterMode knows the CUDA attention kernels but not the CPU flash kernel
    that SDPA dispatches to here; give it the same formulas so the cross-check sees attention."""
    import torch
    from torch.utils import flop_counter as fc
    aten = torch.ops.aten
    if aten._scaled_dot_product_flash_attention_for_cpu not in fc.flop_registry:
        fc.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)(
            lambda q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_flop_count(q, k, v))
        fc.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)(
            lambda g, q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_backward_flop_count(g, q, k, v))


def counted_train_step_flops(model: torch.nn.Module, input_ids: torch.Tensor) -> int:
    """FLOPs of one forward+backward as counted by torch.utils.flop_counter.FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode
    _register_cpu_sdpa_formulas()
    with FlopCounterMode(display=False) as counter:
        model(input_ids=input_ids, labels=input_ids).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()

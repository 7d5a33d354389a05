"""The CPU fast path of the training step (`train.fast_path`), measured in tools.bench.

Where the eager step of the tiny learner loses time on CPU (torch.profiler, docs/benchmarks.md):
the output projection and its cross-entropy are about half the step's matmul FLOPs, and
around them HF's loss materialises the (b*T, V) logits, a log_softmax of them, its
backward and a zero-filled gradient of the same size: four passes over a tensor that
does not fit in cache (16 MiB at b=16, T=128, V=2048). Deterministic mode
(torch.use_deterministic_algorithms) also fills every freshly allocated tensor with NaN
(torch.utils.deterministic.fill_uninitialized_memory), about a thousand fills a step.

The fast path removes both, keeping the run bit-identical from run to run:

* the decoder body through jest.model.fastforward.decoder_hidden (one functional forward over the
  HF model's own parameters: q/k/v and gate/up as single matmuls, cached rotary tables, no
  HF module plumbing); its hidden states equal HF's bit for bit on CPU;

* `linear_cross_entropy`: the output projection fused with the cross-entropy, in chunks of
  rows, with the gradients computed in the forward (as Liger-Kernel's fused linear
  cross-entropy does): per chunk, logits = h W^T (c, V) stay in cache, the loss and
  dL/dlogits = softmax - onehot are formed from them at once, and dL/dh, dL/dW are two
  matmuls; the logits are never stored for the backward. Same arithmetic as HF's loss up
  to the order of floating-point sums (the loss differs by ~1e-6 relative; measured in
  docs/benchmarks.md).
* no NaN-fill of uninitialised memory: it makes reads of uninitialised memory
  deterministic; the kernels read only memory they wrote, so results do not change.
* AdamW with `fused=True` on CPU (one kernel per parameter instead of a dozen ops);
* on CPUs where torch runs AVX-512 kernels, every matmul of the step (the decoder's linear
  layers forward and backward, the output projection's three) through oneDNN's fp32 kernels
  instead of MKL's (jest.model.cpu_matmul): MKL runs its AVX2 kernels on AMD processors. This is the
  largest of the gains (docs/benchmarks.md); the others were 5-20%.

Forward-only passes run through the same fused forward and chunked NLL under `train.fast_path`
(the JEST policy's super-batch scoring, the reference's pool scoring, the held-out evaluations;
jest.policies.scoring, jest.evaluation.heldout). lm-eval keeps HF's forward.
"""
from __future__ import annotations

import torch

from jest.model.cpu_matmul import add_weight_grad, mm_t
from jest.model.fastforward import final_hidden

# Rows of logits per chunk: 512 x V=2048 fp32 = 4 MiB, about an L2/L3 slice of one core.
CHUNK_ROWS = 512


def set_fast_cpu_defaults() -> None:
    """Skip deterministic mode's NaN-fill of every new tensor (results are unchanged: no
    kernel reads memory it did not write; only a bug would, and the CPU determinism
    tests would see it as a changed loss curve)."""
    torch.utils.deterministic.fill_uninitialized_memory = False


class _LinearCrossEntropy(torch.autograd.Function):
    """mean_i CE(h_i W^T, y_i) (or sum_i w_i CE_i / sum_i w_i with row weights) with gradients formed
    chunk by chunk in the forward."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk_rows: int, row_weights: torch.Tensor | None = None) -> torch.Tensor:
        # hidden (N, d), weight (V, d); the normaliser: N rows, or the weights' sum (token-weighted policies)
        rows_total = hidden.size(0)
        n = rows_total if row_weights is None else row_weights.sum()
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if need_grad else None
        grad_weight = torch.zeros_like(weight) if need_grad else None
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        # Two (c, V) buffers for all chunks: fresh 4 MiB tensors per chunk cost page faults
        # (glibc hands blocks this large back to the kernel on free).
        rows = min(chunk_rows, rows_total)
        autocast = torch.is_autocast_enabled(hidden.device.type)
        logits_buf = None if autocast else torch.empty(rows, weight.size(0), dtype=hidden.dtype, device=hidden.device)
        logp_buf = torch.empty(rows, weight.size(0), dtype=torch.float32, device=hidden.device)
        for i in range(0, rows_total, chunk_rows):
            h, y = hidden[i:i + chunk_rows], targets[i:i + chunk_rows]
            c = h.size(0)
            if autocast:  # bf16: the matmul in autocast's dtype, as HF's lm_head would run it
                logits = h @ weight.t()                                                 # (c, V)
            else:
                logits = mm_t(h, weight, out=logits_buf[:c])                            # (c, V)
            # log_softmax: one vectorised kernel, the function HF's cross_entropy uses
            logp = torch.log_softmax(logits.float(), dim=1, out=logp_buf[:c])         # (c, V)
            if row_weights is None:
                loss -= logp.gather(1, y[:, None]).sum()
            else:
                w = row_weights[i:i + chunk_rows, None]                              # (c, 1)
                loss -= (logp.gather(1, y[:, None]) * w).sum()
            if need_grad:
                # dL/dlogits of the mean loss: (softmax - onehot) / N, in place over log p
                g = logp.exp_()
                g.scatter_add_(1, y[:, None], torch.full_like(g[:, :1], -1.0))
                if row_weights is None:
                    g.div_(n)
                else:  # of the weighted mean: (softmax - onehot) w_i / sum(w)
                    g.mul_(w / n)
                g = g.to(hidden.dtype)
                mm_t(g, weight.t(), out=grad_hidden[i:i + chunk_rows])      # (c, d)
                add_weight_grad(grad_weight, g, h)                          # (V, d) += g^T h
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss / n

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_output, grad_weight * grad_output, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         chunk_rows: int = CHUNK_ROWS, row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy of logits hidden @ weight.T against targets, without
    materialising the logits. hidden (N, d), weight (V, d), targets (N,) int64; with `row_weights`
    (N,) >= 0, the weighted mean sum_i w_i CE_i / sum_i w_i."""
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk_rows, row_weights)


def causal_lm_loss(model, x: torch.Tensor, chunk_rows: int = CHUNK_ROWS,
                   token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """model(input_ids=x, labels=x).loss of a HF causal LM (mean over the b*(T-1) shifted
    targets), through the fused decoder forward (jest.model.fastforward) and the fused output
    projection + cross-entropy; with `token_weights` (b, T-1), the weighted mean over the targets."""
    hidden = final_hidden(model, x)[:, :-1]                                     # (b, T-1, d)
    targets = x[:, 1:].reshape(-1)                                            # (b*(T-1),)
    weights = None if token_weights is None else token_weights.reshape(-1).to(torch.float32)
    return linear_cross_entropy(hidden.reshape(-1, hidden.size(-1)), model.lm_head.weight, targets,
                                chunk_rows, weights)


def fast_loss_fn(train_cfg: dict, plain_model: bool):
    """The training loss of `train.fast_path`: causal_lm_loss (and the CPU defaults above, set
    here once per process), or None for HF's own loss. Only on a plain model: DDP and
    torch.compile wrappers run their own forward (a direct `model.model` call would skip DDP's
    gradient averaging), so with them the fast path keeps only the fused AdamW."""
    if not train_cfg.get("fast_path"):
        return None
    set_fast_cpu_defaults()
    return causal_lm_loss if plain_model else None


@torch.inference_mode()
def token_nll(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
              chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """Per-token NLL (N,) float32 of logits hidden @ weight.T, in chunks of rows (the scoring
    twin of linear_cross_entropy: the logits of one chunk at a time stay in cache)."""
    out = torch.empty(hidden.size(0), dtype=torch.float32, device=hidden.device)
    for i in range(0, hidden.size(0), chunk_rows):
        logits = mm_t(hidden[i:i + chunk_rows], weight).float()               # (c, V)
        y = targets[i:i + chunk_rows, None]
        out[i:i + chunk_rows] = torch.logsumexp(logits, dim=1) - logits.gather(1, y).squeeze(1)
    return out


class uninitialised_fill:
    """Context manager: deterministic mode's NaN-fill of new tensors on (True) or off (False)
    inside it (tools.bench alternates eager and fast steps in one process)."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        self.saved = torch.utils.deterministic.fill_uninitialized_memory
        torch.utils.deterministic.fill_uninitialized_memory = self.on

    def __exit__(self, *exc):
        torch.utils.deterministic.fill_uninitialized_memory = self.saved

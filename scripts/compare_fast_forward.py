"""CPU time per training step: eager HF, the fast path on HF's decoder body, and the fast path on
the fused forward (jest/model/fastforward.py), alternating in one process (docs/benchmarks.md, issue #16).

    python scripts/compare_fast_forward.py [tiny|ladder_top] [--steps 14] [--threads 1]

All three train the same initialisation on the same random batches through trainer.train_step;
the order of the three is reversed every round, and the median CPU time (process_time: on a
shared machine the work a step took, which wall time under load does not show) of the timed
steps is printed with the largest loss difference from eager.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's jest, not an installed one

import torch  # noqa: E402

from jest.model import fastpath  # noqa: E402
from tools.bench import shape_spec  # noqa: E402
from jest.config import PROJECT_ROOT  # noqa: E402
from jest.experiment import load_config
from jest.model.llama import build_hf_config, build_model  # noqa: E402
from jest.training.trainer import build_optimizer, set_determinism, train_step  # noqa: E402


def fast_loss_on_hf_body(model, x: torch.Tensor) -> torch.Tensor:
    """The fast path's loss before the fused forward: HF's decoder body + the fused cross-entropy."""
    hidden = model.model(input_ids=x).last_hidden_state[:, :-1]
    return fastpath.linear_cross_entropy(hidden.reshape(-1, hidden.size(-1)), model.lm_head.weight,
                                         x[:, 1:].reshape(-1))


# name -> (loss_fn, fast_path for AdamW, deterministic mode's NaN-fill)
VARIANTS = {"eager (HF loss, foreach AdamW, NaN-fill)": (None, False, True),
            "fast path on HF's body": (fast_loss_on_hf_body, True, False),
            "fast path on the fused forward": (fastpath.causal_lm_loss, True, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", nargs="?", default="tiny", choices=("tiny", "ladder_top"))
    parser.add_argument("--steps", type=int, default=14, help="timed steps per variant (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    set_determinism(device)
    spec = shape_spec(args.shape, load_config(PROJECT_ROOT / "config" / "tiny.yaml"), device)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, spec.vocab, (spec.batch, spec.seq_len), generator=g) for _ in range(args.steps + 2)]
    runs = {}
    for name, (_, fast, _) in VARIANTS.items():
        model = build_model(build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0), seed=0).train()
        runs[name] = {"model": model, "opt": build_optimizer(model, {**spec.train, "fast_path": fast}, device),
                      "cpu": [], "loss": []}
    names = list(VARIANTS)
    saved_fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        for i, x in enumerate(batches):
            for name in (names if i % 2 == 0 else names[::-1]):
                loss_fn, _, fill = VARIANTS[name]
                r = runs[name]
                torch.utils.deterministic.fill_uninitialized_memory = fill
                c = time.process_time()
                loss, _ = train_step(r["model"], r["opt"], x, spec.micro, 1e-3, spec.train["grad_clip"],
                                     loss_fn=loss_fn)
                r["loss"].append(loss.item())
                if i >= 2:
                    r["cpu"].append(time.process_time() - c)
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = saved_fill
    eager = runs[names[0]]
    base = statistics.median(eager["cpu"])
    print(f"{args.shape}, {args.threads} thread(s), {args.steps} timed steps each, median CPU ms per step:")
    for name in names:
        r = runs[name]
        med = statistics.median(r["cpu"])
        diff = max(abs(a - b) for a, b in zip(r["loss"], eager["loss"]))
        print(f"  {name:42s} {1e3 * med:8.1f} ms  eager/this {base / med:5.2f}  loss max diff {diff:.1e}")


if __name__ == "__main__":
    main()

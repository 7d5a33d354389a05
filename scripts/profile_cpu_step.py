"""torch.profiler table of one CPU training step of a tools.bench shape (docs/benchmarks.md, issue #16).

    python scripts/profile_cpu_step.py [tiny|ladder_top] [--threads 1] [--fast] [--steps 5]

The eager step (trainer.train_step with HF's loss) or, with --fast, the `train.fast_path`
step, on random tokens, after 3 warm-up steps; prints wall and CPU ms per step and the ops
sorted by self CPU time. On a shared machine use 1 thread and read shares, not times.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's jest, not an installed one

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from tools.bench import shape_spec  # noqa: E402
from jest.config import PROJECT_ROOT  # noqa: E402
from jest.experiment import load_config
from jest.model.fastpath import fast_loss_fn  # noqa: E402
from jest.model.llama import build_hf_config, build_model  # noqa: E402
from jest.training.trainer import build_optimizer, set_determinism, train_step  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", nargs="?", default="tiny", choices=("tiny", "ladder_top"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fast", action="store_true", help="train.fast_path (jest.model.fastpath)")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    set_determinism(device)
    spec = shape_spec(args.shape, load_config(PROJECT_ROOT / "config" / "tiny.yaml"), device)
    model = build_model(build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0), seed=0).train()
    tcfg = {**spec.train, "fast_path": args.fast}
    optimizer = build_optimizer(model, tcfg, device)
    loss_fn = fast_loss_fn(tcfg, plain_model=True)
    x = torch.randint(0, spec.vocab, (spec.batch, spec.seq_len), generator=torch.Generator().manual_seed(0))

    def step():
        train_step(model, optimizer, x, spec.micro, 1e-3, spec.train["grad_clip"], loss_fn=loss_fn)

    for _ in range(3):
        step()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    print(f"{args.shape} ({'fast' if args.fast else 'eager'}, {args.threads} threads): "
          f"{(time.perf_counter() - t) / args.steps * 1e3:.1f} ms wall, "
          f"{(time.process_time() - c) / args.steps * 1e3:.1f} ms CPU per step")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()

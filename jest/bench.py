"""Benchmark: the JEST step against the uniform step, measured vs analytic FLOP ratio.

    python -m jest.bench [--config config/tiny.yaml] [--steps 12] [--threads 2]

A JEST step = score the super-batch of B = b / (1 - f) (learner forward, no grad)
+ select + train on b; a uniform step = train on b. The analytic ratio of the two
is (6N + 12LdT) b T + (2N + 4LdT') B T' over (6N + 12LdT) b T (T' = the scored
prefix). The script times both with the library's own code (JestPolicy.select,
trainer.train_step), alternating uniform and JEST steps so that machine noise
hits both alike, and prints measured / analytic per filter ratio. Reference
scores are cached in the real pipeline, so the step reads them (random here:
their values do not change the cost).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from jest.config import PROJECT_ROOT, load_config, super_batch_size
from jest.flops import forward_flops_per_token, train_flops_per_token
from jest.jest_policy import JestPolicy, PolicyContext
from jest.model import build_hf_config, build_model, shape_summary
from jest.trainer import build_optimizer, train_step

FILTER_RATIOS = (0.5, 0.8, 0.9)


def analytic_ratio(shape: dict, seq_len: int, b: int, B: int, prefix_len: int) -> float:
    train = train_flops_per_token(shape, seq_len) * b * seq_len
    score = forward_flops_per_token(shape, prefix_len) * B * prefix_len
    return (train + score) / train


def bench(cfg: dict, steps: int, warmup: int, arm_overrides: dict | None = None) -> list[dict]:
    tcfg, seq_len, vocab = cfg["train"], cfg["data"]["seq_len"], cfg["data"]["vocab_size"]
    b, micro = tcfg["batch_size"], tcfg["micro_batch_size"] or tcfg["batch_size"]
    device = torch.device("cpu")
    hf_config = build_hf_config(cfg["model"], vocab, seq_len, 0, 0, 0)
    model = build_model(hf_config, seed=0)
    optimizer = build_optimizer(model, tcfg, device)
    shape = shape_summary(hf_config)
    gen = torch.Generator().manual_seed(0)
    pool_size = 4096
    pool = torch.randint(0, vocab, (pool_size, seq_len), generator=gen)
    ctx = PolicyContext(seed=0, seq_len=seq_len, pool_size=pool_size, pool_sha256="bench",
                        references_root=PROJECT_ROOT, device=device)
    ref_scores = np.random.default_rng(0).normal(5.0, 0.5, pool_size).astype(np.float32)
    base_arm = load_config(PROJECT_ROOT / "config" / "smoke.yaml",
                           overrides={"arms": {"j": {"policy": "jest"}}})["arms"]["j"]

    def uniform_step(i: int) -> float:
        ids = np.arange(i * b, (i + 1) * b) % pool_size
        t0 = time.perf_counter()
        train_step(model, optimizer, pool[ids], micro, 1e-4, 1.0)
        return time.perf_counter() - t0

    rows = []
    for f in FILTER_RATIOS:
        arm = {**base_arm, "filter_ratio": f, **(arm_overrides or {})}
        policy = JestPolicy(arm, ctx, ref_scores=ref_scores)
        B = super_batch_size(b, f)

        def jest_step(i: int) -> float:
            ids = np.arange(i * B, (i + 1) * B) % pool_size
            t0 = time.perf_counter()
            candidates = pool[ids]
            chosen = policy.select(i, candidates, ids, model, b).chosen
            train_step(model, optimizer, candidates[torch.as_tensor(chosen)], micro, 1e-4, 1.0)
            return time.perf_counter() - t0

        for i in range(warmup):
            uniform_step(i), jest_step(i)
        t_uniform, t_jest = [], []
        for i in range(steps):  # alternate, so that noise on the shared machine hits both
            t_uniform.append(uniform_step(i))
            t_jest.append(jest_step(i))
        measured = statistics.median(t_jest) / statistics.median(t_uniform)
        analytic = analytic_ratio(shape, seq_len, b, B, policy.prefix_len)
        rows.append({"filter_ratio": f, "super_batch": B, "uniform_s": statistics.median(t_uniform),
                     "jest_s": statistics.median(t_jest), "measured_ratio": measured,
                     "analytic_ratio": analytic, "measured_over_analytic": measured / analytic})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jest.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(PROJECT_ROOT / "config" / "tiny.yaml"))
    parser.add_argument("--steps", type=int, default=12, help="timed steps per arm (median taken)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--score-prefix", type=float, default=1.0, help="cheap scoring: share of tokens scored")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    print(f"config {cfg['name']}: model {cfg['model']}, batch {cfg['train']['batch_size']} x "
          f"{cfg['data']['seq_len']}, {args.threads} threads, median of {args.steps} steps")
    rows = bench(cfg, args.steps, args.warmup, {"score_prefix": args.score_prefix})
    print(f"{'f':>5} {'B':>5} {'uniform ms':>11} {'jest ms':>9} {'measured':>9} {'analytic':>9} {'meas/anal':>10}")
    for r in rows:
        print(f"{r['filter_ratio']:>5.2f} {r['super_batch']:>5d} {1e3 * r['uniform_s']:>11.1f} "
              f"{1e3 * r['jest_s']:>9.1f} {r['measured_ratio']:>9.2f} {r['analytic_ratio']:>9.2f} "
              f"{r['measured_over_analytic']:>10.2f}")
    worst = max(r["measured_over_analytic"] for r in rows)
    print(f"target measured/analytic <= 1.2: {'met' if worst <= 1.2 else 'NOT met'} (worst {worst:.2f})")


if __name__ == "__main__":
    main()

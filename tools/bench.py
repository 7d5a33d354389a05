"""Benchmark: throughput, memory, MFU, loop overhead, the CPU fast path, and the JEST step against the uniform step.

    python -m tools.bench [--shapes tiny,ladder_top,125m] [--device auto|cpu|cuda] [--precision fp32|bf16]
                         [--compile] [--fast auto|on|off] [--threads 2] [--steps N] [--check] [--json [PATH]]

Everything printed is measured in the run itself, per model shape:

* eager against the fast path (train.fast_path, jest.model.fastpath; by default on CPU only):
  training and scoring tokens/s and FLOP/s as a share of the peak (on CPU derived from the
  ISA, clock and cores, jest.model.hardware.cpu_peak, printed with its derivation), timed
  alternating with the eager loops in one process; targets fast/eager >= 1.5 (tiny) and
  >= 1.3 (ladder_top, the ladder top CPU rung). Beside the wall-time ratio, the ratio of the
  steps' process CPU time: on a shared machine a descheduled step's wall time grows with the
  load, its CPU time much less (docs/benchmarks.md);

* tokens/s of training (the library's per-step path, "ours") and of forward-only
  scoring (jest.policies.scoring.sequence_losses, what JEST runs on every super-batch), the
  analytic FLOP/s they amount to (jest.model.flops) and, where the chip's peak is known
  (jest.model.hardware), the MFU;
* peak memory of one training step plus one scoring pass: CUDA max_memory_allocated,
  or on CPU the process's peak RSS (VmHWM, reset through /proc/self/clear_refs),
  both above what was allocated before the model was built;
* ours against plain: "ours" is the body of jest.training.trainer's loop in one process
  (EpochSampler position -> TokenShard fetch -> policy.select (uniform) ->
  trainer.to_device (pinned, asynchronous on CUDA) -> trainer.train_step with the lr
  schedule, gradient clipping and --precision -> loss and grad-norm read with the NaN
  check (trainer.read_step_values; every step on CPU, at logged steps on CUDA) -> FLOP
  ledger -> a metrics.jsonl row with the selection shares every `train.log_every`
  steps), without evaluation, checkpoints, snapshots and MLflow; "plain" is a
  textbook loop (set lr, zero_grad, autocast forward of model(input_ids=x,
  labels=x).loss, backward, clip, optimizer.step(), loss.item()) on batches already
  on the device. With --compile both train through torch.compile(model); scoring
  stays uncompiled, as in the trainer. Both start from the same initialisation with the same AdamW settings
  and see the same batches; their steps alternate (order flipped every pair) so that
  machine noise hits both alike. Target: ours/plain >= 0.95 in tokens/s. The losses
  of the two loops are compared too (they do the same arithmetic).
* the JEST step against the uniform step at f = 0.5, 0.8, 0.9: both through the same
  per-step path, the JEST one scores the super-batch of B = b / (1 - f) (learner
  forward, no grad) and selects, then trains on b. The analytic ratio is
  (6N + 12LdT) b T + (2N + 4LdT') B T' over (6N + 12LdT) b T (T' = the scored
  prefix); target: measured / analytic <= 1.2 (the JEST step costs at most 20% more
  than its FLOPs say; below 1 means scoring runs more efficiently per FLOP than
  training, which is no overhead). Reference scores are cached in the real pipeline,
  so the step reads them (random here: their values do not change the cost).

Shapes (default tiny,ladder_top on CPU, tiny,125m on CUDA): `tiny` is the default config's
learner (--config); `ladder_top` the ladder top CPU rung (LADDER_TOP_CPU); `125m` is GPT-2-small-like
(12 layers, d=768, 12 heads, SwiGLU 2048, V=50257 tied, T=1024; 124M parameters),
with batch 1 on CPU and 16 on CUDA (--batch 125m=N). The data are random tokens in
a real TokenShard folder (temporary). `--check` makes any FAIL exit non-zero.

The shapes and timed loops live in tools/bench_loops.py, the targets, checks and printed report
in tools/bench_report.py; this module measures with them and holds the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from baselines.uniform import UniformPolicy
from tools.bench_loops import (DEFAULT_SHAPES, DEFAULT_STEPS, SHAPE_NAMES, OursLoop, PeakMemory, PlainLoop,
                              ShapeSpec, _sync, alternate, alternate_many, analytic_ratio, build_learner,
                              shape_spec, synthetic_shard)
from tools.bench_report import FILTER_RATIOS, _loadavg, checks, describe, device_name, print_shape
from jest.config import PROJECT_ROOT
from jest.experiment import load_config
from jest.policies.jest_spec import super_batch_size
from jest.model.cpu_matmul import onednn_linear_available
from jest.model.fastpath import uninitialised_fill
from jest.model.flops import forward_flops_per_token, matmul_params, train_flops_per_token
from jest.model.hardware import cpu_cores_used, cpu_peak, matmul_precision, peak_flops_per_second
from jest.policies.jest_policy import JestPolicy, PolicyContext
from jest.model.llama import build_hf_config, shape_summary
from jest.policies.scoring import sequence_losses
from jest.data.shards import EpochSampler
from jest.training.trainer import set_determinism


# ----------------------------------------------------------------------------- one shape
def measure_shape(spec: ShapeSpec, device: torch.device, precision: str = "fp32", compile_model: bool = False,
                  steps: int = 12, warmup: int = 3, score_n: int = 64, jest: bool = True,
                  score_prefix: float = 1.0, log=print, fast_path: bool = True, measured_peak: dict | None = None) -> dict:
    """All measurements for one shape (see the module docstring); returns a JSON-able dict."""
    hf_config = build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0)
    shape = shape_summary(hf_config)
    b, T = spec.batch, spec.seq_len
    train_fpt, fwd_fpt = train_flops_per_token(shape, T), forward_flops_per_token(shape, T)
    mm_prec = matmul_precision(device, precision)
    nominal, nominal_source = (cpu_peak(cpu_cores_used()) if device.type == "cpu" and mm_prec == "fp32"
                               else peak_flops_per_second(device, mm_prec))
    # fractions of peak against the measured matmul peak at this precision where there is one (tools.roofline)
    measured = (measured_peak or {}).get(mm_prec if mm_prec in ("fp32", "bf16") else "", {}).get("flops_per_s")
    peak, peak_source = ((measured, f"measured: best {measured_peak[mm_prec]['kernel']} matmul of n = "
                          f"{measured_peak[mm_prec]['n']} (tools/roofline.py)") if measured else (nominal, nominal_source))
    out: dict = {"shape": asdict(spec) | {"train": {k: spec.train[k] for k in ("lr", "weight_decay", "beta1",
                                                                              "beta2", "grad_clip")}},
                 "n_matmul_params": matmul_params(shape), "train_flops_per_token": train_fpt,
                 "forward_flops_per_token": fwd_fpt, "matmul_precision": mm_prec,
                 "peak_flops_per_second": peak, "peak_source": peak_source,
                 "nominal_peak_flops_per_second": nominal, "nominal_peak_source": nominal_source,
                 "steps": steps, "warmup": warmup}
    mem = PeakMemory(device)
    t_start = time.time()
    jest_rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="jest-bench-") as tmp:
        n_pool = max(4 * b * 10, 512)
        pool = synthetic_shard(Path(tmp), n_pool, T, spec.vocab)

        # -- peak memory: one training step + one scoring pass of the ours model, alone in memory
        mem.reset()
        ours = build_learner(spec, device, compile_model, seed=0)
        out["n_params"] = sum(p.numel() for p in ours.model.parameters())
        ours_loop = OursLoop(ours, UniformPolicy(), pool, spec, device, precision, Path(tmp) / "ours.jsonl")
        ours_loop()
        score_tokens = pool.get(np.arange(min(score_n, n_pool)))
        chunk = min(spec.score_batch_size, len(score_tokens))

        def score_pass(model: torch.nn.Module, tokens: torch.Tensor, fast: bool = False) -> float:
            t0 = time.perf_counter()
            with uninitialised_fill(not fast):
                losses, _ = sequence_losses(model, tokens, chunk, precision=precision, fast=fast)
            score_losses[fast] = losses
            _sync(device)
            return time.perf_counter() - t0

        score_losses: dict = {}

        score_pass(ours.model, score_tokens)
        out["peak_memory_bytes"] = mem.peak()
        out["peak_memory_method"] = mem.method
        log(f"  .. peak memory measured ({time.time() - t_start:.0f} s)")

        # -- scoring throughput (forward only, inference_mode, chunks of score_batch_size): eager and
        # the fast path (jest.model.fastpath.token_nll) alternating, on the same model and sequences
        n_score = max(2, min(steps, 5))
        if fast_path:
            t_score, t_score_fast = alternate(lambda: score_pass(ours.model, score_tokens),
                                              lambda: score_pass(ours.model, score_tokens, fast=True), n_score, 0)
        else:
            t_score = [score_pass(ours.model, score_tokens) for _ in range(n_score)]
        log(f"  .. scoring timed ({time.time() - t_start:.0f} s)")
        score_tps = len(score_tokens) * T / statistics.median(t_score)
        out["score"] = {"sequences": len(score_tokens), "chunk": chunk, "seconds": t_score,
                        "tokens_per_s": score_tps, "flops_per_s": score_tps * fwd_fpt,
                        "mfu": score_tps * fwd_fpt / peak if peak else None}
        if fast_path:
            fast_tps = len(score_tokens) * T / statistics.median(t_score_fast)
            out["score"] |= {"fast_seconds": t_score_fast, "fast_tokens_per_s": fast_tps,
                             "fast_flops_per_s": fast_tps * fwd_fpt,
                             "fast_mfu": fast_tps * fwd_fpt / peak if peak else None,
                             "fast_over_eager": fast_tps / score_tps,
                             "fast_loss_max_abs_diff": float((score_losses[True] - score_losses[False]).abs().max())}

        # -- ours against plain: same init (seed), same AdamW settings, the same batches
        plain = build_learner(spec, device, compile_model, seed=0)
        ids_sampler = EpochSampler(len(pool), seed=0)
        n_batches = 1 + warmup + steps
        batches = [pool.get(ids_sampler.take(i * b, b)).to(device) for i in range(n_batches)]
        plain_loop = PlainLoop(plain, batches, spec, device, precision)
        plain_loop()  # step 0, the step ours took while memory was measured
        # the fast path: the same loop, init and batches with train.fast_path (jest.model.fastpath)
        loops = [ours_loop, plain_loop]
        if fast_path:
            fast = build_learner(spec, device, compile_model, seed=0, fast=True)
            fast_loop = OursLoop(fast, UniformPolicy(), pool, spec, device, precision, Path(tmp) / "fast.jsonl")
            fast_loop()
            loops.append(fast_loop)
        t_ours, t_plain, *t_fast = alternate_many(loops, steps, warmup)
        log(f"  .. ours (eager) vs plain{' vs fast path' if fast_path else ''} timed ({time.time() - t_start:.0f} s)")
        ours_tps, plain_tps = b * T / statistics.median(t_ours), b * T / statistics.median(t_plain)
        diffs = [abs(float(x) - float(y)) for x, y in zip(ours.losses, plain.losses)]
        c_ours, c_plain = ours.cpu_seconds[-steps:], plain.cpu_seconds[-steps:]  # the timed steps' CPU time
        out["train"] = {"ours_seconds": t_ours, "plain_seconds": t_plain,
                        "ours_cpu_seconds": c_ours, "plain_cpu_seconds": c_plain,
                        "ours_tokens_per_s": ours_tps, "plain_tokens_per_s": plain_tps,
                        "ours_over_plain": ours_tps / plain_tps,
                        "ours_flops_per_s": ours_tps * train_fpt, "plain_flops_per_s": plain_tps * train_fpt,
                        "ours_mfu": ours_tps * train_fpt / peak if peak else None,
                        "plain_mfu": plain_tps * train_fpt / peak if peak else None,
                        "ours_over_plain_paired": statistics.median(p / o for o, p in zip(t_ours, t_plain)),
                        "ours_over_plain_cpu": statistics.median(c_plain) / statistics.median(c_ours),
                        "loss_max_abs_diff": max(diffs) if diffs else None,
                        "losses_compared": len(diffs)}
        if fast_path:
            t_fast = t_fast[0]
            fast_tps = b * T / statistics.median(t_fast)
            fast_diffs = [abs(float(x) - float(y)) for x, y in zip(ours.losses, fast.losses)]
            c_fast = fast.cpu_seconds[-steps:]
            out["train"] |= {"fast_seconds": t_fast, "fast_cpu_seconds": c_fast, "fast_tokens_per_s": fast_tps,
                             "fast_flops_per_s": fast_tps * train_fpt,
                             "fast_mfu": fast_tps * train_fpt / peak if peak else None,
                             "fast_over_eager": fast_tps / ours_tps,
                             "fast_over_eager_paired": statistics.median(o / f for o, f in zip(t_ours, t_fast)),
                             # CPU seconds per step, eager over fast: the load-robust estimate (docs/benchmarks.md)
                             "fast_over_eager_cpu": statistics.median(c_ours) / statistics.median(c_fast),
                             "fast_loss_max_abs_diff": max(fast_diffs) if fast_diffs else None}
            del fast, fast_loop
        del plain, plain_loop, batches
        gc.collect()

        # -- the JEST step against the uniform step, both through OursLoop on the ours model
        if jest:
            ctx = PolicyContext(seed=0, seq_len=T, pool_size=n_pool, pool_sha256="bench",
                                references_root=PROJECT_ROOT, device=device, precision=precision)
            ref_scores = np.random.default_rng(0).normal(5.0, 0.5, n_pool).astype(np.float32)
            base_arm = load_config(PROJECT_ROOT / "config" / "smoke.yaml",
                                   overrides={"arms": {"j": {"policy": "jest"}}})["arms"]["j"]
            for f in FILTER_RATIOS:
                arm = {**base_arm, "filter_ratio": f, "score_prefix": score_prefix,
                       "score_batch_size": spec.score_batch_size}
                policy = JestPolicy(arm, ctx, ref_scores=ref_scores)
                B = super_batch_size(b, f)
                if B > n_pool:
                    raise ValueError(f"super-batch {B} > synthetic pool {n_pool}")
                uni = OursLoop(ours, UniformPolicy(), pool, spec, device, precision, Path(tmp) / f"u{f}.jsonl")
                jst = OursLoop(ours, policy, pool, spec, device, precision, Path(tmp) / f"j{f}.jsonl")
                t_uni, t_jest = alternate(uni, jst, steps, warmup)
                log(f"  .. JEST f={f} timed ({time.time() - t_start:.0f} s)")
                measured = statistics.median(t_jest) / statistics.median(t_uni)
                analytic = analytic_ratio(shape, T, b, B, policy.prefix_len)
                jest_rows.append({"filter_ratio": f, "super_batch": B, "prefix_len": policy.prefix_len,
                                  "uniform_s": statistics.median(t_uni), "jest_s": statistics.median(t_jest),
                                  "uniform_seconds": t_uni, "jest_seconds": t_jest,
                                  "measured_ratio": measured, "analytic_ratio": analytic,
                                  "measured_over_analytic": measured / analytic,
                                  # the median of the per-pair ratios (adjacent steps): a cross-check
                                  "measured_over_analytic_paired":
                                      statistics.median(j / u for u, j in zip(t_uni, t_jest)) / analytic})
        del ours, ours_loop, score_tokens
        gc.collect()
    out["jest"] = jest_rows
    return out



def _parse_batch(text: str | None) -> dict[str, int]:
    out = {}
    for part in filter(None, (text or "").split(",")):
        key, _, value = part.partition("=")
        if key not in SHAPE_NAMES or not value.isdigit():
            raise SystemExit(f"--batch expects NAME=N[,NAME=N] with NAME in {list(SHAPE_NAMES)}, got {part!r}")
        out[key] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(PROJECT_ROOT / "config" / "tiny.yaml"),
                        help="config whose learner is the 'tiny' shape (and whose train settings all shapes use)")
    parser.add_argument("--shapes", default=None, help=f"comma-separated, from {list(SHAPE_NAMES)} "
                        f"(default: {DEFAULT_SHAPES['cpu']} on CPU, {DEFAULT_SHAPES['cuda']} on CUDA)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                        help="bf16: torch.autocast to bfloat16 (fp32 weights and optimizer states)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (both loops)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per loop (median taken); default per shape and device: "
                             + ", ".join(f"{d}/{s} {v[0]}" for (d, s), v in DEFAULT_STEPS.items()))
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per loop first")
    parser.add_argument("--batch", default=None, help="batch size per shape, e.g. '125m=2' "
                        "(default: tiny from the config; 125m 1 on CPU, 16 on CUDA)")
    parser.add_argument("--jest-shapes", default=None,
                        help="shapes that get the JEST/uniform timing (default: tiny on CPU, all shapes on CUDA)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--fast", default="auto", choices=("auto", "on", "off"),
                        help="also time the fast path (train.fast_path, jest.model.fastpath) against eager; "
                             "auto: on CPU only (the GPU check keeps its time budget)")
    parser.add_argument("--score-prefix", type=float, default=1.0, help="cheap scoring: share of tokens scored")
    parser.add_argument("--roofline", default=True, action=argparse.BooleanOptionalAction,
                        help="measure the matmul peak per precision at start-up (tools/roofline.py; a few seconds) "
                             "and give fractions of peak against it (--no-roofline: against the nominal peak)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is not met")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="write all measurements to PATH; bare --json prints them on stdout as the last "
                             "thing (the human-readable lines then go to stderr)")
    args = parser.parse_args(argv)
    if args.json == "-":  # the JSON document alone on stdout; everything else to stderr
        real_stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            data = _run(args, parser, argv)
        real_stdout.write(json.dumps(data, indent=2) + "\n")
        return 1 if (args.check and any(not c["pass"] for c in data["checks"])) else 0
    data = _run(args, parser, argv)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if (args.check and any(not c["pass"] for c in data["checks"])) else 0


def _run(args, parser, argv) -> dict:
    """Every measurement of one bench run (printed as it goes) as the JSON document."""

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    set_determinism(device)  # as jest.training.trainer does (bit-exact on CPU; cuBLAS workspace on CUDA)
    shapes = [s.strip() for s in (args.shapes or DEFAULT_SHAPES[device.type]).split(",") if s.strip()]
    for s in shapes:
        if s not in SHAPE_NAMES:
            parser.error(f"unknown shape {s!r}; allowed values: {list(SHAPE_NAMES)}")
    jest_shapes = ([s.strip() for s in args.jest_shapes.split(",") if s.strip()] if args.jest_shapes is not None
                   else (["tiny"] if device.type == "cpu" else shapes))
    batches = _parse_batch(args.batch)
    cfg = load_config(args.config)

    meta = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "python -m tools.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": str(device), "device_name": device_name(device), "precision": args.precision,
            "compile": args.compile, "fast": args.fast, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "config": cfg["name"],
            "score_prefix": args.score_prefix, "load_average_start": _loadavg(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            # the fast path's matmuls (jest.model.cpu_matmul): oneDNN where torch runs AVX-512 kernels, else MKL
            "fast_path_matmuls": "oneDNN" if onednn_linear_available() else "MKL"}
    try:
        from jest.tracking.records import git_commit
        meta["git_commit"] = git_commit()
    except Exception:  # noqa: BLE001 - provenance only
        meta["git_commit"] = "unknown"
    print(f"device {meta['device']} ({meta['device_name']}), precision {args.precision}, compile "
          f"{'on' if args.compile else 'off'}, {meta['threads']} threads, torch {torch.__version__}, "
          f"{meta['date_utc']}, load average {meta['load_average_start']} on {meta['cpus']} CPUs; CPU kernels "
          f"{meta['cpu_capability']}, fast-path matmuls {meta['fast_path_matmuls']}", flush=True)

    # the measured matmul peak per precision, at start-up (tools/roofline.py), beside the nominal one
    from jest.model.cpu import cpu_bf16_units
    from tools.roofline import measured_peaks
    meta["cpu"] = cpu_bf16_units() if device.type == "cpu" else None
    peaks = measured_peaks(device) if args.roofline else {}
    for prec, pk in peaks.items():
        nominal = cpu_peak(torch.get_num_threads())[1] if device.type == "cpu" and prec == "fp32" else None
        print(f"measured {prec} matmul peak: " + (f"{pk['flops_per_s'] / 1e9:.0f} GFLOP/s ({pk['kernel']}, n = "
              f"{pk['n']}, {pk['threads']} threads)" if pk["flops_per_s"] else pk["why"])
              + (f"; nominal: {nominal}" if nominal else ""), flush=True)

    results, specs = {}, {}
    t_start = time.time()
    for name in shapes:
        spec = shape_spec(name, cfg, device, batches.get(name))
        d_steps, d_warm, score_n = DEFAULT_STEPS[(device.type, name)]
        steps = args.steps if args.steps is not None else d_steps
        warmup = args.warmup if args.warmup is not None else d_warm
        print(f"== {name}: measuring ({steps} timed steps per loop after {warmup} warm-up steps)...", flush=True)
        t0 = time.time()
        r = measure_shape(spec, device, args.precision, args.compile, steps, warmup, score_n,
                          jest=name in jest_shapes, score_prefix=args.score_prefix,
                          log=lambda *a: print(*a, flush=True),
                          fast_path=args.fast == "on" or (args.fast == "auto" and device.type == "cpu"),
                          measured_peak=peaks)
        r["wall_s"] = time.time() - t0
        results[name], specs[name] = r, spec
        print(describe(spec, r) + f"  [{r['wall_s']:.0f} s]", flush=True)
        print_shape(name, r)
    meta["load_average_end"] = _loadavg()
    meta["measured_peak"] = peaks
    rows = checks(results)
    n_fail = sum(not c["pass"] for c in rows)
    print(f"== targets: {len(rows) - n_fail} PASS, {n_fail} FAIL  (whole run {time.time() - t_start:.0f} s, "
          f"load average at the end {meta['load_average_end']})")
    for c in rows:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['name']}: {c['value']:.3f} (target {c['target']})")
    return {"schema": "jest-bench-v2", "meta": meta, "shapes": results, "checks": rows}


if __name__ == "__main__":
    sys.exit(main())

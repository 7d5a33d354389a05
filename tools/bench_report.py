"""tools.bench's targets, PASS/FAIL checks and printed report (the measurements are in tools/bench.py)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from tools.bench_loops import ShapeSpec

FILTER_RATIOS = (0.5, 0.8, 0.9)
OURS_OVER_PLAIN_TARGET = 0.95   # ours reaches at least 95% of the plain loop's tokens/s
JEST_ANALYTIC_MAX = 1.2         # measured / analytic step-cost ratio at most 1.2

# The fast path (train.fast_path, jest.model.fastpath) over today's eager step, training tokens/s
# measured in one run (issue #16): the tiny learner and the ladder's top CPU rung.
FAST_OVER_EAGER_TARGET = {"tiny": 1.5, "ladder_top": 1.3}


def checks(results: dict) -> list[dict]:
    """PASS / FAIL per target: ours/plain >= 0.95 per shape; fast path/eager training tokens/s
    >= 1.5 (tiny) and >= 1.3 (ladder_top); JEST measured/analytic <= 1.2."""
    rows = []
    for name, r in results.items():
        v = r["train"]["ours_over_plain"]
        rows.append({"name": f"{name}: ours/plain tokens/s", "value": v, "target": f">= {OURS_OVER_PLAIN_TARGET}",
                     "pass": v >= OURS_OVER_PLAIN_TARGET})
        if name in FAST_OVER_EAGER_TARGET and "fast_over_eager" in r["train"]:
            v, target = r["train"]["fast_over_eager"], FAST_OVER_EAGER_TARGET[name]
            rows.append({"name": f"{name}: fast path/eager training tokens/s", "value": v, "target": f">= {target}",
                         "pass": v >= target})
        for j in r["jest"]:
            v = j["measured_over_analytic"]
            rows.append({"name": f"{name}: JEST/uniform step, measured/analytic at f={j['filter_ratio']}",
                         "value": v, "target": f"<= {JEST_ANALYTIC_MAX}", "pass": v <= JEST_ANALYTIC_MAX})
    return rows


def _fmt_mfu(mfu: float | None) -> str:
    return f"{100 * mfu:5.1f}% of peak" if mfu is not None else "peak n/a"


def print_shape(name: str, r: dict, log=print) -> None:
    t, s = r["train"], r["score"]
    log(f"  peak memory    {r['peak_memory_bytes'] / 2**20:>12,.0f} MiB  ({r['peak_memory_method']} above the "
        f"pre-model baseline: weights, grads, AdamW states, activations of one step + one scoring pass)")
    log(f"  train (ours)   {t['ours_tokens_per_s']:>12,.0f} tokens/s  {t['ours_flops_per_s'] / 1e12:8.3f} TFLOP/s  "
        f"{_fmt_mfu(t['ours_mfu'])}")
    log(f"  train (plain)  {t['plain_tokens_per_s']:>12,.0f} tokens/s  {t['plain_flops_per_s'] / 1e12:8.3f} TFLOP/s  "
        f"{_fmt_mfu(t['plain_mfu'])}")
    if "fast_tokens_per_s" in t:
        log(f"  train (fast)   {t['fast_tokens_per_s']:>12,.0f} tokens/s  {t['fast_flops_per_s'] / 1e12:8.3f} TFLOP/s  "
            f"{_fmt_mfu(t['fast_mfu'])}  fast/eager {t['fast_over_eager']:.2f} (paired {t['fast_over_eager_paired']:.2f}, "
            f"CPU time {t['fast_over_eager_cpu']:.2f}); "
            f"losses differ by at most {t['fast_loss_max_abs_diff']:.1e}")
    log(f"  score (fwd)    {s['tokens_per_s']:>12,.0f} tokens/s  {s['flops_per_s'] / 1e12:8.3f} TFLOP/s  "
        f"{_fmt_mfu(s['mfu'])}  ({s['sequences']} sequences in chunks of {s['chunk']})")
    if "fast_tokens_per_s" in s:
        log(f"  score (fast)   {s['fast_tokens_per_s']:>12,.0f} tokens/s  {s['fast_flops_per_s'] / 1e12:8.3f} TFLOP/s  "
            f"{_fmt_mfu(s['fast_mfu'])}  fast/eager {s['fast_over_eager']:.2f}; "
            f"losses differ by at most {s['fast_loss_max_abs_diff']:.1e}")
    log(f"  peak FLOP/s    {r['peak_source']}")
    ok = t["ours_over_plain"] >= OURS_OVER_PLAIN_TARGET
    log(f"  ours/plain     {t['ours_over_plain']:.3f} (CPU time {t['ours_over_plain_cpu']:.3f}; median of {r['steps']} "
        f"alternating steps each; losses of the "
        f"two loops differ by at most {t['loss_max_abs_diff']:.2e} over {t['losses_compared']} steps)  "
        f"target >= {OURS_OVER_PLAIN_TARGET}: {'PASS' if ok else 'FAIL'}")
    if r["jest"]:
        log(f"  JEST step vs uniform step (median of {r['steps']} alternating steps):")
        log(f"  {'f':>5} {'B':>5} {'uniform ms':>11} {'jest ms':>10} {'measured':>9} {'analytic':>9} "
            f"{'meas/anal':>10}  target <= {JEST_ANALYTIC_MAX}")
        for j in r["jest"]:
            ok = j["measured_over_analytic"] <= JEST_ANALYTIC_MAX
            log(f"  {j['filter_ratio']:>5.2f} {j['super_batch']:>5d} {1e3 * j['uniform_s']:>11.1f} "
                f"{1e3 * j['jest_s']:>10.1f} {j['measured_ratio']:>9.2f} {j['analytic_ratio']:>9.2f} "
                f"{j['measured_over_analytic']:>10.2f}  {'PASS' if ok else 'FAIL'}")


def describe(spec: ShapeSpec, r: dict) -> str:
    m = spec.model
    return (f"== {spec.name}: {m['n_layer']} layers, d={m['n_embd']}, {m['n_head']} heads, V={spec.vocab}, "
            f"T={spec.seq_len}; {r['n_params'] / 1e6:.1f}M parameters ({r['n_matmul_params'] / 1e6:.1f}M in "
            f"matmuls); batch {spec.batch} x {spec.seq_len}"
            + (f" in micro-batches of {spec.micro}" if spec.micro < spec.batch else ""))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: how busy the (shared) machine was while measuring."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


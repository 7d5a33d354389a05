"""Benchmark: throughput, memory, MFU, loop overhead, the CPU fast path, and the JEST step against the uniform step.

    python -m jest.bench [--shapes tiny,ladder_top,125m] [--device auto|cpu|cuda] [--precision fp32|bf16]
                         [--compile] [--fast auto|on|off] [--threads 2] [--steps N] [--check] [--json [PATH]]

Everything printed is measured in the run itself, per model shape:

* eager against the fast path (train.fast_path, jest.fastpath; by default on CPU only):
  training and scoring tokens/s and FLOP/s as a share of the peak (on CPU derived from the
  ISA, clock and cores, jest.hardware.cpu_peak, printed with its derivation), timed
  alternating with the eager loops in one process; targets fast/eager >= 1.5 (tiny) and
  >= 1.3 (ladder_top, the ladder top CPU rung);

* tokens/s of training (the library's per-step path, "ours") and of forward-only
  scoring (jest.scoring.sequence_losses, what JEST runs on every super-batch), the
  analytic FLOP/s they amount to (jest.flops) and, where the chip's peak is known
  (jest.hardware), the MFU;
* peak memory of one training step plus one scoring pass: CUDA max_memory_allocated,
  or on CPU the process's peak RSS (VmHWM, reset through /proc/self/clear_refs),
  both above what was allocated before the model was built;
* ours against plain: "ours" is the body of jest.trainer's loop in one process
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
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from baselines.uniform import UniformPolicy
from jest.config import PROJECT_ROOT, load_config, super_batch_size
from jest.distributed import World
from jest.flops import FlopLedger, forward_flops_per_token, matmul_params, train_flops_per_token
from jest.fastpath import causal_lm_loss, uninitialised_fill
from jest.hardware import cpu_cores_used, cpu_peak, matmul_precision, peak_flops_per_second
from jest.jest_policy import JestPolicy, PolicyContext
from jest.model import build_hf_config, build_model, shape_summary
from jest.scoring import sequence_losses
from jest.shards import INDEX_DTYPE, EpochSampler, TokenShard
from jest.tracking import MetricsFile
from jest.trainer import (build_optimizer, label_shares, lr_at, read_step_values, set_determinism, to_device,
                          train_step)

FILTER_RATIOS = (0.5, 0.8, 0.9)
OURS_OVER_PLAIN_TARGET = 0.95   # ours reaches at least 95% of the plain loop's tokens/s
JEST_ANALYTIC_MAX = 1.2         # measured / analytic step-cost ratio at most 1.2

# The fast path (train.fast_path, jest.fastpath) over today's eager step, training tokens/s
# measured in one run (issue #16): the tiny learner and the ladder's top CPU rung.
FAST_OVER_EAGER_TARGET = {"tiny": 1.5, "ladder_top": 1.3}

GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "intermediate_size": None, "tie_embeddings": True}
# The ladder top CPU rung (issue #15 uses it as the largest CPU rung): the tiny learner's
# vocabulary, context and batch, 4 layers of d=176 (4 heads of 44, SwiGLU 480):
# 4 x (4 d^2 + 3 d 480) + 2048 d = 1.87M matmul params, 4.5x tiny's 0.42M; 6N + 12LdT =
# 12.3 MFLOP/token, 4.4x tiny's.
LADDER_TOP_CPU = {"n_layer": 4, "n_embd": 176, "n_head": 4, "intermediate_size": None, "tie_embeddings": True}
SHAPE_NAMES = ("tiny", "ladder_top", "125m")
DEFAULT_SHAPES = {"cpu": "tiny,ladder_top", "cuda": "tiny,125m"}
# (device type, shape) -> (timed steps, warm-up steps, sequences scored per scoring pass)
DEFAULT_STEPS = {("cpu", "tiny"): (12, 3, 64), ("cpu", "ladder_top"): (6, 2, 32), ("cpu", "125m"): (3, 1, 2),
                 ("cuda", "tiny"): (30, 5, 256), ("cuda", "ladder_top"): (30, 5, 256),
                 ("cuda", "125m"): (20, 5, 128)}


# ----------------------------------------------------------------------------- shapes
@dataclass
class ShapeSpec:
    """One model shape and the batch it is timed with."""

    name: str
    model: dict                 # model config (n_layer, n_embd, n_head, intermediate_size, tie_embeddings)
    vocab: int
    seq_len: int
    batch: int
    micro: int
    train: dict                 # train config: lr schedule, AdamW settings, grad_clip
    score_batch_size: int = 16  # chunk size of the scoring passes (the JEST arm's default)


def shape_spec(name: str, cfg: dict, device: torch.device, batch: int | None = None) -> ShapeSpec:
    """`tiny` = the learner of `cfg` (config/tiny.yaml by default); `ladder_top` = the ladder top
    CPU rung (LADDER_TOP_CPU with tiny's data and batch); `125m` = GPT-2-small-like."""
    tcfg = {**cfg["train"], "steps": 10_000}  # lr schedule: stay in the decay phase's early part
    if name == "tiny":
        b = batch or tcfg["batch_size"]
        micro = min(tcfg["micro_batch_size"] or b, b)
        if b % micro:
            micro = b
        return ShapeSpec("tiny", dict(cfg["model"]), cfg["data"]["vocab_size"], cfg["data"]["seq_len"], b, micro, tcfg)
    if name == "ladder_top":
        b = batch or tcfg["batch_size"]
        micro = min(tcfg["micro_batch_size"] or b, b)
        return ShapeSpec("ladder_top", dict(LADDER_TOP_CPU), cfg["data"]["vocab_size"], cfg["data"]["seq_len"], b,
                         b if b % micro else micro, tcfg)
    if name == "125m":
        b = batch or (16 if device.type == "cuda" else 1)
        return ShapeSpec("125m", dict(GPT2_SMALL), 50257, 1024, b, b, {**tcfg, "lr": 6e-4, "warmup_steps": 100})
    raise ValueError(f"unknown shape {name!r}; allowed values: {list(SHAPE_NAMES)}")


def analytic_ratio(shape: dict, seq_len: int, b: int, B: int, prefix_len: int) -> float:
    """FLOPs of a JEST step (train b sequences + score B prefixes) over those of a uniform step."""
    train = train_flops_per_token(shape, seq_len) * b * seq_len
    score = forward_flops_per_token(shape, prefix_len) * B * prefix_len
    return (train + score) / train


# ----------------------------------------------------------------------------- helpers
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    """bf16 autocast (weights, grads and AdamW states stay fp32), or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return contextlib.nullcontext()


def _proc_status_kib(key: str) -> int | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) if m else None


class PeakMemory:
    """Peak memory above a baseline taken at `reset()`.

    CUDA: torch.cuda.max_memory_allocated (tensors only, not the allocator's cache).
    CPU (Linux): the process's peak resident set (VmHWM), reset by writing 5 to
    /proc/self/clear_refs, minus the resident set at reset time. Elsewhere the
    process-lifetime ru_maxrss is used, which can only show growth past earlier peaks."""

    def __init__(self, device: torch.device):
        self.device, self.base = device, 0
        self.method = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS (VmHWM)"

    def reset(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.base = (_proc_status_kib("VmRSS") or 0) * 1024
        except OSError:
            import resource
            self.method = "ru_maxrss (process high-water mark: growth past earlier peaks only)"
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak(self) -> int:
        """Bytes above the baseline at the peak since `reset()`."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) - self.base
        hwm = _proc_status_kib("VmHWM")
        if hwm is None or self.method.startswith("ru_maxrss"):
            import resource
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(0, hwm * 1024 - self.base)


def synthetic_shard(root: Path, n_seq: int, seq_len: int, vocab: int, seed: int = 0) -> TokenShard:
    """A real TokenShard folder ("pool" split) of random tokens with three fake provenance labels,
    so that the timed path reads through the same class (memory map, int64 cast) as training."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if vocab <= 65536 else np.uint32
    np.save(root / "pool.tokens.npy", rng.integers(0, vocab, (n_seq, seq_len), dtype=dtype))
    index = np.zeros(n_seq, dtype=INDEX_DTYPE)
    index["label"] = rng.integers(0, 3, n_seq)
    np.save(root / "pool.index.npy", index)
    np.save(root / "token_bytes.npy", np.ones(vocab, dtype=np.int32))
    (root / "labels.json").write_text(json.dumps([{"source": s, "quality": q, "corruption": None}
                                                  for s, q in (("a", "clean"), ("b", "noisy"), ("c", "noisy"))]))
    (root / "manifest.json").write_text(json.dumps({"seq_len": seq_len, "vocab_size": vocab, "dtype": np.dtype(dtype).name,
                                                    "splits": {"pool": {"sequences": n_seq, "sha256": "bench"}}}))
    return TokenShard(root, "pool", verify_hash=False)  # random tokens: no build_shards hash to check


@dataclass
class Learner:
    """A model, its optimizer and the module the training step runs through (compiled with --compile;
    scoring uses the plain model, as the trainer does)."""

    model: torch.nn.Module
    train_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    losses: list = field(default_factory=list)  # per step, as tensors (read after the timings)
    fast: bool = False                           # train.fast_path (jest.fastpath)


def build_learner(spec: ShapeSpec, device: torch.device, compile_model: bool, seed: int = 0,
                  fast: bool = False) -> Learner:
    hf_config = build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0)
    model = build_model(hf_config, seed=seed).to(device)
    model.train()
    optimizer = build_optimizer(model, {**spec.train, "fast_path": fast}, device)
    return Learner(model, torch.compile(model) if compile_model else model, optimizer, fast=fast)


class OursLoop:
    """The body of jest.trainer's loop for one policy (one process), minus evaluation,
    checkpoints, snapshots and MLflow: sampler -> shard -> policy -> device -> train_step ->
    loss read and NaN check at logged steps (every step on CPU) -> FLOP ledger -> metrics row."""

    def __init__(self, learner: Learner, policy, pool: TokenShard, spec: ShapeSpec, device: torch.device,
                 precision: str, metrics_path: Path, seed: int = 0):
        self.learner, self.policy, self.pool, self.spec = learner, policy, pool, spec
        self.device, self.precision = device, precision
        self.world = World(device=device)
        self.subset = np.arange(len(pool))
        self.sampler = EpochSampler(len(self.subset), seed=seed)
        self.super_b = policy.super_batch_size(spec.batch)
        self.my_rows = self.world.batch_slice(spec.batch)
        self.train_fpt = train_flops_per_token(shape_summary(learner.model.config), spec.seq_len)
        self.ledger = FlopLedger()
        self.metrics = MetricsFile(metrics_path)
        self.read_every_step = device.type != "cuda"
        self.step, self.position = 0, 0

    def __call__(self) -> float:
        """One step; returns its wall time in seconds (after a device synchronisation)."""
        spec, tcfg, b, T = self.spec, self.spec.train, self.spec.batch, self.spec.seq_len
        t0 = time.perf_counter()
        cand_ids = self.subset[self.sampler.take(self.position, self.super_b)]
        self.position += self.super_b
        candidates = self.pool.get(cand_ids)                                   # (B, T)
        selection = self.policy.select(self.step, candidates, cand_ids, self.learner.model, b)
        mine = torch.as_tensor(selection.chosen[self.my_rows])
        batch = to_device(candidates[mine], self.device)                       # (b, T)
        fast = self.learner.fast
        with uninitialised_fill(not fast):  # the fast path's setting, for this loop's steps only
            loss, grad_norm = train_step(self.learner.train_model, self.learner.optimizer, batch, spec.micro,
                                         lr_at(self.step, tcfg), tcfg["grad_clip"], self.precision,
                                         causal_lm_loss if fast and not isinstance(
                                             self.learner.train_model, torch._dynamo.eval_frame.OptimizedModule)
                                         else None)
        self.step += 1
        self.ledger.add_train(self.train_fpt * b * T)
        self.ledger.add_score(selection.score_flops)
        logged = self.step % tcfg["log_every"] == 0
        if logged or self.read_every_step:
            train_loss, grad_norm_value = read_step_values(self.world, loss, grad_norm, self.step, Path("."))
        if logged:
            self.metrics.append({
                "step": self.step, "examples_seen": self.step * b, "tokens_seen": self.step * b * T,
                "candidates_seen": self.position, "train_loss": train_loss, "lr": lr_at(self.step - 1, tcfg),
                "grad_norm": grad_norm_value, **self.ledger.snapshot(), **selection.diagnostics,
                **label_shares(self.pool.labels, self.pool.index["label"][cand_ids[selection.chosen]], "sel_share_"),
                "wall_time": time.time(), "time": time.time()})
        _sync(self.device)
        dt = time.perf_counter() - t0
        self.learner.losses.append(loss.detach())
        return dt


class PlainLoop:
    """A textbook PyTorch loop on batches already on the device (the batches OursLoop trains on)."""

    def __init__(self, learner: Learner, batches: list[torch.Tensor], spec: ShapeSpec, device: torch.device,
                 precision: str):
        self.learner, self.batches, self.spec = learner, batches, spec
        self.device, self.precision = device, precision
        self.params = list(learner.model.parameters())
        self.step = 0

    def __call__(self) -> float:
        model, opt, tcfg, micro = self.learner.train_model, self.learner.optimizer, self.spec.train, self.spec.micro
        x_all = self.batches[self.step]
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(self.step, tcfg)
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for i in range(0, x_all.size(0), micro):  # gradient accumulation when micro < batch
            x = x_all[i:i + micro]
            with autocast(self.device, self.precision):
                loss = model(input_ids=x, labels=x).loss * (x.size(0) / x_all.size(0))
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(self.params, tcfg["grad_clip"])
        opt.step()
        total.item()  # the loss a loop logs (a host synchronisation)
        self.step += 1
        _sync(self.device)
        dt = time.perf_counter() - t0
        self.learner.losses.append(total)
        return dt


def alternate(a, b, steps: int, warmup: int) -> tuple[list[float], list[float]]:
    """Run a and b `warmup` times each untimed, then `steps` times each, alternating and flipping
    the order every pair (a b, b a, a b, ...); return the two lists of step times."""
    ta, tb = alternate_many([a, b], steps, warmup)
    return ta, tb


def alternate_many(loops: list, steps: int, warmup: int) -> list[list[float]]:
    """`alternate` for any number of loops: each round runs every loop once, in an order that
    rotates and reverses from round to round, so that machine noise hits all of them alike."""
    for _ in range(warmup):
        for loop in loops:
            loop()
    times: list[list[float]] = [[] for _ in loops]
    n = len(loops)
    for i in range(steps):
        order = [(i // 2 + k) % n for k in range(n)]
        for k in (order if i % 2 == 0 else order[::-1]):
            times[k].append(loops[k]())
    return times


# ----------------------------------------------------------------------------- one shape
def measure_shape(spec: ShapeSpec, device: torch.device, precision: str = "fp32", compile_model: bool = False,
                  steps: int = 12, warmup: int = 3, score_n: int = 64, jest: bool = True,
                  score_prefix: float = 1.0, log=print, fast_path: bool = True) -> dict:
    """All measurements for one shape (see the module docstring); returns a JSON-able dict."""
    hf_config = build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0)
    shape = shape_summary(hf_config)
    b, T = spec.batch, spec.seq_len
    train_fpt, fwd_fpt = train_flops_per_token(shape, T), forward_flops_per_token(shape, T)
    mm_prec = matmul_precision(device, precision)
    peak, peak_source = (cpu_peak(cpu_cores_used()) if device.type == "cpu" and mm_prec == "fp32"
                         else peak_flops_per_second(device, mm_prec))
    out: dict = {"shape": asdict(spec) | {"train": {k: spec.train[k] for k in ("lr", "weight_decay", "beta1",
                                                                              "beta2", "grad_clip")}},
                 "n_matmul_params": matmul_params(shape), "train_flops_per_token": train_fpt,
                 "forward_flops_per_token": fwd_fpt, "matmul_precision": mm_prec,
                 "peak_flops_per_second": peak, "peak_source": peak_source,
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
        # the fast path (jest.fastpath.token_nll) alternating, on the same model and sequences
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
        # the fast path: the same loop, init and batches with train.fast_path (jest.fastpath)
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
        out["train"] = {"ours_seconds": t_ours, "plain_seconds": t_plain,
                        "ours_tokens_per_s": ours_tps, "plain_tokens_per_s": plain_tps,
                        "ours_over_plain": ours_tps / plain_tps,
                        "ours_flops_per_s": ours_tps * train_fpt, "plain_flops_per_s": plain_tps * train_fpt,
                        "ours_mfu": ours_tps * train_fpt / peak if peak else None,
                        "plain_mfu": plain_tps * train_fpt / peak if peak else None,
                        "ours_over_plain_paired": statistics.median(p / o for o, p in zip(t_ours, t_plain)),
                        "loss_max_abs_diff": max(diffs) if diffs else None,
                        "losses_compared": len(diffs)}
        if fast_path:
            t_fast = t_fast[0]
            fast_tps = b * T / statistics.median(t_fast)
            fast_diffs = [abs(float(x) - float(y)) for x, y in zip(ours.losses, fast.losses)]
            out["train"] |= {"fast_seconds": t_fast, "fast_tokens_per_s": fast_tps,
                             "fast_flops_per_s": fast_tps * train_fpt,
                             "fast_mfu": fast_tps * train_fpt / peak if peak else None,
                             "fast_over_eager": fast_tps / ours_tps,
                             "fast_over_eager_paired": statistics.median(o / f for o, f in zip(t_ours, t_fast)),
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


# ----------------------------------------------------------------------------- checks and report
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
            f"{_fmt_mfu(t['fast_mfu'])}  fast/eager {t['fast_over_eager']:.2f} (paired {t['fast_over_eager_paired']:.2f}); "
            f"losses differ by at most {t['fast_loss_max_abs_diff']:.1e}")
    log(f"  score (fwd)    {s['tokens_per_s']:>12,.0f} tokens/s  {s['flops_per_s'] / 1e12:8.3f} TFLOP/s  "
        f"{_fmt_mfu(s['mfu'])}  ({s['sequences']} sequences in chunks of {s['chunk']})")
    if "fast_tokens_per_s" in s:
        log(f"  score (fast)   {s['fast_tokens_per_s']:>12,.0f} tokens/s  {s['fast_flops_per_s'] / 1e12:8.3f} TFLOP/s  "
            f"{_fmt_mfu(s['fast_mfu'])}  fast/eager {s['fast_over_eager']:.2f}; "
            f"losses differ by at most {s['fast_loss_max_abs_diff']:.1e}")
    log(f"  peak FLOP/s    {r['peak_source']}")
    ok = t["ours_over_plain"] >= OURS_OVER_PLAIN_TARGET
    log(f"  ours/plain     {t['ours_over_plain']:.3f} (median of {r['steps']} alternating steps each; losses of the "
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


def _parse_batch(text: str | None) -> dict[str, int]:
    out = {}
    for part in filter(None, (text or "").split(",")):
        key, _, value = part.partition("=")
        if key not in SHAPE_NAMES or not value.isdigit():
            raise SystemExit(f"--batch expects NAME=N[,NAME=N] with NAME in {list(SHAPE_NAMES)}, got {part!r}")
        out[key] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jest.bench", description=__doc__,
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
                        help="also time the fast path (train.fast_path, jest.fastpath) against eager; "
                             "auto: on CPU only (the GPU check keeps its time budget)")
    parser.add_argument("--score-prefix", type=float, default=1.0, help="cheap scoring: share of tokens scored")
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
    set_determinism(device)  # as jest.trainer does (bit-exact on CPU; cuBLAS workspace on CUDA)
    shapes = [s.strip() for s in (args.shapes or DEFAULT_SHAPES[device.type]).split(",") if s.strip()]
    for s in shapes:
        if s not in SHAPE_NAMES:
            parser.error(f"unknown shape {s!r}; allowed values: {list(SHAPE_NAMES)}")
    jest_shapes = ([s.strip() for s in args.jest_shapes.split(",") if s.strip()] if args.jest_shapes is not None
                   else (["tiny"] if device.type == "cpu" else shapes))
    batches = _parse_batch(args.batch)
    cfg = load_config(args.config)

    meta = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "python -m jest.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": str(device), "device_name": device_name(device), "precision": args.precision,
            "compile": args.compile, "fast": args.fast, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "config": cfg["name"],
            "score_prefix": args.score_prefix, "load_average_start": _loadavg()}
    try:
        from jest.tracking import git_commit
        meta["git_commit"] = git_commit()
    except Exception:  # noqa: BLE001 - provenance only
        meta["git_commit"] = "unknown"
    print(f"device {meta['device']} ({meta['device_name']}), precision {args.precision}, compile "
          f"{'on' if args.compile else 'off'}, {meta['threads']} threads, torch {torch.__version__}, "
          f"{meta['date_utc']}, load average {meta['load_average_start']} on {meta['cpus']} CPUs", flush=True)

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
                          fast_path=args.fast == "on" or (args.fast == "auto" and device.type == "cpu"))
        r["wall_s"] = time.time() - t0
        results[name], specs[name] = r, spec
        print(describe(spec, r) + f"  [{r['wall_s']:.0f} s]", flush=True)
        print_shape(name, r)
    meta["load_average_end"] = _loadavg()
    rows = checks(results)
    n_fail = sum(not c["pass"] for c in rows)
    print(f"== targets: {len(rows) - n_fail} PASS, {n_fail} FAIL  (whole run {time.time() - t_start:.0f} s, "
          f"load average at the end {meta['load_average_end']})")
    for c in rows:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['name']}: {c['value']:.3f} (target {c['target']})")
    return {"schema": "jest-bench-v2", "meta": meta, "shapes": results, "checks": rows}


if __name__ == "__main__":
    sys.exit(main())

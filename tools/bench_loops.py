"""What tools.bench times: the shapes, the loops (ours = the trainer's per-step path, plain = a
textbook loop, the fast path = ours with `train.fast_path`), their alternation, and the
helpers they need (peak memory, a synthetic TokenShard). See tools/bench.py for what is
measured with them."""
from __future__ import annotations

import contextlib
import gc
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jest.training.distributed import World
from jest.model.fastpath import causal_lm_loss, uninitialised_fill
from jest.model.flops import FlopLedger, forward_flops_per_token, train_flops_per_token
from jest.model.llama import build_hf_config, build_model, shape_summary
from jest.data.shards import INDEX_DTYPE, EpochSampler, TokenShard
from jest.tracking.records import MetricsFile
from jest.training.trainer import build_optimizer, label_shares, lr_at, read_step_values, to_device, train_step

GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "intermediate_size": None, "tie_embeddings": True}
# The ladder top CPU rung (issue #15 uses it as the largest CPU rung): the tiny learner's
# vocabulary, context and batch, 4 layers of d=176 (4 heads of 44, SwiGLU 480):
# 4 x (4 d^2 + 3 d 480) + 2048 d = 1.87M matmul params, 4.5x tiny's 0.42M; 6N + 12LdT =
# 12.3 MFLOP/token, 4.4x tiny's.
LADDER_TOP_CPU = {"n_layer": 4, "n_embd": 176, "n_head": 4, "intermediate_size": None, "tie_embeddings": True}
SHAPE_NAMES = ("tiny", "ladder_top", "125m")
DEFAULT_SHAPES = {"cpu": "tiny,ladder_top", "cuda": "tiny,125m"}
# (device type, shape) -> (timed steps, warm-up steps, sequences scored per scoring pass). CPU tiny 30
# and ladder_top 16 timed steps: with 12 and 6, two loops doing identical arithmetic differed by up to
# 22% on a quiet machine (ours/plain 0.78, 2026-12-02); a whole default run takes about a minute.
DEFAULT_STEPS = {("cpu", "tiny"): (30, 3, 64), ("cpu", "ladder_top"): (16, 2, 32), ("cpu", "125m"): (3, 1, 2),
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
    # per step, the process's CPU seconds (all its threads): on a shared machine the work a step
    # took, which a descheduled process's wall time does not show
    cpu_seconds: list = field(default_factory=list)
    fast: bool = False                           # train.fast_path (jest.model.fastpath)


def build_learner(spec: ShapeSpec, device: torch.device, compile_model: bool, seed: int = 0,
                  fast: bool = False) -> Learner:
    hf_config = build_hf_config(spec.model, spec.vocab, spec.seq_len, 0, 0, 0)
    model = build_model(hf_config, seed=seed).to(device)
    model.train()
    optimizer = build_optimizer(model, {**spec.train, "fast_path": fast}, device)
    return Learner(model, torch.compile(model) if compile_model else model, optimizer, fast=fast)


class OursLoop:
    """The body of jest.training.trainer's loop for one policy (one process), minus evaluation,
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
        t0, c0 = time.perf_counter(), time.process_time()
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
        self.learner.cpu_seconds.append(time.process_time() - c0)
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
        t0, c0 = time.perf_counter(), time.process_time()
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
        self.learner.cpu_seconds.append(time.process_time() - c0)
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


"""The one training loop every arm shares; arms differ only by their batch policy.

Reads like a table of contents: build data, model, optimizer and policy; resume
if a checkpoint exists; then per step draw a super-batch, let the policy choose,
train on the choice, account FLOPs, log, evaluate, checkpoint.

On a GPU the loop avoids host synchronisation: the chosen batch goes to the
device by an asynchronous copy from pinned memory, and the loss and gradient
norm are read only at logged steps (the NaN check runs there). Under torchrun
the processes share one global step (jest.distributed); only rank 0 writes.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from jest.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from jest.config import config_hash
from jest.distributed import World, check_batch_divides, init_world
from jest import heldout_sets, repetition
from jest.flops import FlopLedger, forward_flops_per_token, matmul_params, train_flops_per_token
from jest.hardware import matmul_precision, peak_flops_per_second
from jest.model import build_hf_config, build_model, shape_summary
from jest.jest_policy import PolicyContext
from jest.policy import build_policy, draw_set
from jest.scoring import precision_context
from jest.shards import EpochSampler, TokenShard
from jest.tokenizer import load_tokenizer
from jest.tracking import (MetricsFile, MlflowMirror, experiment_name, git_commit, machine_info,
                           package_versions, tracking_uri, write_card)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunSpec:
    """Where a run reads its inputs and writes its outputs."""

    cfg: dict
    arm: str
    seed: int
    run_dir: Path
    shards_dir: Path
    tokenizer_dir: Path
    references_root: Path | None = None  # results/<config>/references: what JEST arms select with
    kind: str = "learner"                # "learner" trains on the pool; "reference" on the curated split
    data_fraction: float = 1.0           # share of the training split used (reference quality ladder)

    @property
    def name(self) -> str:
        return f"reference-{self.arm}" if self.kind == "reference" else run_name(self.arm, self.seed)

    @property
    def train_split(self) -> str:
        curated_only = self.cfg["arms"][self.arm]["policy"] == "curated_only"  # control arm (baselines/controls.py)
        return "curated" if self.kind == "reference" or curated_only else "pool"


def reference_spec(cfg: dict, ref: str, run_dir: Path, shards_dir: Path, tokenizer_dir: Path) -> RunSpec:
    """A reference model trains through the same loop: its own shape and budget, a uniform
    policy, the curated split (or a nested fraction of it)."""
    rcfg = cfg["references"][ref]
    derived = {**cfg, "model": rcfg["model"], "train": rcfg["train"], "arms": {ref: {"policy": "uniform"}}}
    return RunSpec(cfg=derived, arm=ref, seed=rcfg["seed"], run_dir=run_dir, shards_dir=shards_dir,
                   tokenizer_dir=tokenizer_dir, kind="reference", data_fraction=rcfg["data_fraction"])


def training_subset(n: int, fraction: float) -> np.ndarray:
    """The first ceil(fraction * n) sequences of one fixed permutation: 25% is inside 50% is inside 100%."""
    if fraction >= 1.0:
        return np.arange(n)
    order = np.random.default_rng(20240624).permutation(n)
    return np.sort(order[:max(1, math.ceil(fraction * n))])


def log_spaced_steps(total: int, count: int, first_fraction: float = 1 / 16) -> list[int]:
    """`count` log-spaced steps from total * first_fraction to total (the final step always included).

    Parity is read off these points: the earliest one bounds the largest speedup that
    can be measured (a run that reaches the target at its first point shows only
    "at least T / first point"), so evaluations are dense early, sparse late."""
    if count <= 1:
        return [total]
    steps = np.unique(np.round(np.geomspace(max(1.0, total * first_fraction), total, count)).astype(int))
    return sorted(set(steps.tolist()) | {total})


def label_shares(labels: list[dict], label_ids: np.ndarray, prefix: str) -> dict:
    """Share of `label_ids` per source and per quality, under keys like '<prefix>source_brown'."""
    out = {}
    for field in ("source", "quality"):
        values = sorted({lab[field] for lab in labels})
        counts = {v: 0 for v in values}
        for i in label_ids:
            counts[labels[i][field]] += 1
        out.update({f"{prefix}{field}_{v}": counts[v] / max(1, len(label_ids)) for v in values})
    return out


def run_name(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


def training_hash(cfg: dict, arm: str) -> str:
    """What a checkpoint depends on: the data, the model, the loop and the arm (not evaluation,
    MLflow or other arms), so that editing those never invalidates a run in progress."""
    return config_hash({k: cfg[k] for k in ("data", "model", "train", "device")} | {"arm": cfg["arms"][arm]})


def lr_at(step: int, train_cfg: dict) -> float:
    """Linear warmup to the peak, then cosine decay to min_lr_ratio * peak (step is 0-based)."""
    peak, warmup, total = train_cfg["lr"], train_cfg["warmup_steps"], train_cfg["steps"]
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = train_cfg["min_lr_ratio"] * peak
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, train_cfg: dict, device: torch.device) -> torch.optim.AdamW:
    """AdamW; no weight decay on norms and biases (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    seen, decay, no_decay = set(), [], []
    for p in params:  # tied weights appear once
        if id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": train_cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=train_cfg["lr"], betas=(train_cfg["beta1"], train_cfg["beta2"]),
                             fused=device.type == "cuda")


@torch.inference_mode()
def evaluate_heldout(model: torch.nn.Module, shard: TokenShard, indices: np.ndarray,
                     batch_size: int, device: torch.device) -> dict:
    """Mean next-token loss (nats) and bits per byte over fixed held-out sequences."""
    was_training = model.training
    model.eval()
    nll, n_tokens, n_bytes = 0.0, 0, 0
    for i in range(0, len(indices), batch_size):
        batch = shard.get(indices[i:i + batch_size]).to(device)            # (B, T)
        logits = model(input_ids=batch).logits[:, :-1].float()              # (B, T-1, V)
        targets = batch[:, 1:]                                              # (B, T-1)
        nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                               reduction="sum").item()
        n_tokens += targets.numel()
        n_bytes += int(shard.token_bytes[targets.cpu().numpy()].sum())
    model.train(was_training)
    return {"heldout_loss": nll / n_tokens, "heldout_bpb": nll / math.log(2) / max(n_bytes, 1)}


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, micro: int,
               lr: float, grad_clip: float, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on `batch` (b, T) in micro-batches; returns (loss, grad norm) as tensors
    (reading them is the caller's choice: on a GPU that is a host synchronisation).

    `model` may be wrapped in DistributedDataParallel: the gradients are then averaged over
    the processes once, at the last micro-batch, so the loss is this process's batch mean and
    the update is the global-batch update. The forward runs in `precision` (bf16: autocast),
    the backward outside autocast, as torch recommends."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    b = batch.size(0)
    loss_sum = torch.zeros((), device=batch.device)
    for i in range(0, b, micro):
        x = batch[i:i + micro]
        last_micro = i + micro >= b
        # DDP all-reduces gradients in every backward unless told not to: once per step is enough.
        sync = contextlib.nullcontext() if last_micro or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with precision_context(batch.device, precision):
                loss = model(input_ids=x, labels=x).loss * (x.size(0) / b)  # mean over the whole batch
            loss.backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
    optimizer.step()
    return loss_sum, grad_norm


def to_device(tokens: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tokens to the training device. On CUDA the copy is asynchronous from pinned
    (page-locked) memory, so the host goes on to the next step while it runs."""
    if device.type == "cuda":
        return tokens.pin_memory().to(device, non_blocking=True)
    return tokens.to(device)


def set_determinism(device: torch.device) -> None:
    """Deterministic kernels. On CPU that gives the same loss curve bit for bit. On CUDA,
    cuBLAS needs a fixed workspace for it, and a kernel with no deterministic version
    warns instead of stopping the run (GPU runs are reproducible only up to such kernels)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True)


def reads_every_step(device: torch.device) -> bool:
    """On CPU reading the loss costs nothing: read (and NaN-check) it every step, as always.
    On a GPU a read waits for the queued work; read only at logged steps."""
    return device.type != "cuda"


class StepTimer:
    """Model FLOPs utilisation over the steps since the last logged one: analytic FLOPs done
    in the window / its wall time / the peak FLOP/s of every device taking part. `mfu` counts
    training FLOPs (the usual definition), `mfu_train_score` adds the JEST scoring passes."""

    def __init__(self, peak_total: float | None):
        self.peak_total = peak_total
        self.start()

    def start(self) -> None:
        self.t0, self.train_flops, self.score_flops = time.time(), 0.0, 0.0

    def add(self, train_flops: float, score_flops: float) -> None:
        self.train_flops += train_flops
        self.score_flops += score_flops

    def utilisation(self) -> dict:
        """Read after a host synchronisation (the loss read), so the window's GPU work is done."""
        elapsed = time.time() - self.t0
        if self.peak_total is None or elapsed <= 0:
            return {}
        return {"mfu": self.train_flops / elapsed / self.peak_total,
                "mfu_train_score": (self.train_flops + self.score_flops) / elapsed / self.peak_total}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config 'device' is 'cuda' but no CUDA device is visible; use 'cpu' or 'auto'")
    return torch.device(name)


def set_aside_stale_checkpoints(ckpt_root: Path, expected_hash: str, name: str) -> None:
    """Checkpoints written under another data / model / training config are useless for this
    run, but kept: moved to checkpoints.stale-<time>/, and the run starts afresh."""
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is not None and json.loads((ckpt / "state.json").read_text())["config_hash"] != expected_hash:
        stale = ckpt_root.with_name(f"checkpoints.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        ckpt_root.rename(stale)
        print(f"[{name}] checkpoints from another config moved to {stale}; starting afresh", flush=True)


def read_step_values(world: World, loss: torch.Tensor, grad_norm: torch.Tensor, step: int,
                     ckpt_root: Path) -> tuple[float, float]:
    """The step's global mean loss and gradient norm as numbers (a host synchronisation on a GPU);
    stop on a non-finite loss. Every rank reads the same values, so every rank stops together."""
    train_loss = world.mean(loss).item()
    if not math.isfinite(train_loss):
        raise NonFiniteLossError(
            f"training loss is {train_loss} at step {step}; the last good checkpoint is kept in "
            f"{ckpt_root}. Lower 'train.lr' or raise 'train.warmup_steps'.")
    return train_loss, grad_norm.item()  # DDP: gradients are all-reduced, so the norm is global already


def train(spec: RunSpec, threads: int | None = None, progress: bool = True) -> dict:
    """Train one arm x seed to completion (resuming if a checkpoint exists); return the final row.

    Under torchrun every process calls this (jest.distributed); rank 0 returns the final row,
    the other ranks an empty dict."""
    world = init_world(resolve_device(spec.cfg["device"]))
    try:
        return _train(spec, world, threads, progress)
    finally:
        world.close()


def _train(spec: RunSpec, world: World, threads: int | None, progress: bool) -> dict:
    cfg, tcfg = spec.cfg, spec.cfg["train"]
    main = world.is_main  # only rank 0 writes files; the other ranks compute and write nothing
    run_dir, ckpt_root = Path(spec.run_dir), Path(spec.run_dir) / "checkpoints"
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    metrics = MetricsFile(run_dir / "metrics.jsonl")
    card_path = run_dir / "card.json"

    # ---- determinism: same config + seed -> the same loss curve, bit for bit (CPU)
    # The job's threads are shared by its processes (torchrun on CPU: N processes x all threads
    # each would oversubscribe the cores and slow every one of them down).
    torch.set_num_threads(max(1, (threads or cfg["threads"]) // world.world_size))
    device = world.device
    set_determinism(device)

    # ---- data
    pool = TokenShard(spec.shards_dir, spec.train_split)
    seq_len = pool.seq_len
    subset = training_subset(len(pool), spec.data_fraction)
    # Curated-domain, per-pool-source, pool-mixture and external held-out sets (jest/heldout_sets.py).
    eval_sets = heldout_sets.build_heldout_sets(spec.shards_dir, tcfg["eval_sequences"], tcfg["eval_sequences_per_set"])

    # ---- model, optimizer, policy
    tok = load_tokenizer(spec.tokenizer_dir)
    hf_config = build_hf_config(cfg["model"], len(tok), seq_len, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    model = build_model(hf_config, seed=spec.seed).to(device)
    model.train()
    optimizer = build_optimizer(model, tcfg, device)
    shards_manifest = json.loads((Path(spec.shards_dir) / "manifest.json").read_text())
    policy = build_policy(cfg["arms"][spec.arm], PolicyContext(
        seed=spec.seed, seq_len=seq_len, pool_size=len(pool), device=device,
        pool_sha256=shards_manifest["splits"][spec.train_split]["sha256"],
        references_root=Path(spec.references_root or Path(spec.run_dir).parent.parent / "references"),
        precision=tcfg["precision"], world=world))
    # ---- control arms draw from a part of the split (baselines/controls.py); the same stream logic
    subset = draw_set(policy, pool, subset)
    sampler = EpochSampler(len(subset), seed=spec.seed)  # the same stream on every rank

    b = tcfg["batch_size"]
    check_batch_divides(b, world.world_size)
    my_rows = world.batch_slice(b)                     # this rank's part of the chosen batch
    micro = min(tcfg["micro_batch_size"] or b, b // world.world_size)
    super_b = policy.super_batch_size(b)
    if super_b > len(subset):
        raise ValueError(f"super-batch of {super_b} sequences is larger than the {spec.train_split} split "
                         f"({len(subset)} sequences used): lower 'train.batch_size' or add data")
    # ---- repetition accounting (jest/repetition.py): refuse a plan that re-reads data unless allowed
    arm_allows = cfg["arms"][spec.arm].get("allow_repeats", False) and spec.kind == "learner"
    repetition.check_no_repeats(spec.name, tcfg["steps"], super_b, len(subset), spec.train_split,
                                tcfg["allow_repeats"] or arm_allows,
                                f"arms.{spec.arm}.allow_repeats" if spec.kind == "learner" else
                                f"references.{spec.arm}.train.allow_repeats")
    trained = repetition.TrainedSet(len(pool))
    shape = shape_summary(hf_config)
    train_fpt = train_flops_per_token(shape, seq_len)
    ledger = FlopLedger(fixed=policy.fixed_flops)      # global FLOPs: the same numbers as one process
    peak, peak_source = peak_flops_per_second(device, matmul_precision(device, tcfg["precision"]))
    timer = StepTimer(peak * world.world_size if peak else None)

    # ---- resume (every rank loads the same checkpoint; rank 0 tidies the folder first)
    step, position, wall_offset = 0, 0, 0.0
    if main:
        set_aside_stale_checkpoints(ckpt_root, training_hash(cfg, spec.arm), spec.name)
    world.barrier()
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer, metrics.path if main else None)
        step, position, wall_offset = state["step"], state["position"], state["wall_time"]
        ledger.load_state_dict(state["ledger"])
        trained.load_state_dict(state.get("trained"))
    elif main:  # a fresh start: drop what an earlier attempt derived (rows, snapshots, evals, its MLflow run)
        for derived in (metrics.path, run_dir / "mlflow_run.json"):
            derived.unlink(missing_ok=True)
        for derived in (run_dir / "snapshots", run_dir / "eval"):
            shutil.rmtree(derived, ignore_errors=True)

    # ---- the module the optimizer step runs through: DDP averages gradients across ranks,
    # torch.compile fuses the step; scoring, evaluation and saving use the plain `model`.
    train_model = model
    if world.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False)  # the only buffers (rotary frequencies) are constants
    if tcfg["compile"]:
        train_model = torch.compile(train_model)

    # ---- tracking (rank 0)
    n_params = sum(p.numel() for p in model.parameters())
    mirror = None
    if main:
        params = {"arm": spec.arm, "policy": policy.name, "seed": spec.seed, "scale": cfg["name"],
                  "n_params": n_params, "n_matmul_params": matmul_params(shape), "seq_len": seq_len,
                  "super_batch_size": super_b, "train_flops_per_token": train_fpt,
                  "forward_flops_per_token": forward_flops_per_token(shape, seq_len),
                  "world_size": world.world_size,
                  **{f"model.{k}": v for k, v in cfg["model"].items()},
                  **{f"train.{k}": v for k, v in tcfg.items()},
                  **{f"arm.{k}": v for k, v in cfg["arms"][spec.arm].items()}}
        pool_share = label_shares(pool.labels, pool.index["label"][subset], prefix="pool_share_")
        params.update(pool_share)
        tags = {"method": "reference" if spec.kind == "reference" else policy.name, "kind": spec.kind,
                "arm": spec.arm, "seed": spec.seed, "scale": cfg["name"],
                "filter_ratio": round(1 - b / super_b, 4), "git_commit": git_commit()}
        mirror = MlflowMirror(run_dir, tracking_uri(cfg), experiment_name(cfg), spec.name, params, tags)
        write_card(card_path, run=spec.name, arm=spec.arm, seed=spec.seed, status="running", error=None,
                   config=cfg, config_hash=config_hash(cfg), git_commit=tags["git_commit"],
                   packages=package_versions(), machine=machine_info(), threads=torch.get_num_threads(),
                   device=str(device), world_size=world.world_size, precision=tcfg["precision"],
                   compile=tcfg["compile"], peak_flops_per_second=peak, peak_flops_source=peak_source,
                   n_params=n_params, flops_per_token={"train": train_fpt},
                   kind=spec.kind, train_split=spec.train_split, data_fraction=spec.data_fraction,
                   pool_share=pool_share, fixed_flops=policy.fixed_flops,
                   heldout_sets=heldout_sets.describe(eval_sets), draw_set_size=len(subset),
                   planned_pool_passes=repetition.planned_passes(tcfg["steps"], super_b, len(subset)),
                   started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), resumed_from_step=step or None)

        print(f"[{spec.name}] {n_params:,} parameters ({matmul_params(shape):,} in matmuls); "
              f"{b} x {seq_len} = {b * seq_len:,} tokens per step, super-batch {super_b}; "
              f"{train_fpt * b * seq_len:.3e} training FLOPs per step; {tcfg['steps']} steps"
              + (f"; {world.world_size} processes of {b // world.world_size} sequences" if world.distributed else "")
              + (f"; resuming at step {step}" if step else ""), flush=True)

    # ---- loop
    snapshots = set(log_spaced_steps(tcfg["steps"], cfg["evaluation"]["checkpoints"])) if spec.kind == "learner" else set()
    eval_steps = set(log_spaced_steps(tcfg["steps"], tcfg["eval_log_points"], first_fraction=1 / 64))
    read_every_step = reads_every_step(device)
    t0 = time.time() - wall_offset
    # In a Snakemake log (not a terminal) a refresh every 15 s keeps the file readable.
    bar = tqdm(total=tcfg["steps"], initial=step, desc=spec.name, disable=not progress or not main,
               mininterval=1.0 if sys.stderr.isatty() else 15.0, dynamic_ncols=True)
    row: dict = {}
    timer.start()
    try:
        while step < tcfg["steps"]:
            t_step = time.time()
            cand_ids = subset[sampler.take(position, super_b)]
            position += super_b
            candidates = pool.get(cand_ids)                                  # (B, T), the same on every rank
            selection = policy.select(step, candidates, cand_ids, model, b)
            mine = torch.as_tensor(selection.chosen[my_rows])                # all b in one process
            trained.mark(cand_ids[selection.chosen])
            batch = to_device(candidates[mine], device)                      # (b / W, T)

            loss, grad_norm = train_step(train_model, optimizer, batch, micro, lr_at(step, tcfg),
                                         tcfg["grad_clip"], tcfg["precision"])
            step += 1
            ledger.add_train(train_fpt * b * seq_len)
            ledger.add_score(selection.score_flops)
            timer.add(train_fpt * b * seq_len, selection.score_flops)

            last = step == tcfg["steps"]
            evaluate = step % tcfg["eval_every"] == 0 or step in eval_steps or last
            logged = step % tcfg["log_every"] == 0 or evaluate or last
            if logged or read_every_step:
                train_loss, grad_norm_value = read_step_values(world, loss, grad_norm, step, ckpt_root)
            if logged:
                world.check_agreement(selection.chosen, step)
                if main:
                    row = {"step": step, "examples_seen": step * b, "tokens_seen": step * b * seq_len,
                           "candidates_seen": position, "train_loss": train_loss, "lr": lr_at(step - 1, tcfg),
                           "unique_sequences": trained.count, "pool_passes": position / len(subset),
                           "grad_norm": grad_norm_value, **ledger.snapshot(), **selection.diagnostics,
                           **label_shares(pool.labels, pool.index["label"][cand_ids[selection.chosen]], "sel_share_"),
                           **timer.utilisation(), "wall_time": time.time() - t0, "time": time.time()}
                    if evaluate:
                        row.update(heldout_sets.evaluate_sets(eval_sets, lambda shard, idx: evaluate_heldout(
                            model, shard, idx, tcfg["eval_batch_size"], device)))
                    metrics.append(row)
            if main and step in snapshots:  # a plain HF folder per evaluation point (the evaluate stage reads them)
                model.save_pretrained(run_dir / "snapshots" / f"step_{step:07d}", safe_serialization=True)
            if step % tcfg["checkpoint_every"] == 0 or last:
                if not all(torch.isfinite(p).all() for p in model.parameters()):  # every rank: all stop
                    raise NonFiniteLossError(
                        f"weights became NaN/inf at step {step}; the last good checkpoint is kept in "
                        f"{ckpt_root}. Lower 'train.lr' or enable 'train.grad_clip'.")
                if main:
                    save_checkpoint(ckpt_root, step, model, optimizer,
                                    {"step": step, "position": position, "ledger": ledger.state_dict(),
                                     "trained": trained.state_dict(),
                                     "wall_time": time.time() - t0, "config_hash": training_hash(cfg, spec.arm)},
                                    metrics.path, keep=tcfg["keep_checkpoints"])
            if main and step % cfg["mlflow"]["sync_every"] == 0:
                mirror.sync()
            bar.update(1)
            if logged or read_every_step:
                bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{b * seq_len / (time.time() - t_step):,.0f}")
            if logged:  # the next utilisation window starts after this step's evaluation and writes
                timer.start()
    except BaseException as err:
        bar.close()
        if main:
            write_card(card_path, status="failed", error=f"{type(err).__name__}: {err}", failed_at_step=step,
                       finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            mirror.sync(final_status="FAILED")
        raise
    bar.close()
    if not main:
        return {}
    if not row:  # resumed from the final checkpoint: nothing left to train
        row = metrics.rows()[-1]

    # ---- final model: a plain HF folder that lm-eval loads
    model.save_pretrained(run_dir / "model", safe_serialization=True)
    tok.save_pretrained(run_dir / "model")
    final = {k: v for k, v in row.items() if k != "time"} if row else {}
    card = write_card(card_path, status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      steps=step, final=final, flops=ledger.snapshot(),
                      unique_sequences=trained.count, pool_passes=position / len(subset))
    synced = mirror.sync(final_status="FINISHED", artifacts=(card_path, metrics.path))
    write_card(card_path, mlflow_synced=synced, mlflow_error=mirror.last_error)
    print(f"[{spec.name}] done: train loss {final.get('train_loss', float('nan')):.4f}, held-out loss "
          f"{final.get('heldout_loss', float('nan')):.4f}, {final.get('heldout_bpb', float('nan')):.4f} bits/byte, "
          f"{card['flops']['flops_train']:.3e} training FLOPs", flush=True)
    return final

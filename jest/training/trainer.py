"""The one training loop every arm shares; arms differ only by their batch policy.

`_train` is the table of contents: build data, model, optimizer and policy; resume if a
checkpoint of this config exists; start tracking; then per step draw a super-batch, let the
policy choose, train on the choice, account FLOPs, log, evaluate, snapshot, checkpoint.
The parts live in their own modules:

    jest/training/runspec.py    what a run is (RunSpec), its name, config hash and data stream
    jest/training/identity.py   what a checkpoint must match to be resumed: the config and every input's hash
    jest/training/schedule.py   the learning rate per step; which steps are logged, evaluated, saved
    jest/training/optim.py      AdamW and one optimizer step in micro-batches (DDP-aware)
    jest/evaluation/heldout.py    held-out loss and bits per byte
    jest/training/timing.py     MFU of the steps between two logged ones
    jest/policies/base.py     the batch policies (uniform, JEST); jest/model/flops.py the FLOP ledger
    jest/training/checkpoint.py, jest/tracking/records.py   checkpoints; metrics.jsonl, card.json, MLflow
    jest/training/branching.py  wsd cooldown branches of the uniform family: a trunk's branch points, a branch's start

On a GPU the loop avoids host synchronisation: the chosen batch goes to the device by an
asynchronous copy from pinned memory, and the loss and gradient norm are read only at logged
steps (the NaN check runs there). Under torchrun the processes share one global step
(jest.training.distributed); only rank 0 writes.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from jest.training.branching import BRANCH_POINTS, BRANCH_SNAPSHOTS, start_from_trunk, trunk_plan
from jest.training.checkpoint import (drop_derived_outputs, last_good_checkpoint_note, latest_checkpoint,
                                      load_checkpoint, mark_finished, save_checkpoint, set_aside_finished_run,
                                      set_aside_stale_checkpoints, set_aside_unloadable_checkpoints)
from jest.config import config_hash
from jest.training.device import (NonFiniteLossError, check_precision, read_step_values,  # noqa: F401
                                  reads_every_step, resolve_device, set_determinism, to_device)
from jest.training.distributed import World, check_batch_divides, init_world
from jest.model.flops import FlopLedger, forward_flops_per_token, matmul_params, train_flops_per_token
from jest.model.hardware import matmul_precision, peak_flops_per_second
from jest.model.fastpath import fast_loss_fn
from jest.evaluation import heldout_sets
from jest.training import repetition
from jest.evaluation.heldout import evaluate_heldout
from jest.model.llama import build_hf_config, build_model, shape_summary
from jest.training.optim import build_optimizer, train_step
from jest.policies.base import PolicyContext, Selection, draw_set
from jest.policies.registry import build_policy
from jest.training.progress import Progress
from jest.training.identity import identity_hash, input_identity, run_identity
from jest.training.runspec import RunData, RunSpec
from jest.training.runspec import label_shares, reference_spec  # noqa: F401 (imported from here by tools/bench.py, tests)
from jest.training.schedule import StepPlan, arm_train_config, decay_steps, lr_at
from jest.training.timing import StepTimer
from jest.data.tokenizer import load_tokenizer
from jest.tracking.run_tags import arm_tags
from jest.tracking.records import (MetricsFile, MlflowMirror, experiment_name, git_commit, machine_info,
                                  package_versions, tracking_uri, write_card)


def train(spec: RunSpec, threads: int | None = None, progress: bool = True) -> dict:
    """Train one arm x seed to completion (resuming if a checkpoint exists); return the final row.

    Under torchrun every process calls this (jest.training.distributed); rank 0 returns the final row,
    the other ranks an empty dict."""
    world = init_world(resolve_device(spec.cfg["device"]))
    try:
        return _train(spec, world, threads, progress)
    finally:
        world.close()


def _train(spec: RunSpec, world: World, threads: int | None, progress: bool) -> dict:
    run = Training(spec, world, threads)  # determinism; data, model, optimizer, policy
    run.resume()                          # from the latest checkpoint of this config, if any
    run.wrap_for_training()               # DDP across processes, torch.compile when asked
    run.start_tracking()                  # rank 0: card.json, the MLflow run, a one-line summary
    row = run.loop(progress)              # per step: draw, select, step, account, log, evaluate, save
    return run.finish(row)                # rank 0: the final model, card and MLflow status


@dataclass(frozen=True)
class BatchShape:
    """How many sequences a step draws, trains on, and how this process splits them."""

    b: int           # sequences trained on per step, all processes together
    super_b: int     # candidates drawn per step (b for uniform, b / (1 - f) for JEST)
    micro: int       # sequences per forward/backward in this process
    my_rows: slice   # this process's rows of the chosen batch
    seq_len: int

    @property
    def tokens(self) -> int:
        return self.b * self.seq_len

    @classmethod
    def plan(cls, train_cfg: dict, super_b: int, available: int, split: str, seq_len: int,
             world: World) -> "BatchShape":
        b = train_cfg["batch_size"]
        check_batch_divides(b, world.world_size)
        if super_b > available:
            # The config check (jest/planning.py) says which key; this is the last line of defence.
            raise ValueError(f"super-batch of {super_b} sequences is larger than the {split} split "
                             f"({available} sequences used): lower 'train.batch_size' or, for a selection arm, its "
                             "'filter_ratio' (the super-batch is train.batch_size / (1 - filter_ratio); an offline "
                             "filter keeps (1 - filter_ratio) of the pool), or add data")
        return cls(b=b, super_b=super_b, micro=min(train_cfg["micro_batch_size"] or b, b // world.world_size),
                   my_rows=world.batch_slice(b), seq_len=seq_len)


# ---- one run

class Training:
    """One arm x seed while it trains: what the loop reads and updates, built once.

    Only rank 0 (`self.main`) writes files; the other ranks compute and write nothing."""

    def __init__(self, spec: RunSpec, world: World, threads: int | None):
        self.spec, self.world, self.main = spec, world, world.is_main
        self.cfg, self.tcfg = spec.cfg, arm_train_config(spec.cfg, spec.arm)  # steps: the arm's budget
        self.budget = self.cfg["arms"][spec.arm]["budget"]
        self.run_dir = Path(spec.run_dir)
        self.ckpt_root, self.card_path = self.run_dir / "checkpoints", self.run_dir / "card.json"
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsFile(self.run_dir / "metrics.jsonl")

        # Determinism: same config + seed -> the same loss curve, bit for bit (CPU). The job's
        # threads are shared by its processes (torchrun on CPU: N processes x all threads each
        # would oversubscribe the cores and slow every one of them down).
        torch.set_num_threads(max(1, (threads or self.cfg["threads"]) // world.world_size))
        self.device = device = world.device
        check_precision(device, self.tcfg["precision"], "train.precision" if spec.kind == "learner" else
                        f"references.{spec.arm}.train.precision")
        set_determinism(device)

        self.data = RunData.open(spec)
        self.tok = load_tokenizer(spec.tokenizer_dir)
        tok = self.tok
        self.hf_config = build_hf_config(self.cfg["model"], len(tok), self.data.seq_len, tok.bos_token_id,
                                         tok.eos_token_id, tok.pad_token_id)
        self.model = build_model(self.hf_config, seed=spec.seed).to(device)
        self.model.train()
        self.optimizer = build_optimizer(self.model, self.tcfg, device)
        shards_manifest = json.loads((Path(spec.shards_dir) / "manifest.json").read_text())
        self.policy = build_policy(self.cfg["arms"][spec.arm], PolicyContext(
            seed=spec.seed, seq_len=self.data.seq_len, pool_size=len(self.data.pool), device=device,
            pool_sha256=shards_manifest["splits"][spec.train_split]["sha256"],
            references_root=Path(spec.references_root or self.run_dir.parent.parent / "references"),
            runs_root=self.run_dir.parent,
            precision=self.tcfg["precision"], fast=bool(self.tcfg.get("fast_path")), world=world))
        # Control arms draw the same uniform stream from a part of the split (baselines/controls.py).
        self.data.restrict(draw_set(self.policy, self.data.pool, self.data.subset))
        self.batch = BatchShape.plan(self.tcfg, self.policy.super_batch_size(self.tcfg["batch_size"]),
                                     len(self.data.subset), spec.train_split, self.data.seq_len, world)

        # Repetition (jest/training/repetition.py): a plan that re-reads data is refused unless allowed.
        learner = spec.kind == "learner"
        repetition.check_no_repeats(spec.name, self.tcfg["steps"], self.batch.super_b, len(self.data.subset),
                                    spec.train_split, self.tcfg["allow_repeats"] or
                                    (learner and self.cfg["arms"][spec.arm].get("allow_repeats", False)),
                                    f"arms.{spec.arm}.allow_repeats" if learner else
                                    f"references.{spec.arm}.train.allow_repeats")
        self.trained = repetition.TrainedSet(len(self.data.pool))  # which sequences were trained on
        # What a checkpoint must match to be resumed (jest/training/identity.py): computed once, after the policy
        # has verified the reference's files; the inputs are shared with a wsd branch's trunk.
        self.inputs = input_identity(spec)
        self.identity = run_identity(spec, self.inputs)

        self.shape = shape_summary(self.hf_config)
        self.train_fpt = train_flops_per_token(self.shape, self.data.seq_len)
        self.ledger = FlopLedger(fixed=self.policy.fixed_flops)  # global FLOPs: the same as one process
        self.peak, self.peak_source = peak_flops_per_second(device, matmul_precision(device, self.tcfg["precision"]))
        self.timer = StepTimer(self.peak * world.world_size if self.peak else None)
        # a trunk of the wsd family also logs, evaluates and saves what its branches need (jest/training/branching.py)
        self.plan = trunk_plan(self.cfg, spec.arm, StepPlan.for_run(self.cfg, self.tcfg, snapshots=spec.kind == "learner"))
        self.step, self.position, self.wall_offset = 0, 0, 0.0  # position: candidates drawn so far
        self.branched_from: dict | None = None  # a branch: {"run", "step"} of the trunk state it started from
        self.mirror: MlflowMirror | None = None

    def resume(self) -> None:
        """Every rank loads the same checkpoint; rank 0 tidies the folder first. A fresh start
        drops what an earlier attempt derived (rows, snapshots, evaluations, its MLflow run)."""
        if self.main:
            set_aside_unloadable_checkpoints(self.ckpt_root, self.spec.name)  # a torn checkpoint -> the previous one
            set_aside_stale_checkpoints(self.ckpt_root, identity_hash(self.identity), self.spec.name, self.identity)
            set_aside_finished_run(self.ckpt_root, self.card_path, self.spec.name)  # outputs deleted: retrain
            start_from_trunk(self.spec, self.ckpt_root, self.inputs)  # a wsd branch, no checkpoint: the trunk's at S_b
        self.world.barrier()
        ckpt = latest_checkpoint(self.ckpt_root)
        if ckpt is not None:
            state = load_checkpoint(ckpt, self.model, self.optimizer, self.metrics.path if self.main else None)
            self.step, self.position, self.wall_offset = state["step"], state["position"], state["wall_time"]
            self.ledger.load_state_dict(state["ledger"])
            self.trained.load_state_dict(state.get("trained"))
            self.branched_from = state.get("branched_from")
        elif self.main:
            drop_derived_outputs(self.run_dir)

    def wrap_for_training(self) -> None:
        """The module the optimizer step runs through: DDP averages gradients across ranks,
        torch.compile fuses the step; scoring, evaluation and saving use the plain `model`."""
        self.train_model = self.model
        if self.world.distributed:
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False)  # the only buffers (rotary frequencies) are constants
        if self.tcfg["compile"]:
            self.train_model = torch.compile(self.train_model)
        # train.fast_path: fused output projection + cross-entropy (jest.model.fastpath); plain model only
        self.loss_fn = fast_loss_fn(self.tcfg, self.train_model is self.model)

    def start_tracking(self) -> None:
        """Rank 0: the MLflow run (params, tags), the card (status 'running'), one summary line."""
        if not self.main:
            return
        spec, cfg, tcfg, batch, shape = self.spec, self.cfg, self.tcfg, self.batch, self.shape
        n_params = sum(p.numel() for p in self.model.parameters())
        pool_share = self.data.shares(self.data.subset, "pool_share_")
        params = {"arm": spec.arm, "policy": self.policy.name, "seed": spec.seed, "scale": cfg["name"],
                  "n_params": n_params, "n_matmul_params": matmul_params(shape), "seq_len": batch.seq_len,
                  "super_batch_size": batch.super_b, "train_flops_per_token": self.train_fpt,
                  "forward_flops_per_token": forward_flops_per_token(shape, batch.seq_len),
                  "world_size": self.world.world_size,
                  **{f"model.{k}": v for k, v in cfg["model"].items()},
                  **{f"train.{k}": v for k, v in tcfg.items()},
                  **{f"arm.{k}": v for k, v in cfg["arms"][spec.arm].items()},
                  **pool_share}
        # filter_ratio and budget come from the arm's config (jest.tracking.run_tags: 1 - b / B was 0 for
        # the offline filter, which filters the pool once and trains on b of it per step)
        tags = {"method": "reference" if spec.kind == "reference" else self.policy.name, "kind": spec.kind,
                "arm": spec.arm, "seed": spec.seed, "scale": cfg["name"],
                **arm_tags(self.policy.name, cfg["arms"][spec.arm]), "git_commit": git_commit()}
        # Mirrored live, or (mlflow.live: false) only after the evaluation, by the evaluate job, which
        # creates the MLflow run from these params and tags in the card (jest.tracking.records.mirror_run).
        if cfg["mlflow"]["live"]:
            self.mirror = MlflowMirror(self.run_dir, tracking_uri(cfg), experiment_name(cfg), spec.name, params, tags)
        write_card(self.card_path, mlflow_params=params, mlflow_tags=tags, run=spec.name, arm=spec.arm, seed=spec.seed, status="running", error=None,
                   config=cfg, config_hash=config_hash(cfg), git_commit=tags["git_commit"],
                   identity=identity_hash(self.identity), identity_parts=self.identity,  # jest/training/identity.py
                   packages=package_versions(), machine=machine_info(), threads=torch.get_num_threads(),
                   device=str(self.device), world_size=self.world.world_size, precision=tcfg["precision"],
                   compile=tcfg["compile"], peak_flops_per_second=self.peak, peak_flops_source=self.peak_source,
                   n_params=n_params, flops_per_token={"train": self.train_fpt},
                   kind=spec.kind, train_split=spec.train_split, data_fraction=spec.data_fraction,
                   pool_share=pool_share, fixed_flops=self.policy.fixed_flops, budget=self.budget,
                   schedule={k: tcfg[k] for k in ("schedule", "steps", "warmup_steps", "lr", "min_lr_ratio")}
                   | {"decay_steps": decay_steps(tcfg)},
                   heldout_sets=heldout_sets.describe(self.data.eval_sets), draw_set_size=len(self.data.subset),
                   planned_pool_passes=repetition.planned_passes(tcfg["steps"], batch.super_b, len(self.data.subset)),
                   started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), resumed_from_step=self.step or None,
                   branched_from=self.branched_from,  # a wsd branch: its trunk's state it started from
                   trained_steps=tcfg["steps"] - (self.branched_from or {}).get("step", 0))  # this job's own share
        world = self.world
        print(f"[{spec.name}] {n_params:,} parameters ({matmul_params(shape):,} in matmuls); "
              f"{batch.b} x {batch.seq_len} = {batch.tokens:,} tokens per step, super-batch {batch.super_b}; "
              f"{self.train_fpt * batch.tokens:.3e} training FLOPs per step; {tcfg['steps']} steps"
              + (f" (budget {self.budget:g} x {cfg['train']['steps']})" if self.budget != 1 else "")
              + (f"; {world.world_size} processes of {batch.b // world.world_size} sequences"
                 if world.distributed else "")
              + (f"; resuming at step {self.step}" if self.step else ""), flush=True)

    def loop(self, progress: bool) -> dict:
        """Train to `train.steps`; return the last logged row (rank 0; {} elsewhere or when resumed at the end)."""
        tcfg, batch, plan, main = self.tcfg, self.batch, self.plan, self.main
        read_every_step = reads_every_step(self.device)
        t0 = time.time() - self.wall_offset
        # One line every 10% of the steps or 30 s, to the log and to Snakemake's terminal (jest/training/progress.py).
        live = Progress(self.spec.name, tcfg["steps"], self.step, batch.tokens, enabled=progress and main)
        row: dict = {}
        self.timer.start()
        try:
            while self.step < tcfg["steps"]:
                cand_ids, candidates = self.data.draw(self.position, batch.super_b)  # (B, T), the same on every rank
                self.position += batch.super_b
                selection = self.policy.select(self.step, candidates, cand_ids, self.model, batch.b)
                mine = torch.as_tensor(selection.chosen[batch.my_rows])              # all b in one process
                self.trained.mark(cand_ids[selection.chosen])
                tokens = to_device(candidates[mine], self.device)                     # (b / W, T)
                weights = selection.token_weights                                     # token-level policies
                loss, grad_norm = train_step(self.train_model, self.optimizer, tokens, batch.micro,
                                             lr_at(self.step, tcfg), tcfg["grad_clip"], tcfg["precision"],
                                             self.loss_fn, None if weights is None else weights[batch.my_rows])
                self.step += 1
                step = self.step
                self.account(selection)

                logged = plan.logs(step)
                if logged or read_every_step:
                    train_loss, grad_norm_value = read_step_values(self.world, loss, grad_norm, step, self.ckpt_root)
                if logged:
                    self.world.check_agreement(selection.chosen, step)
                    if main:
                        row = self.log_row(selection, cand_ids, train_loss, grad_norm_value, t0)
                if main and (plan.snapshots(step) or plan.snapshots_for_a_branch(step)):
                    self.snapshot(step)
                if plan.checkpoints(step) or plan.branches(step):
                    self.checkpoint(t0)
                if self.mirror and step % self.cfg["mlflow"]["sync_every"] == 0:
                    self.mirror.sync()
                live.update(step, train_loss if logged or read_every_step else None)
                if logged:  # the next utilisation window starts after this step's evaluation and writes
                    self.timer.start()
        except BaseException as err:
            if main:
                write_card(self.card_path, status="failed", error=f"{type(err).__name__}: {err}",
                           failed_at_step=self.step, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                if self.mirror:
                    self.mirror.sync(final_status="FAILED")
            raise
        return row

    def account(self, selection: Selection) -> None:
        """FLOPs of the step: training on the chosen batch, and the policy's scoring passes."""
        train_flops = self.train_fpt * self.batch.tokens
        self.ledger.add_train(train_flops)
        self.ledger.add_score(selection.score_flops)
        self.timer.add(train_flops, selection.score_flops)

    def log_row(self, selection: Selection, cand_ids, train_loss: float, grad_norm: float, t0: float) -> dict:
        """Rank 0: the metrics.jsonl row of a logged step, with the held-out evaluation when due."""
        step, b = self.step, self.batch.b
        row = {"step": step, "examples_seen": step * b, "tokens_seen": step * self.batch.tokens,
               "candidates_seen": self.position, "train_loss": train_loss, "lr": lr_at(step - 1, self.tcfg),
               "unique_sequences": self.trained.count, "pool_passes": self.position / len(self.data.subset),
               "grad_norm": grad_norm, **self.ledger.snapshot(), **selection.diagnostics,
               **self.data.shares(cand_ids[selection.chosen], "sel_share_"),
               **self.timer.utilisation(), "wall_time": time.time() - t0, "time": time.time()}
        if self.plan.evaluates(step):
            sets = self.data.eval_sets if self.plan.evaluates_all_sets(step) else self.data.eval_sets[:1]
            row.update(heldout_sets.evaluate_sets(sets, lambda shard, idx: evaluate_heldout(
                self.model, shard, idx, self.tcfg["eval_batch_size"], self.device,
                fast=bool(self.tcfg.get("fast_path")))))
        self.metrics.append(row)
        return row

    def snapshot(self, step: int) -> None:
        """Rank 0: a plain HF folder per lm-eval point (the evaluate stage); one only a branch needs
        goes to branch_snapshots/, which this run's lm-eval does not read."""
        folder = "snapshots" if self.plan.snapshots(step) else BRANCH_SNAPSHOTS
        self.model.save_pretrained(self.run_dir / folder / f"step_{step:07d}", safe_serialization=True)

    def checkpoint(self, t0: float) -> None:
        """Check the weights on every rank (all stop together), then rank 0 saves: a checkpoint, and at a
        branch point the same state under branch_points/ (kept until the branch copies it)."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise NonFiniteLossError(
                f"weights became NaN/inf at step {self.step}; {last_good_checkpoint_note(self.ckpt_root)}. "
                "Lower 'train.lr' or enable 'train.grad_clip'.")
        if not self.main:
            return
        state = {"step": self.step, "position": self.position, "ledger": self.ledger.state_dict(),
                 "trained": self.trained.state_dict(), "wall_time": time.time() - t0,
                 "config_hash": identity_hash(self.identity), "identity": self.identity,
                 "branched_from": self.branched_from}
        if self.plan.checkpoints(self.step):
            save_checkpoint(self.ckpt_root, self.step, self.model, self.optimizer, state, self.metrics.path,
                            keep=self.tcfg["keep_checkpoints"])
        if self.plan.branches(self.step):
            save_checkpoint(self.run_dir / BRANCH_POINTS, self.step, self.model, self.optimizer, state,
                            self.metrics.path, keep=len(self.plan.branch_points))

    def finish(self, row: dict) -> dict:
        """Rank 0: the final model as a plain HF folder (what lm-eval loads), the card, MLflow."""
        if not self.main:
            return {}
        if not row:  # resumed from the final checkpoint: nothing left to train
            row = self.metrics.rows()[-1]
        self.model.save_pretrained(self.run_dir / "model", safe_serialization=True)
        self.tok.save_pretrained(self.run_dir / "model")
        final = {k: v for k, v in row.items() if k != "time"} if row else {}
        card = write_card(self.card_path, status="finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          steps=self.step, final=final, flops=self.ledger.snapshot(),
                          unique_sequences=self.trained.count, pool_passes=self.position / len(self.data.subset))
        mark_finished(self.ckpt_root, self.step)  # a later job that finds no card retrains (jest/training/checkpoint.py)
        if self.mirror:
            synced = self.mirror.sync(final_status="FINISHED", artifacts=(self.card_path, self.metrics.path))
            write_card(self.card_path, mlflow_synced=synced, mlflow_error=self.mirror.last_error)
        print(f"[{self.spec.name}] done: train loss {final.get('train_loss', float('nan')):.4f}, held-out loss "
              f"{final.get('heldout_loss', float('nan')):.4f}, {final.get('heldout_bpb', float('nan')):.4f} "
              f"bits/byte, {card['flops']['flops_train']:.3e} training FLOPs", flush=True)
        return final

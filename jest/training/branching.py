"""Cooldown branches of the uniform compute family under warmup-stable-decay (DESIGN.md,
"Measuring a speedup"; the OLMo-core / MiniCPM way of training several budgets).

Under `train.schedule: wsd` the learning rate before a run's decay does not depend on the run's
length. A family run of budget b is therefore, up to its decay's first step S_b = steps_b -
decay_steps_b, step for step the family's longest run of the same seed (its trunk): the same
initialisation, the same uniform stream by position, the same learning rates. An arm with
`branch_from: <trunk>` starts from the trunk's state at S_b and trains only its own decay: it is
the separately trained run, bit for bit on CPU (tests/train/test_branching.py).

The trunk's side (`trunk_plan`): besides its own plan it logs and evaluates at every step a
branch's own plan does before S_b, saves the lm-eval snapshots a branch needs there (only-branch
ones under branch_snapshots/, which the trunk's lm-eval does not read), and saves its whole state
at each S_b under branch_points/ (outside checkpoints/, so keep_checkpoints never prunes it).

The branch's side (`start_from_trunk`): with no checkpoint of its own, it copies the trunk's
snapshots and rows that its own plan has up to S_b and the trunk's state at S_b into its own
checkpoints/, then resumes through the trainer's normal resume path. The trunk's copies no other
branch needs are then deleted. Without them (the trunk ran before the branch was configured, or a
copy was deleted) the branch trains from step 0: the same result at the full cost, said in its log.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from jest.evaluation.heldout import METRIC_KEYS
from jest.training.checkpoint import checkpoint_dir, drop_derived_outputs, latest_checkpoint
from jest.io import atomic_write_json
from jest.training.identity import identity_hash, run_identity
from jest.training.runspec import RunSpec, run_name
from jest.training.schedule import StepPlan, arm_train_config, stable_steps
from jest.tracking.records import read_metrics

BRANCH_POINTS, BRANCH_SNAPSHOTS = "branch_points", "branch_snapshots"
# heldout_sets.evaluate_sets names the curated-domain set's metrics without a suffix, and the other
# sets' with one: every held-out key starts with one of these
HELDOUT_KEYS = METRIC_KEYS


def branches_of(cfg: dict, trunk: str) -> list[str]:
    return [arm for arm, spec in cfg["arms"].items() if spec.get("branch_from") == trunk]


def branch_step(cfg: dict, arm: str) -> int:
    """S_b: the completed steps a branch shares with its trunk (the first step of its decay is next)."""
    return stable_steps(arm_train_config(cfg, arm))


def branch_plan(cfg: dict, arm: str) -> StepPlan:
    """The plan the branch's separately trained run would follow (family arms are learners: snapshots)."""
    return StepPlan.for_run(cfg, arm_train_config(cfg, arm), snapshots=True)


def trunk_plan(cfg: dict, trunk: str, plan: StepPlan) -> StepPlan:
    """`plan` (the trunk's own) plus what its branches' plans do before their branch points."""
    eval_steps, all_sets, snapshots, points = set(plan.eval_steps), set(plan.all_sets_steps), set(), set()
    for arm in branches_of(cfg, trunk):
        at, own = branch_step(cfg, arm), branch_plan(cfg, arm)
        eval_steps |= {s for s in range(1, at + 1) if own.evaluates(s)}
        all_sets |= {s for s in own.all_sets_steps if s <= at}
        snapshots |= {s for s in own.snapshot_steps if s <= at}
        points.add(at)
    return replace(plan, eval_steps=frozenset(eval_steps), all_sets_steps=frozenset(all_sets),
                   branch_snapshot_steps=frozenset(snapshots - plan.snapshot_steps), branch_points=frozenset(points))


def branch_rows(rows: list[dict], plan: StepPlan, at: int) -> list[dict]:
    """The trunk's rows up to `at` as the branch's own plan logs them: its logged steps only, and the
    held-out metrics only where (and for the sets) its plan evaluates."""
    out = []
    for row in rows:
        step = row["step"]
        if step > at or not plan.logs(step):
            continue
        keep = lambda key: not key.startswith(HELDOUT_KEYS) or (  # noqa: E731
            plan.evaluates(step) and (key in HELDOUT_KEYS or plan.evaluates_all_sets(step)))
        out.append({k: v for k, v in row.items() if keep(k)})
    return out


def start_from_trunk(spec: RunSpec, ckpt_root: Path, inputs: dict[str, str]) -> dict | None:
    """A branch with no checkpoint of its own: adopt the trunk's state at its branch point (see the
    module's docstring); return branched_from {"run", "step"}, or None (not a branch, already
    started, or no usable branch point: it then trains from step 0). `inputs`: the run's input
    identity (jest/training/identity.py), the trunk's too (the same shards and tokenizer, no reference)."""
    cfg, arm = spec.cfg, spec.arm
    trunk = cfg["arms"][arm].get("branch_from")
    if trunk is None or latest_checkpoint(ckpt_root) is not None:
        return None
    at, plan = branch_step(cfg, arm), branch_plan(cfg, arm)
    trunk_dir = Path(spec.run_dir).parent / run_name(trunk, spec.seed)
    point = checkpoint_dir(trunk_dir / BRANCH_POINTS, at)
    state = json.loads((point / "state.json").read_text()) if (point / "state.json").is_file() else None
    snapshots = [next((d / f"step_{s:07d}" for d in (trunk_dir / "snapshots", trunk_dir / BRANCH_SNAPSHOTS)
                       if (d / f"step_{s:07d}").is_dir()), None) for s in sorted(plan.snapshot_steps) if s <= at]
    trunk_identity = identity_hash(run_identity(spec, inputs, trunk))
    if state is None or state["config_hash"] != trunk_identity or state["step"] != at or None in snapshots:
        print(f"[{spec.name}] no branch point of {trunk} at step {at} under the current config, or a snapshot "
              f"it needs is missing ({point}); training from step 0 (the same result, at the full cost)", flush=True)
        return None
    branched_from = {"run": run_name(trunk, spec.seed), "step": at}
    run_dir = Path(spec.run_dir)
    drop_derived_outputs(run_dir)  # an earlier attempt's rows, snapshots, evaluations, MLflow run
    for source in snapshots:
        shutil.copytree(source, run_dir / "snapshots" / source.name)
    # The copy is complete before it gets its final name (the branch's first checkpoint), as in save_checkpoint.
    tmp = ckpt_root / f".branch_{point.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(point, tmp)
    (tmp / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in
                                               branch_rows(read_metrics(point / "metrics.jsonl"), plan, at)))
    own = run_identity(spec, inputs)
    atomic_write_json(tmp / "state.json", state | {"config_hash": identity_hash(own), "identity": own,
                                                   "trunk_config_hash": state["config_hash"],
                                                   "branched_from": branched_from})
    os.replace(tmp, checkpoint_dir(ckpt_root, at))
    _release_trunk_copies(spec, trunk_dir, at, plan)
    print(f"[{spec.name}] branched from {branched_from['run']} at step {at}: trains only its decay", flush=True)
    return branched_from


def _release_trunk_copies(spec: RunSpec, trunk_dir: Path, at: int, plan: StepPlan) -> None:
    """Delete the trunk's branch point and branch-only snapshots that no branch still needs. A branch
    that has a checkpoint of its own has copied what it needs first (the copy precedes the rename), so
    of two branches sharing a copy the later one deletes it, never before the other's copy."""
    cfg = spec.cfg
    waiting = [(branch_step(cfg, a), branch_plan(cfg, a)) for a in branches_of(cfg, cfg["arms"][spec.arm]["branch_from"])
               if a != spec.arm and latest_checkpoint(trunk_dir.parent / run_name(a, spec.seed) / "checkpoints") is None]
    if all(other_at != at for other_at, _ in waiting):
        shutil.rmtree(checkpoint_dir(trunk_dir / BRANCH_POINTS, at), ignore_errors=True)
    needed = {s for other_at, other in waiting for s in other.snapshot_steps if s <= other_at}
    for step in {s for s in plan.snapshot_steps if s <= at} - needed:
        shutil.rmtree(trunk_dir / BRANCH_SNAPSHOTS / f"step_{step:07d}", ignore_errors=True)

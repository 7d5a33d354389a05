"""Checkpoints that a killed run resumes from, bit for bit on CPU.

A checkpoint is a folder checkpoints/step_<N>/ holding the weights (safetensors),
the optimizer state, the torch RNG state, the trainer state (step, data position,
FLOP ledger) and a copy of metrics.jsonl up to that step. It is written under a
temporary name and renamed when complete, so a folder with the final name is
always whole. Everything is loaded without unpickling code (safetensors,
torch.load(weights_only=True), JSON). A checkpoint that is whole by name but does not load
(a truncated file, a disk error, a hand edit) is moved aside to checkpoints.unloadable/ with a
warning naming it, and the run resumes from the previous one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_model

from jest.training.identity import changed_parts
from jest.io import atomic_write_json

PREFIX = "step_"


def checkpoint_dir(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"{PREFIX}{step:07d}"


# What a run derives from its training, dropped when it starts afresh (or adopts a trunk's state,
# jest/training/branching.py): a trunk's branch points and branch-only snapshots included.
DERIVED_FILES = ("metrics.jsonl", "mlflow_run.json")
DERIVED_FOLDERS = ("snapshots", "eval", "branch_points", "branch_snapshots")


def drop_derived_outputs(run_dir: Path) -> None:
    for name in DERIVED_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in DERIVED_FOLDERS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def save_checkpoint(ckpt_root: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, metrics_path: Path, keep: int) -> Path:
    final = checkpoint_dir(ckpt_root, step)
    tmp = ckpt_root / f".tmp_{PREFIX}{step:07d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # handles tied embeddings
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"torch": torch.get_rng_state()}, tmp / "rng.pt")
    atomic_write_json(tmp / "state.json", state)
    if metrics_path.exists():
        shutil.copyfile(metrics_path, tmp / "metrics.jsonl")
    _fsync_dir(tmp)
    if final.exists():  # re-saving the same step after a resume
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    for old in list_checkpoints(ckpt_root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    metrics_path: Path | None) -> dict:
    """Restore model, optimizer and RNG in place; put back metrics.jsonl (unless metrics_path is
    None: the ranks of a multi-process run other than 0 write nothing); return the trainer state."""
    load_model(model, str(path / "model.safetensors"), strict=True)
    # Via the CPU: a checkpoint written on cuda:0 must not land on GPU 0 for every rank;
    # load_state_dict moves each state tensor to its parameter's device.
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    torch.set_rng_state(torch.load(path / "rng.pt", weights_only=True)["torch"])
    if metrics_path is not None and (path / "metrics.jsonl").exists():
        shutil.copyfile(path / "metrics.jsonl", metrics_path)
    return json.loads((path / "state.json").read_text())


def check_loadable(path: Path) -> None:
    """Read every file of a checkpoint without touching a model; raise if one does not load."""
    json.loads((path / "state.json").read_text())["step"]
    load_file(str(path / "model.safetensors"))
    torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
    torch.load(path / "rng.pt", weights_only=True)["torch"]


def set_aside_unloadable_checkpoints(ckpt_root: Path, name: str) -> list[Path]:
    """From the newest checkpoint back, move each one that does not load to checkpoints.unloadable/
    (kept for inspection) with a warning naming it, until one loads; return the moved folders.
    The newest loadable checkpoint is then what load_checkpoint resumes from (or none: a fresh start)."""
    moved = []
    for ckpt in reversed(list_checkpoints(ckpt_root)):
        try:
            check_loadable(ckpt)
            break
        except Exception as err:  # noqa: BLE001 - whatever the damage, this checkpoint cannot be resumed
            aside = ckpt_root.with_name("checkpoints.unloadable") / f"{ckpt.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(ckpt, aside)
            moved.append(aside)
            print(f"[{name}] WARNING: checkpoint {ckpt} does not load ({type(err).__name__}: {err}); moved to "
                  f"{aside}, resuming from the previous checkpoint if there is one", flush=True)
    return moved


def last_good_checkpoint_note(ckpt_root: Path) -> str:
    """For a message that stops a run: where a re-run would resume from."""
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is None:
        return f"no checkpoint was written yet (none in {ckpt_root}): a re-run starts from step 0"
    return f"the last good checkpoint, {ckpt}, is kept"


def _move_aside(ckpt_root: Path) -> Path:
    stamp, n = time.strftime('%Y%m%d-%H%M%S'), 0
    stale = ckpt_root.with_name(f"checkpoints.stale-{stamp}")
    while stale.exists():  # two set-asides within one second: never rename onto the first
        n += 1
        stale = ckpt_root.with_name(f"checkpoints.stale-{stamp}.{n}")
    ckpt_root.rename(stale)
    return stale


def set_aside_stale_checkpoints(ckpt_root: Path, expected_hash: str, name: str,
                                parts: dict[str, str] | None = None) -> None:
    """Checkpoints written under another identity (config, shards, tokenizer or reference:
    jest/training/identity.py) are useless for this run, but kept: moved to checkpoints.stale-<time>/, with
    a message naming what changed, and the run starts afresh."""
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is None:
        return
    state = json.loads((ckpt / "state.json").read_text())
    if state["config_hash"] != expected_hash:
        stale = _move_aside(ckpt_root)
        what = changed_parts(state.get("identity"), parts or {})
        print(f"[{name}] checkpoints from another config or inputs moved to {stale} (changed: {what}); "
              "starting afresh", flush=True)


# Set in the final checkpoint's state.json once a run's outputs (model, card) are complete. A run whose
# latest checkpoint carries it, but that finds no card.json, had its outputs deleted since: Snakemake
# deletes a job's outputs before it re-runs the job (`--forcerun train`, an updated input, a removed
# output), and that re-run must train, not hand back the final checkpoint's numbers. A killed run never
# set it, so it resumes; so does a run whose final checkpoint is gone (set aside as unloadable).
FINISHED = "finished"


def mark_finished(ckpt_root: Path, step: int) -> None:
    state_path = checkpoint_dir(ckpt_root, step) / "state.json"
    if state_path.is_file():  # the final step always checkpoints (jest.training.schedule.StepPlan.checkpoints)
        atomic_write_json(state_path, json.loads(state_path.read_text()) | {FINISHED: True})


def set_aside_finished_run(ckpt_root: Path, card_path: Path, name: str) -> None:
    """Retrain a finished run whose outputs were deleted (see FINISHED); its checkpoints are kept aside."""
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is None or card_path.exists() or not json.loads((ckpt / "state.json").read_text()).get(FINISHED):
        return
    stale = _move_aside(ckpt_root)
    print(f"[{name}] this run finished before and its outputs were deleted since (snakemake --forcerun, or by "
          f"hand): training afresh; its checkpoints moved to {stale}", flush=True)

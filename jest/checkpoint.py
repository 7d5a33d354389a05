"""Checkpoints that a killed run resumes from, bit for bit on CPU.

A checkpoint is a folder checkpoints/step_<N>/ holding the weights (safetensors),
the optimizer state, the torch RNG state, the trainer state (step, data position,
FLOP ledger) and a copy of metrics.jsonl up to that step. It is written under a
temporary name and renamed when complete, so a folder with the final name is
always whole. Everything is loaded without unpickling code (safetensors,
torch.load(weights_only=True), JSON).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from jest.io import atomic_write_json

PREFIX = "step_"


def _dir_for(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"{PREFIX}{step:07d}"


def save_checkpoint(ckpt_root: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, metrics_path: Path, keep: int) -> Path:
    final = _dir_for(ckpt_root, step)
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

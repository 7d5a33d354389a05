"""What a run is and what it trains on: its spec (arm, seed, folders), its name, the config
its checkpoints depend on, and its data (the training split, the sampler, the held-out sets)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jest.config import config_hash
from jest.policies.registry import get_spec
from jest.evaluation.heldout_sets import HeldoutSet, build_heldout_sets
from jest.data.shards import EpochSampler, TokenShard


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
        if self.kind == "reference":
            return "curated"
        return get_spec(self.cfg["arms"][self.arm]["policy"]).train_split  # curated_only: the curated split


def reference_spec(cfg: dict, ref: str, run_dir: Path, shards_dir: Path, tokenizer_dir: Path) -> RunSpec:
    """A reference model trains through the same loop: its own shape and budget, a uniform
    policy, the curated split (or a nested fraction of it)."""
    rcfg = cfg["references"][ref]
    derived = {**cfg, "model": rcfg["model"], "train": rcfg["train"],
               "arms": {ref: {"policy": "uniform", "budget": 1.0}}}
    return RunSpec(cfg=derived, arm=ref, seed=rcfg["seed"], run_dir=run_dir, shards_dir=shards_dir,
                   tokenizer_dir=tokenizer_dir, kind="reference", data_fraction=rcfg["data_fraction"])


def run_name(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


def training_hash(cfg: dict, arm: str) -> str:
    """The config part of what a checkpoint depends on: the data, the model, the loop and the arm
    (not evaluation, MLflow or other arms), so that editing those never invalidates a run in progress.
    The files it reads (shards, tokenizer, reference) are the other parts (jest/training/identity.py)."""
    return config_hash({k: cfg[k] for k in ("data", "model", "train", "device")} | {"arm": cfg["arms"][arm]})


def training_subset(n: int, fraction: float) -> np.ndarray:
    """The first ceil(fraction * n) sequences of one fixed permutation: 25% is inside 50% is inside 100%."""
    if fraction >= 1.0:
        return np.arange(n)
    order = np.random.default_rng(20240624).permutation(n)
    return np.sort(order[:max(1, math.ceil(fraction * n))])


def cell_of(label: dict) -> str:
    """A (source, quality) cell's name, as the metrics keys '<prefix>cell_<cell>' write it."""
    return f"{label['source']}.{label['quality']}"


def label_shares(labels: list[dict], label_ids: np.ndarray, prefix: str) -> dict:
    """Share of `label_ids` per source, per quality and per (source, quality) cell, under keys like
    '<prefix>source_brown', '<prefix>quality_clean', '<prefix>cell_brown.clean' (the cells are what the
    mixture-matched control reproduces, baselines/mixture.py)."""
    out = {}
    for field, key in (("source", lambda lab: lab["source"]), ("quality", lambda lab: lab["quality"]),
                       ("cell", cell_of)):
        values = sorted({key(lab) for lab in labels})
        counts = {v: 0 for v in values}
        for i in label_ids:
            counts[key(labels[i])] += 1
        out.update({f"{prefix}{field}_{v}": counts[v] / max(1, len(label_ids)) for v in values})
    return out


@dataclass
class RunData:
    """The run's training split (or its nested subset), the order it is drawn in, and the
    fixed held-out sets it is evaluated on (jest/evaluation/heldout_sets.py: the curated domain, each pool
    source, the pool's mixture, external domains)."""

    pool: TokenShard        # the training split: the pool (learners) or the curated split (references)
    subset: np.ndarray      # the split's sequences this run may draw (reference ladder: a nested fraction)
    sampler: EpochSampler   # the same stream on every rank and in every arm of one seed
    eval_sets: list[HeldoutSet]

    @classmethod
    def open(cls, spec: RunSpec) -> "RunData":
        pool = TokenShard(spec.shards_dir, spec.train_split)
        subset = training_subset(len(pool), spec.data_fraction)
        tcfg = spec.cfg["train"]
        return cls(pool=pool, subset=subset, sampler=EpochSampler(len(subset), seed=spec.seed),
                   eval_sets=build_heldout_sets(spec.shards_dir, tcfg["eval_sequences"], tcfg["eval_sequences_per_set"]))

    def restrict(self, subset: np.ndarray) -> None:
        """Draw from `subset` instead (a control arm's set, baselines/controls.py): the same seeded
        stream logic over the smaller set."""
        self.subset, self.sampler = subset, EpochSampler(len(subset), seed=self.sampler.seed)

    @property
    def seq_len(self) -> int:
        return self.pool.seq_len

    def draw(self, position: int, count: int) -> tuple[np.ndarray, torch.Tensor]:
        """The `count` candidates at `position` of the stream: their pool ids and tokens (count, T)."""
        ids = self.subset[self.sampler.take(position, count)]
        return ids, self.pool.get(ids)

    def shares(self, ids: np.ndarray, prefix: str) -> dict:
        """Source and quality shares of the pool sequences `ids`."""
        return label_shares(self.pool.labels, self.pool.index["label"][ids], prefix)

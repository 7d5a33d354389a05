"""Repetition accounting: how often a run re-reads its data (DESIGN.md, "Where a gain comes from").

A filter that draws more candidates than its pool holds sees every sequence
more than once, and a speedup measured that way mixes selection with
repetition. Every run therefore logs `pool_passes` (candidates drawn / size of
the set the arm draws from) and `unique_sequences` (distinct sequences trained
on), and refuses to start a plan that repeats data unless told it may.
"""
from __future__ import annotations

import base64

import numpy as np


class RepetitionError(ValueError):
    """A run would draw more candidates than the set it draws from holds, and repeats are not allowed."""


def planned_passes(steps: int, super_batch: int, draw_set_size: int) -> float:
    return steps * super_batch / max(1, draw_set_size)


def check_no_repeats(run: str, steps: int, super_batch: int, draw_set_size: int, split: str,
                     allowed: bool, key: str) -> None:
    """Refuse (before any training) a plan of `steps` x `super_batch` candidates from `draw_set_size`
    sequences when it exceeds them and `allowed` is false; `key` names the config switch."""
    drawn = steps * super_batch
    if drawn <= draw_set_size or allowed:
        return
    raise RepetitionError(
        f"run '{run}' would draw {drawn:,} candidates ({steps} steps x {super_batch}) from the {draw_set_size:,} "
        f"sequences it draws from (split '{split}'): {drawn - draw_set_size:,} short, "
        f"{planned_passes(steps, super_batch, draw_set_size):.2f} passes, so it would train on repeated data. "
        f"Fixes: fewer 'train.steps' or a smaller 'train.batch_size'; a lower 'filter_ratio' (JEST, "
        f"offline_filter); more data in the split (a larger pool or budget); or accept repetition with "
        f"'{key}: true' (the run then logs pool_passes > 1 and the report flags it).")


class TrainedSet:
    """Which sequences of the training split have been trained on (a bitmap, saved with checkpoints)."""

    def __init__(self, n: int):
        self.seen = np.zeros(n, dtype=bool)

    def mark(self, ids: np.ndarray) -> None:
        self.seen[np.asarray(ids)] = True

    @property
    def count(self) -> int:
        return int(self.seen.sum())

    def state_dict(self) -> dict:
        return {"n": len(self.seen), "bits": base64.b64encode(np.packbits(self.seen).tobytes()).decode("ascii")}

    def load_state_dict(self, state: dict | None) -> None:
        """A checkpoint written before this accounting existed has no bitmap: count from here on."""
        if not state or state["n"] != len(self.seen):
            return
        bits = np.frombuffer(base64.b64decode(state["bits"]), dtype=np.uint8)
        self.seen = np.unpackbits(bits)[: state["n"]].astype(bool)

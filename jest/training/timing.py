"""Step timing: model FLOPs utilisation (MFU) of the steps between two logged ones.

The FLOPs are analytic (jest/model/flops.py), the peak comes from jest/model/hardware.py's table; a
device without a table entry (CPUs) gets no MFU rather than a guess.
"""
from __future__ import annotations

import time


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

"""A live, throttled, one-line progress report per training job.

    [jest_f0.5_s0] step 60/200 (30%) loss 6.412 | 9,870 tok/s | ETA 1m52s

A line is written when the job crosses the next `every_fraction` of its steps, when
`every_s` seconds passed since the last line, and at the last step: a 30-minute job writes
a few dozen lines, never a carriage-return wall. Each line goes to stdout (the job's log
file under Snakemake) and, when $JEST_PROGRESS_FD names an open file descriptor, there too:
the workflow's rules point it at the terminal Snakemake runs in (jest/joblog.py), so a plain
`snakemake --cores 2` shows one line per running job among its own messages.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import TextIO

PROGRESS_FD_ENV = "JEST_PROGRESS_FD"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _terminal_from_env() -> TextIO | None:
    fd = os.environ.get(PROGRESS_FD_ENV)
    if not fd:
        return None
    try:
        return open(int(fd), "w", buffering=1, closefd=False)
    except (OSError, ValueError):
        return None  # not open in this process (a job started outside the workflow): log only


class Progress:
    """Call `update` after every step; it decides whether to write a line."""

    def __init__(self, name: str, total: int, start_step: int = 0, tokens_per_step: int = 0, *,
                 every_fraction: float = 0.1, every_s: float = 30.0, enabled: bool = True,
                 streams: list[TextIO] | None = None, clock=time.monotonic):
        self.name, self.total, self.tokens_per_step = name, total, tokens_per_step
        self.every_steps = max(1, math.ceil(total * every_fraction))
        self.every_s, self.enabled, self.clock = every_s, enabled, clock
        if streams is None:
            streams = [sys.stdout] + [s for s in (_terminal_from_env(),) if s is not None]
        self.streams = streams
        self._start_step, self._start_t = start_step, clock()
        self._last_step, self._last_t = start_step, self._start_t
        self._next_step = (start_step // self.every_steps + 1) * self.every_steps
        self._rate: float | None = None  # steps per second over the last window
        self._mean_rate: float | None = None  # steps per second since this process started

    def update(self, step: int, loss: float | None = None) -> str | None:
        """The line written at this step, or None when throttled."""
        now = self.clock()
        due = step >= self._next_step or step >= self.total or now - self._last_t >= self.every_s
        if not self.enabled or not due or step <= self._last_step:
            return None
        window_s, total_s = now - self._last_t, now - self._start_t
        if window_s > 0:  # tokens/s of the last window (what the job does now); ETA at the mean rate
            self._rate = (step - self._last_step) / window_s
            self._mean_rate = (step - self._start_step) / total_s
        self._last_step, self._last_t = step, now
        self._next_step = (step // self.every_steps + 1) * self.every_steps
        parts = [f"[{self.name}] step {step}/{self.total} ({100 * step / max(1, self.total):.0f}%)"]
        if loss is not None:
            parts[0] += f" loss {loss:.3f}"
        if self._rate:
            parts.append(f"{self._rate * self.tokens_per_step:,.0f} tok/s")
            parts.append("done" if step >= self.total else f"ETA {format_duration((self.total - step) / self._mean_rate)}")
        line = " | ".join(parts)
        for stream in self.streams:
            try:
                stream.write(line + "\n")
                stream.flush()
            except OSError:
                pass  # a closed terminal never stops training
        return line

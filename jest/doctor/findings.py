"""One doctor line: a check, its status, what was seen, and the command that fixes it."""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field

from jest.config import ConfigError

WIDTH = 100  # every printed line fits a 100-column terminal (issue #29)
STATUSES = ("OK", "WARN", "MISSING")


class DoctorError(ConfigError):
    """Something a run of the config needs is missing; the message names each item and its fix.
    A ConfigError, so `python -m jest` and Snakemake's onstart print it as a config problem."""


@dataclass
class Finding:
    check: str  # short name: "cuda", "sources npm", "datasets", ...
    status: str  # OK | WARN | MISSING: MISSING only for what a run needs and cannot get by itself
    detail: str
    fix: list[str] = field(default_factory=list)  # commands (or one instruction), one per line

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def lines(self, width: int = WIDTH) -> list[str]:
        """`STATUS  check  detail`, wrapped, then each fix on its own `-> ` line (long commands wrapped
        at spaces with a shell continuation, so that a copied line still runs)."""
        head = f"{self.status:7s} {self.check:15s} "
        out = textwrap.wrap(self.detail, width, initial_indent=head, subsequent_indent=" " * len(head),
                            break_on_hyphens=False) or [head.rstrip()]
        for command in self.fix:
            out += _wrapped_command(command, width, " " * 8 + "-> ", " " * 11)
        return out


def _wrapped_command(command: str, width: int, first: str, rest: str) -> list[str]:
    if len(first) + len(command) <= width:
        return [first + command]
    lines = textwrap.wrap(command, width - len(rest) - 2, break_long_words=False, break_on_hyphens=False)
    out = [(first if i == 0 else rest) + line + (" \\" if i < len(lines) - 1 else "") for i, line in enumerate(lines)]
    return out


def shown(path) -> str:
    """A path as the user typed it: relative to the working directory when under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel

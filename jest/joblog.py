"""Where a workflow job's output goes: `shell: logged("python -m jest ...")` in the rules.

Snakemake deletes a job's `log:` file when the job starts again, so an interrupted attempt's
traceback would be lost. A wrapped command writes, after a header naming the attempt's start
time, to both
  - the `log:` file (this attempt only: what Snakemake points at when the job fails), and
  - `<log>.attempts`, appended to and never deleted by Snakemake: every attempt, in order.
Progress lines (jest/training/progress.py) also go to fd 3, the terminal Snakemake runs in, so a
plain `snakemake --cores 2` shows them. `tee -i` ignores Ctrl-C, so the traceback of an
interrupted job still reaches both files; pipefail keeps the command's exit status.
TQDM_DISABLE=1 silences the libraries' own bars (transformers' "Writing model shards",
datasets, lm-eval), which would write carriage-return walls into the log files.
"""
from __future__ import annotations

from jest.training.progress import PROGRESS_FD_ENV

ATTEMPTS_SUFFIX = ".attempts"


def logged(command: str) -> str:
    """A rule's shell command (Snakemake placeholders left in) with its output logged as above."""
    # doubled braces: Snakemake formats the result ({rule}, {log:q}); the shell sees { ...; }
    return ("set -o pipefail; "
            '{{ echo "=== attempt started $(date -u +%Y-%m-%dT%H:%M:%SZ) ==="; '
            + PROGRESS_FD_ENV + "=3 TQDM_DISABLE=1 " + command + " 2>&1; }} 3>&2 "
            + "| tee -i -a {log:q}" + ATTEMPTS_SUFFIX + " > {log:q}")

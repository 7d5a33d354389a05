"""Every external artifact a config needs, checked before any job, and an escrow to restore them.

* :func:`artifacts_for` (artifacts.py): npm packs, PyPI sdists, Debian packages, hub datasets and
  local files a config reads, from the config alone.
* :func:`preflight` (preflight.py): cached, or still served by the registry? One error names all
  that are not (run by the workflow's ``onstart`` hook and ``python -m jest preflight``).
* :func:`export_sources` / :func:`import_sources` (escrow.py): ``python -m jest sources export|import``.

docs/sources.md is the user's guide.
"""
from jest.sources.artifacts import Artifact, artifacts_for
from jest.sources.escrow import export_sources, import_sources
from jest.sources.preflight import Check, Report, SourcesError, preflight

__all__ = ["Artifact", "Check", "Report", "SourcesError", "artifacts_for", "export_sources", "import_sources",
           "preflight"]

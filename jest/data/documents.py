"""The one record type every split file is made of."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# Quality labels: selection never sees them, the analysis reports them.
CLEAN = "clean"
OFFDOMAIN = "offdomain"
NOISY = "noisy"
CORRUPTED = "corrupted"
NO_CORRUPTION = "none"


@dataclass(frozen=True)
class Document:
    """One line of a split file; ``id`` is globally unique and stable across runs."""

    id: str
    text: str
    source: str
    group: str
    quality: str
    corruption: str = NO_CORRUPTION

    def to_json_line(self) -> str:
        """Canonical serialisation (sorted keys, raw UTF-8) so equal inputs give equal bytes."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

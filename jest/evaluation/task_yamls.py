"""The task YAMLs under lm-eval include paths, by task or group name (no lm-eval import).

Shared by :mod:`jest.evaluation.evaluate` (the data-file check, which tasks are local) and
:mod:`jest.evaluation.suites` (the chance levels that user tasks declare).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that tolerates lm-eval's ``!function`` tags (irrelevant to the data-file check)."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def task_yamls(include_paths: Iterable[Path]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Map task and group names to (yaml path, config) for every YAML under the include paths."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for root in include_paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(root.rglob("*.yaml")) if root.is_dir() else []
        for path in files:
            try:
                config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
            except (OSError, yaml.YAMLError):
                continue
            if not isinstance(config, dict):
                continue
            name = config.get("task") if isinstance(config.get("task"), str) else config.get("group")
            if isinstance(name, str):
                found.setdefault(name, (path, config))
    return found

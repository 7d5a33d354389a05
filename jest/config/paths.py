"""Where things live (the project root, a config's results and cache folders) and the stable hash
that keys what was computed from a config."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-able object (used to key caches on what produced them)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def section_hashes(**sections: Any) -> str:
    """A rerun trigger that names its parts, 'model=1a2b3c4d train=5e6f7a8b ...': Snakemake reports a
    changed param by its old and new values only ("Params have changed ... before: X now: Y"), so a
    bare hash says nothing; here the part that differs names the config section that changed."""
    return " ".join(f"{name}={config_hash(value)[:8]}" for name, value in sections.items())


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def results_root(cfg: dict) -> Path:
    root = Path(cfg["results_dir"])
    return root if root.is_absolute() else PROJECT_ROOT / root


def cache_root(cfg: dict) -> Path:
    if cfg["cache_dir"]:
        root = Path(cfg["cache_dir"])
        return root if root.is_absolute() else PROJECT_ROOT / root
    return results_root(cfg) / "cache"

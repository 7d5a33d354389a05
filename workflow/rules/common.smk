# Shared helpers: validate the config once, resolve paths, list the runs.
import json
import os
from pathlib import Path

from jest.config import cache_root, config_hash, results_root, validate_config
from jest.io import atomic_write_json

# Offline and self-contained, for every job this workflow launches.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  MLFLOW_DISABLE_TELEMETRY="true", TOKENIZERS_PARALLELISM="false")

# Fails here, naming the key and the allowed values, before any job runs.
CFG = validate_config(config)
# Relative paths when the results live under the working directory, so that targets
# can be named as users see them (results/tiny/runs/...).
ROOT = Path(os.path.relpath(results_root(CFG) / CFG["name"])) if not Path(CFG["results_dir"]).is_absolute() \
    else results_root(CFG) / CFG["name"]
CACHE = cache_root(CFG)
# The software of every rule (used with --sdm conda; a plain venv needs nothing).
ENV = str(Path(workflow.basedir) / "environment.yml")
os.environ.setdefault("HF_HOME", str(CACHE / "hf"))

# The library reads the resolved config from this file. It is a param, not an input:
# a rule reruns when the config sections it reads change (its `trigger` param), not
# whenever any key of the file changes.
RESOLVED_CONFIG = ROOT / "config.resolved.json"
_resolved = json.dumps(CFG, indent=2, sort_keys=True) + "\n"
if not RESOLVED_CONFIG.exists() or RESOLVED_CONFIG.read_text() != _resolved:
    atomic_write_json(RESOLVED_CONFIG, CFG)


def section_hash(*keys):
    """Rerun trigger: a rule reruns when the config sections it reads change."""
    return config_hash({k: CFG[k] for k in keys})


def run_dir(arm, seed):
    return ROOT / "runs" / f"{arm}_s{seed}"


def all_runs():
    return [run_dir(arm, seed) / "mlflow_synced.json" for arm in CFG["arms"] for seed in CFG["seeds"]]


def reference_inputs(wildcards):
    """A JEST arm needs its reference (and, when cached, the reference's pool scores)."""
    arm = CFG["arms"][wildcards.arm]
    if arm["policy"] != "jest":
        return {}
    ref = ROOT / "references" / arm["reference"]
    needed = {"reference": ref / "card.json"}
    if arm["reference_scoring"] == "cached":
        needed["reference_scores"] = ref / "pool_scores.json"
    return needed


def used_references():
    """References some JEST arm needs (only these are trained)."""
    return sorted({arm["reference"] for arm in CFG["arms"].values() if arm["policy"] == "jest"})

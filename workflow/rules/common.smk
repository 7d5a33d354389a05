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


# Headline arms run with the default target; the arms listed under `ablation_arms` only with
# the `ablations` and `all` targets (Snakefile). The uniform baseline must be a headline arm:
# every report compares against it.
ABLATION_ARMS = list(CFG["ablation_arms"])  # checked by validate_config
HEADLINE_ARMS = [a for a in CFG["arms"] if a not in ABLATION_ARMS]

# GPUs per training job = train.nproc_per_node (torchrun's processes) on a GPU device, else 0.
# The profiles read it as `gpu: "$JEST_TRAIN_GPUS"` (Snakemake expands environment variables in
# resource values), so that one SLURM profile serves the single-GPU and the 8-GPU configs.
TRAIN_GPUS = int(CFG["train"]["nproc_per_node"]) if CFG["device"] != "cpu" else 0
os.environ.update(JEST_TRAIN_GPUS=str(TRAIN_GPUS), JEST_GPUS="1" if CFG["device"] != "cpu" else "0")


def all_runs(arms=None):
    """The MLflow receipts of every run of `arms` (default: the headline arms), all seeds."""
    arms = HEADLINE_ARMS if arms is None else arms
    return [run_dir(arm, seed) / "mlflow_synced.json" for arm in arms for seed in CFG["seeds"]]


def reference_inputs(wildcards):
    """A JEST arm needs its reference (and, when cached, the reference's pool scores); so does offline_filter."""
    arm = CFG["arms"][wildcards.arm]
    if arm["policy"] not in ("jest", "offline_filter"):
        return {}
    ref = ROOT / "references" / arm["reference"]
    needed = {"reference": ref / "card.json"}
    # offline_filter (baselines/controls.py) always reads the reference's cached pool scores
    if arm["policy"] == "offline_filter" or arm["reference_scoring"] == "cached":
        needed["reference_scores"] = ref / "pool_scores.json"
    return needed


def used_references(arms=None):
    """References the JEST arms among `arms` (default: every arm) need; only these are trained."""
    arms = list(CFG["arms"]) if arms is None else arms
    return sorted({CFG["arms"][a]["reference"] for a in arms if CFG["arms"][a]["policy"] in ("jest", "offline_filter")})


def analyze_input(arms):
    """The analyze rules' inputs: the MLflow receipts of every run of `arms` and the references they use."""
    return {
        "runs": all_runs(arms),
        "references": expand(ROOT / "references" / "{ref}" / "card.json", ref=used_references(arms)),
    }


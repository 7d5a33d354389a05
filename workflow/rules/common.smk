# Shared helpers: validate the config once, resolve paths, list the runs.
import json
import os
import shlex
import sys
from pathlib import Path

from jest.data.manifest import input_file_contents, local_input_files
from snakemake.exceptions import WorkflowError

from jest.config import PROJECT_ROOT, ConfigError, cache_root, config_hash, results_root, section_hashes
from jest.doctor import planning_warnings
from jest.experiment import validate_snakemake_config
from jest.io import atomic_write_json
from jest.policies.arms import reads_reference, spec_of
from jest.joblog import logged  # every rule's output: its log and <log>.attempts

# Offline and self-contained, for every job this workflow launches.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  MLFLOW_DISABLE_TELEMETRY="true", TOKENIZERS_PARALLELISM="false")

# Fails here, naming the key and the allowed values, before any job runs (dry runs included).
# `--config` values (text below the top level) are converted by the schema's types first.
# A refusal is the user's to fix, so it is raised as a WorkflowError from here: Snakemake prints its
# message and this one frame, not the library's stack under it.
try:
    CFG = validate_snakemake_config(config, workflow.config_settings.config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
# Relative paths when the results live under the working directory, so that targets
# can be named as users see them (results/tiny/runs/...).
ROOT = Path(os.path.relpath(results_root(CFG) / CFG["name"])) if not Path(CFG["results_dir"]).is_absolute() \
    else results_root(CFG) / CFG["name"]
CACHE = cache_root(CFG)
# The software of every rule (used with --sdm conda; a plain venv needs nothing).
ENV = str(Path(workflow.basedir) / "environment.yml")
os.environ.setdefault("HF_HOME", str(CACHE / "hf"))

# Jobs read the resolved config from an immutable snapshot named by its content,
# results/<name>/config.<hash>.json: written once (atomically) and never rewritten, so no other
# invocation (a dry run, a run the lock refuses, a run with another config) can change what a
# running or queued job of this one reads; another config is another file. It is a Path param:
# Snakemake's params trigger ignores Path values (only builtin types are compared), so a rule
# reruns when the config sections it reads change (its `trigger` param), not whenever any key of
# the config changes the snapshot's name.
CONFIG_SNAPSHOT = ROOT / f"config.{config_hash(CFG)}.json"
if not CONFIG_SNAPSHOT.exists():
    atomic_write_json(CONFIG_SNAPSHOT, CFG)
# config.resolved.json is the copy people and the report read (the config of the last run that
# started jobs): written by the onstart hook (evaluate.smk), which Snakemake runs only after it
# holds the lock and never on a dry run.
RESOLVED_CONFIG = ROOT / "config.resolved.json"


def mlflow_store_warning():
    """MLflow mirrors the run folders, and its receipts (runs/*/mlflow_synced.json) are files that stay up
    to date when the store is deleted or damaged afterwards: Snakemake alone would see nothing to do.
    A line naming the store and the command that rebuilds it from the run folders, or None."""
    from jest.tracking.records import REBUILD, MlflowStoreError, _sqlite_path, check_store, tracking_uri

    db = _sqlite_path(tracking_uri(CFG))
    receipts = list((ROOT / "runs").glob("*/mlflow_synced.json"))
    if db is None or not receipts:
        return None
    config_file = str(([*workflow.overwrite_configfiles] or ["config/tiny.yaml"])[0])
    if not db.exists():
        return (f"WARNING: the MLflow store {db} is missing, while {len(receipts)} runs of {ROOT} were mirrored into "
                f"it: recreate it from the run folders: `{REBUILD.replace('CONFIG', config_file)}`")
    try:
        check_store(tracking_uri(CFG))
    except MlflowStoreError as err:
        return f"WARNING: {err}".replace("--config CONFIG", f"--config {config_file}")
    return None


if (_store_warning := mlflow_store_warning()) is not None:
    print(_store_warning, file=sys.stderr)

# `python -m jest doctor`'s fast checks (jest/doctor/: data files, sources, CUDA, bf16, disk): what this
# config needs and this machine lacks, as warnings while planning, dry runs included; a real run stops on
# a missing one before its first job (onstart, evaluate.smk). Not in remote jobs: they re-read this file.
if workflow.is_main_process and (_doctor := planning_warnings(CFG, str(([*workflow.overwrite_configfiles]
                                                                      or ["config/tiny.yaml"])[0]))):
    print(*_doctor, sep="\n", file=sys.stderr)


def write_resolved_config():
    """Point config.resolved.json at this run's config (called by onstart, under the lock)."""
    if not RESOLVED_CONFIG.exists() or json.loads(RESOLVED_CONFIG.read_text()) != CFG:
        atomic_write_json(RESOLVED_CONFIG, CFG)


def data_input_files(wildcards=None):
    """Local files that shape the data (bring-your-own jsonl, local hf data_files): inputs of
    prepare_data, so editing one re-runs it and everything downstream (their sha256 is in the manifest).
    A missing jsonl file stops the DAG here, named by Snakemake; a missing hf data file (the GPU
    configs' parquet downloads) does not, so that `snakemake -n` can plan a scale before its data is
    fetched: prepare_data then names the file and the command that fetches it."""
    sources = CFG["data"]["extra_sources"]
    kinds = {source["name"]: source["kind"] for source in sources}
    return [str(path) for name, path in local_input_files(sources) if kinds[name] == "jsonl" or path.is_file()]


def data_trigger():
    """prepare_data's rerun trigger: the data section, and the content (sha256) of each bring-your-own
    file, so that an edited file re-runs the stage even when its mtime went back (`cp -p`, `rsync -a`,
    `tar x`), which Snakemake's mtime check misses (issue #30). Hashes are cached under the cache dir
    by size, mtime, ctime and inode (jest.data.manifest.content_sha256): a stat per file per start."""
    contents = input_file_contents(CFG["data"]["extra_sources"], CACHE / "preflight" / "local-files.json")
    return section_hash("data") if not contents else config_hash([CFG["data"], contents])


def task_files(wildcards=None):
    """Every file under `evaluation.include_paths` (the user's lm-eval task folders): inputs of evaluate."""
    roots = [Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p for p in CFG["evaluation"]["include_paths"]]
    return sorted(str(f) for root in roots for f in (root.rglob("*") if root.is_dir() else [root]) if f.is_file())


def section_hash(*keys):
    """Rerun trigger: a rule reruns when the config sections it reads change."""
    return config_hash({k: CFG[k] for k in keys})


def run_dir(arm, seed):
    return ROOT / "runs" / f"{arm}_s{seed}"


# Headline arms run with the default target; the arms listed under `ablation_arms` only with
# the `ablations` and `all` targets (Snakefile). The uniform baseline must be a headline arm:
# every report compares against it.
ABLATION_ARMS = list(CFG["ablation_arms"])  # checked by validate_config
# Scale-ladder arms (a `rung` key, jest/ladder/rungs.py) run and are reported by the `ladder` target only.
LADDER_ARMS = [a for a in CFG["arms"] if "rung" in CFG["arms"][a]]
HEADLINE_ARMS = [a for a in CFG["arms"] if a not in ABLATION_ARMS and a not in LADDER_ARMS]

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
    """An arm whose policy reads a reference needs it: its card, and its pool scores when it reads those.
    A scale-ladder arm that reads its lr from the rung's sweep needs the sweep's choice (ladder.smk)."""
    arm = CFG["arms"][wildcards.arm]
    lr = {"lr_choice": rung_lr_choice(ROOT, arm["rung"])} if arm.get("lr_from_sweep") else {}
    other = spec_of(CFG, wildcards.arm).reads_arm(arm)  # another arm's run of this seed (baselines/mixture.py)
    if other is not None:
        lr["matched_run"] = run_dir(other, wildcards.seed) / "card.json"
    reads = reads_reference(CFG, wildcards.arm)  # the policy's spec says (jest/policies/registry.py)
    if reads is None:
        return lr
    ref = ROOT / "references" / arm["reference"]
    needed = {"reference": ref / "card.json", **lr}
    if reads == "scores":
        needed["reference_scores"] = ref / "pool_scores.json"
    return needed


def seed_priority(wildcards):
    """Training and evaluation jobs of earlier seeds first (priority 10 for the last seed, +2 per
    seed before it; below the reference chain's 40 and build_tasks' 50). With the seeds interleaved,
    every per-seed evaluation, which waits for all of its seed's runs, became ready at the end of the
    DAG: 5 of them ran there, the last alone on one core (issue #16, the job timeline). In seed
    order, a seed's evaluation runs beside the next seeds' training."""
    seeds = [int(s) for s in CFG["seeds"]]
    seed = int(wildcards.seed)
    return 10 + 2 * (len(seeds) - 1 - seeds.index(seed)) if seed in seeds else 10


def trunk_inputs(wildcards):
    """A cooldown branch of the uniform family (arms.<arm>.branch_from, jest/training/branching.py) starts from
    its trunk's state at its decay: it waits for the trunk's run of the same seed (its final model,
    written once when the trunk finishes, is the input)."""
    trunk = CFG["arms"][wildcards.arm].get("branch_from")
    return {"trunk": run_dir(trunk, wildcards.seed) / "model" / "model.safetensors"} if trunk else {}


def used_references(arms=None):
    """References the arms among `arms` (default: every arm) read; only these are trained."""
    arms = list(CFG["arms"]) if arms is None else arms
    return sorted({CFG["arms"][a]["reference"] for a in arms if reads_reference(CFG, a) is not None})


def analyze_input(arms):
    """The analyze rules' inputs: the MLflow receipts of every run of `arms` and the references they use."""
    return {
        "runs": all_runs(arms),
        "references": expand(ROOT / "references" / "{ref}" / "card.json", ref=used_references(arms)),
    }


def all_evaluations(arms):
    """The evaluate rule's outputs for every run of `arms`. The targets list them themselves:
    Snakemake does not rebuild a deleted intermediate file while the files downstream of it
    are up to date (measured with 9.27), so without this, deleting eval/ folders did nothing."""
    return [run_dir(arm, seed) / "eval" / "done.json" for arm in arms for seed in CFG["seeds"]]


# evaluation.group_by: seed (workflow/rules/evaluate.smk): the inputs and the --run-dir/--receipt
# arguments of the job that evaluates every run of one group (headline or ablation arms) and seed.
def evaluate_group_rule_inputs(arms):
    """The per-run evaluate rule's inputs, for every run of the group (`rules` is read at job time)."""
    def inputs(wildcards):
        return {"cards": [run_dir(arm, wildcards.seed) / "card.json" for arm in arms],
                "tasks": rules.build_tasks.output.table, "user_tasks": task_files()}
    return inputs


def evaluate_group_args(arms):
    """--run-dir D --receipt R for each run of the group (receipts: the rule's outputs, same order)."""
    def args(wildcards):
        runs = [run_dir(arm, wildcards.seed) for arm in arms]
        return " ".join(f"--run-dir {shlex.quote(str(run))} --receipt {shlex.quote(str(run / 'mlflow_synced.json'))}"
                        for run in runs)
    return args


# The evaluate rule reruns when the evaluation section changes (a task added, a new limit) and
# when what the names mean changes: the suites' members (jest/evaluation/suites.py) and the
# formats of the eval files. The runner then evaluates each snapshot for the tasks it lacks.
def evaluate_trigger():
    from jest.evaluation.evaluate import AGGREGATE_VERSION
    from jest.evaluation.runner import STEP_FORMAT
    from jest.evaluation.suites import expand as expand_suites

    return config_hash([CFG["evaluation"], expand_suites(CFG["evaluation"]["tasks"]), AGGREGATE_VERSION,
                        STEP_FORMAT])


# ---- the scale ladder (workflow/rules/ladder.smk; jest/ladder/rungs.py)
from analysis.plots_ladder import figure_name
from jest.ladder.lr import round_grid
from jest.ladder.rungs import check_draws, ladder_seeds, rung_lr_choice, rung_plan, shard_set_sizes, sweep_seed

LADDER = rung_plan(CFG)

# No repetition, planned before any job: once the shards exist, every ladder arm's draws are checked
# against the pool (and its clean part) here, at DAG time, naming the rung, the arm and the shortage.
# The trainer checks again before training (jest/training/repetition.py), with the real set sizes.
if LADDER and (ROOT / "shards" / "manifest.json").is_file():
    check_draws(CFG, *shard_set_sizes(json.loads((ROOT / "shards" / "manifest.json").read_text())))


def sweep_round_inputs(wildcards):
    """Round k of a rung's sweep: the runs of its grid (the first grid, or the previous round's and the lr
    that round asked for); rounds after the first wait for that round (a checkpoint: its answer decides)."""
    plan, k = LADDER[wildcards.rung], int(wildcards.k)
    previous = checkpoints.ladder_lr_round.get(rung=wildcards.rung, k=k - 1).output[0] if k else None
    grid = round_grid(plan, json.loads(Path(previous).read_text()) if previous else None)
    arm_of = {lr: arm for arm, lr in {**plan["sweep"], **plan["sweep_extra"]}.items()}
    return {"cards": [run_dir(arm_of[lr], sweep_seed(CFG)) / "card.json" for lr in grid],
            **({"previous": previous} if previous else {})}


def sweep_rounds(wildcards):
    """The rung's rounds up to its last (the first whose best is off the grid's edges, or with no lr left).
    One rule per rung, so that every rung's sweep proceeds at once (one input function that walked every
    rung would stop at the first unfinished round and hold the other rungs back)."""
    files, k = [], 0
    while True:
        path = checkpoints.ladder_lr_round.get(rung=wildcards.rung, k=k).output[0]
        files.append(path)
        if not json.loads(Path(path).read_text())["next"]:
            return files
        k += 1


def ladder_run_outputs():
    """The train outputs of every ladder arm x seed (+ lm-eval and the MLflow reconcile with ladder.evaluate)."""
    out = []
    for plan in LADDER.values():
        for arm in plan["arms"]:
            for seed in ladder_seeds(CFG):
                out.append(run_dir(arm, seed) / "card.json")
                if CFG["ladder"]["evaluate"]:
                    out.append(run_dir(arm, seed) / "mlflow_synced.json")
    return out

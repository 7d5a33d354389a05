"""Checks of the whole plan at planning time (issue #30, item 5): what can be known before a job runs.

jest.experiment.validate_config calls `check_plan` last, so a Snakemake dry run, the real run's DAG and
every job that re-reads the config snapshot refuse the same config, listing every run at fault at once
(not the first job to start, minutes in, then each arm one at a time):

- names the file system can hold: each arm's run folder `<arm>_s<seed>` and its job log
  `logs/train/<arm>_s<seed>.log.attempts`, each reference's folder and log, the config's folder;
- draws each run's data can serve, for every run, references included: one step's super-batch must
  fit the set the run draws from, and steps x super-batch must not exceed it unless repeats are
  allowed (jest/training/repetition.py, which the trainer applies again with the real sets).

The sizes of the sets: exact from the built shards (shards/manifest.json) when they are current (built
from this data section and these bring-your-own files); before that, an upper bound from the config
alone (jest.config.checks.split_token_ceilings: tokens // seq_len sequences, known for the default preset's
embedded Brown and bring-your-own jsonl files). A bound only refuses what no data could serve, so it
never refuses a plan the built data would accept. The scale ladder's own check (jest.ladder.rungs.check_draws)
runs on the same exact sizes.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from jest.config import ConfigError, cache_root, results_root
from jest.config.checks import split_token_ceilings
from jest.policies.registry import get_spec
from jest.training.schedule import arm_train_config

NAME_MAX = 255  # bytes of one file name on ext4, xfs, btrfs, tmpfs, NFS (os.pathconf where it answers)
LOG_SUFFIX = ".log.attempts"  # jest.joblog: the longest name a job log gets (<log>.attempts)


class PlanError(ConfigError):
    """A config whose runs the data or the file system cannot serve; the message names each key and a fix."""


# ---------------------------------------------------------------- names the file system can hold
def name_max(root: Path) -> int:
    """The file name limit of the file system that will hold `root` (its nearest existing folder)."""
    probe = Path(root).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return min(NAME_MAX, int(os.pathconf(probe, "PC_NAME_MAX")))
    except (OSError, ValueError):
        return NAME_MAX


def check_name_lengths(cfg: dict) -> None:
    """Refuse any name whose folder or derived file name would exceed the file system's limit."""
    from jest.ladder.rungs import ladder_seeds
    limit = name_max(results_root(cfg))
    seeds = {*cfg["seeds"], *(ladder_seeds(cfg) if cfg.get("ladder") else [])}
    longest_seed = max((str(s) for s in seeds), key=len, default="0")
    names = [("name", cfg["name"], [cfg["name"]])]
    names += [(f"arms.{a}", a, [f"{a}_s{longest_seed}", f"{a}_s{longest_seed}{LOG_SUFFIX}"]) for a in cfg["arms"]]
    names += [(f"references.{r}", r, [r, f"{r}{LOG_SUFFIX}"]) for r in cfg["references"]]
    bad = []
    for key, name, files in names:
        worst = max(files, key=lambda f: len(f.encode()))
        size = len(worst.encode())
        if size > limit:
            room = len(name.encode()) - (size - limit)
            bad.append(f"'{key}': the name is {len(name.encode())} bytes, and the file name {worst[:40]}... it "
                       f"gives is {size} bytes, more than the {limit} the file system of {results_root(cfg)} "
                       f"holds; shorten the name to at most {room} characters")
    if bad:
        raise PlanError("invalid config:\n  " + "\n  ".join(bad))


# ---------------------------------------------------------------- draws the data can serve
@dataclass
class PlannedRun:
    """One run's draws: `steps` x `super_b` candidates from its draw set (a share of one split)."""

    label: str            # "reference 'ref'", "arm 'jest_f0.8'"
    prefix: str           # the config key of its section: "references.ref." or "arms.jest_f0.8."
    draws: str            # its draw set (PolicySpec.draws_from): split, clean or kept; references: split
    split: str            # the split it trains on: curated (references, curated_only) or pool
    fraction: float       # the share of the split it may draw (a reference's data_fraction)
    steps: int
    batch: int            # b: sequences trained on per step
    super_b: int          # B: candidates drawn per step (b / (1 - f) for JEST)
    filter_ratio: float | None
    allowed: bool         # repeats allowed (allow_repeats)
    allow_key: str
    steps_key: str
    batch_key: str


def planned_runs(cfg: dict) -> list[PlannedRun]:
    """Every reference and every non-ladder arm (the ladder's arms are jest.ladder.rungs.check_draws')."""
    runs = []
    for ref, r in cfg["references"].items():
        t = r["train"]
        runs.append(PlannedRun(f"reference '{ref}'", f"references.{ref}.", "split", "curated", r["data_fraction"],
                               t["steps"], t["batch_size"], t["batch_size"], None, bool(t["allow_repeats"]),
                               f"references.{ref}.train.allow_repeats", f"references.{ref}.train.steps",
                               f"references.{ref}.train.batch_size"))
    for arm, a in cfg["arms"].items():
        if "rung" in a:
            continue
        t = arm_train_config(cfg, arm)
        spec = get_spec(a["policy"])
        super_b = spec.super_batch(a, t["batch_size"])
        f = a.get("filter_ratio") if spec.draws_from == "kept" or super_b != t["batch_size"] else None
        runs.append(PlannedRun(f"arm '{arm}'", f"arms.{arm}.", spec.draws_from, spec.train_split, 1.0, t["steps"],
                               t["batch_size"], super_b, f, bool(t["allow_repeats"] or a.get("allow_repeats")),
                               f"arms.{arm}.allow_repeats", f"'train.steps' or 'arms.{arm}.budget'",
                               "train.batch_size"))
    return runs


def draw_set_size(run: PlannedRun, split_sequences: int) -> int | None:
    """The sequences `run` draws from, given its split's size (None: not known before training)."""
    n = split_sequences if run.fraction >= 1 else max(1, math.ceil(run.fraction * split_sequences))
    if run.draws == "kept":  # the offline filter's (1 - f): baselines.controls.keep_best
        return max(1, int(round((1.0 - run.filter_ratio) * n)))
    if run.draws == "clean":  # the oracle's clean share is known only from the labels
        return None
    return n


def _max_ratio(need: int, n: int) -> float | None:
    """The largest filter ratio (3 decimals, rounded down) whose kept share of n holds `need` sequences."""
    if need > n:
        return None
    return math.floor((1 - need / n) * 1000) / 1000


def shortage(run: PlannedRun, size: int, split_sequences: int, exact: bool) -> str | None:
    """What is wrong with `run`'s draws from `size` sequences, and the fixes that work; None if nothing."""
    drawn = run.steps * run.super_b
    one_step = run.super_b > size
    if not one_step and (drawn <= size or run.allowed):
        return None
    where = (f"the {size:,} sequences it draws from" if exact else
             f"at most {size:,} sequences it could draw from (an upper bound from the config; the data is not built)")
    if run.draws == "kept":
        f = run.filter_ratio
        kept = (f"'{run.prefix}filter_ratio' = {f} keeps round((1 - {f}) x {split_sequences:,}) = {size:,} pool "
                f"sequences" if exact else f"'{run.prefix}filter_ratio' = {f} keeps {where}")
        f_step, f_all = _max_ratio(run.batch, split_sequences), _max_ratio(drawn, split_sequences)
        if one_step:
            problem = f"{kept}, fewer than the batch of {run.batch} that each step trains on (drawn from the kept set)"
        else:
            problem = f"{kept}, and its {run.steps} steps x {run.batch} = {drawn:,} draws would repeat them"
        fixes = [f"lower '{run.prefix}filter_ratio' to at most {f_all} (keeps all {drawn:,} draws unrepeated)"
                 if f_all is not None else "even 'filter_ratio: 0' keeps too few for its draws: more pool data"]
        if one_step and f_step is not None and f_step != f_all:
            fixes.append(f"or to at most {f_step} with '{run.allow_key}: true' (one batch fits, data repeats)")
        elif not one_step:
            fixes.append(f"or accept repetition with '{run.allow_key}: true'")
        return (f"{run.label}: {problem}. Lowering '{run.batch_key}' does not help: the kept set stays {size:,} "
                f"sequences and {run.steps} steps re-read it. Fixes: " + "; ".join(fixes))
    if run.filter_ratio is not None and run.super_b != run.batch:
        what = f"{run.steps} steps x a super-batch of {run.super_b} ({run.batch} / (1 - {run.filter_ratio}))"
    else:
        what = f"{run.steps} steps x {run.batch}"
    if one_step:
        problem = f"one step draws {run.super_b} candidates, more than {where}"
    else:
        problem = f"{what} = {drawn:,} draws from {where} would repeat data ({drawn / size:.2f} passes)"
    fixes = [f"fewer steps ({run.steps_key})", f"a smaller '{run.batch_key}'"]
    if run.filter_ratio is not None and run.super_b != run.batch:
        f_all = _max_ratio(run.steps * run.batch, size)
        fixes.insert(0, f"a lower '{run.prefix}filter_ratio'" + (f" (at most {f_all}, with b / (1 - f) whole)"
                                                                  if f_all is not None else ""))
    fixes.append("more data in the " + run.split + " split" +
                 (f" (or a larger '{run.prefix}data_fraction')" if run.fraction < 1 else ""))
    if not one_step:
        fixes.append(f"or accept repetition with '{run.allow_key}: true'")
    return f"{run.label}: {problem}. Fixes: " + "; ".join(fixes)


def current_shards_manifest(cfg: dict) -> dict | None:
    """shards/manifest.json when it was built from this config's data: the data stage's manifest
    records the same data section and the same bring-your-own files (by content), and the shards are
    newer than it. Otherwise None: the data stage will rebuild, and its counts say nothing yet."""
    from jest.data.manifest import input_file_contents
    root = results_root(cfg) / cfg["name"]
    data_path, shards_path = root / "data" / "manifest.json", root / "shards" / "manifest.json"
    try:
        if shards_path.stat().st_mtime < data_path.stat().st_mtime:
            return None
        data, shards = json.loads(data_path.read_text()), json.loads(shards_path.read_text())
    except (OSError, ValueError):
        return None
    if json.dumps(data.get("data_cfg"), sort_keys=True) != json.dumps(cfg["data"], sort_keys=True):
        return None
    recorded = sorted([f["path"], f["sha256"]] for f in data.get("input_files", []))
    try:
        now = sorted(input_file_contents(cfg["data"]["extra_sources"], cache_root(cfg) / "preflight" / "local-files.json"))
    except OSError:
        return None
    if recorded != now or shards.get("seq_len") != cfg["data"]["seq_len"]:
        return None
    return shards


def split_sizes(cfg: dict) -> tuple[dict[str, int | None], dict | None]:
    """(split -> sequences, exact from the current shards, else an upper bound or None; the manifest)."""
    manifest = current_shards_manifest(cfg)
    if manifest is not None:
        return {s: int(m["sequences"]) for s, m in manifest["splits"].items()}, manifest
    if cfg["data"]["preset"] != "default":  # the registry corpus adds documents the bound does not count
        return {}, None
    seq_len = cfg["data"]["seq_len"]
    return {s: None if c is None else c // seq_len for s, c in split_token_ceilings(cfg).items()}, None


def check_draws(cfg: dict) -> None:
    """Refuse, listing every run at fault, a plan whose draws its data cannot serve."""
    sizes, manifest = split_sizes(cfg)
    exact = manifest is not None
    problems = []
    for run in planned_runs(cfg):
        split_n = sizes.get(run.split)
        size = None if split_n is None else draw_set_size(run, split_n)
        if size is not None:
            problem = shortage(run, size, split_n, exact)
            if problem:
                problems.append(problem)
    if problems:
        source = (str(results_root(cfg) / cfg["name"] / "shards" / "manifest.json") if exact else
                  "an upper bound from the config's data section (bring-your-own files by size)")
        raise PlanError(f"invalid config: these runs cannot be served by their data (sizes from {source}):\n  " +
                        "\n  ".join(problems))
    if exact and cfg.get("ladder"):
        from jest.ladder.rungs import check_draws as check_ladder_draws, shard_set_sizes
        check_ladder_draws(cfg, *shard_set_sizes(manifest))


def check_precisions(cfg: dict) -> None:
    """On `device: cpu`, bf16 needs the CPU's bf16 units (jest.model.cpu): refused here, naming every key
    that asks for it, rather than by each training job. (Under 'auto' the device is known only when a job
    starts on its machine; the trainer checks again there.)"""
    if cfg["device"] != "cpu":
        return
    from jest.model.cpu import check_cpu_precision
    keys = [("train.precision", cfg["train"]["precision"])]
    keys += [(f"references.{r}.train.precision", s["train"]["precision"]) for r, s in cfg["references"].items()]
    keys += [(f"arms.{a}.train.precision", arm_train_config(cfg, a)["precision"]) for a in cfg["arms"]]
    bf16 = [k for k, precision in keys if precision == "bf16"]
    if bf16:
        try:
            check_cpu_precision("bf16", bf16[0])
        except ValueError as err:
            more = f" (also {bf16[1:]})" if len(bf16) > 1 else ""
            raise PlanError(f"invalid config:\n  {err}{more}") from None


def check_plan(cfg: dict) -> None:
    """Everything knowable before a job runs (a validated config): names, precisions, then draws."""
    check_name_lengths(cfg)
    check_precisions(cfg)
    check_draws(cfg)

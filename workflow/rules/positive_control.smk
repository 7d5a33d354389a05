# The positive control (issue #27, item 6; config/positive_control.yaml, analysis/positive_control.py): on a
# pool with a declared share of planted noise (data.planted_noise, jest/data/planted.py, applied by
# build_shards), the uniform compute family and the config's `positive_control.arms` are trained by the
# train rule like any arm, and their iterations multipliers are set beside the construction's prediction.
# No lm-eval, no MLflow: the curated-domain held-out loss the trainer logs is the metric.
#
#   snakemake --cores 2 --configfile config/positive_control.yaml     (the config's default target)
#   snakemake positive_control --cores 2 --configfile config/positive_control.yaml
from jest.policies.registry import role_of

PC = CFG.get("positive_control")
# The runs the analysis reads: the family (every uniform-policy arm) and the arms set against the prediction.
# The assumption arm (positive_control.assumption_arm), when set, is read too.
PC_RUN_ARMS = ([a for a, s in CFG["arms"].items() if role_of(s["policy"]) == "family"] + list(PC["arms"])
               + ([PC["assumption_arm"]] if PC["assumption_arm"] else [])) if PC else []


rule analyze_positive_control:
    input:
        runs=[run_dir(arm, seed) / "card.json" for arm in PC_RUN_ARMS for seed in CFG["seeds"]],
        shards=rules.build_shards.output.manifest,  # what was planted: the declared and realised share
    output:
        summary=ROOT / "report" / "positive_control" / "summary.json",
        markdown=ROOT / "report" / "positive_control" / "report.md",
        figure=ROOT / "report" / "positive_control" / "multiplier_vs_prediction.png",
    params:
        config=CONFIG_SNAPSHOT,
        runs=ROOT / "runs",
        out=ROOT / "report" / "positive_control",
    conda:
        ENV
    log:
        ROOT / "logs" / "analyze_positive_control.log",
    shell:
        logged("python -m analysis.positive_control --config {params.config:q} --runs {params.runs:q} "
        "--shards-manifest {input.shards:q} --out {params.out:q}")


PC_OUTPUTS = list(rules.analyze_positive_control.output) if PC else []


rule positive_control:
    input:
        PC_OUTPUTS,

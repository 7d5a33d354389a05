# The scale ladder (issue #15; jest/ladder/rungs.py, docs/ladder.md) and the length axis (issue #28, the same
# machinery with `ladder.axis: tokens_per_param`): the config's `ladder:` rungs are ordinary arms (expanded at
# config load), trained by the train rule. Per rung: an lr sweep of the uniform 1x arm (first seed), in rounds
# that add an lr beyond the grid's edge while the best sits there (checkpoint ladder_lr_round) ->
# ladder/lr_choice.json -> every other arm of the rung (its train job takes the choice as an input:
# common.smk reference_inputs) -> the ladder report.
#
#   snakemake ladder --cores 2 --configfile config/ladder.yaml
#   snakemake length --cores 2 --configfile config/length.yaml   (the same target under the length axis' name)
# Its inputs (LADDER, ladder_run_outputs, the draw check) are in common.smk.

checkpoint ladder_lr_round:
    input:
        unpack(sweep_round_inputs),
    output:
        ROOT / "ladder" / "lr_rounds" / "{rung}_round{k}.json",
    wildcard_constraints:
        rung=r"[A-Za-z][A-Za-z0-9]*",
        k=r"\d+",
    params:
        config=CONFIG_SNAPSHOT,
        runs=ROOT / "runs",
        rung=lambda wc: wc.rung,  # a rung name of the validated config (wildcard constraint above)
        round=lambda wc: int(wc.k),
        previous=lambda wc, input: str(input.previous) if int(wc.k) else "",  # "": the first round has none
    conda:
        ENV
    log:
        ROOT / "logs" / "ladder_lr_round" / "{rung}_round{k}.log",
    shell:
        logged("python -m jest.ladder.lr round --config {params.config:q} --runs {params.runs:q} --rung {params.rung:q} "
        "--round {params.round:q} --previous {params.previous:q} --out {output:q}")


rule ladder_lr_rung:
    input:
        sweep_rounds,
    output:
        ROOT / "ladder" / "lr_choice" / "{rung}.json",
    wildcard_constraints:
        rung=r"[A-Za-z][A-Za-z0-9]*",
    params:
        config=CONFIG_SNAPSHOT,
        rung=lambda wc: wc.rung,
    conda:
        ENV
    log:
        ROOT / "logs" / "ladder_lr_choice" / "{rung}.log",
    shell:
        logged("python -m jest.ladder.lr choose --config {params.config:q} --rung {params.rung:q} --rounds {input:q} "
        "--out {output:q}")


rule ladder_lr_choice:
    input:
        [rung_lr_choice(ROOT, rung) for rung in LADDER],
    output:
        ROOT / "ladder" / "lr_choice.json",
    params:
        config=CONFIG_SNAPSHOT,
    conda:
        ENV
    log:
        ROOT / "logs" / "ladder_lr_choice.log",
    shell:
        logged("python -m jest.ladder.lr merge --config {params.config:q} --choices {input:q} --out {output:q}")


rule analyze_ladder:
    input:
        runs=ladder_run_outputs(),
        lr_choice=rules.ladder_lr_choice.output,  # after every sweep round (their runs are in it)
    output:
        summary=ROOT / "report" / "ladder" / "summary.json",
        markdown=ROOT / "report" / "ladder" / "report.md",
        figure=ROOT / "report" / "ladder" / figure_name({"axis": (CFG.get("ladder") or {}).get("axis")}),
        regime_map=ROOT / "report" / "ladder" / "regime_map.png",
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


rule length:
    input:
        LADDER_OUTPUTS,

# Analysis stage: finished runs -> parity tables with bootstrap CIs, plots, the report and
# summary.json (analysis/report.py; pure functions over the run folders of the config's arms x seeds,
# each metrics.jsonl checked against the sha256 its run recorded), then one MLflow
# "summary" run (tag kind=summary) holding the report as artifacts and the speedups as metrics.
#
# Two reports, one per target (Snakefile):
#   report/            the headline arms only (uniform + the JEST arms not in `ablation_arms`);
#                      built by the default target. Claim verdicts come from these arms.
#   report/ablations/  every arm, headline and ablation (`snakemake ablations` / `snakemake all`);
#                      the ablation arms get their own table and the per-arm speedup plot.


rule analyze:
    input:
        **analyze_input(HEADLINE_ARMS),
    output:
        summary=ROOT / "report" / "summary.json",
        markdown=ROOT / "report" / "report.md",
        html=report(ROOT / "report" / "report.html", caption="../report/caption.rst", category="Report"),
    params:
        results=results_root(CFG),
        name=CFG["name"],
        out=ROOT / "report",
        config=CONFIG_SNAPSHOT,  # its arms x seeds are the runs reported; other folders in runs/ are not read
    conda:
        ENV
    log:
        ROOT / "logs" / "analyze.log",
    shell:
        logged("python -m analysis.report --results {params.results:q} --config {params.name:q} --out {params.out:q} "
        "--arms headline --resolved-config {params.config:q}")


rule analyze_ablations:
    input:
        **analyze_input(list(CFG["arms"])),
    output:
        summary=ROOT / "report" / "ablations" / "summary.json",
        markdown=ROOT / "report" / "ablations" / "report.md",
        html=report(ROOT / "report" / "ablations" / "report.html", caption="../report/caption.rst",
                    category="Report (ablations)"),
    params:
        results=results_root(CFG),
        name=CFG["name"],
        out=ROOT / "report" / "ablations",
        config=CONFIG_SNAPSHOT,  # its arms x seeds are the runs reported; other folders in runs/ are not read
    conda:
        ENV
    log:
        ROOT / "logs" / "analyze_ablations.log",
    shell:
        logged("python -m analysis.report --results {params.results:q} --config {params.name:q} --out {params.out:q} "
        "--arms all --resolved-config {params.config:q}")
